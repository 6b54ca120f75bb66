import t, { type Test } from 'tap'
import { COOKIE, USER, buildApp, refresh, refreshCookie, setCookies } from './helpers/app.js'

// Issue 20, finding 6: with refreshTokenTransport 'both', a session keeps the channel it was issued for.
// A body token sent as the cookie (where the refresh would set a persistent cookie that rememberMe never
// agreed to) and a cookie token sent in the body are both refused with a coded 401, and the session lives on.

const REFUSED = { statusCode: 401, code: 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN' }

async function bothApp (t: Test) {
  const asked: string[] = []
  const app = await buildApp(t, {
    refreshTokenTransport: 'both',
    // strict rotation: a refused request that had rotated anything would make the next refresh reuse
    refreshToken: { reuseInterval: 0 },
    rememberMe: () => { asked.push('rememberMe'); return false }
  })
  return { app, asked }
}

const bodyRefresh = (app: Awaited<ReturnType<typeof bothApp>>['app'], token: string) =>
  app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })

t.test('a token issued for the body is refused as the cookie, and its session goes on in the body', async t => {
  const { app, asked } = await bothApp(t)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { 'refresh-token-transport': 'body' } })
  const bodyToken = login.json().refresh_token as string
  t.same(asked, [], 'rememberMe is not asked on the body transport')

  const asCookie = await refresh(app, bodyToken)
  t.match(asCookie.json(), REFUSED)
  t.notOk(setCookies(asCookie).some(cookie => cookie.value !== '' || (cookie.attributes['max-age'] ?? '0') !== '0'),
    'no cookie issued, let alone a persistent one')
  const asCookieLogout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: `${COOKIE}=${bodyToken}` } })
  t.equal(asCookieLogout.statusCode, 204, 'a logout with it ends nothing')
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 1, 'the session is not ended')

  const again = await bodyRefresh(app, bodyToken)
  t.equal(again.statusCode, 200, 'the same token still refreshes in the body')
  t.type(again.json().refresh_token, 'string')
  t.equal(again.headers['set-cookie'], undefined)
})

t.test("a cookie's token is refused in the body, and its session goes on with the cookie", async t => {
  const { app, asked } = await bothApp(t)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  const cookieToken = refreshCookie(login) as string
  t.same(asked, ['rememberMe'])

  const inBody = await bodyRefresh(app, cookieToken)
  t.match(inBody.json(), REFUSED)
  t.notOk('refresh_token' in inBody.json(), 'no token in the body')
  const inBodyLogout = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: cookieToken, all: true } })
  t.equal(inBodyLogout.statusCode, 204, 'a logout with it ends nothing')
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 1, 'the session is not ended')

  const again = await refresh(app, cookieToken)
  t.equal(again.statusCode, 200, 'the same token still refreshes as the cookie')
  const cookie = setCookies(again).find(c => c.name === COOKIE)
  t.equal(cookie?.attributes['max-age'], undefined, 'still the browser-session cookie rememberMe chose')
})

t.test('signing in again replaces the session only with a token on its own channel', async t => {
  const { app } = await bothApp(t)
  const first = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { 'refresh-token-transport': 'body' } })
  const bodyToken = first.json().refresh_token as string
  // the body session's token as a cookie at a cookie login: not this device's cookie session, so nothing replaced
  await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { cookie: `${COOKIE}=${bodyToken}` } })
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 2)
  t.equal((await bodyRefresh(app, bodyToken)).statusCode, 200, 'the body session lives on')
})
