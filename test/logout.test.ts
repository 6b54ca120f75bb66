import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
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
