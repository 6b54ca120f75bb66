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

export const variants = {
  // The limit: the same route with no authentication at all.
  bare: async () => {
    const app = Fastify()
    app.get('/', handler)
    await app.ready()
    return { app, load: { kind: 'static', method: 'GET', path: '/' } }
  },

  // Our app.authenticate, one token for every request: after the first, served from the cache.
  'ours-hot-token': async () => {
    const app = await ourApp()
    const { accessToken } = await login(app)
    return { app, load: { kind: 'static', method: 'GET', path: '/', headers: { authorization: `Bearer ${accessToken}` } } }
  },

  // Our app.authenticate, every request a token not in the cache: twice the default cache size,
  // presented round-robin, so the least recently used entry is always the one asked for next.
  'ours-distinct-tokens': async () => {
    const app = await ourApp()
    const sessions = await loginMany(app, 2 * 10_000)
    return {
      app,
      load: { kind: 'token-pool', method: 'GET', path: '/', tokens: sessions.map(s => s.accessToken) }
    }
  },

  // The plugin users would pick instead, as its README sets it up (HS256, a string secret).
  'fastify-jwt': async () => {
    const app = Fastify()
    await app.register(fastifyJwt, { secret: SECRET })
    app.decorate('authenticate', async function (request) { await request.jwtVerify() })
    app.get('/', { preHandler: app.authenticate }, handler)
    await app.ready()
    const token = app.jwt.sign({ sub: 'bench-user' }, { expiresIn: ACCESS_LIFETIME })
    return { app, load: { kind: 'static', method: 'GET', path: '/', headers: { authorization: `Bearer ${token}` } } }
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
  // bare plus @fastify/cookie as the plugin registers it when the host has not: its hooks run on every route
  'bare-with-cookie': async () => {
    const app = Fastify()
    await app.register(fastifyCookie)
    app.get('/', handler)
    await app.ready()
    return { app, load: { kind: 'static', method: 'GET', path: '/' } }
  },

  // bare, sent the same Authorization header as ours-hot-token (and ignoring it): the bytes on the wire
  // and the header parsing, apart from anything authentication does
  'bare-with-token-header': async () => {
    const { accessToken } = await login(await ourApp())
    const app = Fastify()
    app.get('/', handler)
    await app.ready()
    return { app, load: { kind: 'static', method: 'GET', path: '/', headers: { authorization: `Bearer ${accessToken}` } } }
  },

  // bare plus an empty preHandler hook: what Fastify charges for running any hook at all
  'bare-with-hook': async () => {
    const app = Fastify()
    app.get('/', { preHandler: (_request, _reply, done) => done() }, handler)
    await app.ready()
    return { app, load: { kind: 'static', method: 'GET', path: '/' } }
  },

  // bare, loaded like ours-distinct-tokens (a token per request, set by autocannon's setupRequest):
  // what building each request costs the load generator, which shares the machine with the server
  'bare-token-pool': async () => {
    const app = Fastify()
    app.get('/', handler)
    await app.ready()
    const tokens = Array.from({ length: 20_000 }, (_, i) => `not-a-token-${i}`.padEnd(330, 'x'))
    return { app, load: { kind: 'token-pool', method: 'GET', path: '/', tokens } }
  },

  // ours-distinct-tokens with the cache off: what the misses cost the cache itself
  'ours-distinct-no-cache': async () => {
    const app = await ourApp({ accessToken: { cacheSize: 0 } })
    const sessions = await loginMany(app, 2 * 10_000)
    return { app, load: { kind: 'token-pool', method: 'GET', path: '/', tokens: sessions.map(s => s.accessToken) } }
  },

  // our app.authenticate with the cache off: every request pays the full verification
  'ours-no-cache': async () => {
    const app = await ourApp({ accessToken: { cacheSize: 0 } })
    const { accessToken } = await login(app)
    return { app, load: { kind: 'static', method: 'GET', path: '/', headers: { authorization: `Bearer ${accessToken}` } } }
  }
}
