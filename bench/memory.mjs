// The memory benchmark: `npm run bench:memory -- [--sessions N] [--cycles N] [--quick]`
// (node --expose-gc). Three measurements, each after a full garbage collection:
// 1. MemoryStore alone: heap per live session, as SessionPolicy writes them, before and after one rotation.
// 2. The plugin: heap per live session after N logins through POST /auth/login.
// 3. N cycles of login, a protected request, refresh and logout: the heap must come back to where it began.
import Fastify from 'fastify'
import { randomUUID } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import fastifyRefreshAuth, { MemoryStore } from '../dist/esm/index.js'

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc (npm run bench:memory does)')

const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    sessions: { type: 'string' },
    cycles: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' }
  }
})
const SESSIONS = Number(args.sessions ?? 100_000)
const CYCLES = Number(args.cycles ?? (args.quick ? 100_000 : 1_000_000))
const outFile = resolve(args.out ?? join(here, 'results', 'latest-memory.json'))
const SECRET = 'benchmark-secret-that-is-long-enough-0123456789'
const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
const UUID_LENGTH = 36
// user ids are the host's, shared by all of a user's sessions: a thousand users here
const USER_IDS = Array.from({ length: 1000 }, (_, i) => `user-${i}`)

function settle () {
  // twice: the first collection can leave work (weak references, finalizers) for the second
  globalThis.gc()
  globalThis.gc()
  const { heapUsed, rss } = process.memoryUsage()
  return { heapUsed, rss }
}

/**
 * A session id as the plugin holds it. V8 builds randomUUID()'s result as a rope of small pieces
 * (about 480 bytes); the plugin serialises every id into a JWT, which flattens it to 56 bytes.
 * Records fed straight to the store get the same treatment, or the figure would measure ropes.
 */
function sessionId () {
  const id = randomUUID()
  JSON.stringify(id)
  return id
}

const mb = bytes => (bytes / 1048576).toFixed(1) + ' MB'

/** 1. The store on its own, fed records shaped as SessionPolicy.startSession builds them. */
async function storeAlone () {
  const store = new MemoryStore({ maxSessions: SESSIONS })
  const before = settle()
  const now = Date.now()
  for (let i = 0; i < SESSIONS; i++) {
    await store.create({
      sessionId: sessionId(),
      userId: USER_IDS[i % USER_IDS.length],
      tokenId: sessionId(),
      previousTokenId: null,
      createdAt: now,
      rotatedAt: now,
      expiresAt: now + 7 * 86400_000,
      absoluteExpiresAt: now + 30 * 86400_000,
      userAgent: USER_AGENT,
      ip: '127.0.0.1'
    })
  }
  const afterLogin = settle()
  store.close()
  return { before, afterLogin, size: store.size }
}

/** Same, but rotating with the live token id so that each session keeps its parent's id too. */
async function storeRotated () {
  const store = new MemoryStore({ maxSessions: SESSIONS })
  const live = new Map()
  const now = Date.now()
  for (let i = 0; i < SESSIONS; i++) {
    const id = sessionId()
    const tokenId = sessionId()
    live.set(id, tokenId)
    await store.create({
      sessionId: id,
      userId: USER_IDS[i % USER_IDS.length],
      tokenId,
      previousTokenId: null,
      createdAt: now,
      rotatedAt: now,
      expiresAt: now + 7 * 86400_000,
      absoluteExpiresAt: now + 30 * 86400_000,
      userAgent: USER_AGENT,
      ip: '127.0.0.1'
    })
  }
  const beforeRotation = settle()
  for (const [id, tokenId] of live) {
    const result = await store.rotate({ sessionId: id, presentedTokenId: tokenId, nextTokenId: sessionId(), now, nextExpiresAt: now + 7 * 86400_000, reuseIntervalMs: 0 })
    if (result.outcome !== 'rotated') throw new Error('unexpected outcome ' + result.outcome)
  }
  const afterRotation = settle()
  store.close()
  return { beforeRotation, afterRotation, size: store.size }
}

async function buildApp (store) {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, store, verifyCredentials: () => ({ id: 'bench-user' }) })
  app.get('/', { preHandler: app.authenticate }, async () => ({ hello: 'world' }))
  await app.ready()
  return app
}

const LOGIN = { method: 'POST', url: '/auth/login', headers: { 'user-agent': USER_AGENT }, payload: { username: 'u', password: 'p' } }

async function login (app) {
  const response = await app.inject(LOGIN)
  if (response.statusCode !== 200) throw new Error(`login: ${response.statusCode}`)
  return response
}

/** 2. Live sessions through the plugin's login route. */
async function pluginSessions () {
  const store = new MemoryStore({ maxSessions: SESSIONS })
  const app = await buildApp(store)
  await login(app)
  const before = settle()
  const sizeBefore = store.size
  for (let i = 0; i < SESSIONS; i++) await login(app)
  const after = settle()
  const added = store.size - sizeBefore
  await app.close()
  // the plugin stops only a store it made: this one's sweep timer would keep all its sessions alive
  store.close()
  return { before, after, added }
}

function cookieOf (response) {
  const header = response.headers['set-cookie']
  const line = Array.isArray(header) ? header[0] : header
  return line.slice(0, line.indexOf(';'))
}

/** 3. Login, a protected request, refresh, logout; again and again. */
async function cycles () {
  const store = new MemoryStore()
  const app = await buildApp(store)
  async function cycle () {
    const loggedIn = await login(app)
    const access = await app.inject({ method: 'GET', url: '/', headers: { authorization: `Bearer ${loggedIn.json().access_token}` } })
    if (access.statusCode !== 200) throw new Error(`protected route: ${access.statusCode}`)
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: cookieOf(loggedIn) } })
    if (refreshed.statusCode !== 200) throw new Error(`refresh: ${refreshed.statusCode}`)
    const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: cookieOf(refreshed) } })
    if (out.statusCode !== 204) throw new Error(`logout: ${out.statusCode}`)
  }
  // warm-up: long enough to fill the access-token cache (10,000 by default) to its bound
  const warmUp = Math.min(20_000, CYCLES)
  for (let i = 0; i < warmUp; i++) await cycle()
  const baseline = settle()
  const samples = []
  const every = Math.max(1, Math.floor(CYCLES / 10))
  const started = Date.now()
  for (let i = 1; i <= CYCLES; i++) {
    await cycle()
    if (i % every === 0) {
      const sample = { cycles: i, ...settle(), sessions: store.size }
      samples.push(sample)
      console.log(`  ${i} cycles: heap ${mb(sample.heapUsed)}, rss ${mb(sample.rss)}, live sessions ${sample.sessions}`)
    }
  }
  const seconds = (Date.now() - started) / 1000
  await app.close()
  store.close()
  return { warmUp, baseline, samples, seconds, sessionsLeft: store.size }
}

console.log(`memory benchmark on ${process.version}: ${SESSIONS} sessions, ${CYCLES} cycles`)
const alone = await storeAlone()
const aloneBytes = (alone.afterLogin.heapUsed - alone.before.heapUsed) / SESSIONS
// sessionId and tokenId: the two ids a fresh session must hold (userId, user agent and ip are shared here)
const idChars = 2 * UUID_LENGTH
console.log(`MemoryStore alone: ${aloneBytes.toFixed(0)} bytes/session, ${idChars} of them the characters of its two ids`)

const rotated = await storeRotated()
const rotatedBytes = (rotated.afterRotation.heapUsed - rotated.beforeRotation.heapUsed) / SESSIONS
console.log(`  one rotation adds ${rotatedBytes.toFixed(0)} bytes/session (the parent's id is kept for reuse detection)`)

const plugin = await pluginSessions()
const pluginBytes = (plugin.after.heapUsed - plugin.before.heapUsed) / plugin.added
console.log(`through POST /auth/login: ${pluginBytes.toFixed(0)} bytes/session over ${plugin.added} sessions; ` +
  `heap ${mb(plugin.before.heapUsed)} → ${mb(plugin.after.heapUsed)}, rss ${mb(plugin.before.rss)} → ${mb(plugin.after.rss)}`)

const run = await cycles()
const last = run.samples.at(-1)
console.log(`${CYCLES} cycles in ${run.seconds.toFixed(0)} s: heap ${mb(run.baseline.heapUsed)} → ${mb(last.heapUsed)} ` +
  `(${((last.heapUsed - run.baseline.heapUsed) / 1024).toFixed(0)} KB), rss ${mb(run.baseline.rss)} → ${mb(last.rss)}, ` +
  `live sessions left ${run.sessionsLeft}`)

mkdirSync(dirname(outFile), { recursive: true })
writeFileSync(outFile, JSON.stringify({
  date: new Date().toISOString(),
  node: process.version,
  sessions: SESSIONS,
  storeAlone: { bytesPerSession: aloneBytes, idCharsPerSession: idChars, ...alone },
  oneRotation: { bytesPerSession: rotatedBytes, ...rotated },
  throughLogin: { bytesPerSession: pluginBytes, ...plugin },
  cycles: { count: CYCLES, ...run, heapGrowthBytes: last.heapUsed - run.baseline.heapUsed, rssGrowthBytes: last.rss - run.baseline.rss }
}, null, 2) + '\n')
console.log(`results written to ${outFile}`)
