import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { COOKIE, USER, buildApp, getPrivate, login, refresh, refreshCookie, setCookies } from './helpers/app.js'

function bodyLogin (app: FastifyInstance, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers })
}

function bodyRefresh (app: FastifyInstance, token: unknown, headers: Record<string, string> = {}, url = '/auth/refresh') {
  return app.inject({ method: 'POST', url, payload: { refresh_token: token }, headers })
}

t.test('off by default: no refresh token in bodies, and a body token is ignored', async t => {
  const app = await buildApp(t)
  const { response, refreshToken } = await login(app)
  t.equal(response.json().refresh_token, undefined)
  const refreshed = await bodyRefresh(app, refreshToken)
  t.equal(refreshed.statusCode, 401)
  t.equal(refreshed.json().code, 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN')
  t.equal((await refresh(app, refreshToken)).statusCode, 200, 'the ignored body consumed nothing')
})

t.test("'body': the refresh token travels in JSON bodies only, never in a cookie", async t => {
  const app = await buildApp(t, { refreshTokenTransport: 'body' })
  const signedIn = await bodyLogin(app)
  t.equal(signedIn.statusCode, 200)
  t.equal(signedIn.headers['set-cookie'], undefined, 'no cookie')
  t.equal(signedIn.headers['cache-control'], 'no-store')
  const first = signedIn.json()
  t.same(Object.keys(first).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])
  t.equal((await getPrivate(app, first.access_token)).statusCode, 200)

  const refreshed = await bodyRefresh(app, first.refresh_token)
  t.equal(refreshed.statusCode, 200)
  t.equal(refreshed.headers['set-cookie'], undefined)
  t.equal(refreshed.headers['cache-control'], 'no-store')
  const second = refreshed.json()
  t.type(second.refresh_token, 'string')
  t.not(second.refresh_token, first.refresh_token, 'rotated')
  t.equal((await getPrivate(app, second.access_token)).statusCode, 200)

  t.equal((await refresh(app, second.refresh_token)).statusCode, 401, 'the same token in a cookie is not read')

  const out = await bodyRefresh(app, second.refresh_token, {}, '/auth/logout')
  t.equal(out.statusCode, 204)
  t.equal(out.headers['set-cookie'], undefined, 'no cookie to clear')
  t.equal((await bodyRefresh(app, second.refresh_token)).statusCode, 401, 'logout revoked the session')
})

t.test('a body token follows the same rotation and reuse rules', async t => {
  const app = await buildApp(t, { refreshTokenTransport: 'body', refreshToken: { reuseInterval: 0 } })
  const first = (await bodyLogin(app)).json().refresh_token
  const second = (await bodyRefresh(app, first)).json().refresh_token
  const replay = await bodyRefresh(app, first)
  t.equal(replay.statusCode, 401, 'a rotated token replayed is refused')
  t.equal(replay.json().code, 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN')
  t.equal(replay.headers['set-cookie'], undefined)
  t.equal((await bodyRefresh(app, second)).statusCode, 401, 'and the whole session is revoked')
})

t.test('malformed body tokens: 400 for the wrong type or size, 401 when absent', async t => {
  const app = await buildApp(t, { refreshTokenTransport: 'body' })
  const tooLong = await bodyRefresh(app, 'a'.repeat(8193))
  t.equal(tooLong.statusCode, 400)
  t.equal(tooLong.json().code, 'FST_ERR_VALIDATION')
  t.equal((await bodyRefresh(app, { nested: true })).statusCode, 400)
  const absent = await app.inject({ method: 'POST', url: '/auth/refresh', payload: {} })
  t.equal(absent.statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh' })).statusCode, 401, 'no body at all')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout' })).statusCode, 204)
  t.equal((await bodyRefresh(app, 'not.a.token')).statusCode, 401)
})

t.test("'both': browsers keep the cookie; clients that ask get the body", async t => {
  // strict: the failures below replay rotated tokens
  const app = await buildApp(t, { refreshTokenTransport: 'both', refreshToken: { reuseInterval: 0 } })

  const browser = await bodyLogin(app)
  t.equal(browser.json().refresh_token, undefined, 'no token for page scripts to read')
  const cookieToken = refreshCookie(browser) as string
  t.ok(cookieToken)

  const mobile = await bodyLogin(app, { 'refresh-token-transport': 'body' })
  t.equal(mobile.headers['set-cookie'], undefined)
  const bodyToken = mobile.json().refresh_token
  t.type(bodyToken, 'string')

  const byCookie = await refresh(app, cookieToken, { 'refresh-token-transport': 'body' })
  t.equal(byCookie.statusCode, 200)
  t.equal(byCookie.json().refresh_token, undefined, 'a cookie session never gets its token in a body')
  t.ok(refreshCookie(byCookie))

  const byBody = await bodyRefresh(app, bodyToken)
  t.equal(byBody.statusCode, 200)
  t.type(byBody.json().refresh_token, 'string')
  t.equal(byBody.headers['set-cookie'], undefined)

  const failedBody = await bodyRefresh(app, bodyToken)
  t.equal(failedBody.statusCode, 401)
  t.equal(failedBody.headers['set-cookie'], undefined, 'a body failure leaves cookies alone')
  const failedCookie = await refresh(app, cookieToken)
  t.equal(failedCookie.statusCode, 401)
  t.same(setCookies(failedCookie).map(c => [c.name, c.value]), [[COOKIE, '']], 'a cookie failure clears the cookie')
})

t.test("'both': logout revokes whichever token came and clears the cookie only for cookie sessions", async t => {
  const app = await buildApp(t, { refreshTokenTransport: 'both' })
  const cookieToken = refreshCookie(await bodyLogin(app)) as string
  const bodyToken = (await bodyLogin(app, { 'refresh-token-transport': 'body' })).json().refresh_token

  const bodyOut = await bodyRefresh(app, bodyToken, { cookie: `${COOKIE}=${cookieToken}` }, '/auth/logout')
  t.equal(bodyOut.statusCode, 204)
  t.equal(bodyOut.headers['set-cookie'], undefined)
  t.equal((await bodyRefresh(app, bodyToken)).statusCode, 401, 'the body session is gone')
  const stillIn = await refresh(app, cookieToken)
  t.equal(stillIn.statusCode, 200, 'the cookie session was not touched')

  const cookieOut = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: `${COOKIE}=${refreshCookie(stillIn) as string}` } })
  t.equal(cookieOut.statusCode, 204)
  t.same(setCookies(cookieOut).map(c => [c.name, c.value]), [[COOKIE, '']])
})

t.test('the cross-site check still applies, and a refused request consumes nothing', async t => {
  const app = await buildApp(t, { refreshTokenTransport: 'both', trustedOrigins: ['https://app.example'] })
  const cookieToken = refreshCookie(await bodyLogin(app)) as string
  const crossSite = await refresh(app, cookieToken, { 'sec-fetch-site': 'cross-site' })
  t.equal(crossSite.statusCode, 403)
  t.equal(crossSite.json().code, 'FST_REFRESH_AUTH_CROSS_SITE')
  const otherOrigin = await refresh(app, cookieToken, { origin: 'https://evil.example' })
  t.equal(otherOrigin.statusCode, 403)
  t.equal((await refresh(app, cookieToken, { origin: 'https://app.example' })).statusCode, 200, 'the token was not consumed')

  const bodyToken = (await bodyLogin(app, { 'refresh-token-transport': 'body' })).json().refresh_token
  t.equal((await bodyRefresh(app, bodyToken, { 'sec-fetch-site': 'cross-site' })).statusCode, 403)
  t.equal((await bodyRefresh(app, bodyToken)).statusCode, 200, 'not consumed either')
})

t.test('refreshTokenTransport is validated', async t => {
  await t.rejects(buildApp(t, { refreshTokenTransport: 'header' as 'body' }), {
    code: 'FST_REFRESH_AUTH_INVALID_OPTION',
    message: /refreshTokenTransport must be 'cookie', 'body' or 'both'/
  })
})
