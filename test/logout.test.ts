import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
import { MemoryStore, type FastifyRefreshAuthOptions } from '../lib/index.js'
import { buildApp, COOKIE, derivedKey, getPrivate, login, logout, refresh, refreshCookie, setCookies } from './helpers/app.js'

function assertCleared (t: Test, response: Awaited<ReturnType<typeof logout>>) {
  t.equal(response.statusCode, 204)
  t.equal(response.body, '')
  t.equal(response.headers['cache-control'], 'no-store')
  const cookie = setCookies(response).find(c => c.name === COOKIE)
  t.equal(cookie?.value, '', 'cookie cleared')
  t.equal(cookie?.attributes['max-age'], '0')
  t.equal(cookie?.attributes.path, '/auth')
  t.equal(cookie?.attributes.httponly, true)
  t.equal(cookie?.attributes.secure, true)
}

t.test('logout revokes the session and clears the cookie', async t => {
  const app = await buildApp(t)
  const { accessToken, refreshToken } = await login(app)
  assertCleared(t, await logout(app, refreshToken))
  t.equal((await refresh(app, refreshToken)).statusCode, 401, 'replay after logout is refused')
  const refused = await getPrivate(app, accessToken)
  t.equal(refused.statusCode, 401, 'the access token died with its session')
  t.equal(refused.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth", error="invalid_token"')
  t.equal(refused.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
})

t.test('with accessToken.revocation false, an access token outlives its session until it expires', async t => {
  const app = await buildApp(t, { accessToken: { revocation: false } })
  const { accessToken, refreshToken } = await login(app)
  assertCleared(t, await logout(app, refreshToken))
  t.equal((await refresh(app, refreshToken)).statusCode, 401)
  t.equal((await getPrivate(app, accessToken)).statusCode, 200, 'stateless tokens, as asked')
})

t.test('logout revokes the whole family, rotated tokens included', async t => {
  const app = await buildApp(t, { refreshToken: { reuseInterval: 30 } })
  const { refreshToken: parent } = await login(app)
  const child = refreshCookie(await refresh(app, parent)) as string
  assertCleared(t, await logout(app, child))
  t.equal((await refresh(app, parent)).statusCode, 401, 'the parent, even inside the reuse interval')
  t.equal((await refresh(app, child)).statusCode, 401)
})

t.test('logout answers 204 without a token or with a bad one', async t => {
  const app = await buildApp(t)
  const { refreshToken } = await login(app)
  assertCleared(t, await logout(app, undefined))
  assertCleared(t, await logout(app, 'garbage'))
  const expired = jwt.sign({ sub: '42', sid: 's', jti: 'j', iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', exp: 1 },
    derivedKey('refresh-token HS256 v1'), { algorithm: 'HS256', header: { alg: 'HS256', typ: 'rt+jwt' } })
  assertCleared(t, await logout(app, expired))
  t.equal((await refresh(app, refreshToken)).statusCode, 200, 'other sessions untouched')
})

t.test('logout of one session leaves the others alone', async t => {
  const app = await buildApp(t)
  const laptop = await login(app)
  const phone = await login(app)
  assertCleared(t, await logout(app, laptop.refreshToken))
  t.equal((await refresh(app, phone.refreshToken)).statusCode, 200)
})

t.test('a cross-site logout is refused and revokes nothing', async t => {
  const app = await buildApp(t)
  const { refreshToken } = await login(app)
  const response = await logout(app, refreshToken, { 'sec-fetch-site': 'cross-site' })
  t.equal(response.statusCode, 403)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_CROSS_SITE')
  t.equal(response.headers['set-cookie'], undefined)
  t.equal((await refresh(app, refreshToken)).statusCode, 200)
})

/** An app whose audit hooks record what fired. */
async function auditedApp (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}) {
  const events: string[] = []
  const app = await buildApp(t, {
    onLogout: (event) => { events.push(`logout ${event.all ? 'all' : 'one'} ${event.reason}`) },
    onReuseDetected: () => { events.push('reuse') },
    ...options
  })
  return { app, events }
}

function logoutAll (app: Awaited<ReturnType<typeof buildApp>>, refreshToken: string) {
  return app.inject({ method: 'POST', url: '/auth/logout', payload: { all: true }, headers: { cookie: `${COOKIE}=${refreshToken}` } })
}

t.test('a rotated token at logout is reuse: its session ends, onReuseDetected fires, { all: true } ends nothing else', async t => {
  const { app, events } = await auditedApp(t, { refreshToken: { reuseInterval: 0 } })
  const stolen = await login(app)
  const other = await login(app)
  const live = refreshCookie(await refresh(app, stolen.refreshToken)) as string
  assertCleared(t, await logoutAll(app, stolen.refreshToken))
  t.same(events, ['reuse'], 'reuse detected, no logout')
  t.equal((await refresh(app, live)).statusCode, 401, 'the session of the rotated token is over')
  t.equal((await getPrivate(app, stolen.accessToken)).statusCode, 401, 'with its access tokens')
  t.equal((await refresh(app, other.refreshToken)).statusCode, 200, 'the user\'s other session lives')
  t.equal((await getPrivate(app, other.accessToken)).statusCode, 200)
})

t.test('a rotated token whose session was later revoked signs nobody out, however often it is tried', async t => {
  const { app, events } = await auditedApp(t, { refreshToken: { reuseInterval: 0 } })
  const stolen = await login(app)
  const other = await login(app)
  const live = refreshCookie(await refresh(app, stolen.refreshToken)) as string
  assertCleared(t, await logout(app, live))
  events.length = 0
  for (let i = 0; i < 3; i++) assertCleared(t, await logoutAll(app, stolen.refreshToken))
  t.same(events, [], 'no hook fires: the session is gone')
  t.equal((await refresh(app, other.refreshToken)).statusCode, 200, 'the other session is untouched')
})

t.test('the immediate parent within the reuse interval still logs out (a retry, another tab)', async t => {
  const { app, events } = await auditedApp(t)
  const session = await login(app)
  const live = refreshCookie(await refresh(app, session.refreshToken)) as string
  assertCleared(t, await logout(app, session.refreshToken))
  t.same(events, ['logout one logout'])
  t.equal((await refresh(app, live)).statusCode, 401, 'the session is over')
})

t.test('logout everywhere checks the token, ends the others, then its own session: a failure between leaves it for a retry', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const revokeOtherSessions = store.revokeOtherSessions.bind(store)
  let down = true
  store.revokeOtherSessions = async (userId, keep) => { if (down) throw new Error('store down'); return revokeOtherSessions(userId, keep) }
  const { app, events } = await auditedApp(t, { store })
  const session = await login(app)
  const other = await login(app)
  const failed = await logoutAll(app, session.refreshToken)
  t.equal(failed.statusCode, 503)
  t.equal(failed.headers['set-cookie'], undefined, 'the cookie is kept for the retry')
  t.equal((await getPrivate(app, session.accessToken)).statusCode, 200, 'nothing ended')
  down = false
  assertCleared(t, await logoutAll(app, session.refreshToken))
  t.same(events, ['logout all logout'])
  t.equal((await getPrivate(app, session.accessToken)).statusCode, 401)
  t.equal((await getPrivate(app, other.accessToken)).statusCode, 401)
})

t.test('logout everywhere whose token another tab rotated meanwhile (no reuse interval) is reuse: the others and its own session end', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const revokeOtherSessions = store.revokeOtherSessions.bind(store)
  let rotateFirst: (() => Promise<unknown>) | null = null
  store.revokeOtherSessions = async (userId, keep) => { await rotateFirst?.(); return revokeOtherSessions(userId, keep) }
  const { app, events } = await auditedApp(t, { store, refreshToken: { reuseInterval: 0 } })
  const session = await login(app)
  const other = await login(app)
  let rotated: string | undefined
  rotateFirst = async () => { rotated = refreshCookie(await refresh(app, session.refreshToken)) }
  assertCleared(t, await logoutAll(app, session.refreshToken))
  t.ok(rotated !== undefined, 'the other tab\'s refresh went through first')
  t.same(events, ['reuse'], 'reuse detected, no logout')
  t.equal((await refresh(app, rotated as string)).statusCode, 401, 'its session is over')
  t.equal((await getPrivate(app, other.accessToken)).statusCode, 401, 'and so are the others')
})
