import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
import { login } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { authServer, ec, header, protectedApp, rsa, type KeyPair } from './helpers/keys.js'
import type { FastifyInstance } from 'fastify'

const signer = ec()
const nextSigner = ec()
const stranger = ec()
const rsaSigner = rsa()
const now = () => Math.floor(Date.now() / 1000)

function sign (pair: KeyPair, kid: string | undefined, headerFields: Record<string, unknown> = {}, payload: Record<string, unknown> = {}, algorithm: jwt.Algorithm = 'ES256') {
  const claims = { iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', sub: '7', sid: 's', jti: 'j', iat: now(), exp: now() + 60, ...payload }
  return jwt.sign(claims, pair.privateKey, { algorithm, header: { alg: algorithm, typ: 'at+jwt', kid, ...headerFields } as jwt.JwtHeader })
}

function jwk (pair: KeyPair, kid: string, alg = 'ES256', extra: Record<string, unknown> = {}) {
  return { ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig', ...extra }
}

interface TestServer { url: string, port: number, hits: number, body: string, status: number, location?: string, close: () => Promise<void>, listen: () => Promise<void>, server: Server }

/** A local HTTP server that counts its hits and answers what the test says (a JWKS, or anything else). */
async function countingServer (t: Test, body: unknown = { keys: [] }, port = 0): Promise<TestServer> {
  const state: TestServer = {
    url: '',
    port,
    hits: 0,
    body: JSON.stringify(body),
    status: 200,
    server: createServer((_request, response) => {
      state.hits++
      if (state.status === 0) return // never answers
      response.writeHead(state.status, { 'content-type': 'application/json', ...(state.location === undefined ? {} : { location: state.location }) })
      response.end(state.body)
    }),
    close: () => new Promise(resolve => {
      state.server.closeAllConnections()
      state.server.close(() => resolve())
    }),
    listen: () => new Promise(resolve => state.server.listen(state.port, '127.0.0.1', () => {
      state.port = (state.server.address() as AddressInfo).port
      state.url = `http://127.0.0.1:${state.port}/.well-known/jwks.json`
      resolve()
    }))
  }
  await state.listen()
  t.teardown(() => state.server.listening ? state.close() : undefined)
  return state
}

/** A resource server on a JWKS URL, with the three ways to authenticate a request. */
async function resourceServer (t: Test, accessToken: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const app = await protectedApp(t, { routes: false, accessToken, ...extra })
  app.get('/awaited', async (request, reply) => {
    await app.authenticate(request, reply)
    return { user: request.user }
  })
  await app.ready()
  return app
}

const get = (app: FastifyInstance, token: string | undefined, url = '/private') =>
  app.inject({ method: 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })

t.test('JWKS route: public keys with kid, alg and use, cache headers, nothing private', async t => {
  const app = await authServer(t, {
    algorithm: 'ES256',
    keys: [{ kid: 'new', privateKey: signer.privateKey }, { kid: 'old', publicKey: nextSigner.publicKey }]
  }, { jwks: true })
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'public, max-age=300')
  t.match(response.headers['content-type'], /^application\/jwk-set\+json/)
  const { keys } = response.json()
  t.same(keys, [jwk(signer, 'new'), jwk(nextSigner, 'old')])
  t.notOk(response.body.includes('"d"'), 'no private component')

  const rsaApp = await protectedApp(t, {
    routes: false, accessToken: { algorithm: 'PS256', keys: [{ kid: 'r', privateKey: rsaSigner.privateKey }] }, jwks: { url: '/keys', maxAge: '1h' }
  })
  const rsaResponse = await rsaApp.inject({ method: 'GET', url: '/keys' })
  t.equal(rsaResponse.statusCode, 200, 'served with routes: false, at its own url')
  t.equal(rsaResponse.headers['cache-control'], 'public, max-age=3600')
  t.same(Object.keys(rsaResponse.json().keys[0]).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use'])
  t.equal(rsaResponse.json().keys[0].alg, 'PS256')
  t.equal((await rsaApp.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode, 404)

  const factoryApp = await protectedApp(t, {
    routes: false, accessToken: { algorithm: 'ES256', keys: [{ kid: 'f', privateKey: signer.privateKey }] }
  })
  factoryApp.route(factoryApp.refreshAuth.jwksRoute({ url: '/custom/jwks' }))
  t.equal((await factoryApp.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode, 404, 'opt-in')
  const custom = await factoryApp.inject({ method: 'GET', url: '/custom/jwks' })
  t.same(custom.json().keys, [jwk(signer, 'f')])
})

t.test('resource server with static public keys accepts the auth server tokens and nothing else', async t => {
  const auth = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'k1', privateKey: signer.privateKey }] })
  const resource = await resourceServer(t, { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey: signer.publicKey }] })
  const { accessToken } = await login(auth)
  for (const url of ['/private', '/me', '/awaited']) {
    const response = await get(resource, accessToken, url)
    t.equal(response.statusCode, 200, url)
    t.equal(response.json().user.sub, '42', url)
  }
  for (const url of ['/private', '/me', '/awaited']) {
    const unknown = await get(resource, sign(stranger, 'k1'), url)
    t.equal(unknown.statusCode, 401, `${url}: a key the resource server does not know, under a known kid`)
    t.equal(unknown.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
  }
  t.equal((await get(resource, sign(stranger, 'k9'))).statusCode, 401, 'unknown kid')
  t.equal((await get(resource, undefined)).statusCode, 401)

  // nothing that can sign: no routes, and the factories refuse
  t.equal((await resource.inject({ method: 'POST', url: '/auth/login', payload: {} })).statusCode, 404)
  for (const factory of ['loginRoute', 'refreshRoute', 'logoutRoute', 'jwksRoute'] as const) {
    t.throws(() => resource.refreshAuth[factory](), { code: 'FST_REFRESH_AUTH_INVALID_OPTION' }, factory)
  }

  // issuer and audience are checked there too
  const otherAudience = await resourceServer(t, { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey: signer.publicKey }] }, { audience: 'billing' })
  t.equal((await get(otherAudience, accessToken)).statusCode, 401)
  const otherIssuer = await resourceServer(t, { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey: signer.publicKey }] }, { issuer: 'https://other' })
  t.equal((await get(otherIssuer, accessToken)).statusCode, 401)
})

t.test('resource server on the auth server JWKS over real HTTP', async t => {
  const auth = await authServer(t, {
    algorithm: 'ES256', keys: [{ kid: 'k1', privateKey: signer.privateKey }]
  }, { jwks: true, issuer: 'https://auth.test', audience: 'api' })
  let jwksHits = 0
  auth.addHook('onRequest', async (request) => { if (request.url === '/.well-known/jwks.json') jwksHits++ })
  await auth.listen({ port: 0, host: '127.0.0.1' })
  const { port } = auth.server.address() as AddressInfo

  const resource = await resourceServer(t, { jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json` }, { issuer: 'https://auth.test', audience: 'api' })
  t.equal(jwksHits, 1, 'loaded once when ready')
  const { accessToken } = await login(auth)
  for (const url of ['/private', '/me', '/awaited']) t.equal((await get(resource, accessToken, url)).statusCode, 200, url)
  t.equal(jwksHits, 1, 'a known kid never goes to the network')
  t.equal((await get(resource, sign(stranger, 'k1', {}, { iss: 'https://auth.test', aud: 'api' }))).statusCode, 401, 'unknown key under a known kid')
  t.equal(jwksHits, 1)
  const wrongAudience = sign(signer, 'k1', {}, { iss: 'https://auth.test', aud: 'fastify-refresh-auth' })
  t.equal((await get(resource, wrongAudience)).statusCode, 401, 'real key, another audience')
})

t.test('key pointers in the header are ignored: no outbound request', async t => {
  const attacker = await countingServer(t, { keys: [jwk(stranger, 'k1')] })
  const jwks = await countingServer(t, { keys: [jwk(signer, 'k1')] })
  const clock = fakeClock(t)
  const resource = await resourceServer(t, { jwksUrl: jwks.url, jwksCooldown: 1 })
  const staticResource = await resourceServer(t, { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey: signer.publicKey }] })
  t.equal(jwks.hits, 1)
  clock.advance(1) // past the cooldown: the unknown kid below may refetch
  const pointers = {
    jku: attacker.url,
    x5u: attacker.url,
    jwk: jwk(stranger, 'k1'),
    x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA']
  }
  for (const app of [resource, staticResource]) {
    t.equal((await get(app, sign(signer, 'k1', pointers))).statusCode, 200, 'the real key and a known kid: pointers ignored')
    t.equal((await get(app, sign(stranger, 'k1', pointers))).statusCode, 401, "the attacker's key, pointed at by every header")
    t.equal((await get(app, sign(stranger, 'k2', pointers))).statusCode, 401, 'unknown kid with pointers')
  }
  t.equal(attacker.hits, 0, 'the pointed-at server was never asked')
  t.equal(jwks.hits, 2, 'only the unknown kid refetched, and from the configured URL')
})

t.test('rotation through the JWKS: an unknown kid refetches, at most once per cooldown', async t => {
  const jwks = await countingServer(t, { keys: [jwk(signer, 'k1')] })
  const clock = fakeClock(t)
  const resource = await resourceServer(t, { jwksUrl: jwks.url, jwksCooldown: 1 })
  const patient = await resourceServer(t, { jwksUrl: jwks.url, jwksCooldown: '1h' })
  t.equal(jwks.hits, 2)
  const newToken = sign(nextSigner, 'k2')
  t.equal((await get(resource, newToken)).statusCode, 401, 'within the cooldown of the first load: no refetch')
  t.equal(jwks.hits, 2)
  clock.advance(1)
  t.equal((await get(resource, newToken)).statusCode, 401, 'not published yet')
  t.equal(jwks.hits, 3, 'refetched for the unknown kid')

  jwks.body = JSON.stringify({ keys: [jwk(nextSigner, 'k2'), jwk(signer, 'k1')] })
  t.equal((await get(resource, newToken)).statusCode, 401, 'published, but within the cooldown of the last refetch')
  t.equal(jwks.hits, 3)
  clock.advance(1)
  const [a, b] = await Promise.all([get(resource, newToken, '/me'), get(resource, newToken, '/awaited')])
  t.equal(a.statusCode, 200, 'published: picked up on the unknown kid')
  t.equal(b.statusCode, 200)
  t.equal(jwks.hits, 4, 'two concurrent requests share one refetch')
  t.equal((await get(resource, sign(signer, 'k1'))).statusCode, 200)
  t.equal((await get(resource, sign(signer, undefined))).statusCode, 401, 'no kid: no refetch')
  t.equal(jwks.hits, 4)

  t.equal((await get(patient, newToken)).statusCode, 401, 'within the cooldown: no refetch')
  t.equal(jwks.hits, 4)

  // retire k1: only its tokens die once the resource server refetches
  jwks.body = JSON.stringify({ keys: [jwk(nextSigner, 'k2')] })
  clock.advance(1)
  t.equal((await get(resource, sign(stranger, 'k3'))).statusCode, 401)
  t.equal(jwks.hits, 5)
  t.equal((await get(resource, sign(signer, 'k1'))).statusCode, 401, 'retired key refused')
  t.equal((await get(resource, newToken)).statusCode, 200, 'other tokens unaffected')
})

t.test('auth server down after a first load: the last good key set is used', async t => {
  const jwks = await countingServer(t, { keys: [jwk(signer, 'k1')] })
  const clock = fakeClock(t)
  const resource = await resourceServer(t, { jwksUrl: jwks.url, jwksCooldown: 1 })
  await jwks.close()
  t.equal((await get(resource, sign(signer, 'k1'))).statusCode, 200)
  clock.advance(1)
  const unknown = await get(resource, sign(nextSigner, 'k2'))
  t.equal(unknown.statusCode, 401, 'unknown kid while the auth server is down: 401, not 503')
  t.equal((await get(resource, sign(signer, 'k1'))).statusCode, 200, 'still the last good key set')
})

t.test('bad JWKS answers keep the last good key set', async t => {
  const jwks = await countingServer(t, { keys: [jwk(signer, 'k1')] })
  const clock = fakeClock(t)
  const resource = await resourceServer(t, { jwksUrl: jwks.url, jwksCooldown: 1 })
  const answers: Array<[number, string]> = [
    [500, JSON.stringify({ keys: [] })],
    [200, 'not json'],
    [200, JSON.stringify({ keys: 'nope' })],
    [200, 'null'],
    [200, JSON.stringify({ keys: [jwk(signer, 'k2'), jwk(signer, 'k2')] })],
    [200, JSON.stringify({ keys: [jwk(signer, 'k2', 'RS256')] })],
    [200, JSON.stringify({ keys: [jwk(rsa(1024), 'k2', 'RS256')] })],
    [200, JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'k2', alg: 'ES256' }] })],
    [200, JSON.stringify({ keys: [{ ...jwk(signer, 'k2'), d: 'x' }] })],
    [200, JSON.stringify({ keys: [{ kty: 'EC', kid: 'k2', alg: 'ES256' }] })],
    [200, JSON.stringify({ keys: [jwk(signer, 'k2')], padding: 'x'.repeat(300 * 1024) })]
  ]
  for (const [status, body] of answers) {
    jwks.status = status
    jwks.body = body
    clock.advance(1)
    const hits = jwks.hits
    t.equal((await get(resource, sign(signer, 'k2'))).statusCode, 401, `${status} ${body.slice(0, 60)}`)
    t.equal(jwks.hits, hits + 1, 'refetched')
    t.equal((await get(resource, sign(signer, 'k1'))).statusCode, 200, 'k1 still verifies')
  }
})

t.test('a redirecting JWKS URL is not followed', async t => {
  const elsewhere = await countingServer(t, { keys: [jwk(stranger, 'k1')] })
  const jwks = await countingServer(t, { keys: [] })
  jwks.status = 302
  jwks.location = elsewhere.url
  const resource = await resourceServer(t, { jwksUrl: jwks.url })
  t.equal(jwks.hits, 1)
  t.equal(elsewhere.hits, 0, 'the redirect target was never asked')
  t.equal((await get(resource, sign(stranger, 'k1'))).statusCode, 503, 'and its keys were not loaded')
})

t.test('unusable JWKs are skipped, and accessToken.algorithm pins the algorithm', async t => {
  const jwks = await countingServer(t, {
    keys: [
      jwk(signer, 'enc', 'ES256', { use: 'enc' }),
      jwk(signer, 'hs', 'HS256'),
      { ...jwk(signer, 'no-use'), use: undefined },
      jwk(rsaSigner, 'rsa', 'RS256'),
      { kty: 'EC', alg: 'ES256' },
      null
    ]
  })
  const resource = await resourceServer(t, { jwksUrl: jwks.url, jwksCooldown: '1h' })
  const pinned = await resourceServer(t, { jwksUrl: jwks.url, jwksCooldown: '1h', algorithm: 'ES256' })
  t.equal((await get(resource, sign(signer, 'enc'))).statusCode, 401, 'encryption key skipped')
  t.equal((await get(resource, sign(signer, 'hs'))).statusCode, 401, 'unsupported alg skipped')
  t.equal((await get(resource, sign(signer, 'no-use'))).statusCode, 200, 'use is optional')
  const rsaToken = sign(rsaSigner, 'rsa', {}, {}, 'RS256')
  t.equal((await get(resource, rsaToken)).statusCode, 200, "each key's algorithm from its alg")
  t.equal((await get(pinned, rsaToken)).statusCode, 401, 'not the pinned algorithm')
  t.equal((await get(pinned, sign(signer, 'no-use'))).statusCode, 200)
  t.equal((await get(resource, sign(rsaSigner, 'rsa', {}, {}, 'PS256'))).statusCode, 401, 'the JWK alg, not the token alg')
})

t.test('no key set ever loaded: 503, until the auth server answers', async t => {
  const jwks = await countingServer(t, { keys: [jwk(signer, 'k1')] })
  await jwks.close()
  const clock = fakeClock(t)
  const resource = await resourceServer(t, { jwksUrl: jwks.url, jwksCooldown: 1 })
  for (const url of ['/private', '/me', '/awaited']) {
    const response = await get(resource, sign(signer, 'k1'), url)
    t.equal(response.statusCode, 503, url)
    t.equal(response.json().code, 'FST_REFRESH_AUTH_KEYS_UNAVAILABLE')
  }
  t.equal((await get(resource, undefined)).statusCode, 401, 'no token is still a 401')
  await jwks.listen()
  clock.advance(1)
  t.equal((await get(resource, sign(signer, 'k1'))).statusCode, 200, 'loads on the next request after the cooldown')
  t.equal((await get(resource, sign(stranger, 'k1'))).statusCode, 401)
})

t.test('never loaded and within the cooldown: 503 without a fetch', async t => {
  const jwks = await countingServer(t, { keys: [] })
  jwks.status = 503
  const resource = await resourceServer(t, { jwksUrl: jwks.url, jwksCooldown: '1h' })
  t.equal(jwks.hits, 1)
  t.equal((await get(resource, sign(signer, 'k1'))).statusCode, 503)
  t.equal(jwks.hits, 1)
})

t.test('a JWKS server that never answers times out', async t => {
  const jwks = await countingServer(t, { keys: [jwk(signer, 'k1')] })
  jwks.status = 0
  const resource = await resourceServer(t, { jwksUrl: jwks.url, jwksTimeout: 1, jwksCooldown: '1h' })
  t.equal(jwks.hits, 1)
  t.equal((await get(resource, sign(signer, 'k1'))).statusCode, 503)
})

t.test('scheduled refetches drop retired keys', async t => {
  const jwks = await countingServer(t, { keys: [jwk(signer, 'k1')] })
  const resource = await resourceServer(t, { jwksUrl: jwks.url, jwksCooldown: '1h', jwksRefreshInterval: 1 })
  t.equal((await get(resource, sign(signer, 'k1'))).statusCode, 200)
  jwks.body = JSON.stringify({ keys: [jwk(nextSigner, 'k2')] })
  for (let i = 0; i < 50 && jwks.hits < 2; i++) await new Promise(resolve => setTimeout(resolve, 100))
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal((await get(resource, sign(signer, 'k1'))).statusCode, 401)
  t.equal((await get(resource, sign(nextSigner, 'k2'))).statusCode, 200)
  t.equal(header(sign(nextSigner, 'k2')).kid, 'k2')
})
