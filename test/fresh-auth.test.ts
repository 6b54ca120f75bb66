import fastifyAuth from '@fastify/auth'
import fastifySwagger from '@fastify/swagger'
import Fastify, { type FastifyInstance } from 'fastify'
import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, {
  ErrorCodes, InsufficientUserAuthenticationError, openApiSecuritySchemes, type FastifyRefreshAuthOptions
} from '../lib/index.js'
import { SECRET, buildApp, derivedKey, getPrivate, login, refresh, refreshCookie, verifyCredentials } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { authServer, ec, protectedApp } from './helpers/keys.js'
import { sharedStores } from './helpers/shipped-stores.js'

// Issue 11, step-up: every access token carries auth_time (the login that started its session, kept by
// refresh), and requireFreshAuth(maxAge) refuses a sign-in older than maxAge with RFC 9470's challenge.

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file

const challenge = (maxAge: number, realm = 'fastify-refresh-auth') =>
  `Bearer realm="${realm}", error="insufficient_user_authentication", max_age="${maxAge}"`

function claimsOf (token: string): { iat: number, auth_time: number, jti: string, roles?: string[] } {
  return jwt.decode(token) as { iat: number, auth_time: number, jti: string }
}

/** An app with a route behind requireFreshAuth('5m'), and others. */
async function stepUpApp (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}) {
  return buildApp(t, options, app => {
    app.post('/account/email', { preHandler: app.refreshAuth.requireFreshAuth('5m') }, async request => ({ sub: request.user?.sub }))
    app.delete('/account', { preHandler: [app.authenticate, app.refreshAuth.requireFreshAuth(60)] }, async () => 'deleted')
  })
}

function post (app: FastifyInstance, url: string, accessToken?: string) {
  return app.inject({ method: 'POST', url, headers: accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` } })
}

/** Resolves once the clock has moved to the next whole second (at most a second), so that a new `iat` differs. */
async function nextSecond (): Promise<void> {
  const start = Math.floor(Date.now() / 1000)
  while (Math.floor(Date.now() / 1000) === start) await new Promise(resolve => setTimeout(resolve, 20))
}

t.test('auth_time is the login time of the session, in seconds, and refresh keeps it', async t => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { accessToken: { expiresIn: '15m' }, refreshToken: { expiresIn: '7d' } })
  const { accessToken, refreshToken } = await login(app)
  const [session] = await app.refreshAuth.listUserSessions('42')
  const first = claimsOf(accessToken)
  t.equal(first.auth_time, Math.floor(session.createdAt / 1000), "the session's createdAt, in seconds")
  t.equal(first.auth_time, first.iat, 'a new login: issued and authenticated at once')
  t.equal(claimsOf(refreshToken).auth_time, undefined, 'the refresh token does not carry it')

  let token = refreshToken
  for (const hours of [1, 5, 20]) {
    clock.advance(hours * 3600)
    const refreshed = await refresh(app, token)
    t.equal(refreshed.statusCode, 200)
    const claims = claimsOf(refreshed.json().access_token)
    t.equal(claims.auth_time, first.auth_time, `unchanged by a refresh ${hours} hours later`)
    t.ok(claims.iat > first.iat, 'while iat moves on')
    token = refreshCookie(refreshed) as string
  }
  const again = await login(app)
  t.ok(claimsOf(again.accessToken).auth_time > first.auth_time, 'a new login has a new auth_time')
})

t.test('a re-issue within the reuse interval keeps auth_time too', async t => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { refreshToken: { reuseInterval: 30 } })
  const { accessToken, refreshToken: parent } = await login(app)
  clock.advance(10)
  const first = await refresh(app, parent)
  clock.advance(10)
  const second = await refresh(app, parent)
  t.equal(second.statusCode, 200, 'the parent within the interval')
  t.equal(claimsOf(refreshCookie(second) as string).jti, claimsOf(refreshCookie(first) as string).jti, 'a re-issue of the live token')
  t.equal(claimsOf(second.json().access_token).auth_time, claimsOf(accessToken).auth_time)
})

t.test("the host's claims cannot set auth_time", async t => {
  const app = await buildApp(t, { claims: async () => ({ auth_time: 4102444800, roles: ['user'] }) as never })
  const { accessToken } = await login(app)
  const claims = claimsOf(accessToken)
  t.equal(claims.auth_time, claims.iat, 'ours, not the host value')
  t.same(claims.roles, ['user'], 'the other claims are kept')
})

t.test('requireFreshAuth lets a recent sign-in through and refuses an old one with the RFC 9470 challenge', async t => {
  const clock = fakeClock(t)
  const app = await stepUpApp(t, { accessToken: { expiresIn: '1h' }, refreshToken: { expiresIn: '7d' } })
  const { accessToken } = await login(app)
  const fresh = await post(app, '/account/email', accessToken)
  t.equal(fresh.statusCode, 200)
  t.same(fresh.json(), { sub: '42' }, 'the guard authenticated the request and set request.user')

  clock.advance(299)
  t.equal((await post(app, '/account/email', accessToken)).statusCode, 200, 'within maxAge')
  clock.advance(2)
  const stale = await post(app, '/account/email', accessToken)
  t.equal(stale.statusCode, 401)
  t.same(stale.json(), {
    statusCode: 401, code: 'FST_REFRESH_AUTH_INSUFFICIENT_USER_AUTHENTICATION', error: 'Unauthorized', message: 'A more recent sign-in is required'
  })
  t.equal(stale.headers['www-authenticate'], challenge(300))
  t.equal((await getPrivate(app, accessToken)).statusCode, 200, 'the token itself is still valid elsewhere')
})

t.test('a refresh does not make a sign-in fresh again; a new login does', async t => {
  const clock = fakeClock(t)
  const app = await stepUpApp(t)
  const { refreshToken } = await login(app)
  clock.advance(600)
  const refreshed = await refresh(app, refreshToken)
  t.equal(refreshed.statusCode, 200)
  const stale = await post(app, '/account/email', refreshed.json().access_token)
  t.equal(stale.statusCode, 401, 'a brand-new access token of an old session')
  t.equal(stale.json().code, ErrorCodes.INSUFFICIENT_USER_AUTHENTICATION)
  const { accessToken } = await login(app)
  t.equal((await post(app, '/account/email', accessToken)).statusCode, 200, 'after signing in again')
})

t.test('the boundary is whole seconds: exactly maxAge passes, one second more does not', async t => {
  const key = derivedKey('access-token HS256 v1')
  const app = await stepUpApp(t)
  // a clock that stands still, half-way through a second
  const realNow = Date.now
  const now = Math.floor(realNow() / 1000)
  Date.now = () => now * 1000 + 500
  t.teardown(() => { Date.now = realNow })
  const token = (authTime: number) => jwt.sign(
    { iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', sub: '42', sid: 's', jti: 'j', iat: now, exp: now + 600, auth_time: authTime },
    key, { algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } })
  t.equal((await post(app, '/account/email', token(now - 300))).statusCode, 200, 'exactly 300 seconds ago')
  t.equal((await post(app, '/account/email', token(now - 301))).statusCode, 401, '301 seconds ago')
  t.equal((await post(app, '/account/email', token(now + 30))).statusCode, 200, 'a sign-in ahead of our clock (skew) is fresh')
})

t.test('an access token without auth_time (another issuer, an older version) is refused by the guard only', async t => {
  const key = derivedKey('access-token HS256 v1')
  const app = await stepUpApp(t)
  const now = Math.floor(Date.now() / 1000)
  const base = { iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', sub: '42', sid: 's', jti: 'j', iat: now, exp: now + 600 }
  const sign = (claims: object) => jwt.sign(claims, key, { algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } })
  const without = sign(base)
  t.equal((await getPrivate(app, without)).statusCode, 200, 'still a valid access token')
  const refused = await post(app, '/account/email', without)
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'FST_REFRESH_AUTH_INSUFFICIENT_USER_AUTHENTICATION')
  t.equal(refused.headers['www-authenticate'], challenge(300))

  // an auth_time of another type is no valid token at all
  for (const authTime of ['1700000000', null, { at: now }, [now]]) {
    const odd = sign({ ...base, auth_time: authTime })
    const response = await post(app, '/account/email', odd)
    t.equal(response.statusCode, 401, JSON.stringify(authTime))
    t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
    t.equal((await getPrivate(app, odd)).statusCode, 401)
  }
})

t.test('no token or a bad token: the usual 401 challenges, before any freshness check', async t => {
  const app = await stepUpApp(t)
  const missing = await post(app, '/account/email')
  t.equal(missing.statusCode, 401)
  t.equal(missing.json().code, 'FST_REFRESH_AUTH_NO_TOKEN')
  t.equal(missing.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth"')
  const invalid = await post(app, '/account/email', 'not.a.token')
  t.equal(invalid.statusCode, 401)
  t.equal(invalid.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth", error="invalid_token"')
  const behindAuthenticate = await app.inject({ method: 'DELETE', url: '/account' })
  t.equal(behindAuthenticate.json().code, 'FST_REFRESH_AUTH_NO_TOKEN')
})

t.test('after app.authenticate, with a scope guard, and inside @fastify/auth', async t => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { claims: async () => ({ scope: 'payouts:write' }) }, async app => {
    await app.register(fastifyAuth)
    app.post('/payouts', { preHandler: [app.refreshAuth.requireScopes('payouts:write'), app.refreshAuth.requireFreshAuth('2m')] }, async () => 'paid')
    app.post('/either', { preHandler: app.auth([app.refreshAuth.requireFreshAuth('2m'), (request, _reply, done) => done(request.headers['x-api-key'] === 'k' ? undefined : new Error('no key'))]) }, async () => 'ok')
  })
  const { accessToken } = await login(app)
  t.equal((await post(app, '/payouts', accessToken)).statusCode, 200)
  t.equal((await post(app, '/either', accessToken)).statusCode, 200)
  clock.advance(121)
  const stale = await post(app, '/payouts', accessToken)
  t.equal(stale.statusCode, 401)
  t.equal(stale.headers['www-authenticate'], challenge(120))
  t.equal((await app.inject({ method: 'POST', url: '/either', headers: { authorization: `Bearer ${accessToken}`, 'x-api-key': 'k' } })).statusCode, 200,
    'another check of @fastify/auth may still let it through')
  const { accessToken: fresh } = await login(app)
  t.equal((await post(app, '/either', fresh)).statusCode, 200)
})

t.test('maxAge reads durations as the options do, and the realm is ours', async t => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { realm: 'shop', accessToken: { expiresIn: '1h' }, refreshToken: { expiresIn: '7d' } }, app => {
    app.get('/a', { preHandler: app.refreshAuth.requireFreshAuth('90s') }, async () => 'ok')
    app.get('/b', { preHandler: app.refreshAuth.requireFreshAuth('600') }, async () => 'ok')
    app.get('/c', { preHandler: app.refreshAuth.requireFreshAuth(1.9) }, async () => 'ok')
  })
  const { accessToken } = await login(app)
  clock.advance(700)
  t.equal((await getPrivate(app, accessToken, '/a')).headers['www-authenticate'], challenge(90, 'shop'))
  t.equal((await getPrivate(app, accessToken, '/b')).headers['www-authenticate'], challenge(600, 'shop'), 'a unitless string is seconds')
  t.equal((await getPrivate(app, accessToken, '/c')).headers['www-authenticate'], challenge(1, 'shop'), 'whole seconds, rounded down')
})

t.test('a maxAge that cannot be one is refused when the guard is built', async t => {
  const app = await buildApp(t)
  for (const bad of [0, 0.5, -60, Number.NaN, Number.POSITIVE_INFINITY, '', 'soon', '-5m', null, undefined, {}, [60], true]) {
    t.throws(() => app.refreshAuth.requireFreshAuth(bad as never), { code: 'FST_REFRESH_AUTH_INVALID_ARGUMENT', message: /requireFreshAuth: maxAge must be a duration of at least one second/ }, String(bad))
  }
})

t.test('the messages option replaces what the client reads, never the code or the challenge', async t => {
  const clock = fakeClock(t)
  const app = await stepUpApp(t, { messages: { FST_REFRESH_AUTH_INSUFFICIENT_USER_AUTHENTICATION: 'Please confirm your password' } })
  const { accessToken } = await login(app)
  clock.advance(400)
  const stale = await post(app, '/account/email', accessToken)
  t.equal(stale.json().message, 'Please confirm your password')
  t.equal(stale.json().code, 'FST_REFRESH_AUTH_INSUFFICIENT_USER_AUTHENTICATION')
  t.equal(stale.headers['www-authenticate'], challenge(300))
  const error = new InsufficientUserAuthenticationError()
  t.equal(error.statusCode, 401)
  t.notOk(error instanceof TypeError, 'a 401 error, not a TypeError')
})

t.test('OpenAPI: a route behind the guard is documented as Bearer-protected', async t => {
  const app = Fastify()
  await app.register(fastifySwagger, { openapi: { info: { title: 'test', version: '1.0.0' }, components: { securitySchemes: openApiSecuritySchemes() } } })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  app.delete('/account', { preHandler: app.refreshAuth.requireFreshAuth('5m') }, async () => 'deleted')
  app.get('/public', async () => 'ok')
  await app.ready()
  t.teardown(() => app.close())
  const document = app.swagger() as unknown as { paths: Record<string, Record<string, { security?: unknown }>> }
  t.same(document.paths['/account'].delete.security, [{ bearerAuth: [] }])
  t.equal(document.paths['/public'].get.security, undefined)
})

t.test('a resource server checks the auth_time of the auth server it trusts', async t => {
  const clock = fakeClock(t)
  const pair = ec()
  const auth = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'k1', privateKey: pair.privateKey }] })
  const resource = await protectedApp(t, { routes: false, accessToken: { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey: pair.publicKey }] } })
  resource.post('/transfer', { preHandler: resource.refreshAuth.requireFreshAuth('10m') }, async () => 'sent')
  await auth.ready()
  const { accessToken } = await login(auth)
  t.equal((await post(resource, '/transfer', accessToken)).statusCode, 200)
  clock.advance(601)
  const stale = await post(resource, '/transfer', accessToken)
  t.equal(stale.statusCode, 401)
  t.equal(stale.headers['www-authenticate'], challenge(600))
})

for (const [name, makeStore] of sharedStores(__filename)) {
  t.test(`${name}: auth_time is the session creation time and survives rotation and re-issue`, async t => {
    const store = await makeStore(t)
    if (store === null) return
    const app = await stepUpApp(t, { store, refreshToken: { reuseInterval: 30 } })
    const { accessToken, refreshToken } = await login(app)
    const [session] = await app.refreshAuth.listUserSessions('42')
    const authTime = claimsOf(accessToken).auth_time
    t.equal(authTime, Math.floor(session.createdAt / 1000))

    await nextSecond()
    const rotated = await refresh(app, refreshToken)
    t.equal(rotated.statusCode, 200)
    const rotatedClaims = claimsOf(rotated.json().access_token)
    t.ok(rotatedClaims.iat > authTime, 'issued in a later second')
    t.equal(rotatedClaims.auth_time, authTime, 'the rotation kept auth_time')
    const reissued = await refresh(app, refreshToken)
    t.equal(reissued.statusCode, 200, 'the parent within the reuse interval')
    t.equal(claimsOf(reissued.json().access_token).auth_time, authTime, 'so did the re-issue')
    t.equal((await post(app, '/account/email', reissued.json().access_token)).statusCode, 200, 'and the guard reads it')
  })
}
