import t from 'tap'
import jwt from 'jsonwebtoken'
import { buildApp, COOKIE, derivedKey, getPrivate, login, refresh, refreshCookie, setCookies, USER } from './helpers/app.js'

t.test('a valid login answers RFC 6749 tokens and sets the refresh cookie', async t => {
  const app = await buildApp(t)
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  t.equal(response.headers.pragma, 'no-cache')
  const body = response.json()
  t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'token_type'])
  t.equal(body.token_type, 'Bearer')
  t.equal(body.expires_in, 900, 'default access lifetime: 15 minutes')

  const [cookie] = setCookies(response)
  t.equal(cookie.name, COOKIE)
  t.equal(cookie.attributes.httponly, true)
  t.equal(cookie.attributes.secure, true)
  t.equal(cookie.attributes.samesite, 'Strict')
  t.equal(cookie.attributes.path, '/auth')
  t.equal(cookie.attributes['max-age'], String(7 * 24 * 3600), 'default refresh lifetime: 7 days')
  t.notOk('domain' in cookie.attributes, 'no Domain attribute')

  // the cookie holds the refresh JWT itself, typed apart from access tokens
  const refreshToken = jwt.decode(cookie.value, { complete: true })
  t.equal(refreshToken?.header.typ, 'rt+jwt')
  t.equal(refreshToken?.header.alg, 'HS256')
  const accessToken = jwt.decode(body.access_token, { complete: true })
  t.equal(accessToken?.header.typ, 'at+jwt')
  const claims = accessToken?.payload as jwt.JwtPayload
  t.equal(claims.sub, '42', 'sub is String(user.id)')
  t.equal(claims.iss, 'fastify-refresh-auth')
  t.equal(claims.aud, 'fastify-refresh-auth')
  t.equal((claims.exp as number) - (claims.iat as number), 900)
  t.type(claims.jti, 'string')
  t.type(claims.sid, 'string')
  t.notOk('email' in claims, 'no other user field is copied')

  const privateResponse = await getPrivate(app, body.access_token)
  t.equal(privateResponse.statusCode, 200)
  t.equal(privateResponse.json().user.sub, '42')
})

t.test('unknown user and wrong password get the same answer', async t => {
  const app = await buildApp(t)
  const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'mallory', password: USER.password } })
  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: USER.username, password: 'guess' } })
  for (const response of [unknown, wrong]) {
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_CREDENTIALS')
    t.equal(response.headers['set-cookie'], undefined, 'no cookie')
    t.equal(response.headers['cache-control'], 'no-store')
  }
  t.equal(unknown.body, wrong.body)
  const { date: _d1, ...unknownHeaders } = unknown.headers
  const { date: _d2, ...wrongHeaders } = wrong.headers
  t.same(unknownHeaders, wrongHeaders)
})

t.test('verifyCredentials answering undefined is a refusal too', async t => {
  const app = await buildApp(t, { verifyCredentials: async () => undefined })
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: {} })
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_CREDENTIALS')
})

t.test('verifyCredentials may answer synchronously', async t => {
  const app = await buildApp(t, { verifyCredentials: () => ({ id: 'u-1' }) })
  const response = await app.inject({ method: 'POST', url: '/auth/login' })
  t.equal(response.statusCode, 200)
  t.equal((jwt.decode(response.json().access_token) as jwt.JwtPayload).sub, 'u-1')
})

t.test('an error thrown by verifyCredentials keeps its status', async t => {
  const app = await buildApp(t, {
    verifyCredentials: async () => { throw Object.assign(new Error('username is required'), { statusCode: 400 }) }
  })
  const response = await app.inject({ method: 'POST', url: '/auth/login' })
  t.equal(response.statusCode, 400)
  t.equal(response.headers['set-cookie'], undefined)
})

t.test('a user without an id is a host error, not a token for nobody', async t => {
  const app = await buildApp(t, { verifyCredentials: async () => ({ name: 'no id' }) })
  const response = await app.inject({ method: 'POST', url: '/auth/login' })
  t.equal(response.statusCode, 500)
  t.equal(response.headers['set-cookie'], undefined)
  t.notMatch(response.body, /eyJ/, 'no token in the body')
})

t.test('an id of null is no id either', async t => {
  const app = await buildApp(t, { verifyCredentials: async () => ({ id: null }) as never })
  t.equal((await app.inject({ method: 'POST', url: '/auth/login' })).statusCode, 500)
})

t.test('a subject is a non-empty string or a finite number, made a string', async t => {
  const numeric = await buildApp(t, { subject: () => 7 })
  t.equal((jwt.decode((await login(numeric)).accessToken) as jwt.JwtPayload).sub, '7')
  for (const id of [NaN, Infinity, '', {}, ['1'], true]) {
    const app = await buildApp(t, { verifyCredentials: async () => ({ id }) as never })
    const response = await app.inject({ method: 'POST', url: '/auth/login' })
    t.equal(response.statusCode, 500, `id ${JSON.stringify(id)} is refused`)
    t.equal(response.headers['set-cookie'], undefined)
  }
})

t.test('subject maps the user to sub', async t => {
  const app = await buildApp(t, {
    verifyCredentials: async () => ({ id: 1, uuid: 'f3a9' }) as never,
    subject: (user) => (user as { uuid: string }).uuid
  })
  const { accessToken } = await login(app)
  t.equal((jwt.decode(accessToken) as jwt.JwtPayload).sub, 'f3a9')
})

t.test('host claims are added but never override the reserved ones', async t => {
  const app = await buildApp(t, {
    claims: async (user) => ({
      roles: ['admin'],
      tenant: `t-${String((user as { id: number }).id)}`,
      sub: 'root',
      iss: 'evil',
      aud: 'elsewhere',
      exp: 9999999999,
      iat: 0,
      nbf: 9999999999,
      jti: 'fixed',
      typ: 'rt+jwt',
      sid: 'other-session'
    })
  })
  const { accessToken, refreshToken } = await login(app)
  const claims = jwt.decode(accessToken) as jwt.JwtPayload
  t.same(claims.roles, ['admin'])
  t.equal(claims.tenant, 't-42')
  t.equal(claims.sub, '42')
  t.equal(claims.iss, 'fastify-refresh-auth')
  t.equal(claims.aud, 'fastify-refresh-auth')
  t.not(claims.jti, 'fixed')
  t.not(claims.sid, 'other-session')
  t.not(claims.exp, 9999999999)
  t.notOk('nbf' in claims)
  t.notOk('typ' in claims)
  t.equal((await getPrivate(app, accessToken)).statusCode, 200)

  // the claims survive a refresh without calling the hook again
  const refreshed = await refresh(app, refreshToken)
  t.equal(refreshed.statusCode, 200)
  const after = jwt.decode(refreshed.json().access_token) as jwt.JwtPayload
  t.same(after.roles, ['admin'])
  t.equal(after.tenant, 't-42')
  const response = await getPrivate(app, refreshed.json().access_token)
  t.same(response.json().user.roles, ['admin'])
})

t.test('lifetimes and issuer come from the options', async t => {
  const app = await buildApp(t, {
    accessToken: { expiresIn: '5m' },
    refreshToken: { expiresIn: '1h', absoluteExpiresIn: '1d' },
    issuer: 'https://id.example',
    audience: 'api.example'
  })
  const { response, accessToken } = await login(app)
  t.equal(response.json().expires_in, 300)
  t.equal(setCookies(response)[0].attributes['max-age'], '3600')
  const claims = jwt.decode(accessToken) as jwt.JwtPayload
  t.equal(claims.iss, 'https://id.example')
  t.equal(claims.aud, 'api.example')
  t.equal((await getPrivate(app, accessToken)).statusCode, 200)
})

t.test('the cookie Max-Age never outlives the absolute limit', async t => {
  const app = await buildApp(t, { accessToken: { expiresIn: 60 }, refreshToken: { expiresIn: '1h', absoluteExpiresIn: '1h' } })
  const { response, refreshToken } = await login(app)
  t.equal(setCookies(response)[0].attributes['max-age'], '3600')
  const claims = jwt.verify(refreshToken, derivedKey('refresh-token HS256 v1')) as jwt.JwtPayload
  t.equal((claims.exp as number) - (claims.iat as number), 3600)
})

t.test('cookie name, path and attributes are configurable', async t => {
  const app = await buildApp(t, { cookie: { name: 'rt', path: '/', secure: false, sameSite: 'lax' } })
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  const [cookie] = setCookies(response)
  t.equal(cookie.name, 'rt')
  t.equal(cookie.attributes.path, '/')
  t.notOk('secure' in cookie.attributes)
  t.equal(cookie.attributes.samesite, 'Lax')
  t.equal(cookie.attributes.httponly, true, 'HttpOnly is not negotiable')
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `rt=${refreshCookie(response, 'rt') as string}` } })
  t.equal(refreshed.statusCode, 200)
})

t.test('cross-site login requests are refused before the credentials are checked', async t => {
  let calls = 0
  const app = await buildApp(t, { verifyCredentials: async () => { calls++; return { id: 1 } } })
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { 'sec-fetch-site': 'cross-site' } })
  t.equal(response.statusCode, 403)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_CROSS_SITE')
  t.equal(response.headers['set-cookie'], undefined)
  t.equal(calls, 0)
  for (const site of ['same-origin', 'same-site', 'none']) {
    const allowed = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { 'sec-fetch-site': site } })
    t.equal(allowed.statusCode, 200, `Sec-Fetch-Site: ${site} passes`)
  }
})

t.test('only POST reaches the auth routes', async t => {
  const app = await buildApp(t)
  for (const url of ['/auth/login', '/auth/refresh', '/auth/logout']) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 404, `GET ${url}`)
  }
})

t.test('a lifetime given as a bare numeric string means seconds', async t => {
  const app = await buildApp(t, { accessToken: { expiresIn: '600' } })
  t.equal((await login(app)).response.json().expires_in, 600)
})
