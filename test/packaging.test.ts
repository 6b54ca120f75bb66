import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

// The package as users get it: packed, installed in a project of their own, loaded and type-checked.
// Dependencies come from this repo's node_modules (symlinked), so the test runs offline.

const run = promisify(execFile)
const root = resolve(__dirname, '..')
const fixtures = join(__dirname, 'fixtures', 'consumer')
const bin = (name: string) => join(root, 'node_modules', '.bin', name)
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string, dependencies: Record<string, string>, peerDependencies: Record<string, string>
}

// Packing, two TypeScript programs, attw and publint: tens of seconds on a busy 2-core machine.

interface PackResult { filename: string, files: Array<{ path: string }> }

t.test('npm pack, install, require, import and type-check', async t => {
  t.ok(existsSync(join(root, 'dist', 'cjs', 'index.js')) && existsSync(join(root, 'dist', 'esm', 'index.js')),
    'dist/ is built (npm test builds first)')

  const work = mkdtempSync(join(tmpdir(), 'fastify-refresh-auth-pack-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))

  // --ignore-scripts: prepack would rebuild dist/, which npm test has just built
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root })
  const [pack] = JSON.parse(stdout) as PackResult[]
  const tarball = join(work, pack.filename)

  t.test('files ships the builds and nothing else', async t => {
    const paths = pack.files.map(file => file.path)
    const unexpected = paths.filter(path => !/^(dist\/(cjs|esm)\/.+\.(js|d\.ts)|dist\/(cjs|esm)\/package\.json|package\.json|README\.md|LICENSE)$/.test(path))
    t.same(unexpected, [], 'no sources, tests, maps or configs')
    t.ok(paths.includes('dist/cjs/index.d.ts') && paths.includes('dist/esm/index.d.ts'), 'declarations for both builds')
    t.ok(paths.includes('LICENSE'))
  })

  // the consumer project
  const project = join(work, 'project')
  const installed = join(project, 'node_modules', manifest.name)
  mkdirSync(installed, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'])
  const linked = [...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies), 'typescript', '@types/node']
  for (const name of linked) {
    const target = join(project, 'node_modules', name)
    mkdirSync(dirname(target), { recursive: true })
    symlinkSync(join(root, 'node_modules', name), target, 'dir')
  }
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'commonjs' }))
  cpSync(join(fixtures, 'consumer.cjs'), join(project, 'consumer.cjs'))
  cpSync(join(fixtures, 'consumer.mjs'), join(project, 'consumer.mjs'))

  t.test('require() and import work and sign a user in', async t => {
    const [cjs, esm] = await Promise.all([
      run(process.execPath, ['consumer.cjs'], { cwd: project }),
      run(process.execPath, ['consumer.mjs'], { cwd: project })
    ])
    t.equal(cjs.stdout.trim(), 'cjs ok')
    t.equal(esm.stdout.trim(), 'esm ok')
  })

  // Each module kind in a program of its own: in one program, the CommonJS build's `declare module 'fastify'`
  // could stand in for a missing ESM one (or the reverse), and hide it.
  t.test('TypeScript consumers type-check as ESM and CommonJS under "nodenext", and under "commonjs"', async t => {
    const source = readFileSync(join(fixtures, 'consumer-types.ts'), 'utf8')
    // skipLibCheck keeps it fast (fastify's and node's types are not ours to check); the fixture's
    // expected-error lines fail the check if the package's types ever decay to `any`.
    const compilerOptions = { strict: true, noEmit: true, skipLibCheck: true, types: ['node'], target: 'es2022' }
    const configs = {
      'nodenext-esm': { files: ['consumer.mts'], module: 'nodenext', moduleResolution: 'nodenext' },
      'nodenext-cjs': { files: ['consumer.cts'], module: 'nodenext', moduleResolution: 'nodenext' },
      commonjs: { files: ['consumer.ts'], module: 'commonjs', esModuleInterop: true }
    }
    for (const [name, { files, ...options }] of Object.entries(configs)) {
      const dir = join(project, name)
      mkdirSync(dir)
      for (const file of files) writeFileSync(join(dir, file), source)
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, ...options }, files }))
    }
    const results = await Promise.all(Object.keys(configs).map(name =>
      run(process.execPath, [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(project, name)], { cwd: project })
        .then(() => '', (error: { stdout: string }) => error.stdout)))
    t.same(results, ['', '', ''], 'no type errors')
  })

  t.test('@arethetypeswrong/cli and publint find no problem', async t => {
    const [attw, publint] = await Promise.all([
      run(bin('attw'), [tarball, '--format', 'json'], { cwd: work }).then(result => result.stdout, (error: { stdout: string }) => error.stdout),
      run(bin('publint'), ['run', tarball, '--level', 'suggestion'], { cwd: work }).then(result => result.stdout, (error: { stdout: string }) => `FAILED ${error.stdout}`)
    ])
    const report = JSON.parse(attw) as { problems?: unknown[] }
    t.same(report.problems ?? [], [], 'attw: no problems')
    t.notMatch(publint, /FAILED|Suggestions|Warnings|Errors/, 'publint: nothing to report')
  })
})
