import Fastify from 'fastify'
import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
import fastifyRefreshAuth from '../lib/index.js'
import { buildApp, COOKIE, derivedKey, getPrivate, login, refresh, refreshCookie, SECRET, setCookies, USER, verifyCredentials } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'

const REFUSED = { statusCode: 401, code: 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN', error: 'Unauthorized', message: 'The refresh token is invalid or expired' }

function assertRefused (t: Test, response: Awaited<ReturnType<typeof refresh>>, what: string) {
  t.equal(response.statusCode, 401, `${what}: 401`)
  t.same(response.json(), REFUSED, `${what}: the one refusal body`)
  const cleared = setCookies(response).find(c => c.name === COOKIE)
  t.equal(cleared?.value, '', `${what}: cookie cleared`)
  t.equal(cleared?.attributes['max-age'], '0')
  t.equal(cleared?.attributes.path, '/auth')
  t.equal(response.headers['cache-control'], 'no-store')
}

t.test('refresh rotates the refresh token and answers like login', async t => {
  const app = await buildApp(t)
  const first = await login(app)
  const response = await refresh(app, first.refreshToken)
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  const body = response.json()
  t.equal(body.token_type, 'Bearer')
  t.equal(body.expires_in, 900)
  t.equal((await getPrivate(app, body.access_token)).statusCode, 200)

  const [cookie] = setCookies(response)
  t.equal(cookie.attributes.httponly, true)
  t.equal(cookie.attributes.secure, true)
  t.equal(cookie.attributes.samesite, 'Strict')
  t.equal(cookie.attributes.path, '/auth')
  const next = cookie.value
  t.not(next, first.refreshToken, 'a new refresh token')
  const before = jwt.decode(first.refreshToken) as jwt.JwtPayload
  const after = jwt.decode(next) as jwt.JwtPayload
  t.equal(after.sid, before.sid, 'same session')
  t.not(after.jti, before.jti, 'new token id')
  t.equal((jwt.decode(body.access_token) as jwt.JwtPayload).sid, before.sid)

  // the successor keeps rotating
  const again = await refresh(app, next)
  t.equal(again.statusCode, 200)
})

t.test('replaying a rotated token revokes the whole session (RFC 9700 §4.14.2)', async t => {
  const app = await buildApp(t)
  const { refreshToken: stolen } = await login(app)
  const legit = refreshCookie(await refresh(app, stolen)) as string
  assertRefused(t, await refresh(app, stolen), 'the replayed token')
  assertRefused(t, await refresh(app, legit), 'its successor')
})

t.test('replaying an older ancestor is reuse too', async t => {
  const app = await buildApp(t, { refreshToken: { reuseInterval: 60 } })
  const { refreshToken: t0 } = await login(app)
  const t1 = refreshCookie(await refresh(app, t0)) as string
  const t2 = refreshCookie(await refresh(app, t1)) as string
  assertRefused(t, await refresh(app, t0), 'the grandparent, even within the reuse interval')
  assertRefused(t, await refresh(app, t2), 'the live token after reuse')
})

t.test('concurrent refreshes of one token: exactly one succeeds with reuseInterval 0', async t => {
  const app = await buildApp(t)
  const { refreshToken } = await login(app)
  const responses = await Promise.all(Array.from({ length: 25 }, () => refresh(app, refreshToken)))
  const ok = responses.filter(r => r.statusCode === 200)
  t.equal(ok.length, 1, 'one success')
  t.equal(responses.filter(r => r.statusCode === 401).length, 24, 'the rest refused')
  // the concurrent replays were reuse: the winner's successor is dead too
  t.equal((await refresh(app, refreshCookie(ok[0]))).statusCode, 401)
})

t.test('within reuseInterval the immediate parent may be presented again (tabs refreshing at once)', async t => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { refreshToken: { reuseInterval: 10 } })
  const { refreshToken: parent } = await login(app)
  const tabA = await refresh(app, parent)
  clock.advance(5)
  const tabB = await refresh(app, parent)
  t.equal(tabA.statusCode, 200)
  t.equal(tabB.statusCode, 200, 'the second tab is not treated as reuse')
  const a = jwt.decode(refreshCookie(tabA) as string) as jwt.JwtPayload
  const b = jwt.decode(refreshCookie(tabB) as string) as jwt.JwtPayload
  t.equal(b.jti, a.jti, 'both tabs hold the same live token: one chain, not two')
  t.equal((await getPrivate(app, tabB.json().access_token)).statusCode, 200)

  // one tab rotates on; the other tab's copy is now the parent, still inside the interval
  const tabA2 = await refresh(app, refreshCookie(tabA))
  t.equal(tabA2.statusCode, 200)
  const tabB2 = await refresh(app, refreshCookie(tabB))
  t.equal(tabB2.statusCode, 200)
  t.equal((jwt.decode(refreshCookie(tabB2) as string) as jwt.JwtPayload).jti, (jwt.decode(refreshCookie(tabA2) as string) as jwt.JwtPayload).jti)
})

t.test('after reuseInterval the parent is reuse', async t => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { refreshToken: { reuseInterval: 10 } })
  const { refreshToken: parent } = await login(app)
  const child = refreshCookie(await refresh(app, parent))
  clock.advance(11)
  assertRefused(t, await refresh(app, parent), 'the parent after the interval')
  assertRefused(t, await refresh(app, child), 'the live token')
})

t.test('the refresh token expires after the idle limit', async t => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { accessToken: { expiresIn: 60 }, refreshToken: { expiresIn: '1h' } })
  const { refreshToken } = await login(app)
  clock.advance(3601)
  assertRefused(t, await refresh(app, refreshToken), 'an idle session')
})

t.test('each rotation renews the idle limit, never past the absolute one', async t => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { accessToken: { expiresIn: 60 }, refreshToken: { expiresIn: '1h', absoluteExpiresIn: '2h' } })
  let { refreshToken } = await login(app)
  for (let i = 0; i < 2; i++) {
    clock.advance(50 * 60)
    const response = await refresh(app, refreshToken)
    t.equal(response.statusCode, 200, `refresh after ${(i + 1) * 50} minutes`)
    refreshToken = refreshCookie(response) as string
    const maxAge = Number(setCookies(response)[0].attributes['max-age'])
    t.ok(maxAge <= (120 - (i + 1) * 50) * 60, 'Max-Age capped by the absolute limit')
  }
  clock.advance(21 * 60)
  assertRefused(t, await refresh(app, refreshToken), 'past the absolute limit')
})

t.test('any refusal gets the same body and clears the cookie', async t => {
  const app = await buildApp(t)
  const { accessToken, refreshToken } = await login(app)
  const claims = jwt.decode(refreshToken) as jwt.JwtPayload
  const refreshKey = derivedKey('refresh-token HS256 v1')
  const forge = (payload: object, header: object = { typ: 'rt+jwt' }) => jwt.sign(payload, refreshKey, { algorithm: 'HS256', header: { alg: 'HS256', ...header } })
  const base = { iss: claims.iss, aud: claims.aud, sub: claims.sub, sid: claims.sid, jti: claims.jti, iat: claims.iat, exp: claims.exp }
  const cases: Array<[string, string | undefined]> = [
    ['no cookie', undefined],
    ['an empty cookie', ''],
    ['garbage', 'not-a-token'],
    ['an access token in the refresh cookie', accessToken],
    ['a token signed with another secret', jwt.sign(base, derivedKey('refresh-token HS256 v1', 'another-secret-that-is-long-enough-000000'), { algorithm: 'HS256', header: { alg: 'HS256', typ: 'rt+jwt' } })],
    ['a token signed with the raw secret', jwt.sign(base, SECRET, { algorithm: 'HS256', header: { alg: 'HS256', typ: 'rt+jwt' } })],
    ['an unknown session', forge({ ...base, sid: 'no-such-session' })],
    ['an unsigned token', `${Buffer.from('{"alg":"none","typ":"rt+jwt"}').toString('base64url')}.${Buffer.from(JSON.stringify(base)).toString('base64url')}.`],
    ['a token of 10,000 characters', 'a'.repeat(5000) + '.' + 'b'.repeat(4999)]
  ]
  for (const [what, token] of cases) {
    const response = token === undefined ? await refresh(app, undefined) : await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=${token}` } })
    assertRefused(t, response, what)
  }
  // none of those touched the real session
  t.equal((await refresh(app, refreshToken)).statusCode, 200)
})

t.test('a token naming another user in a real session is refused', async t => {
  const app = await buildApp(t)
  const { refreshToken } = await login(app)
  const claims = jwt.decode(refreshToken) as jwt.JwtPayload
  // only a holder of the refresh key could make this token: defence in depth behind the signature
  const forged = jwt.sign({ ...claims, sub: 'someone-else' }, derivedKey('refresh-token HS256 v1'), { algorithm: 'HS256', header: { alg: 'HS256', typ: 'rt+jwt' } })
  assertRefused(t, await refresh(app, forged), 'a forged sub')
})

t.test('the refresh token is read from the cookie only', async t => {
  const app = await buildApp(t)
  const { refreshToken } = await login(app)
  const viaBody = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
  t.equal(viaBody.statusCode, 401)
  const viaHeader = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { authorization: `Bearer ${refreshToken}` } })
  t.equal(viaHeader.statusCode, 401)
  t.equal((await refresh(app, refreshToken)).statusCode, 200, 'still unused')
})

t.test('a cross-site refresh is refused without consuming the token', async t => {
  const app = await buildApp(t)
  const { refreshToken } = await login(app)
  const response = await refresh(app, refreshToken, { 'sec-fetch-site': 'cross-site' })
  t.equal(response.statusCode, 403)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_CROSS_SITE')
  t.equal(response.headers['set-cookie'], undefined, 'the cookie is left alone')
  // a repeated header arrives joined; it is refused too rather than read as something else
  const joined = await refresh(app, refreshToken, { 'sec-fetch-site': 'cross-site, cross-site' })
  t.equal(joined.statusCode, 403)
  t.equal(joined.json().code, 'FST_REFRESH_AUTH_CROSS_SITE')
  t.equal((await refresh(app, refreshToken, { 'sec-fetch-site': 'same-origin' })).statusCode, 200, 'the token was not consumed')
})

t.test('trustedOrigins refuses other origins without consuming the token', async t => {
  const app = await buildApp(t, { trustedOrigins: ['https://app.example'] })
  const { refreshToken } = await login(app)
  const foreign = await refresh(app, refreshToken, { origin: 'https://evil.example' })
  t.equal(foreign.statusCode, 403)
  t.equal(foreign.json().code, 'FST_REFRESH_AUTH_CROSS_SITE')
  const trusted = await refresh(app, refreshToken, { origin: 'https://app.example' })
  t.equal(trusted.statusCode, 200)
  t.equal((await refresh(app, refreshCookie(trusted), {})).statusCode, 200, 'no Origin header passes')
})

t.test('malformed cookie headers are a 401, never a 500', async t => {
  const app = await buildApp(t)
  for (const cookie of [`${COOKIE}=%E0%A4%A`, `${COOKIE}`, ';;;', `${COOKIE}="unterminated`, `${COOKIE}=a.b.c; other=d.e.f`, '\u00ff=\u00fe', `x=1; ${COOKIE}=; y`]) {
    const response = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie } })
    t.equal(response.statusCode, 401, JSON.stringify(cookie))
  }
})

t.test('works when the host registered @fastify/cookie without its parsing hook', async t => {
  const app = Fastify()
  await app.register(import('@fastify/cookie'), { hook: false })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  t.teardown(() => app.close())
  const loggedIn = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  const response = await refresh(app, refreshCookie(loggedIn))
  t.equal(response.statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh' })).statusCode, 401, 'no cookie header at all')
})
