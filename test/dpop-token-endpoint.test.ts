import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { COOKIE, SECRET, USER, buildApp, refreshCookie, setCookies, verifyCredentials } from './helpers/app.js'
import { htu, makeProof, proofKey, type ProofKeyPair } from './helpers/dpop.js'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../lib/index.js'

// Issue 23: login, refresh and logout with DPoP (RFC 9449 §5). A valid proof binds the session to its key for its
// whole life; a bound session's refresh or logout without a proof of that key is a 401 that consumes nothing and
// ends nothing (SECURITY 34-35); an invalid proof is a 400 `invalid_dpop_proof` in the OAuth body.

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
const proofAt = (key: ProofKeyPair, path: string, extra: Partial<Parameters<typeof makeProof>[1]> = {}) => makeProof(key, { htu: htu(path), ...extra })

function loginWith (app: FastifyInstance, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers })
}
function refreshWith (app: FastifyInstance, refreshToken: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/refresh', headers: { ...headers, cookie: `${COOKIE}=${refreshToken}` } })
}
function logoutWith (app: FastifyInstance, refreshToken: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/logout', headers: { ...headers, cookie: `${COOKIE}=${refreshToken}` } })
}

/** The §5 answer to an invalid proof: 400, the OAuth error in `error`, the plugin's code beside it. */
function assertBadProof (t: Test, response: LightMyRequestResponse, message: string, status = 400): void {
  t.equal(response.statusCode, status, message)
  t.match(response.json(), { error: 'invalid_dpop_proof', code: 'FST_REFRESH_AUTH_INVALID_DPOP_PROOF', statusCode: status }, `${message}: the body`)
  t.equal(response.headers['cache-control'], 'no-store', `${message}: not cached`)
}

async function boundLogin (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}) {
  const app = await buildApp(t, { dpop: true, ...options })
  const key = proofKey()
  const response = await loginWith(app, { dpop: proofAt(key, '/auth/login') })
  t.equal(response.statusCode, 200, 'bound login')
  return { app, key, response, refreshToken: refreshCookie(response) as string, accessToken: response.json().access_token as string }
}

t.test('RFC 9449 §5, §6.1: a login with a valid proof is bound: token_type DPoP, cnf.jkt in the access token, the session keeps the key', async t => {
  const { app, key, response, refreshToken, accessToken } = await boundLogin(t)
  t.equal(response.json().token_type, 'DPoP')
  t.same(payloadOf(accessToken).cnf, { jkt: key.jkt }, 'the RFC 7638 thumbprint of the proof key')
  const refreshed = await refreshWith(app, refreshToken, { dpop: proofAt(key, '/auth/refresh') })
  t.equal(refreshed.statusCode, 200)
  t.equal(refreshed.json().token_type, 'DPoP')
  t.same(payloadOf(refreshed.json().access_token).cnf, { jkt: key.jkt }, 'still bound after a rotation')
  const next = refreshCookie(refreshed) as string
  const again = await refreshWith(app, next, { dpop: proofAt(key, '/auth/refresh') })
  t.equal(again.statusCode, 200, 'and after another')
})

t.test('a login without a proof is Bearer as before, and its refresh needs none', async t => {
  const app = await buildApp(t, { dpop: true })
  const response = await loginWith(app)
  t.equal(response.json().token_type, 'Bearer')
  t.equal(payloadOf(response.json().access_token).cnf, undefined)
  const refreshed = await refreshWith(app, refreshCookie(response) as string)
  t.equal(refreshed.statusCode, 200)
  t.equal(refreshed.json().token_type, 'Bearer')
})

t.test('RFC 9449 §5, SECURITY 34: a bound refresh without a proof, or with another key, is 401 and consumes nothing; the right key still refreshes', async t => {
  const { app, key, refreshToken } = await boundLogin(t, { refreshToken: { reuseInterval: 0 } })
  const noProof = await refreshWith(app, refreshToken)
  assertBadProof(t, noProof, 'no proof', 401)
  t.match(noProof.headers['www-authenticate'], /^DPoP error="invalid_dpop_proof", algs="ES256 RS256 PS256 EdDSA"$/)
  t.same(setCookies(noProof), [], 'the cookie is left as it is')
  assertBadProof(t, await refreshWith(app, refreshToken, { dpop: proofAt(proofKey(), '/auth/refresh') }), 'another key', 401)
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 1, 'the session lives on')
  // reuseInterval 0: had anything rotated, this would be reuse and end the session
  const right = await refreshWith(app, refreshToken, { dpop: proofAt(key, '/auth/refresh') })
  t.equal(right.statusCode, 200, 'the right key refreshes the same token')
})

t.test('SECURITY 34: a bound session cannot be signed out without its key; with it, it can', async t => {
  const { app, key, refreshToken } = await boundLogin(t)
  assertBadProof(t, await logoutWith(app, refreshToken), 'logout without a proof', 401)
  assertBadProof(t, await logoutWith(app, refreshToken, { dpop: proofAt(proofKey(), '/auth/logout') }), 'logout with another key', 401)
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 1, 'not signed out')
  const logout = await logoutWith(app, refreshToken, { dpop: proofAt(key, '/auth/logout') })
  t.equal(logout.statusCode, 204)
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 0)
})

t.test('RFC 9449 §5: an invalid proof at login, refresh or logout is 400 invalid_dpop_proof, and nothing happens', async t => {
  let checked = 0
  const app = await buildApp(t, {
    dpop: true,
    verifyCredentials: async () => { checked++; return { id: 42 } }
  })
  const key = proofKey()
  const now = Math.floor(Date.now() / 1000)
  const invalid: Array<[string, string]> = [
    ['htu of another route', proofAt(key, '/auth/refresh')],
    ['htm GET', proofAt(key, '/auth/login', { htm: 'GET' })],
    ['iat too old', proofAt(key, '/auth/login', { iat: now - 300 })],
    ['typ jwt', proofAt(key, '/auth/login', { header: { typ: 'jwt' } })],
    ['no jwk', proofAt(key, '/auth/login', { header: { jwk: undefined } })],
    ['bad signature', proofAt(key, '/auth/login', { signWith: proofKey().privateKey })],
    ['garbage', 'x.y.z']
  ]
  for (const [name, proof] of invalid) assertBadProof(t, await loginWith(app, { dpop: proof }), `login: ${name}`)
  t.equal(checked, 0, 'no credentials checked for a refused proof')
  const proof = proofAt(key, '/auth/login')
  t.equal((await loginWith(app, { dpop: proof })).statusCode, 200)
  assertBadProof(t, await loginWith(app, { dpop: proof }), 'login: the same proof again (jti replayed)')
  const response = await loginWith(app)
  const refreshToken = refreshCookie(response) as string
  assertBadProof(t, await refreshWith(app, refreshToken, { dpop: proofAt(key, '/auth/login') }), 'refresh: htu of the login')
  assertBadProof(t, await logoutWith(app, refreshToken, { dpop: 'x' }), 'logout: garbage')
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 2, 'no session ended')
})

t.test('dpop.required: logins and refreshes without a proof are 400, Bearer tokens are refused', async t => {
  const app = await buildApp(t, { dpop: { required: true } })
  assertBadProof(t, await loginWith(app), 'login without a proof')
  const key = proofKey()
  const login = await loginWith(app, { dpop: proofAt(key, '/auth/login') })
  t.equal(login.statusCode, 200)
  const refreshToken = refreshCookie(login) as string
  assertBadProof(t, await refreshWith(app, refreshToken), 'refresh without a proof')
  const none = await app.inject({ url: '/private' })
  t.equal(none.headers['www-authenticate'], 'DPoP algs="ES256 RS256 PS256 EdDSA"', 'only DPoP is offered')
  // an unbound token (from an app without `required` sharing the secret) is refused as Bearer
  const lax = await buildApp(t, { dpop: true })
  const bearer = (await loginWith(lax)).json().access_token
  const refused = await app.inject({ url: '/private', headers: { authorization: `Bearer ${bearer}` } })
  t.equal(refused.statusCode, 401)
  t.equal(refused.headers['www-authenticate'], 'DPoP error="invalid_token", algs="ES256 RS256 PS256 EdDSA"')
})

t.test('dpop.algorithms narrows what is accepted; the challenges name only those', async t => {
  const app = await buildApp(t, { dpop: { algorithms: ['EdDSA'] } })
  assertBadProof(t, await loginWith(app, { dpop: proofAt(proofKey('ES256'), '/auth/login') }), 'ES256 refused')
  const key = proofKey('EdDSA')
  const login = await loginWith(app, { dpop: proofAt(key, '/auth/login') })
  t.equal(login.statusCode, 200)
  const response = await app.inject({ url: '/private', headers: { authorization: `DPoP ${login.json().access_token}` } })
  t.equal(response.headers['www-authenticate'], 'DPoP error="invalid_dpop_proof", algs="EdDSA"')
})

t.test('dpop.origin: htu names the public origin behind a proxy; without it, the forwarded one with trustProxy', async t => {
  const app = await buildApp(t, { dpop: { origin: 'https://API.example.com' } })
  const key = proofKey()
  assertBadProof(t, await loginWith(app, { dpop: proofAt(key, '/auth/login') }), 'the internal origin')
  t.equal((await loginWith(app, { dpop: makeProof(key, { htu: 'https://api.example.com/auth/login' }) })).statusCode, 200, 'the public one')

  const proxied = Fastify({ trustProxy: true })
  await proxied.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, dpop: true })
  t.teardown(() => proxied.close())
  const forwarded = await proxied.inject({
    method: 'POST',
    url: '/auth/login',
    payload: USER,
    headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.com', dpop: makeProof(key, { htu: 'https://app.example.com/auth/login' }) }
  })
  t.equal(forwarded.statusCode, 200, 'trustProxy: the forwarded protocol and host')
})

t.test('an unbound session refreshed with a proof is bound from then on', async t => {
  const app = await buildApp(t, { dpop: true })
  const refreshToken = refreshCookie(await loginWith(app)) as string
  const key = proofKey()
  const bound = await refreshWith(app, refreshToken, { dpop: proofAt(key, '/auth/refresh') })
  t.equal(bound.json().token_type, 'DPoP')
  const next = refreshCookie(bound) as string
  assertBadProof(t, await refreshWith(app, next), 'its next refresh needs the key', 401)
  t.equal((await refreshWith(app, next, { dpop: proofAt(key, '/auth/refresh') })).statusCode, 200)
})

t.test('the body transport: token_type DPoP, and the refresh token needs the key there too', async t => {
  const app = await buildApp(t, { dpop: true, refreshTokenTransport: 'body' })
  const key = proofKey()
  const login = await loginWith(app, { dpop: proofAt(key, '/auth/login') })
  t.equal(login.json().token_type, 'DPoP')
  const body = { refresh_token: login.json().refresh_token }
  const without = await app.inject({ method: 'POST', url: '/auth/refresh', payload: body })
  assertBadProof(t, without, 'no proof', 401)
  const withKey = await app.inject({ method: 'POST', url: '/auth/refresh', payload: body, headers: { dpop: proofAt(key, '/auth/refresh') } })
  t.equal(withKey.statusCode, 200)
  t.equal(withKey.json().token_type, 'DPoP')
})

t.test('a login that would replace a bound session replaces it only with the same key', async t => {
  const { app, key, refreshToken } = await boundLogin(t)
  const other = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { cookie: `${COOKIE}=${refreshToken}`, dpop: proofAt(proofKey(), '/auth/login') } })
  t.equal(other.statusCode, 200)
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 2, 'another key: a session more, the bound one kept')
  const same = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { cookie: `${COOKIE}=${refreshToken}`, dpop: proofAt(key, '/auth/login') } })
  t.equal(same.statusCode, 200)
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 2, 'its own key: the bound session replaced')
})

t.test('a bound session on an app that turned dpop off still needs its key: 401, nothing consumed', async t => {
  const { refreshToken } = await boundLogin(t)
  const off = await buildApp(t)
  const response = await refreshWith(off, refreshToken)
  assertBadProof(t, response, 'no DPoP on this app', 401)
  t.equal(response.headers['www-authenticate'], 'DPoP error="invalid_dpop_proof"')
})

t.test('dpop options are checked at registration', async t => {
  const cases: Array<[unknown, RegExp]> = [
    ['yes', /dpop must be a boolean or an object/],
    [{ required: 'yes' }, /dpop.required must be a boolean/],
    [{ nonce: 1 }, /dpop.nonce must be a boolean/],
    [{ proofMaxAge: 1 }, /dpop.proofMaxAge must be at least 2 seconds/],
    [{ proofMaxAge: 'soon' }, /dpop.proofMaxAge must be a positive number/],
    [{ algorithms: [] }, /dpop.algorithms must be a non-empty array/],
    [{ algorithms: ['HS256'] }, /dpop.algorithms must be a non-empty array/],
    [{ algorithms: 'ES256' }, /dpop.algorithms must be a non-empty array/],
    [{ origin: 'https://api.example.com/path' }, /dpop.origin must be an origin/],
    [{ origin: 42 }, /dpop.origin must be an origin/]
  ]
  for (const [dpop, message] of cases) {
    await t.rejects(buildApp(t, { dpop } as Partial<FastifyRefreshAuthOptions>), { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message }, JSON.stringify(dpop))
  }
  const app = await buildApp(t, { dpop: false })
  t.equal((await loginWith(app, { dpop: 'x' })).statusCode, 200, 'dpop: false ignores the header')
})

t.test("messages: the host's wording reaches the OAuth answers of the auth routes and the challenges of protected routes", async t => {
  const app = await buildApp(t, { dpop: true, messages: { FST_REFRESH_AUTH_INVALID_DPOP_PROOF: 'Sign the request again' } })
  const login = await loginWith(app, { dpop: 'x.y.z' })
  t.match(login.json(), { error: 'invalid_dpop_proof', error_description: 'Sign the request again', message: 'Sign the request again' })
  const key = proofKey()
  const token = (await loginWith(app, { dpop: proofAt(key, '/auth/login') })).json().access_token
  const protectedRoute = await app.inject({ url: '/private', headers: { authorization: `DPoP ${token}` } })
  t.match(protectedRoute.json(), { code: 'FST_REFRESH_AUTH_INVALID_DPOP_PROOF', message: 'Sign the request again' })
})
