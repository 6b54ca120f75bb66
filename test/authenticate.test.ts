import { createHmac, generateKeyPairSync } from 'node:crypto'
import Fastify from 'fastify'
import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { InvalidTokenError, MissingTokenError } from '../lib/index.js'
import { buildApp, derivedKey, getPrivate, login, SECRET, verifyCredentials } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'

const NO_TOKEN_CHALLENGE = 'Bearer realm="fastify-refresh-auth"'
const INVALID_CHALLENGE = 'Bearer realm="fastify-refresh-auth", error="invalid_token"'
const accessKey = derivedKey('access-token HS256 v1')

function now () { return Math.floor(Date.now() / 1000) }

function claims (overrides: Record<string, unknown> = {}) {
  return { iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', sub: '42', sid: 'session', jti: 'token', iat: now(), exp: now() + 600, ...overrides }
}

/** Signs with the plugin's real access key, so only the property under test is wrong. */
function forge (payload: object, header: Record<string, unknown> = {}, key: jwt.Secret = accessKey, algorithm: jwt.Algorithm = 'HS256') {
  return jwt.sign(payload, key, { algorithm, header: { alg: algorithm, typ: 'at+jwt', ...header } })
}

function b64 (value: unknown) { return Buffer.from(JSON.stringify(value)).toString('base64url') }

/** HS256 by hand, for payloads jsonwebtoken refuses to sign. */
function signRaw (payload: unknown) {
  const input = `${b64({ alg: 'HS256', typ: 'at+jwt' })}.${b64(payload)}`
  return `${input}.${createHmac('sha256', accessKey).update(input).digest('base64url')}`
}

async function assertInvalid (t: Test, app: Awaited<ReturnType<typeof buildApp>>, authorization: string, what: string) {
  for (const url of ['/private', '/me']) {
    const response = await app.inject({ url, headers: { authorization } })
    t.equal(response.statusCode, 401, `${what} (${url}): 401`)
    t.equal(response.headers['www-authenticate'], INVALID_CHALLENGE, `${what}: invalid_token challenge`)
    t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
    t.notMatch(response.body, /eyJ|stack/, 'no token or stack in the body')
  }
}

t.test('a valid access token passes and fills request.user', async t => {
  const app = await buildApp(t)
  const { accessToken } = await login(app)
  for (const url of ['/private', '/me']) {
    const response = await getPrivate(app, accessToken, url)
    t.equal(response.statusCode, 200)
    const user = response.json().user
    t.equal(user.sub, '42')
    t.type(user.sid, 'string')
    t.type(user.jti, 'string')
  }
})

t.test('no credentials: 401 with a bare challenge (RFC 6750 §3.1)', async t => {
  const app = await buildApp(t)
  for (const headers of [{}, { authorization: 'Basic YWxpY2U6cHc=' }, { authorization: 'Bearer' }, { authorization: 'Bearer ' }, { authorization: 'Bearer    ' }, { authorization: '' }, { authorization: 'Bearertoken' }]) {
    for (const url of ['/private', '/me']) {
      const response = await app.inject({ url, headers })
      t.equal(response.statusCode, 401, `${JSON.stringify(headers)} ${url}`)
      t.equal(response.headers['www-authenticate'], NO_TOKEN_CHALLENGE)
      t.same(response.json(), { statusCode: 401, code: 'FST_REFRESH_AUTH_NO_TOKEN', error: 'Unauthorized', message: 'Authorization header with a Bearer token is required' })
    }
  }
})

t.test('the scheme is case-insensitive and may be followed by several spaces', async t => {
  const app = await buildApp(t)
  const { accessToken } = await login(app)
  for (const authorization of [`bearer ${accessToken}`, `BEARER ${accessToken}`, `Bearer   ${accessToken}`]) {
    t.equal((await app.inject({ url: '/private', headers: { authorization } })).statusCode, 200, authorization.slice(0, 10))
  }
})

t.test('attacks on the access token are refused with invalid_token', async t => {
  const app = await buildApp(t)
  const { accessToken, refreshToken } = await login(app)
  const [header, payload, signature] = accessToken.split('.')
  const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString())
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' })

  const attacks: Array<[string, string]> = [
    ['garbage', 'not-a-jwt'],
    ['two segments', `${header}.${payload}`],
    ['bad characters', `${header}.${payload}.${signature}$`],
    ['alg none, no signature', `${b64({ alg: 'none', typ: 'at+jwt' })}.${payload}.`],
    ['alg None, no signature', `${b64({ alg: 'None', typ: 'at+jwt' })}.${payload}.`],
    ['alg none keeping the signature', `${b64({ alg: 'none', typ: 'at+jwt' })}.${payload}.${signature}`],
    ['alg switched to HS512 with the right key', forge(claims(), {}, accessKey, 'HS512')],
    ['alg switched to RS256', forge(claims(), {}, privateKey, 'RS256')],
    ['the public key used as an HMAC secret', jwt.sign(claims(), publicPem, { algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } })],
    ['a tampered payload', `${header}.${b64({ ...decoded, sub: '1' })}.${signature}`],
    ['a tampered header', `${b64({ alg: 'HS256', typ: 'at+jwt', kid: 'x' })}.${payload}.${signature}`],
    ['a foreign key', forge(claims(), {}, derivedKey('access-token HS256 v1', 'some-other-secret-of-at-least-32-bytes'))],
    ['the raw secret as key', forge(claims(), {}, SECRET)],
    ['a refresh token used as access token', refreshToken],
    ['a refresh-typed token signed with the access key', forge(claims(), { typ: 'rt+jwt' })],
    ['an untyped token', forge(claims(), { typ: 'JWT' })],
    ['no typ header', jwt.sign(claims(), accessKey, { algorithm: 'HS256' })],
    ['an access token signed with the refresh key', forge(claims(), {}, derivedKey('refresh-token HS256 v1'))],
    // beyond the default 5 s clock tolerance
    ['expired', forge(claims({ iat: now() - 700, exp: now() - 6 }))],
    ['no exp', signRaw(claims({ exp: undefined }))],
    ['exp as a string', signRaw({ ...claims(), exp: String(now() + 600) })],
    ['a null payload', signRaw(null)],
    ['no jti', signRaw(claims({ jti: undefined }))],
    ['empty jti', forge(claims({ jti: '' }))],
    ['no sub', signRaw(claims({ sub: undefined }))],
    ['a numeric sub', forge(claims({ sub: 42 }))],
    ['no sid', signRaw(claims({ sid: undefined }))],
    ['no iat', signRaw(claims({ iat: undefined }))],
    ['iat in the future', forge(claims({ iat: now() + 120, exp: now() + 700 }))],
    ['nbf in the future', forge(claims({ nbf: now() + 60 }))],
    ['another issuer', forge(claims({ iss: 'https://evil.example' }))],
    ['no issuer', signRaw(claims({ iss: undefined }))],
    ['another audience', forge(claims({ aud: 'other-api' }))],
    ['a string payload', `${header}.${Buffer.from('"hello"').toString('base64url')}.${signature}`],
    ['a token of 9,000 characters', `${header}.${'a'.repeat(9000)}.${signature}`]
  ]
  for (const [what, token] of attacks) {
    await assertInvalid(t, app, `Bearer ${token}`, what)
  }
  // the forging helper itself makes tokens the plugin accepts, so each refusal above is about its one flaw
  t.equal((await getPrivate(app, forge(claims()))).statusCode, 200, 'control: a correctly forged token passes')
})

t.test('an expired token is refused; clockTolerance allows a configured skew', async t => {
  const clock = fakeClock(t)
  const strict = await buildApp(t, { clockTolerance: 0 })
  const tolerant = await buildApp(t, { clockTolerance: 30 })
  const strictToken = (await login(strict)).accessToken
  const tolerantToken = (await login(tolerant)).accessToken
  clock.advance(900 + 5)
  t.equal((await getPrivate(strict, strictToken)).statusCode, 401, 'expired 5 s ago, no tolerance')
  t.equal((await getPrivate(tolerant, tolerantToken)).statusCode, 200, 'expired 5 s ago, 30 s tolerance')
  clock.advance(60)
  t.equal((await getPrivate(tolerant, tolerantToken)).statusCode, 401, 'past the tolerance')
})

t.test('tokens of another issuer/audience configuration are refused', async t => {
  const issuerA = await buildApp(t, { issuer: 'a', audience: 'api' })
  const issuerB = await buildApp(t, { issuer: 'b', audience: 'api' })
  const audienceB = await buildApp(t, { issuer: 'a', audience: 'other' })
  const { accessToken } = await login(issuerA)
  t.equal((await getPrivate(issuerA, accessToken)).statusCode, 200)
  t.equal((await getPrivate(issuerB, accessToken)).statusCode, 401)
  t.equal((await getPrivate(audienceB, accessToken)).statusCode, 401)
})

t.test('the realm is configurable', async t => {
  const app = await buildApp(t, { realm: 'example' })
  t.equal((await app.inject({ url: '/private' })).headers['www-authenticate'], 'Bearer realm="example"')
  t.equal((await app.inject({ url: '/private', headers: { authorization: 'Bearer x.y.z' } })).headers['www-authenticate'], 'Bearer realm="example", error="invalid_token"')
})

t.test('app.authenticate works as onRequest and awaited in a handler', async t => {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  app.get('/on-request', { onRequest: app.authenticate }, async (request) => ({ sub: request.user?.sub }))
  app.get('/awaited', async (request, reply) => {
    await app.authenticate(request, reply)
    return { sub: request.user?.sub }
  })
  app.get('/open', async (request) => ({ user: request.user }))
  t.teardown(() => app.close())
  const { accessToken } = await login(app)
  for (const url of ['/on-request', '/awaited']) {
    const ok = await getPrivate(app, accessToken, url)
    t.equal(ok.statusCode, 200, url)
    t.same(ok.json(), { sub: '42' })
    const missing = await app.inject({ url })
    t.equal(missing.statusCode, 401, `${url} without a token`)
    t.equal(missing.headers['www-authenticate'], NO_TOKEN_CHALLENGE)
    const bad = await app.inject({ url, headers: { authorization: 'Bearer a.b.c' } })
    t.equal(bad.headers['www-authenticate'], INVALID_CHALLENGE)
  }
  t.same((await getPrivate(app, accessToken, '/open')).json(), { user: null }, 'request.user stays null where nothing authenticated')
})

t.test('request.authenticate() rejects with the exported error classes', async t => {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  const seen: unknown[] = []
  app.get('/check', async (request) => {
    try {
      await request.authenticate()
      return { ok: true }
    } catch (err) {
      seen.push(err)
      return { ok: false }
    }
  })
  t.teardown(() => app.close())
  await app.inject({ url: '/check' })
  await app.inject({ url: '/check', headers: { authorization: 'Bearer a.b.c' } })
  t.ok(seen[0] instanceof MissingTokenError)
  t.ok(seen[1] instanceof InvalidTokenError)
  t.equal((seen[1] as InvalidTokenError).statusCode, 401)
})

t.test('a mutated request.user does not leak into the next request', async t => {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  app.get('/mutate', { preHandler: app.authenticate }, async (request) => {
    const before = request.user?.sub
    Object.assign(request.user as object, { sub: 'admin' })
    return { before }
  })
  t.teardown(() => app.close())
  const { accessToken } = await login(app)
  t.same((await getPrivate(app, accessToken, '/mutate')).json(), { before: '42' })
  t.same((await getPrivate(app, accessToken, '/mutate')).json(), { before: '42' })
})

t.test('behind app.authenticate, request.authenticate() hands back the verified user without verifying again', async t => {
  const app = await buildApp(t, { accessToken: { cacheSize: 0 } }, app => {
    app.get('/twice', { preHandler: app.authenticate }, async (request) => {
      const verified = request.user
      const user = await request.authenticate()
      // each verification makes a new object: the same one means nothing was verified again
      return { same: user === verified, sub: user.sub }
    })
  })
  const { accessToken } = await login(app)
  const response = await getPrivate(app, accessToken, '/twice')
  t.equal(response.statusCode, 200)
  t.same(response.json(), { same: true, sub: '42' })
  // without the hook it verifies, and refuses a request without a token
  t.equal((await app.inject({ url: '/me' })).statusCode, 401)
  t.equal((await getPrivate(app, `${accessToken}x`, '/me')).statusCode, 401)
})
