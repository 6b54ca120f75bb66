// The server variants of the benchmark. Each builds a ready Fastify app in its own process and
// says how to load it (`load`): the harness (run.mjs) turns that into autocannon requests.
//
// To add a variant, add an entry here: `build()` resolves to `{ app, load }`, or to `null` with
// `skip` set when it cannot run here (a missing store, say). The harness picks it up by name.
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import fastifyRefreshAuth, * as library from '../dist/esm/index.js'

const SECRET = 'benchmark-secret-that-is-long-enough-0123456789'
const PAYLOAD = { hello: 'world' }
const LOGIN_BODY = JSON.stringify({ username: 'bench', password: 'bench' })
// Access tokens outlive any run, so nothing expires in the middle of a measurement.
const ACCESS_LIFETIME = '2h'

function verifyCredentials () {
  return { id: 'bench-user' }
}

function handler () {
  return PAYLOAD
}

async function ourApp (options = {}) {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, {
    secret: SECRET,
    verifyCredentials,
    accessToken: { expiresIn: ACCESS_LIFETIME, ...options.accessToken },
    ...options.plugin
  })
  app.get('/', { preHandler: app.authenticate }, handler)
  if (options.onClose !== undefined) app.addHook('onClose', options.onClose)
  await app.ready()
  return app
}

async function login (app) {
  const response = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: LOGIN_BODY })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode}`)
  const cookie = response.headers['set-cookie']
  return { accessToken: response.json().access_token, refreshCookie: (Array.isArray(cookie) ? cookie[0] : cookie).split(';')[0] }
}

async function loginMany (app, count) {
  const sessions = []
  for (let i = 0; i < count; i++) sessions.push(await login(app))
  return sessions
}

/** Sessions for the refresh variants: enough that every connection of every run starts a chain. */
function refreshPoolSize ({ connections, runs }) {
  return connections * (runs + 2) + 100
}

async function refreshVariant (plugin, settings, onClose) {
  const app = await ourApp({ plugin, onClose })
  const sessions = await loginMany(app, refreshPoolSize(settings))
  return {
    app,
    load: {
      kind: 'refresh-chain',
      method: 'POST',
      path: '/auth/refresh',
      cookies: sessions.map(s => s.refreshCookie)
    }
  }
}

const bearer = (token) => ({ authorization: `Bearer ${token}` })
const hot = (token) => ({ kind: 'static', method: 'GET', path: '/', headers: bearer(token) })
const pool = (tokens) => ({ kind: 'token-pool', method: 'GET', path: '/', tokens })
// The shapes of the independent referee (../shared/perf): 1,000 users' tokens in turn all fit the cache;
// 20,000 are twice what the default cache holds, so every request misses.
const DISTINCT_TOKENS = 1000
const COLD_TOKENS = 20_000

async function fastifyJwtApp () {
  const app = Fastify()
  await app.register(fastifyJwt, { secret: SECRET })
  app.decorate('authenticate', async function (request) { await request.jwtVerify() })
  app.get('/', { preHandler: app.authenticate }, handler)
  await app.ready()
  return app
}

export const variants = {
  // The limit: the same route with no authentication at all.
  bare: async () => {
    const app = Fastify()
    app.get('/', handler)
    await app.ready()
    return { app, load: { kind: 'static', method: 'GET', path: '/' } }
  },

  // bare, sent the same Authorization header as ours-hot (and ignoring it): the bytes on the wire and the
  // header parsing, apart from anything authentication does. The limit for the ours-* variants.
  'bare-header': async () => {
    const { accessToken } = await login(await ourApp())
    const app = Fastify()
    app.get('/', handler)
    await app.ready()
    return { app, load: hot(accessToken) }
  },

  // Our app.authenticate, one token for every request: after the first, served from the cache.
  'ours-hot': async () => {
    const app = await ourApp()
    return { app, load: hot((await login(app)).accessToken) }
  },

  // ours-hot with accessToken.revocation off: against ours-hot (on, the default, with nothing ended),
  // what refusing the tokens of ended sessions costs the hot path when the set is empty
  'ours-hot-no-revocation': async () => {
    const app = await ourApp({ accessToken: { revocation: false } })
    return { app, load: hot((await login(app)).accessToken) }
  },

  // ours-hot with 10,000 other sessions logged out: every request pays the Map lookup in the revoked set
  'ours-hot-revoked-set': async () => {
    const app = await ourApp()
    const { accessToken } = await login(app)
    const ended = await loginMany(app, 10_000)
    for (const { refreshCookie } of ended) {
      await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: refreshCookie } })
    }
    return { app, load: hot(accessToken) }
  },

  // 1,000 users' tokens in turn: all in the verified-token cache, a realistic mix
  'ours-distinct': async () => {
    const app = await ourApp()
    return { app, load: pool((await loginMany(app, DISTINCT_TOKENS)).map(s => s.accessToken)) }
  },

  // 20,000 tokens in turn, twice the default cache: every request a miss, paying the full verification
  'ours-cold': async () => {
    const app = await ourApp()
    return { app, load: pool((await loginMany(app, COLD_TOKENS)).map(s => s.accessToken)) }
  },

  // The plugin users would pick instead, as its README sets it up (HS256, a string secret): one token...
  'fastify-jwt-hot': async () => {
    const app = await fastifyJwtApp()
    return { app, load: hot(app.jwt.sign({ sub: 'bench-user' }, { expiresIn: ACCESS_LIFETIME })) }
  },

  // ...and 1,000 tokens in turn (fast-jwt keeps no cache by default: each is verified)
  'fastify-jwt-distinct': async () => {
    const app = await fastifyJwtApp()
    const tokens = Array.from({ length: DISTINCT_TOKENS }, (_, i) => app.jwt.sign({ sub: `bench-user-${i}` }, { expiresIn: ACCESS_LIFETIME }))
    return { app, load: pool(tokens) }
  },

  // POST /auth/refresh with the default MemoryStore: each connection carries its own rotating chain.
  'refresh-memory': async (settings) => refreshVariant({}, settings),

  // POST /auth/refresh with RedisStore (127.0.0.1:6379).
  'refresh-redis': async (settings) => {
    let Redis
    try {
      const ioredis = await import('ioredis')
      Redis = ioredis.Redis ?? ioredis.default
    } catch {
      return { skip: 'ioredis is not installed' }
    }
    const client = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true })
    try {
      await client.connect()
    } catch {
      return { skip: 'no Redis on 127.0.0.1:6379' }
    }
    const prefix = `bench:${process.pid}:`
    const store = new library.RedisStore({ client, prefix })
    return refreshVariant({ store }, settings, async () => {
      // leave the server as we found it: drop this run's keys, then hang up
      const keys = await client.keys(`${prefix}*`)
      if (keys.length > 0) await client.del(...keys)
      await client.quit()
    })
  },

  // POST /auth/refresh with PostgresStore (127.0.0.1:5432, user postgres, database test; a pool of pg's
  // default 10 clients), in a schema of its own that is dropped afterwards.
  'refresh-postgres': async (settings) => {
    if (typeof library.PostgresStore !== 'function') return { skip: 'PostgresStore is not exported by this build' }
    let pg
    try {
      pg = (await import('pg')).default
    } catch {
      return { skip: 'pg is not installed' }
    }
    const pool = new pg.Pool({ connectionString: process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test' })
    pool.on('error', () => {})
    try {
      await pool.query('SELECT 1')
    } catch {
      await pool.end()
      return { skip: 'no PostgreSQL on 127.0.0.1:5432' }
    }
    const schema = `bench_${process.pid}`
    await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
    const store = new library.PostgresStore({ pool, table: `${schema}.refresh_auth_sessions` })
    await store.migrate()
    return refreshVariant({ store }, settings, async () => {
      // leave the server as we found it
      await store.close()
      await pool.query(`DROP SCHEMA "${schema}" CASCADE`)
      await pool.end()
    })
  },

  // POST /auth/login with a verifyCredentials that accepts at once: the cost of issuing a session.
  login: async () => {
    const app = await ourApp({ plugin: { store: new library.MemoryStore({ maxSessions: 100_000 }) } })
    return {
      app,
      load: { kind: 'static', method: 'POST', path: '/auth/login', headers: { 'content-type': 'application/json' }, body: LOGIN_BODY }
    }
  }
}

// Not in the default run (name them with --variants): they split a gap between variants into its parts.
export const diagnostics = {
  // bare plus @fastify/cookie as a host registers it: its onSend hook runs on every route
  'bare-with-cookie': async () => {
    const app = Fastify()
    await app.register(fastifyCookie)
    app.get('/', handler)
    await app.ready()
    return { app, load: { kind: 'static', method: 'GET', path: '/' } }
  },

  // bare plus an empty preHandler hook: what Fastify charges for running any hook at all
  // bare-header with a preHandler that does nothing: what Fastify charges for any preHandler-based check,
  // the floor under ours-hot
  'bare-header-hook': async () => {
    const { accessToken } = await login(await ourApp())
    const app = Fastify()
    app.get('/', { preHandler: (_request, _reply, done) => done() }, handler)
    await app.ready()
    return { app, load: hot(accessToken) }
  },

  // bare-header-hook in a process that first served 1,000 logins through app.inject, as the referee's
  // server does before it loads ours: what that warm-up alone costs every later request (no plugin here)
  'bare-header-hook-warmed': async () => {
    const issuer = await ourApp()
    const [{ accessToken }] = await loginMany(issuer, DISTINCT_TOKENS)
    await issuer.close()
    const app = Fastify()
    app.get('/', { preHandler: (_request, _reply, done) => done() }, handler)
    await app.ready()
    return { app, load: hot(accessToken) }
  },

  'bare-with-hook': async () => {
    const app = Fastify()
    app.get('/', { preHandler: (_request, _reply, done) => done() }, handler)
    await app.ready()
    return { app, load: { kind: 'static', method: 'GET', path: '/' } }
  },

  // bare, loaded like ours-cold (a token per request, set by autocannon's setupRequest): what building
  // each request costs the load generator, which shares the machine with the server
  'bare-token-pool': async () => {
    const app = Fastify()
    app.get('/', handler)
    await app.ready()
    return { app, load: pool(Array.from({ length: COLD_TOKENS }, (_, i) => `not-a-token-${i}`.padEnd(330, 'x'))) }
  },

  // ours-cold with the cache off: against ours-cold, what the misses cost the cache itself
  'ours-cold-no-cache': async () => {
    const app = await ourApp({ accessToken: { cacheSize: 0 } })
    return { app, load: pool((await loginMany(app, COLD_TOKENS)).map(s => s.accessToken)) }
  },

  // our app.authenticate with the cache off: every request pays the full verification of one token
  'ours-hot-no-cache': async () => {
    const app = await ourApp({ accessToken: { cacheSize: 0 } })
    return { app, load: hot((await login(app)).accessToken) }
  }
}
