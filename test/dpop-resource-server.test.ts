import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createPublicKey } from 'node:crypto'
import t from 'tap'
import { fakeClock } from './helpers/clock.js'
import { SECRET, USER } from './helpers/app.js'
import { htu, makeProof, proofKey, type ProofKeyPair } from './helpers/dpop.js'
import { protectedRouteCases } from './helpers/dpop-cases.js'
import { authServer, ec, pem, protectedApp } from './helpers/keys.js'

// Issue 23: a resource server in JWKS mode enforces the same DPoP rules for bound tokens, with the same options,
// as the auth server's own protected routes (test/dpop-protected.test.ts): the same cases, run here.

const signer = pem(ec())

protectedRouteCases(t, async t => {
  const auth = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'k1', privateKey: signer.privateKey }] }, { jwks: true, dpop: true })
  await auth.listen({ port: 0, host: '127.0.0.1' })
  const { port } = auth.server.address() as { port: number }
  const app = await protectedApp(t, { routes: false, accessToken: { algorithm: 'ES256', jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json` }, dpop: true })
  await app.ready()
  async function token (headers: Record<string, string>): Promise<string> {
    const response = await auth.inject({ method: 'POST', url: '/auth/login', payload: USER, headers })
    if (response.statusCode !== 200) throw new Error(`login: ${response.statusCode} ${response.body}`)
    return response.json().access_token
  }
  return {
    app,
    boundToken: (key: ProofKeyPair) => token({ dpop: makeProof(key, { htu: htu('/auth/login') }) }),
    bearerToken: () => token({})
  }
})

t.test('a resource server without dpop refuses a bound token, which only comes as Bearer there', async t => {
  const auth = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'k1', privateKey: signer.privateKey }] }, { dpop: true })
  const app = await protectedApp(t, { routes: false, accessToken: { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey: signer.publicKey }] } })
  const key = proofKey()
  const login = await auth.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { dpop: makeProof(key, { htu: htu('/auth/login') }) } })
  const token = login.json().access_token
  const bearer = await app.inject({ url: '/private', headers: { authorization: `Bearer ${token}` } })
  t.equal(bearer.statusCode, 401)
  t.equal(bearer.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
  t.match(bearer.headers['www-authenticate'], /^Bearer realm="[^"]+", error="invalid_token"$/)
  const dpop = await app.inject({ url: '/private', headers: { authorization: `DPoP ${token}`, dpop: makeProof(key, { htm: 'GET', htu: htu('/private'), accessToken: token }) } })
  t.equal(dpop.statusCode, 401, 'the DPoP scheme is unknown there')
  t.equal(dpop.json().code, 'FST_REFRESH_AUTH_NO_TOKEN')
})

t.test('dpop.nonce on a resource server without the secret is refused at registration', async t => {
  await t.rejects(protectedApp(t, { routes: false, accessToken: { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey: signer.publicKey }] }, dpop: { nonce: true } }),
    { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /dpop.nonce needs the secret/ })
})

t.test('a bound token of a key the resource server fetches late: after the JWKS refetch, its proof is still required', async t => {
  const next = pem(ec())
  const jwk = (publicKey: string, kid: string) => ({ ...createPublicKey(publicKey).export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' })
  let keys = [jwk(signer.publicKey, 'k1')]
  const jwksServer = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ keys }))
  })
  await new Promise<void>(resolve => jwksServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { jwksServer.closeAllConnections(); jwksServer.close(() => resolve()) }))
  const url = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`
  const app = await protectedApp(t, { routes: false, accessToken: { algorithm: 'ES256', jwksUrl: url, jwksCooldown: 1 }, dpop: true })
  await app.ready()
  // the auth server has moved to key k2, which the resource server has not fetched yet
  const auth = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'k2', privateKey: next.privateKey }] }, { dpop: true })
  keys = [jwk(signer.publicKey, 'k1'), jwk(next.publicKey, 'k2')]
  const key = proofKey()
  const token = (await auth.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { dpop: makeProof(key, { htu: htu('/auth/login') }) } })).json().access_token
  fakeClock(t).advance(2) // past the refetch cooldown
  const noProof = await app.inject({ url: '/private', headers: { authorization: `DPoP ${token}` } })
  t.equal(noProof.statusCode, 401, 'refetched, verified, and refused for want of a proof')
  t.equal(noProof.json().code, 'FST_REFRESH_AUTH_INVALID_DPOP_PROOF')
  const withProof = await app.inject({ url: '/private', headers: { authorization: `DPoP ${token}`, dpop: makeProof(key, { htm: 'GET', htu: htu('/private'), accessToken: token }) } })
  t.equal(withProof.statusCode, 200, 'with its proof it passes')
})

t.test("RFC 9449 §9: a resource server given the auth server's secret accepts its nonces, and asks for one with 401", async t => {
  const auth = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'k1', privateKey: signer.privateKey }] }, { dpop: { nonce: true } })
  const app = await protectedApp(t, { routes: false, secret: SECRET, accessToken: { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey: signer.publicKey }] }, dpop: { nonce: true } })
  const key = proofKey()
  const asked = await auth.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { dpop: makeProof(key, { htu: htu('/auth/login') }) } })
  t.equal(asked.statusCode, 400)
  const nonce = asked.headers['dpop-nonce'] as string
  const token = (await auth.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { dpop: makeProof(key, { htu: htu('/auth/login'), nonce }) } })).json().access_token
  const without = await app.inject({ url: '/private', headers: { authorization: `DPoP ${token}`, dpop: makeProof(key, { htm: 'GET', htu: htu('/private'), accessToken: token }) } })
  t.equal(without.statusCode, 401)
  t.match(without.headers['www-authenticate'], /^DPoP error="use_dpop_nonce"/)
  t.equal(without.headers['dpop-nonce'], nonce, "the auth server's nonce")
  const withNonce = await app.inject({ url: '/private', headers: { authorization: `DPoP ${token}`, dpop: makeProof(key, { htm: 'GET', htu: htu('/private'), accessToken: token, nonce }) } })
  t.equal(withNonce.statusCode, 200)
})
