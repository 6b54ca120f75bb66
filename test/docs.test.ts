// Every JavaScript and TypeScript code block of the documentation runs as written, against the built
// package (npm test builds dist/ first), so an example that fails in a reader's hands fails here first.
//
// The convention (CONTRIBUTING.md says the same):
// - Files: README.md, CONTRIBUTING.md, docs/*.md, bench/README.md, e2e/README.md, example/README.md.
// - Fences tagged `js` or `javascript` run with Node; `ts` or `typescript` are type-checked under
//   `strict` (each block on its own, so one block's `declare module` augmentation cannot leak into
//   another), then run. A `js` block that calls `require()` runs as CommonJS, every other block as an
//   ES module (top-level `await` allowed). Blocks import the package by its name, `fastify-refresh-auth`:
//   they run from a folder inside this repository, where Node resolves the package's own name.
// - Fences that must not run carry another tag: `sh` (shell commands), `http` (an HTTP exchange),
//   `json` (output), `sql`, `text`. A fence without a tag, or with a tag not listed here, fails.
// - Stubs: a block that uses names it does not define lists them in an HTML comment on the line just
//   before its fence, `<!-- docs-test: stubs=users,secret -->`; the text around the block names them
//   for the reader. They come from test/helpers/docs-stubs.ts. `needs=redis` runs the block only when a
//   Redis server answers (it fails, never skips, when CI is set), with REDIS_URL set; `redis-prefix=…`
//   names the key prefix the block writes under, deleted after it. `needs=postgres` likewise for a
//   PostgreSQL server, with DATABASE_URL set to a schema of the block's own (dropped after it); `needs=mariadb`
//   for a MariaDB server, with MARIADB_URL set to a database of the block's own (dropped after it). Every block gets AUTH_SECRET (48
//   random bytes, base64) and a folder `keys/` with P-256 PEM files (`2026-11.pem`, `2026-11.pub.pem`,
//   `2026-08.pem`, `2026-08.pub.pem`).
// - `// → text` at the end of a line (usually a `console.log`) or alone on a line: the block prints the
//   line `text` there. A block with such comments must print exactly those lines, in order; a block
//   without them may print anything.
// - A block must end by itself within 20 seconds: it closes what it opens. It never listens on a fixed
//   port: it listens on port 0, or not at all (`app.inject`). The stub `app` is made ready and closed
//   by the test after the block, so a route that cannot be added fails the block.
import { execFile } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import t from 'tap'
import ts from 'typescript'
import { deleteKeys, redisUnavailable, REDIS_URL } from './helpers/redis.js'

const root = resolve(__dirname, '..')

const RUN_JS = new Set(['js', 'javascript'])
const RUN_TS = new Set(['ts', 'typescript'])
const NO_RUN = new Set(['sh', 'http', 'json', 'sql', 'text'])
const STUBS = new Set(['users', 'verifyCredentials', 'secret', 'app'])
const NEEDS = new Set(['redis', 'postgres', 'mariadb'])
const BLOCK_TIMEOUT = 60_000
const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const MARIADB_URL = process.env.MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/test'
// two at a time: the machine has two cores and other developers' tests share it
const CONCURRENCY = 2

export interface Block {
  file: string
  /** 1-based line of the opening fence. */
  line: number
  lang: string
  code: string
  stubs: string[]
  needs: string[]
  redisPrefix: string | null
}

const DIRECTIVE = /^<!--\s*docs-test:(.*?)-->$/
const FENCE = /^( *)(`{3,})\s*([^\s`]*)/

/** The fenced blocks of one Markdown file, with the directive line before each. */
export function extractBlocks (file: string, text: string): Block[] {
  const lines = text.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i])
    if (open === null) continue
    const [, indent, fence, lang] = open
    const body: string[] = []
    let j = i + 1
    while (j < lines.length && !(lines[j].trim().startsWith(fence) && lines[j].trim().replace(/`/g, '') === '')) {
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j])
      j++
    }
    if (j === lines.length) throw new Error(`${file}:${i + 1}: a code fence that is never closed`)
    let previous = i - 1
    while (previous >= 0 && lines[previous].trim() === '') previous--
    const directive = previous >= 0 ? DIRECTIVE.exec(lines[previous].trim()) : null
    blocks.push({ file, line: i + 1, lang, code: body.join('\n'), ...parseDirective(directive?.[1] ?? '', `${file}:${i + 1}`) })
    i = j
  }
  return blocks
}

function parseDirective (text: string, where: string): Pick<Block, 'stubs' | 'needs' | 'redisPrefix'> {
  const parsed: Pick<Block, 'stubs' | 'needs' | 'redisPrefix'> = { stubs: [], needs: [], redisPrefix: null }
  for (const part of text.trim().split(/\s+/).filter(Boolean)) {
    const [key, value = ''] = part.split('=')
    if (key === 'stubs') parsed.stubs = value.split(',').filter(Boolean)
    else if (key === 'needs') parsed.needs = value.split(',').filter(Boolean)
    else if (key === 'redis-prefix') parsed.redisPrefix = value
    else throw new Error(`${where}: unknown docs-test setting ${key}`)
  }
  for (const stub of parsed.stubs) if (!STUBS.has(stub)) throw new Error(`${where}: unknown stub ${stub} (known: ${[...STUBS].join(', ')})`)
  for (const need of parsed.needs) if (!NEEDS.has(need)) throw new Error(`${where}: unknown need ${need}`)
  return parsed
}

/** The `// → text` expectations of a block, in order. */
export function expectedOutput (code: string): string[] {
  return code.split('\n').flatMap(line => {
    const match = /\/\/ → (.*)$/.exec(line)
    return match === null ? [] : [match[1].trimEnd()]
  })
}

function documentationFiles (): string[] {
  const docs = existsSync(join(root, 'docs')) ? readdirSync(join(root, 'docs')).filter(name => name.endsWith('.md')).map(name => `docs/${name}`) : []
  return ['README.md', 'CONTRIBUTING.md', ...docs.sort(), 'bench/README.md', 'e2e/README.md', 'example/README.md']
    .filter(file => existsSync(join(root, file)))
}

// The blocks run from a folder inside the repository, so `import 'fastify-refresh-auth'` resolves to the
// package itself (Node's self-reference through package.json "exports"); git and eslint ignore it.
const work = join(root, '.docs-test', String(process.pid))

function prepareWorkFolder (): void {
  mkdirSync(join(work, 'keys'), { recursive: true })
  for (const kid of ['2026-11', '2026-08']) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    writeFileSync(join(work, 'keys', `${kid}.pem`), privateKey.export({ type: 'pkcs8', format: 'pem' }))
    writeFileSync(join(work, 'keys', `${kid}.pub.pem`), publicKey.export({ type: 'spki', format: 'pem' }))
  }
  const stubs = readFileSync(join(__dirname, 'helpers', 'docs-stubs.ts'), 'utf8')
  writeFileSync(join(work, 'stubs.mts'), stubs)
  const transpile = (module: ts.ModuleKind) => ts.transpileModule(stubs, { compilerOptions: { module, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText
  writeFileSync(join(work, 'stubs.mjs'), transpile(ts.ModuleKind.ESNext))
  writeFileSync(join(work, 'stubs.cjs'), transpile(ts.ModuleKind.CommonJS))
  writeFileSync(join(work, 'pg-admin.mjs'), PG_ADMIN)
  writeFileSync(join(work, 'mariadb-admin.mjs'), MARIADB_ADMIN)
}

// PostgreSQL chores run as a child process too: this file stays free of the untyped `pg`.
const PG_ADMIN = `import pg from 'pg'
const [command, schema] = process.argv.slice(2)
const client = new pg.Client({ connectionString: process.env.POSTGRES_URL, connectionTimeoutMillis: 2000 })
try {
  await client.connect()
  if (command === 'create') await client.query('CREATE SCHEMA "' + schema + '"')
  if (command === 'drop') await client.query('DROP SCHEMA IF EXISTS "' + schema + '" CASCADE')
} catch (err) {
  console.error(err.message)
  process.exitCode = 1
} finally {
  await client.end().catch(() => {})
}
`

// MariaDB's likewise, through mysql2: a database of its own for each block.
const MARIADB_ADMIN = `import mysql from 'mysql2/promise'
const [command, database] = process.argv.slice(2)
let connection
try {
  connection = await mysql.createConnection({ uri: process.env.MARIADB_URL, connectTimeout: 2000 })
  if (command === 'create') await connection.query('CREATE DATABASE ' + connection.escapeId(database))
  if (command === 'drop') await connection.query('DROP DATABASE IF EXISTS ' + connection.escapeId(database))
} catch (err) {
  console.error(err.message)
  process.exitCode = 1
} finally {
  await connection?.end().catch(() => {})
}
`

async function mariadb (command: 'probe' | 'create' | 'drop', database = ''): Promise<Outcome> {
  return runFile(join(work, 'mariadb-admin.mjs'), { MARIADB_URL }, [command, database])
}

/** Null when MariaDB answers, else why not; in CI a missing MariaDB is an error, never a skip. */
async function mariadbUnavailable (): Promise<string | null> {
  const probe = await mariadb('probe')
  if (probe.code === 0) return null
  const reason = `no MariaDB answers at ${MARIADB_URL.replace(/\/\/[^@/]*@/, '//')} (${probe.stderr.trim()}); start it or set MARIADB_URL`
  if (process.env.CI) throw new Error(`MariaDB is required in CI: ${reason}`)
  return reason
}

function databaseUrl (database: string): string {
  const url = new URL(MARIADB_URL)
  url.pathname = `/${database}`
  return url.toString()
}

async function postgres (command: 'probe' | 'create' | 'drop', schema = ''): Promise<Outcome> {
  return runFile(join(work, 'pg-admin.mjs'), { POSTGRES_URL }, [command, schema])
}

/** Null when PostgreSQL answers, else why not; in CI a missing PostgreSQL is an error, never a skip. */
async function postgresUnavailable (): Promise<string | null> {
  const probe = await postgres('probe')
  if (probe.code === 0) return null
  const reason = `no PostgreSQL answers at ${POSTGRES_URL.replace(/\/\/[^@/]*@/, '//')} (${probe.stderr.trim()}); start it or set POSTGRES_URL`
  if (process.env.CI) throw new Error(`PostgreSQL is required in CI: ${reason}`)
  return reason
}

function schemaUrl (schema: string): string {
  const url = new URL(POSTGRES_URL)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return url.toString()
}

type ModuleKind = 'esm' | 'cjs'

function moduleKind (block: Block): ModuleKind {
  return RUN_JS.has(block.lang) && /\brequire\s*\(/.test(block.code) ? 'cjs' : 'esm'
}

/** The block as a file: the stubs imported on its first line (so line numbers match), the stub app closed after it. */
function program (block: Block, kind: ModuleKind): string {
  const names = block.stubs.join(', ')
  const prelude = block.stubs.length === 0
    ? ''
    : kind === 'cjs' ? `const { ${names} } = require('./stubs.cjs'); ` : `import { ${names} } from './stubs.mjs'; `
  const epilogue = block.stubs.includes('app') ? '\n;app.ready().then(() => app.close())\n' : '\n'
  return prelude + block.code + epilogue
}

// Type-checking: one program per block, sharing parsed declaration files (fastify's, node's, ours).
const compilerOptions: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  types: ['node']
}
const sourceCache = new Map<string, ts.SourceFile | undefined>()
const host = ts.createCompilerHost(compilerOptions)
const readSource = host.getSourceFile.bind(host)
host.getSourceFile = (fileName, languageVersion, ...rest) => {
  if (fileName.startsWith(work)) return readSource(fileName, languageVersion, ...rest)
  if (!sourceCache.has(fileName)) sourceCache.set(fileName, readSource(fileName, languageVersion, ...rest))
  return sourceCache.get(fileName)
}

function typeErrors (file: string): string {
  const diagnostics = ts.getPreEmitDiagnostics(ts.createProgram([file], compilerOptions, host))
  return ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: name => name,
    getCurrentDirectory: () => work,
    getNewLine: () => '\n'
  })
}

interface Outcome { code: number | null, stdout: string, stderr: string, killed: boolean }

/** Points messages about the block's file (`block-3.mts(24,16)`, `block-3.mjs:24:16`) at the Markdown line. */
function inDocument (text: string, file: string, block: Block): string {
  const name = file.slice(file.lastIndexOf('/') + 1).replace(/[.]/g, '[.]')
  return text.replace(new RegExp(`(?:file://)?[^\\s(]*${name}(?:\\((\\d+),\\d+\\)|:(\\d+):\\d+)`, 'g'),
    (_match, tsLine?: string, jsLine?: string) => `${block.file}:${block.line + Number(tsLine ?? jsLine)}`)
}

const secret = randomBytes(48).toString('base64')

function runFile (file: string, env: Record<string, string>, args: string[] = []): Promise<Outcome> {
  // the children get no NODE_OPTIONS: tap's coverage and TypeScript loaders are not for the blocks
  const { NODE_OPTIONS: _nodeOptions, ...inherited } = process.env
  return new Promise(resolve => {
    execFile(process.execPath, [file, ...args], {
      cwd: work, timeout: BLOCK_TIMEOUT, killSignal: 'SIGKILL', env: { ...inherited, AUTH_SECRET: secret, ...env }
    }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null
      resolve({ code, stdout, stderr, killed: error?.killed === true })
    })
  })
}

let running = 0
const waiting: Array<() => void> = []
async function limited<T> (task: () => Promise<T>): Promise<T> {
  if (running >= CONCURRENCY) await new Promise<void>(resolve => waiting.push(resolve))
  running++
  try {
    return await task()
  } finally {
    running--
    waiting.shift()?.()
  }
}

// About ten seconds on a quiet machine; far more when other test runs share its two cores.

const blocks = documentationFiles().flatMap(file => extractBlocks(file, readFileSync(join(root, file), 'utf8')))

t.test('every fence has a tag that says whether it runs', async t => {
  t.ok(blocks.some(block => block.file === 'README.md' && RUN_JS.has(block.lang)), 'the README has JavaScript blocks')
  for (const block of blocks) {
    t.ok(RUN_JS.has(block.lang) || RUN_TS.has(block.lang) || NO_RUN.has(block.lang),
      `${block.file}:${block.line}: fence tag "${block.lang}" (use js, ts, or one of ${[...NO_RUN].join(', ')})`)
    if (RUN_JS.has(block.lang) || RUN_TS.has(block.lang)) {
      const listens = [...block.code.matchAll(/\.listen\(([^)]*)\)/g)].map(match => match[1])
      t.ok(listens.every(args => /\bport: 0\b/.test(args)), `${block.file}:${block.line}: listens on port 0 or not at all`)
    }
  }
})

t.test('documentation code blocks run as written', async t => {
  t.ok(existsSync(join(root, 'dist', 'esm', 'index.js')), 'dist/ is built (npm test builds first)')
  rmSync(work, { recursive: true, force: true })
  prepareWorkFolder()
  t.teardown(() => {
    rmSync(work, { recursive: true, force: true })
    // the parent goes too unless another run is using it (rmdir refuses a folder that is not empty)
    try { rmdirSync(join(root, '.docs-test')) } catch {}
  })

  const runnable = blocks.filter(block => RUN_JS.has(block.lang) || RUN_TS.has(block.lang))
  const needsRedis = runnable.some(block => block.needs.includes('redis'))
  const redisReason = needsRedis ? await redisUnavailable() : null
  const needsPostgres = runnable.some(block => block.needs.includes('postgres'))
  const postgresReason = needsPostgres ? await postgresUnavailable() : null
  const needsMariadb = runnable.some(block => block.needs.includes('mariadb'))
  const mariadbReason = needsMariadb ? await mariadbUnavailable() : null

  const results = runnable.map((block, index) => {
    const name = `${block.file}:${block.line} (${block.lang})`
    if (block.needs.includes('redis') && redisReason !== null) return { block, name, skip: redisReason }
    if (block.needs.includes('postgres') && postgresReason !== null) return { block, name, skip: postgresReason }
    if (block.needs.includes('mariadb') && mariadbReason !== null) return { block, name, skip: mariadbReason }
    const kind = moduleKind(block)
    const base = join(work, `block-${index}`)
    const source = program(block, kind)
    const isTs = RUN_TS.has(block.lang)
    const runnableFile = `${base}.${kind === 'cjs' ? 'cjs' : 'mjs'}`
    if (isTs) {
      writeFileSync(`${base}.mts`, source)
      writeFileSync(runnableFile, ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText)
    } else {
      writeFileSync(runnableFile, source)
    }
    const outcome = limited(async () => {
      const types = isTs ? inDocument(typeErrors(`${base}.mts`), `${base}.mts`, block) : ''
      const env: Record<string, string> = block.needs.includes('redis') ? { REDIS_URL } : {}
      const schema = `docs_test_${process.pid}_${index}`
      if (block.needs.includes('postgres')) {
        const created = await postgres('create', schema)
        if (created.code !== 0) throw new Error(`cannot create the schema ${schema}: ${created.stderr}`)
        env.DATABASE_URL = schemaUrl(schema)
      }
      if (block.needs.includes('mariadb')) {
        const created = await mariadb('create', schema)
        if (created.code !== 0) throw new Error(`cannot create the database ${schema}: ${created.stderr}`)
        env.MARIADB_URL = databaseUrl(schema)
      }
      const run = await runFile(runnableFile, env)
      run.stderr = inDocument(run.stderr, runnableFile, block)
      if (block.needs.includes('postgres')) await postgres('drop', schema)
      if (block.needs.includes('mariadb')) await mariadb('drop', schema)
      if (block.redisPrefix !== null) {
        const { Redis } = await import('ioredis')
        const client = new Redis(REDIS_URL)
        try { await deleteKeys(client, block.redisPrefix) } finally { client.disconnect() }
      }
      return { types, run }
    })
    return { block, name, outcome, skip: null }
  })

  for (const { block, name, outcome, skip } of results) {
    t.test(name, { skip: skip ?? false }, async t => {
      const { types, run } = await (outcome as NonNullable<typeof outcome>)
      if (RUN_TS.has(block.lang)) t.equal(types, '', 'type-checks under strict')
      t.notOk(run.killed, `ends by itself within ${BLOCK_TIMEOUT / 1000} s`)
      t.equal(run.code, 0, 'exits with 0', { stderr: run.stderr.slice(0, 4000) })
      const expected = expectedOutput(block.code)
      if (expected.length > 0) {
        t.same(run.stdout.split('\n').map(line => line.trimEnd()).filter(line => line !== ''), expected, 'prints what its // → comments say')
      }
    })
  }
})

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug (heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
}

function anchorsOf (text: string): Set<string> {
  const seen = new Map<string, number>()
  const anchors = new Set<string>()
  let inFence = false
  for (const line of text.split('\n')) {
    if (FENCE.test(line)) inFence = !inFence
    const heading = inFence ? null : /^#{1,6} (.*)$/.exec(line)
    if (heading === null) continue
    const base = slug(heading[1])
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    anchors.add(count === 0 ? base : `${base}-${count}`)
  }
  return anchors
}

t.test('relative links point to files and headings that exist, and every document is reachable from the README', async t => {
  const files = documentationFiles()
  const reached = new Set(['README.md'])
  const queue = ['README.md']
  while (queue.length > 0) {
    const file = queue.shift() as string
    const text = readFileSync(join(root, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue
      const [path, anchor] = target.split('#')
      const linked = path === '' ? file : relative(root, resolve(root, file, '..', path))
      t.ok(existsSync(join(root, linked)), `${file}: ${target} exists`)
      if (anchor !== undefined && linked.endsWith('.md') && existsSync(join(root, linked))) {
        t.ok(anchorsOf(readFileSync(join(root, linked), 'utf8')).has(anchor), `${file}: ${target} names a heading`)
      }
      if (linked.endsWith('.md') && !reached.has(linked) && existsSync(join(root, linked))) {
        reached.add(linked)
        queue.push(linked)
      }
    }
  }
  for (const file of files) t.ok(reached.has(file), `${file} is reachable from README.md`)
})

t.test('the README says how to install and test in two commands, and CI runs that test command', async t => {
  const commands = (file: string) => blocks.filter(block => block.file === file && block.lang === 'sh').map(block => block.code.trim())
  t.ok(commands('README.md').includes('npm i fastify-refresh-auth'), 'README: how to install the package')
  t.ok(commands('README.md').includes('npm ci\nnpm test'), 'README: npm ci, npm test')
  t.ok(commands('CONTRIBUTING.md').includes('npm ci\nnpm test'), 'CONTRIBUTING: npm ci, npm test')
  const ci = readFileSync(join(root, '.ci', 'run'), 'utf8').split('\n').map(line => line.trim())
  t.ok(ci.includes('npm ci --no-audit --no-fund') && ci.includes('npm test'), '.ci/run installs with npm ci and runs npm test')
})

t.test('the runner itself: blocks, directives, expectations', async t => {
  const text = [
    'Intro', '', '<!-- docs-test: stubs=users,app -->', '```js', 'console.log(1) // → 1', '```',
    '', '- a list', '  ```sh', '  npm test', '  ```'
  ].join('\n')
  const [js, sh] = extractBlocks('x.md', text)
  t.match(js, { line: 4, lang: 'js', code: 'console.log(1) // → 1', stubs: ['users', 'app'] })
  t.match(sh, { line: 9, lang: 'sh', code: 'npm test', stubs: [] })
  t.same(expectedOutput(js.code), ['1'])
  t.throws(() => extractBlocks('x.md', '<!-- docs-test: stubs=nope -->\n```js\n```'), /unknown stub nope/)
  t.throws(() => extractBlocks('x.md', '```js\nopen'), /never closed/)
  t.equal(relative(root, work).startsWith('.docs-test'), true, 'blocks run inside the repository')
  t.equal(slug('`rotate`: the compare-and-set'), 'rotate-the-compare-and-set')
  t.equal(slug('OpenAPI with @fastify/swagger'), 'openapi-with-fastifyswagger')
  t.same([...anchorsOf('# A\n## A\n```sh\n# not a heading\n```\n')], ['a', 'a-1'])
  t.equal(inDocument('/x/block-3.mts(2,5): error; at file:///x/block-3.mjs:4:1', '/x/block-3.mts', js), 'x.md:6: error; at file:///x/block-3.mjs:4:1')
  t.equal(inDocument('at file:///x/block-3.mjs:4:1', '/x/block-3.mjs', js), 'at x.md:8')
})
