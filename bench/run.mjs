// The throughput benchmark: `npm run bench -- [options]` (see --help).
// Each variant (bench/variants.mjs) runs in its own server process; autocannon loads it from this
// process. Variants are measured interleaved, A B C … B C A …, for several rounds, so a slow
// moment of the machine hits all of them alike; each variant's ratio is to bare Fastify in the same run.
import autocannon from 'autocannon'
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { diagnostics, variants } from './variants.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const ALL = Object.keys(variants)
const SETTLE_MS = 500
const KNOWN = [...ALL, ...Object.keys(diagnostics)]

const HELP = `Usage: npm run bench -- [options]
  --duration <s>      seconds of load per variant per round (default 10; quick 3)
  --rounds <n>        rounds (default 5; quick 3)
  --warmup <s>        seconds of unrecorded load per variant before the first round (default 3; quick 1)
  --connections <n>   concurrent connections (default 50)
  --quick             about a minute in all
  --variants <a,b>    which variants (default all: ${ALL.join(', ')}); bare is always added.
                      Diagnostics, only when named: ${Object.keys(diagnostics).join(', ')}
  --out <file>        JSON results (default bench/results/latest.json)
  --profile <variant> run that server under node --cpu-prof (profiles in bench/profiles/)`

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    quick: { type: 'boolean', default: false },
    variants: { type: 'string' },
    out: { type: 'string' },
    profile: { type: 'string' },
    help: { type: 'boolean', default: false }
  }
})
if (args.help) {
  console.log(HELP)
  process.exit(0)
}

function positive (value, fallback, name) {
  const number = value === undefined ? fallback : Number(value)
  if (!Number.isInteger(number) || number < 1) throw new Error(`--${name} must be a positive integer`)
  return number
}

const settings = {
  duration: positive(args.duration, args.quick ? 3 : 10, 'duration'),
  rounds: positive(args.rounds, args.quick ? 3 : 5, 'rounds'),
  warmup: positive(args.warmup, args.quick ? 1 : 3, 'warmup'),
  connections: positive(args.connections, 50, 'connections')
}
settings.runs = settings.rounds + 1
const chosen = args.variants === undefined ? ALL : ['bare', ...args.variants.split(',').filter(v => v !== 'bare')]
for (const name of chosen) if (!KNOWN.includes(name)) throw new Error(`unknown variant ${name}; known: ${KNOWN.join(', ')}`)
const outFile = resolve(args.out ?? join(here, 'results', 'latest.json'))

// As the independent referee does: each server pinned to CPU 0, this process (the load generator) to CPU 1,
// so the two never take turns on one core. Without taskset, or on one core, nothing is pinned.
const PINNED = os.cpus().length >= 2 && spawnSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' }).status === 0

/** Starts one variant's server; resolves to `{ name, child, port, load }` or `{ name, skip }`. */
function startServer (name) {
  const execArgv = name === args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(here, 'profiles')}`] : []
  const command = [...execArgv, join(here, 'server.mjs'), name, JSON.stringify(settings)]
  const stdio = ['ignore', 'inherit', 'inherit', 'ipc']
  const child = PINNED
    ? spawn('taskset', ['-c', '0', process.execPath, ...command], { stdio })
    : spawn(process.execPath, command, { stdio })
  return new Promise((resolve, reject) => {
    child.once('message', message => {
      if (message.type === 'skip') resolve({ name, skip: message.reason })
      else resolve({ name, child, port: message.port, load: message.load })
    })
    child.once('exit', code => reject(new Error(`server ${name} exited with ${code} before it was ready`)))
  })
}

function stopServer (server) {
  if (server.child === undefined) return Promise.resolve()
  return new Promise(resolve => {
    server.child.removeAllListeners('exit')
    server.child.once('exit', resolve)
    server.child.send({ type: 'close' })
  })
}

/** A FIFO of refresh cookies shared by all connections: each response's new cookie goes to the back. */
class CookieQueue {
  #items
  #head = 0
  constructor (items) { this.#items = [...items] }
  get size () { return this.#items.length - this.#head }
  take () {
    if (this.#head === this.#items.length) return undefined
    const item = this.#items[this.#head++]
    if (this.#head > 4096) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }

  put (item) { this.#items.push(item) }
}

/** The autocannon request list for a variant's `load`. Queues persist across runs of one variant. */
function requestsFor (server) {
  const { load } = server
  const base = { method: load.method, path: load.path, headers: load.headers ?? {}, body: load.body }
  if (load.kind === 'static') return [base]
  if (load.kind === 'token-pool') {
    let next = 0
    return [{
      ...base,
      setupRequest (request) {
        request.headers.authorization = `Bearer ${load.tokens[next]}`
        next = (next + 1) % load.tokens.length
        return request
      }
    }]
  }
  if (load.kind === 'refresh-chain') {
    server.cookies ??= new CookieQueue(load.cookies)
    const cookies = server.cookies
    return [{
      ...base,
      setupRequest (request) {
        request.headers.cookie = cookies.take() ?? ''
        return request
      },
      onResponse (status, _body, _context, headers) {
        if (status !== 200) return
        const setCookie = headers['set-cookie']
        const line = Array.isArray(setCookie) ? setCookie[0] : setCookie
        cookies.put(line.slice(0, line.indexOf(';')))
      }
    }]
  }
  throw new Error(`unknown load kind ${load.kind}`)
}

/** Microseconds of CPU (user + system) the server process has used so far. */
function serverCpu (server) {
  return new Promise(resolve => {
    server.child.on('message', function onCpu (message) {
      if (message.type !== 'cpu') return
      server.child.off('message', onCpu)
      resolve(message.usage.user + message.usage.system)
    })
    server.child.send({ type: 'cpu' })
  })
}

async function measure (server, seconds) {
  const cpuBefore = await serverCpu(server)
  const result = await autocannon({
    url: `http://127.0.0.1:${server.port}`,
    connections: settings.connections,
    duration: seconds,
    requests: requestsFor(server)
  })
  const cpu = await serverCpu(server) - cpuBefore
  return {
    rps: result.requests.average,
    // CPU the server spent per response: unlike req/s, barely moved by other processes on the machine
    cpuUsPerRequest: cpu / Math.max(1, result.requests.total),
    p99: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts
  }
}

function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

const startedAt = new Date()
const loadBefore = os.loadavg()
console.log(`fastify-refresh-auth benchmark: ${settings.rounds} rounds × ${settings.duration}s, ${settings.connections} connections, ` +
  `warm-up ${settings.warmup}s; load average ${loadBefore.map(l => l.toFixed(2)).join(' ')}`)

const servers = []
try {
  for (const name of chosen) {
    const server = await startServer(name)
    if (server.skip !== undefined) console.log(`  skipping ${name}: ${server.skip}`)
    else servers.push({ ...server, rounds: [] })
  }
} catch (err) {
  // leave no server behind
  await Promise.all(servers.map(stopServer))
  throw err
}

try {
  for (const server of servers) await measure(server, settings.warmup)
  for (let round = 1; round <= settings.rounds; round++) {
    // each round starts one variant further on, so no variant always follows the same one
    const shift = (round - 1) % servers.length
    for (const server of [...servers.slice(shift), ...servers.slice(0, shift)]) {
      // a moment for the previous server to finish with its closed connections
      await setTimeout(SETTLE_MS)
      const sample = await measure(server, settings.duration)
      server.rounds.push(sample)
      console.log(`  round ${round} ${server.name.padEnd(22)} ${Math.round(sample.rps).toString().padStart(7)} req/s  p99 ${sample.p99} ms` +
        (sample.non2xx + sample.errors > 0 ? `  (${sample.non2xx} non-2xx, ${sample.errors} errors)` : ''))
    }
  }
} finally {
  await Promise.all(servers.map(stopServer))
}

const bare = servers.find(s => s.name === 'bare')
// each variant against @fastify/jwt loaded the same way: one token, or tokens in turn
const jwtPeerOf = name => servers.find(s => s.name === (/distinct|cold/.test(name) ? 'fastify-jwt-distinct' : 'fastify-jwt-hot'))
const results = {}
for (const server of servers) {
  const jwtPeer = jwtPeerOf(server.name)
  const rps = median(server.rounds.map(r => r.rps))
  results[server.name] = {
    medianRps: rps,
    medianP99Ms: median(server.rounds.map(r => r.p99)),
    ratioToBare: rps / median(bare.rounds.map(r => r.rps)),
    // the same ratio taken round by round (each against the bare run of its own round), then the median
    pairedRatioToBare: median(server.rounds.map((r, i) => r.rps / bare.rounds[i].rps)),
    ratioToFastifyJwt: jwtPeer === undefined ? null : rps / median(jwtPeer.rounds.map(r => r.rps)),
    medianCpuUsPerRequest: median(server.rounds.map(r => r.cpuUsPerRequest)),
    // what the req/s ratio would be with the server alone on a core: bare's CPU per request over this one's
    cpuRatioToBare: median(bare.rounds.map(r => r.cpuUsPerRequest)) / median(server.rounds.map(r => r.cpuUsPerRequest)),
    cpuRatioToFastifyJwt: jwtPeer === undefined ? null : median(jwtPeer.rounds.map(r => r.cpuUsPerRequest)) / median(server.rounds.map(r => r.cpuUsPerRequest)),
    non2xx: server.rounds.reduce((sum, r) => sum + r.non2xx, 0),
    errors: server.rounds.reduce((sum, r) => sum + r.errors, 0),
    rounds: server.rounds
  }
}

// The stores against each other, from this run: each refresh variant's median req/s over the others'.
const storeRatios = {}
for (const name of ['refresh-postgres', 'refresh-redis']) {
  if (results[name] === undefined) continue
  for (const peer of ['refresh-memory', 'refresh-redis']) {
    if (peer !== name && results[peer] !== undefined) storeRatios[`${name} / ${peer}`] = results[name].medianRps / results[peer].medianRps
  }
}

// Issue 14's targets, from this run: CPU per request is the measure that a busy load generator moves least.
const cpu = name => results[name]?.medianCpuUsPerRequest
const rpsOf = name => results[name]?.medianRps
const targets = {}
const target = (label, value, goal) => { if (value !== undefined && !Number.isNaN(value)) targets[label] = { value, goal } }
target('ours-hot CPU / bare-header CPU', cpu('ours-hot') / cpu('bare-header'), '≤ 1.05')
target('ours-distinct CPU / bare-header CPU', cpu('ours-distinct') / cpu('bare-header'), '≤ 1.10')
target('ours-cold req/s / fastify-jwt-distinct req/s', rpsOf('ours-cold') / rpsOf('fastify-jwt-distinct'), '> 1')
target('ours-cold CPU / fastify-jwt-distinct CPU', cpu('ours-cold') / cpu('fastify-jwt-distinct'), '< 1')
target('ours-hot CPU / ours-hot-no-revocation CPU', cpu('ours-hot') / cpu('ours-hot-no-revocation'), '≤ 1.03')
target('refresh-memory req/s / bare req/s', rpsOf('refresh-memory') / rpsOf('bare'), '≥ 0.30')
target('login req/s / bare req/s', rpsOf('login') / rpsOf('bare'), 'reported')

const loadAfter = os.loadavg()
const report = {
  date: startedAt.toISOString(),
  node: process.version,
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadAverageBefore: loadBefore, loadAverageAfter: loadAfter },
  settings,
  pinned: PINNED,
  results,
  storeRatios,
  targets
}
mkdirSync(dirname(outFile), { recursive: true })
writeFileSync(outFile, JSON.stringify(report, null, 2) + '\n')

const rows = [['variant', 'req/s (median)', 'p99 ms', '× bare', '× bare, paired', '× @fastify/jwt', 'CPU µs/req', 'CPU: × bare', 'CPU: × @fastify/jwt', 'non-2xx']]
const ratio = value => value === null ? '-' : value.toFixed(2)
for (const [name, r] of Object.entries(results)) {
  rows.push([name, Math.round(r.medianRps).toString(), String(r.medianP99Ms), ratio(r.ratioToBare), ratio(r.pairedRatioToBare),
    ratio(r.ratioToFastifyJwt), r.medianCpuUsPerRequest.toFixed(1), ratio(r.cpuRatioToBare), ratio(r.cpuRatioToFastifyJwt),
    String(r.non2xx + r.errors)])
}
const widths = rows[0].map((_, i) => Math.max(...rows.map(row => row[i].length)))
console.log('')
for (const [i, row] of rows.entries()) {
  console.log('| ' + row.map((cell, c) => c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join(' | ') + ' |')
  if (i === 0) console.log('|' + widths.map((w, c) => c === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':').join('|') + '|')
}
for (const [pair, value] of Object.entries(storeRatios)) console.log(`${pair}: ${value.toFixed(2)} (median req/s, this run)`)
if (Object.keys(targets).length > 0) console.log('\nTargets (issue 14):')
for (const [label, { value, goal }] of Object.entries(targets)) console.log(`  ${label}: ${value.toFixed(3)} (${goal})`)
console.log(`\nload average after: ${loadAfter.map(l => l.toFixed(2)).join(' ')}; results written to ${outFile}`)
