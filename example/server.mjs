// The fastify-refresh-auth demo: a Fastify app that uses the package as any user would, and one static page.
// Run it with `npm run demo`, then open the URL it prints. Configuration (all optional), from the environment:
//   PORT                 port to listen on (default 3000; 0 picks a free one, and the real URL is printed)
//   HOST                 interface to listen on (default localhost)
//   ACCESS_TOKEN_TTL     access-token lifetime, seconds or a duration such as '1m' (default 30 seconds, to watch it refresh)
//   REUSE_INTERVAL       refreshToken.reuseInterval (default 5 seconds: two tabs refreshing together both stay signed in)
//   AUTH_SECRET          at least 32 bytes (default: random at each start, so a restart signs everyone out)
//   TRUSTED_ORIGINS      comma-separated origins allowed to call /auth/*, e.g. http://localhost:3000 (default unset)
//   REDIS_URL            keep sessions in Redis (needs the package's RedisStore and the ioredis package)
//   REDIS_PREFIX         prefix of the demo's Redis keys (default 'fastify-refresh-auth-demo:')
//   LOG_LEVEL            Fastify log level (default 'warn': reuse detection is logged as a warning)
//   DPOP                 '0' turns DPoP off: Bearer tokens (default on: the page's key, kept in IndexedDB, binds its session)
//   E2E                  '1' adds the routes the end-to-end tests use (/e2e/*): never in production
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import fastifyRefreshAuth, { RedisStore } from 'fastify-refresh-auth'
import { createUserDirectory } from './users.mjs'

const env = process.env

const DEMO_USERS = [
  { id: '1', username: 'alice', name: 'Alice Liddell', password: 'wonderland' },
  { id: '2', username: 'bob', name: 'Bob Builder', password: 'can-we-fix-it' }
]

const app = Fastify({ logger: { level: env.LOG_LEVEL ?? 'warn' } })
const users = createUserDirectory(DEMO_USERS)

const store = await createStore()
// DPoP (RFC 9449): the page signs a proof for each request with a key script cannot export, so a stolen token
// or refresh cookie is of no use without the browser's key
const dpop = env.DPOP !== '0'

await app.register(fastifyRefreshAuth, {
  secret: env.AUTH_SECRET ?? randomBytes(32),
  accessToken: { expiresIn: durationFromEnv(env.ACCESS_TOKEN_TTL, 30) },
  refreshToken: { reuseInterval: durationFromEnv(env.REUSE_INTERVAL, 5) },
  ...(store === undefined ? {} : { store }),
  // the devices page's routes: GET /auth/sessions and DELETE /auth/sessions/:sessionId
  routes: { sessions: true },
  dpop,
  // Refuses same-site pages of other origins too (other ports, sibling subdomains), not only cross-site ones.
  ...(env.TRUSTED_ORIGINS ? { trustedOrigins: env.TRUSTED_ORIGINS.split(',').map(origin => origin.trim()) } : {}),
  // Same answer (null) for an unknown user and a wrong password; users.verify hashes even for unknown names.
  verifyCredentials: async (request) => {
    const { username, password } = request.body ?? {}
    if (typeof username !== 'string' || typeof password !== 'string' || username.length > 100 || password.length > 200) return null
    return users.verify(username, password)
  },
  claims: (user) => ({ name: user.name }),
  // "Keep me signed in": unticked, the refresh cookie is a browser-session cookie (for this whole session)
  rememberMe: (user, request) => request.body?.remember === true,
  onReuseDetected: () => { e2e.reuse++ }
})

// What the end-to-end tests read and steer (E2E=1 only): refreshes counted, the next refresh held, a user's
// sessions revoked from this instance.
const e2e = { refreshes: [], reuse: 0, holdNextMs: 0 }
if (env.E2E === '1') {
  app.addHook('onRequest', async (request) => {
    if (request.method !== 'POST' || request.url !== '/auth/refresh') return
    e2e.refreshes.push(Date.now())
    const hold = e2e.holdNextMs
    e2e.holdNextMs = 0
    if (hold > 0) await new Promise(resolve => setTimeout(resolve, hold))
  })
  app.get('/e2e/stats', async () => ({ refreshes: e2e.refreshes, reuse: e2e.reuse }))
  app.post('/e2e/hold-next-refresh', async (request) => { e2e.holdNextMs = Number(request.query.ms ?? 2000); return {} })
  app.post('/e2e/revoke-user/:id', async (request) => { await app.refreshAuth.revokeUserSessions(request.params.id); return {} })
}

// The page and its script: plain files, no build step. The CSP allows scripts from this origin only.
const page = {
  '/': { type: 'text/html; charset=utf-8', body: readFileSync(new URL('./public/index.html', import.meta.url)) },
  '/app.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('./public/app.js', import.meta.url)) },
  '/style.css': { type: 'text/css; charset=utf-8', body: readFileSync(new URL('./public/style.css', import.meta.url)) },
  // the browser client: the package's ES module build, one file, imported by app.js as it is
  '/client.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(fileURLToPath(import.meta.resolve('fastify-refresh-auth/client'))) },
  // its DPoP signer, which client.js imports from beside itself ('./dpop.js') when `dpop` is on
  '/dpop.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(fileURLToPath(import.meta.resolve('fastify-refresh-auth/client/dpop'))) },
  // what app.js needs to know of this server: whether to sign proofs
  '/demo-config.js': { type: 'text/javascript; charset=utf-8', body: `export const dpop = ${dpop}\n` }
}
for (const [url, file] of Object.entries(page)) {
  app.get(url, (request, reply) => {
    reply.header('content-security-policy', "default-src 'self'; frame-ancestors 'none'")
    reply.header('cache-control', 'no-cache')
    reply.type(file.type).send(file.body)
  })
}

// A protected API: only requests with a valid access token get through.
app.get('/api/me', { preHandler: app.authenticate }, async (request) => {
  const user = users.byId(request.user.sub)
  return { id: request.user.sub, name: user?.name ?? null, sessionId: request.user.sid, serverTime: new Date().toISOString() }
})

const address = await app.listen({ port: Number(env.PORT ?? 3000), host: env.HOST ?? 'localhost' })
const url = `http://localhost:${new URL(address).port}`
console.log(`fastify-refresh-auth demo: ${url}`)
console.log(`Sign in as ${DEMO_USERS.map(u => `${u.username} / ${u.password}`).join(' or ')}`)
console.log(`Store: ${store === undefined ? 'MemoryStore (in this process)' : 'RedisStore'}. DPoP: ${dpop ? 'on' : 'off'}. Stop with Ctrl+C.`)

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

function durationFromEnv (value, fallback) {
  if (value === undefined || value === '') return fallback
  return /^\d+$/.test(value) ? Number(value) : value
}

async function createStore () {
  if (!env.REDIS_URL) return undefined
  const { default: Redis } = await import('ioredis')
  const client = new Redis(env.REDIS_URL)
  // the store never closes the client it was given: the app does
  app.addHook('onClose', async () => { await client.quit() })
  return new RedisStore({ client, prefix: env.REDIS_PREFIX ?? 'fastify-refresh-auth-demo:' })
}
