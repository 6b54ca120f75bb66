// Memory given back when idle (issue 20 #13): `npm run bench:soak -- [--cycles N] [--lifetime S]`
// (node --expose-gc). One app on the default MemoryStore, with a short access-token lifetime so the soak runs in
// a few minutes: N cycles of sign-in, refresh and logout (each logout a revocation, kept by the store's feed and
// by the revoked-session set for one access-token lifetime), then idle for that lifetime plus a minute (and
// the clock tolerance and one sweep of the set). The heap, after a full garbage collection, must come back
// within 20% of where it started.
import Fastify from 'fastify'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import fastifyRefreshAuth from '../dist/esm/index.js'

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc (npm run bench:soak does)')

const { values: args } = parseArgs({ options: { cycles: { type: 'string' }, lifetime: { type: 'string' } } })
const CYCLES = Number(args.cycles ?? 50_000)
const LIFETIME_S = Number(args.lifetime ?? 10)
// what the plugin keeps a revocation for is the lifetime, the clock tolerance and a minute; the revoked-session
// set sweeps every 30 s: idle that long, and a little more
const IDLE_MS = (LIFETIME_S + 60) * 1000 + 30_000 + 5_000

function heap () {
  globalThis.gc()
  globalThis.gc()
  return process.memoryUsage().heapUsed
}
const mb = (bytes) => (bytes / 1024 / 1024).toFixed(1)

const app = Fastify()
await app.register(fastifyRefreshAuth, {
  secret: 'a-soak-test-secret-of-32-bytes-or-more!!',
  verifyCredentials: async (request) => ({ id: request.body?.user ?? 1 }),
  accessToken: { expiresIn: LIFETIME_S }
})
await app.ready()

const cookieOf = (response) => [response.headers['set-cookie']].flat().find(line => line?.startsWith('__Secure-refresh_token='))?.split(';')[0]

async function cycle (i) {
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { user: i % 1000 } })
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: cookieOf(login) } })
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: cookieOf(refreshed) } })
  if (logout.statusCode !== 204) throw new Error(`cycle ${i}: logout answered ${logout.statusCode}`)
}

// warm up (code compiled, pools and caches at their working size) before the start is measured
for (let i = 0; i < 2000; i++) await cycle(i)
const start = heap()
const began = Date.now()
for (let i = 0; i < CYCLES; i++) await cycle(i)
const loaded = heap()
console.log(`${CYCLES} cycles in ${((Date.now() - began) / 1000).toFixed(0)} s; heap ${mb(start)} MB at the start, ${mb(loaded)} MB after the load`)
console.log(`idling ${(IDLE_MS / 1000).toFixed(0)} s (access-token lifetime ${LIFETIME_S} s, plus a minute, the tolerance and a sweep)`)
await sleep(IDLE_MS)
const idle = heap()
const ratio = idle / start
console.log(`heap after idling: ${mb(idle)} MB, ${(ratio * 100).toFixed(0)}% of the start: ${ratio <= 1.2 ? 'within' : 'NOT within'} 20%`)
await app.close()
process.exitCode = ratio <= 1.2 ? 0 : 1
