// The cost of the devices page (issue 22): parsing a User-Agent with bowser, and GET /auth/sessions for a user
// with five sessions, next to a login, all through app.inject() in one process. Parsing happens when sessions
// are listed, never at login. Run: npm run bench:devices (on a quiet machine; prints the load average).
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import Fastify from 'fastify'
import fastifyRefreshAuth from '../dist/esm/index.js'
import { parseDevice } from '../dist/esm/sessions/devices.js'

const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
]

/** Median of `rounds` timings of `count` calls, in microseconds per call. */
async function measure (count, rounds, run) {
  const perCall = []
  for (let round = 0; round < rounds; round++) {
    const start = performance.now()
    for (let i = 0; i < count; i++) await run(i)
    perCall.push((performance.now() - start) * 1000 / count)
  }
  return perCall.sort((a, b) => a - b)[Math.floor(rounds / 2)]
}

const app = Fastify()
await app.register(fastifyRefreshAuth, {
  secret: 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
  routes: { sessions: true },
  verifyCredentials: async () => ({ id: 1 })
})
await app.ready()
let accessToken = ''
for (const userAgent of USER_AGENTS) {
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: {}, headers: { 'user-agent': userAgent } })
  accessToken = login.json().access_token
}
const listRequest = { url: '/auth/sessions', headers: { authorization: `Bearer ${accessToken}` } }

const parse = await measure(20_000, 7, i => parseDevice(USER_AGENTS[i % USER_AGENTS.length]))
const list = await measure(2_000, 7, () => app.inject(listRequest))
const login = await measure(2_000, 7, () => app.inject({ method: 'POST', url: '/auth/login', payload: {}, headers: { 'user-agent': USER_AGENTS[0] } }))
await app.close()

console.log(`load average before the end: ${loadavg().map(load => load.toFixed(2)).join(' ')}`)
console.log(`parseDevice, one User-Agent:                   ${parse.toFixed(1)} µs`)
console.log(`GET /auth/sessions, 5 sessions (inject):       ${list.toFixed(1)} µs`)
console.log(`POST /auth/login (inject, for comparison):     ${login.toFixed(1)} µs`)
