import Fastify, { type FastifyInstance } from 'fastify'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, {
  MemoryStore, PostgresStore, RedisStore, type FastifyRefreshAuthOptions, type LogoutEvent, type SessionEndEvent, type SessionStore
} from '../lib/index.js'
import { COOKIE, SECRET, refreshCookie } from './helpers/app.js'
import { withoutFeed } from './helpers/shipped-stores.js'
import { postgresPool, requirePostgres, testSchema } from './helpers/postgres.js'
import { redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'
import { clusterClient, requireCluster } from './helpers/redis-cluster.js'

// Issue 22, the devices page: `GET {prefix}/sessions` and `DELETE {prefix}/sessions/:sessionId` with
// `routes: { sessions: true }`, on every store the project ships; on the shared ones, a second instance
// refuses the access tokens of a session the first one ended.

const CHROME_ON_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
const SAFARI_ON_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
const FIREFOX_ON_IPAD = 'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15'
const UNKNOWN_SESSION = '00000000-0000-4000-8000-000000000000'

const USERS: Record<string, { id: number, password: string }> = { alice: { id: 42, password: 'wonderland' }, bob: { id: 7, password: 'builder' } }

async function verifyCredentials (request: { body: unknown }) {
  const { username, password } = (request.body ?? {}) as { username?: string, password?: string }
  const user = USERS[username ?? '']
  return user !== undefined && user.password === password ? { id: user.id } : null
}

/** Two store objects on one backend (two app instances), or one store with no peer (MemoryStore). */
type Backend = (t: Test) => Promise<{ store: SessionStore, peer: SessionStore | null } | null>

const backends: Array<[string, Backend]> = [
  ['MemoryStore', async () => ({ store: new MemoryStore(), peer: null })],
  ['RedisStore', async t => {
    if (!await requireRedis(t)) return null
    const prefix = uniquePrefix(__filename)
    return {
      store: new RedisStore({ client: redisClient(t, prefix), prefix }),
      peer: new RedisStore({ client: redisClient(t, null), prefix })
    }
  }],
  ['RedisStore on a Cluster', async t => {
    if (!await requireCluster(t)) return null
    const prefix = `${uniquePrefix(__filename)}cluster:`
    return {
      store: new RedisStore({ client: clusterClient(t, prefix), prefix }),
      peer: new RedisStore({ client: clusterClient(t, null), prefix })
    }
  }],
  ['PostgresStore', async t => {
    if (!await requirePostgres(t)) return null
    const table = `${await testSchema(t, __filename)}.refresh_auth_sessions`
    const store = new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 })
    await store.migrate()
    return { store, peer: new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 }) }
  }]
]

/**
 * An app behind a proxy on 127.0.0.1 (`trustProxy`: the client is the one `X-Forwarded-For` names), with the
 * devices routes and a protected route.
 */
async function deviceApp (t: Test, store: SessionStore, options: Partial<FastifyRefreshAuthOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify({ trustProxy: '127.0.0.1' })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store, routes: { sessions: true }, ...options })
  app.get('/private', { preHandler: app.authenticate }, async (request) => ({ sub: request.user?.sub }))
  await app.ready()
  t.teardown(() => app.close())
  return app
}

interface SignedIn { accessToken: string, refreshToken: string, sessionId: string }

async function signIn (app: FastifyInstance, username: string, userAgent: string | null, clientIp: string): Promise<SignedIn> {
  const headers: Record<string, string> = { 'x-forwarded-for': clientIp }
  if (userAgent !== null) headers['user-agent'] = userAgent
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password: USERS[username].password }, headers })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  const accessToken = response.json().access_token as string
  const sessionId = JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid as string
  return { accessToken, refreshToken: refreshCookie(response) as string, sessionId }
}

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })

function listSessions (app: FastifyInstance, accessToken?: string) {
  return app.inject({ url: '/auth/sessions', headers: accessToken === undefined ? {} : bearer(accessToken) })
}

function endSession (app: FastifyInstance, sessionId: string, accessToken?: string) {
  return app.inject({ method: 'DELETE', url: `/auth/sessions/${sessionId}`, headers: accessToken === undefined ? {} : bearer(accessToken) })
}

/** Whether `accessToken` is refused on `app` within five seconds (a peer hears of the end through its feed). */
async function refusedWithin (app: FastifyInstance, accessToken: string): Promise<boolean> {
  const deadline = Date.now() + 5000
  for (;;) {
    const response = await app.inject({ url: '/private', headers: bearer(accessToken) })
    if (response.statusCode === 401) return true
    if (Date.now() > deadline) return false
    await sleep(20)
  }
}

for (const [name, backend] of backends) {
  t.test(`${name}: the list shows each device of the user, the caller's own marked current, the client's IP behind the proxy`, async t => {
    const stores = await backend(t)
    if (stores === null) return
    const app = await deviceApp(t, stores.store)
    const laptop = await signIn(app, 'alice', CHROME_ON_WINDOWS, '203.0.113.7')
    const phone = await signIn(app, 'alice', SAFARI_ON_IPHONE, '198.51.100.23')
    const tablet = await signIn(app, 'alice', FIREFOX_ON_IPAD, '2001:db8::1')
    await signIn(app, 'bob', CHROME_ON_WINDOWS, '192.0.2.1')

    // a refresh is what "last seen" means: the phone refreshes after a pause
    await sleep(30)
    const beforeRefresh = Date.now()
    const refreshed = await app.inject({
      method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=${phone.refreshToken}`, 'x-forwarded-for': '198.51.100.99' }
    })
    t.equal(refreshed.statusCode, 200)

    const response = await listSessions(app, laptop.accessToken)
    t.equal(response.statusCode, 200)
    t.equal(response.headers['cache-control'], 'no-store')
    const { sessions } = response.json() as { sessions: Array<Record<string, unknown>> }
    t.same(sessions.map(session => session.sessionId), [laptop.sessionId, phone.sessionId, tablet.sessionId],
      'the caller first, then the most recently seen; none of bob\'s')
    t.same(sessions.map(session => session.current), [true, false, false])
    t.same(sessions.map(session => session.ip), ['203.0.113.7', '198.51.100.23', '2001:db8::1'], 'the client\'s IP at sign-in, not the proxy\'s')
    t.same(sessions.map(session => session.userAgent), [CHROME_ON_WINDOWS, SAFARI_ON_IPHONE, FIREFOX_ON_IPAD])
    t.same(sessions.map(session => session.device), [
      { browser: 'Chrome', os: 'Windows', type: 'desktop' },
      { browser: 'Safari', os: 'iOS', type: 'mobile' },
      { browser: 'Firefox', os: 'iOS', type: 'tablet' }
    ])
    for (const session of sessions) {
      t.same(Object.keys(session).sort(), ['createdAt', 'current', 'device', 'ip', 'lastSeenAt', 'sessionId', 'userAgent'], 'no token ids, no user id')
    }
    const [laptopEntry, phoneEntry] = sessions as Array<{ createdAt: number, lastSeenAt: number }>
    t.equal(laptopEntry.lastSeenAt, laptopEntry.createdAt, 'never refreshed: last seen at sign-in')
    t.ok(phoneEntry.createdAt < beforeRefresh && phoneEntry.lastSeenAt >= beforeRefresh, 'refreshed: last seen at the refresh')

    const own = await listSessions(app, phone.accessToken)
    t.same(own.json().sessions.map((session: { current: boolean }) => session.current), [true, false, false], 'each caller is current in its own list')
    t.same(await app.refreshAuth.listUserSessions(42).then(list => list.map(session => session.device.browser).sort()), ['Chrome', 'Firefox', 'Safari'],
      'listUserSessions tells the same devices')
  })

  t.test(`${name}: ending one of the user's sessions ends it everywhere, as any revocation`, async t => {
    const stores = await backend(t)
    if (stores === null) return
    const ends: SessionEndEvent[] = []
    const logouts: LogoutEvent[] = []
    const app = await deviceApp(t, stores.store, { onLogout: (event) => { logouts.push(event) } })
    app.refreshAuth.onSessionEnd(event => ends.push(event))
    const peer = stores.peer === null ? null : await deviceApp(t, stores.peer)
    const laptop = await signIn(app, 'alice', CHROME_ON_WINDOWS, '203.0.113.7')
    const phone = await signIn(app, 'alice', SAFARI_ON_IPHONE, '198.51.100.23')
    if (peer !== null) t.equal((await peer.inject({ url: '/private', headers: bearer(phone.accessToken) })).statusCode, 200, 'the peer serves the phone')

    const ended = await endSession(app, phone.sessionId, laptop.accessToken)
    t.equal(ended.statusCode, 204)
    t.equal(ended.body, '')
    t.equal((await app.inject({ url: '/private', headers: bearer(phone.accessToken) })).statusCode, 401, 'its access token is refused')
    if (peer !== null) t.ok(await refusedWithin(peer, phone.accessToken), 'and on the other instance')
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=${phone.refreshToken}` } })
    t.equal(refreshed.statusCode, 401, 'its refresh token is refused')
    t.same(ends, [{ sessionId: phone.sessionId, userId: '42', reason: 'revoked' }], 'onSessionEnd hears it once, with its user')
    t.same(logouts, [{ userId: '42', sessionId: phone.sessionId, all: false, others: false, reason: 'ended-by-user' }])
    t.same((await listSessions(app, laptop.accessToken)).json().sessions.map((session: { sessionId: string }) => session.sessionId), [laptop.sessionId])
    t.equal((await app.inject({ url: '/private', headers: bearer(laptop.accessToken) })).statusCode, 200, 'the caller stays signed in')

    const again = await endSession(app, phone.sessionId, laptop.accessToken)
    t.equal(again.statusCode, 404, 'an ended session is not found')
    t.equal(again.json().code, 'FST_REFRESH_AUTH_SESSION_NOT_FOUND')
  })

  t.test(`${name}: another user's session gets the same 404 as an unknown one, and stays`, async t => {
    const stores = await backend(t)
    if (stores === null) return
    const app = await deviceApp(t, stores.store)
    const alice = await signIn(app, 'alice', CHROME_ON_WINDOWS, '203.0.113.7')
    const bob = await signIn(app, 'bob', SAFARI_ON_IPHONE, '198.51.100.23')

    const others = await endSession(app, bob.sessionId, alice.accessToken)
    const unknown = await endSession(app, UNKNOWN_SESSION, alice.accessToken)
    t.equal(others.statusCode, 404)
    t.same(others.json(), { statusCode: 404, code: 'FST_REFRESH_AUTH_SESSION_NOT_FOUND', error: 'Not Found', message: 'No such session' })
    t.same(unknown.json(), others.json(), 'the same answer: a session id says nothing of who holds it')
    t.equal((await app.inject({ url: '/private', headers: bearer(bob.accessToken) })).statusCode, 200, 'bob is still signed in')
    t.equal((await listSessions(app, bob.accessToken)).json().sessions.length, 1)
  })
}

t.test('without an access token both routes answer 401 with the Bearer challenge, before the id is read', async t => {
  const app = await deviceApp(t, new MemoryStore())
  const alice = await signIn(app, 'alice', CHROME_ON_WINDOWS, '203.0.113.7')
  for (const response of [await listSessions(app), await endSession(app, alice.sessionId), await endSession(app, 'not-a-session-id')]) {
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_REFRESH_AUTH_NO_TOKEN')
    t.equal(response.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth"')
  }
  const forged = await listSessions(app, `${alice.accessToken.slice(0, -4)}AAAA`)
  t.equal(forged.statusCode, 401)
  t.equal(forged.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
  t.equal((await listSessions(app, alice.accessToken)).json().sessions.length, 1, 'nothing was ended')
})

t.test('a malformed session id is a 400 validation error; nothing is ended', async t => {
  const ends: SessionEndEvent[] = []
  const app = await deviceApp(t, new MemoryStore())
  app.refreshAuth.onSessionEnd(event => ends.push(event))
  const alice = await signIn(app, 'alice', CHROME_ON_WINDOWS, '203.0.113.7')
  for (const id of ['not-a-uuid', `${alice.sessionId}x`, alice.sessionId.toUpperCase(), encodeURIComponent('../../login'), '%00']) {
    const response = await endSession(app, id, alice.accessToken)
    t.equal(response.statusCode, 400, id)
    t.equal(response.json().code, 'FST_ERR_VALIDATION')
  }
  const long = await endSession(app, 'x'.repeat(2000), alice.accessToken)
  t.equal(long.statusCode, 414, 'longer than Fastify reads a parameter')
  t.equal(long.json().code, 'FST_ERR_MAX_PARAM_LENGTH')
  t.same(ends, [])
  t.equal((await app.inject({ url: '/private', headers: bearer(alice.accessToken) })).statusCode, 200)
})

t.test('a session with an empty User-Agent, or one that names no browser, is listed with what is known', async t => {
  const app = await deviceApp(t, new MemoryStore())
  const script = await signIn(app, 'alice', 'curl/8.5.0', '203.0.113.7')
  const empty = await signIn(app, 'alice', '', '203.0.113.8')
  const sessions = (await listSessions(app, script.accessToken)).json().sessions as Array<Record<string, unknown>>
  t.same(sessions.map(({ sessionId, userAgent, device }) => ({ sessionId, userAgent, device })), [
    { sessionId: script.sessionId, userAgent: 'curl/8.5.0', device: { browser: null, os: null, type: null } },
    { sessionId: empty.sessionId, userAgent: '', device: { browser: null, os: null, type: null } }
  ])
})

t.test('a client that sends no User-Agent at all is listed with null', async t => {
  const app = await deviceApp(t, new MemoryStore())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  // node:http sends no User-Agent of its own (fetch and inject do)
  const login = await rawRequest(port, 'POST', '/auth/login', { 'content-type': 'application/json' }, JSON.stringify({ username: 'alice', password: 'wonderland' }))
  t.equal(login.status, 200)
  const listed = await rawRequest(port, 'GET', '/auth/sessions', bearer(JSON.parse(login.body).access_token))
  t.same(JSON.parse(listed.body).sessions.map(({ userAgent, device, ip }: Record<string, unknown>) => ({ userAgent, device, ip })),
    [{ userAgent: null, device: { browser: null, os: null, type: null }, ip: '127.0.0.1' }], 'no proxy header: the socket\'s address')
})

function rawRequest (port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, method, path, headers }, response => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', chunk => { text += chunk })
      response.on('end', () => resolve({ status: response.statusCode as number, body: text }))
    })
    request.on('error', reject)
    request.end(body)
  })
}

t.test('the devices routes are opt-in, under the routes prefix', async t => {
  const plain = await deviceApp(t, new MemoryStore(), { routes: true })
  const alice = await signIn(plain, 'alice', CHROME_ON_WINDOWS, '203.0.113.7')
  t.equal((await listSessions(plain, alice.accessToken)).statusCode, 404, 'not registered by default')

  const moved = await deviceApp(t, new MemoryStore(), { routes: { prefix: '/api/auth', sessions: true } })
  const login = await moved.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'alice', password: 'wonderland' } })
  const response = await moved.inject({ url: '/api/auth/sessions', headers: bearer(login.json().access_token) })
  t.equal(response.statusCode, 200)
  t.equal(response.json().sessions.length, 1)

  await t.rejects(deviceApp(t, new MemoryStore(), { routes: { sessions: 'yes' as never } }),
    { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /routes\.sessions must be a boolean/ })
})

t.test('a store that fails answers 503 on both routes', async t => {
  const store = new MemoryStore()
  const app = await deviceApp(t, store)
  const alice = await signIn(app, 'alice', CHROME_ON_WINDOWS, '203.0.113.7')
  store.listUserSessions = async () => { throw new Error('the store is down') }
  for (const response of [await listSessions(app, alice.accessToken), await endSession(app, alice.sessionId, alice.accessToken)]) {
    t.equal(response.statusCode, 503)
    t.equal(response.json().code, 'FST_REFRESH_AUTH_STORE_UNAVAILABLE')
    t.notMatch(response.body, /the store is down/)
  }
})

t.test('a custom store that keeps neither IP nor User-Agent: listed with null', async t => {
  const inner = new MemoryStore()
  const store = withoutFeed(inner)
  store.listUserSessions = async (userId, now) =>
    (await inner.listUserSessions(userId, now)).map(({ ip: _ip, userAgent: _userAgent, ...kept }) => kept)
  const app = await deviceApp(t, store)
  const alice = await signIn(app, 'alice', CHROME_ON_WINDOWS, '203.0.113.7')
  t.match((await listSessions(app, alice.accessToken)).json().sessions, [{ ip: null, userAgent: null, device: { browser: null, os: null, type: null } }])
})

t.test('with routes: false the factories mount them where the host wants, authentication first of its hooks', async t => {
  const seen: Array<string | undefined> = []
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, routes: false })
  app.route(app.refreshAuth.loginRoute())
  app.route(app.refreshAuth.listSessionsRoute({
    url: '/api/devices',
    onRequest: async (request) => { seen.push(request.user?.sub) },
    schema: { tags: ['account'] }
  }))
  app.route(app.refreshAuth.endSessionRoute({ url: '/api/devices/:sessionId' }))
  await app.ready()
  t.teardown(() => app.close())

  const alice = await signIn(app, 'alice', CHROME_ON_WINDOWS, '203.0.113.7')
  t.equal((await app.inject({ url: '/api/devices' })).statusCode, 401, 'the host\'s hook cannot let a request in without a token')
  const listed = await app.inject({ url: '/api/devices', headers: bearer(alice.accessToken) })
  t.equal(listed.statusCode, 200)
  t.same(listed.json().sessions.map((session: { sessionId: string }) => session.sessionId), [alice.sessionId])
  t.same(seen, ['42'], 'the host\'s onRequest ran after authentication, once, for the authenticated request')
  t.equal((await app.inject({ method: 'DELETE', url: `/api/devices/${alice.sessionId}`, headers: bearer(alice.accessToken) })).statusCode, 204)
  t.equal((await app.inject({ url: '/api/devices', headers: bearer(alice.accessToken) })).statusCode, 401, 'its own session ended: its token is refused')
  t.equal((await app.inject({ url: '/auth/sessions', headers: bearer(alice.accessToken) })).statusCode, 404, 'nothing at the default URL')
})
