// The session-ended push benchmark: `npm run bench:push -- [--samples N] [--quick]`.
// Two app instances in processes of their own share one Redis (127.0.0.1:6379, or REDIS_URL). For each sample:
// log in on A, open GET /auth/events on B with the access token (until B says `: open`), send the logout to A,
// and read B's stream until `event: session-ended` arrives. The latency is from sending the logout to A until
// the event is read: A's logout, the announcement on the Redis stream, B's blocking read, and B's write.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    samples: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' }
  }
})
const SAMPLES = Number(args.samples ?? (args.quick ? 20 : 200))
// a sample whose event has not come in this long is a failure, not a slow sample
const GIVE_UP_MS = 5000
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `bench-push:${process.pid}:`
const outFile = resolve(args.out ?? join(here, 'results', 'latest-push.json'))

async function start (name) {
  const child = fork(join(here, 'propagation-instance.mjs'), [JSON.stringify({ prefix, redisUrl })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [message] = await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => { throw new Error(`instance ${name} exited with ${code}`) })
  ])
  return { child, base: `http://127.0.0.1:${message.port}` }
}

async function post (base, path, cookie) {
  const response = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cookie === undefined ? {} : { cookie }) },
    body: '{}'
  })
  const text = await response.text()
  return { status: response.status, body: text, cookie: response.headers.getSetCookie()[0]?.split(';')[0] }
}

/** Opens B's events stream; `next(pattern)` resolves with the time `pattern` was read, or null at GIVE_UP_MS. */
async function openStream (base, token) {
  const abort = new AbortController()
  const response = await fetch(base + '/auth/events', { headers: { authorization: `Bearer ${token}` }, signal: abort.signal })
  if (response.status !== 200) throw new Error(`events on B: ${response.status}`)
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  async function next (pattern) {
    const timer = setTimeout(() => abort.abort(), GIVE_UP_MS)
    try {
      while (!pattern.test(text)) {
        const { done, value } = await reader.read()
        if (done) return null
        text += decoder.decode(value, { stream: true })
      }
      return performance.now()
    } catch {
      return null
    } finally {
      clearTimeout(timer)
    }
  }
  return { next, close: () => abort.abort() }
}

function percentile (sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]
}

const [a, b] = await Promise.all([start('A'), start('B')])
const latencies = []
let failures = 0
try {
  for (let i = 0; i < SAMPLES; i++) {
    const login = await post(a.base, '/auth/login')
    if (login.status !== 200) throw new Error(`login on A: ${login.status}`)
    const stream = await openStream(b.base, JSON.parse(login.body).access_token)
    if (await stream.next(/: open\n\n/) === null) throw new Error('B\'s stream did not open')
    const sent = performance.now()
    const logout = post(a.base, '/auth/logout', login.cookie)
    const arrived = await stream.next(/event: session-ended\ndata: \{"reason":"logout"\}\n\n/)
    stream.close()
    if ((await logout).status !== 204) throw new Error('logout on A failed')
    if (arrived === null) failures++
    else latencies.push(arrived - sent)
  }
} finally {
  for (const { child } of [a, b]) {
    child.send('close')
    await once(child, 'exit')
  }
  const { Redis } = await import('ioredis')
  const client = new Redis(redisUrl)
  const keys = await client.keys(`${prefix}*`)
  if (keys.length > 0) await client.del(...keys)
  await client.quit()
}

latencies.sort((x, y) => x - y)
const summary = {
  p50: percentile(latencies, 50),
  p90: percentile(latencies, 90),
  p99: percentile(latencies, 99),
  max: latencies.at(-1)
}
console.log(`session-ended push over Redis, logout on A → event on B's stream, ${latencies.length} samples (${failures} not within ${GIVE_UP_MS} ms):`)
console.log(`  p50 ${summary.p50.toFixed(1)} ms, p90 ${summary.p90.toFixed(1)} ms, p99 ${summary.p99.toFixed(1)} ms, max ${summary.max.toFixed(1)} ms`)
console.log(`  load average ${os.loadavg().map(load => load.toFixed(2)).join(', ')}`)
mkdirSync(dirname(outFile), { recursive: true })
writeFileSync(outFile, JSON.stringify({
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  loadAverage: os.loadavg(),
  samples: latencies.length,
  failures,
  latencyMs: summary
}, null, 2) + '\n')
console.log(`results written to ${outFile}`)
if (failures > 0 || summary.p99 > 1000) process.exitCode = 1
