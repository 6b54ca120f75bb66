// The revocation propagation benchmark: `npm run bench:propagation -- [--samples N] [--quick]`.
// Two app instances in their own processes share one Redis (127.0.0.1:6379, or REDIS_URL). For each sample:
// log in on A, call B with the access token (accepted, and cached), log out on A, then call B again and again
// until it refuses the token. The latency is from sending the logout to A until B's first refusal arrives:
// A's logout itself, the announcement on the Redis stream, B's blocking read, and one request to B at most.
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
const SAMPLES = Number(args.samples ?? (args.quick ? 20 : 500))
// a sample that has not propagated in this long is a failure, not a slow sample
const GIVE_UP_MS = 5000
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `bench-propagation:${process.pid}:`
const outFile = resolve(args.out ?? join(here, 'results', 'latest-propagation.json'))

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

async function protectedStatus (base, token) {
  const response = await fetch(base + '/', { headers: { authorization: `Bearer ${token}` } })
  await response.arrayBuffer()
  return response.status
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
    const token = JSON.parse(login.body).access_token
    if (await protectedStatus(b.base, token) !== 200) throw new Error('B refused a fresh token')
    const sent = performance.now()
    const logout = post(a.base, '/auth/logout', login.cookie)
    let status = 200
    while (status === 200 && performance.now() - sent < GIVE_UP_MS) status = await protectedStatus(b.base, token)
    const refusedAt = performance.now()
    if ((await logout).status !== 204) throw new Error('logout on A failed')
    if (status === 401) latencies.push(refusedAt - sent)
    else failures++
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
console.log(`revocation propagation over Redis, A → B, ${latencies.length} samples (${failures} not refused within ${GIVE_UP_MS} ms):`)
console.log(`  p50 ${summary.p50.toFixed(1)} ms, p90 ${summary.p90.toFixed(1)} ms, p99 ${summary.p99.toFixed(1)} ms, max ${summary.max.toFixed(1)} ms`)
mkdirSync(dirname(outFile), { recursive: true })
writeFileSync(outFile, JSON.stringify({
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  samples: latencies.length,
  failures,
  latencyMs: summary
}, null, 2) + '\n')
console.log(`results written to ${outFile}`)
if (failures > 0) process.exitCode = 1
