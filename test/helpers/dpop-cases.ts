import { createHash, generateKeyPairSync } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { fakeClock } from './clock.js'
import { htu, makeProof, proofKey, type ProofKeyPair } from './dpop.js'

/**
 * Where the cases of RFC 9449 §4.3 and §7.1 run: an app serving `GET /private` behind `app.authenticate`
 * (an auth server, or a resource server verifying the auth server's tokens), and a way to get a token bound
 * to a key (a login with a proof) and one that is not.
 */
export interface ProtectedSetup {
  app: FastifyInstance
  boundToken: (key: ProofKeyPair) => Promise<string>
  bearerToken: () => Promise<string>
}

const ALGS = 'algs="ES256 RS256 PS256 EdDSA"'

function get (app: FastifyInstance, headers: Record<string, string>, url = '/private'): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, headers })
}

/** A request's answer is the §7.1 refusal of a proof: 401, `WWW-Authenticate: DPoP error="invalid_dpop_proof"` and the algs. */
function assertProofRefused (t: Test, response: LightMyRequestResponse, message: string): void {
  t.equal(response.statusCode, 401, message)
  t.equal(response.headers['www-authenticate'], `DPoP error="invalid_dpop_proof", ${ALGS}`, `${message}: the challenge`)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_DPOP_PROOF', `${message}: the code`)
}

function assertTokenRefused (t: Test, response: LightMyRequestResponse, message: string): void {
  t.equal(response.statusCode, 401, message)
  t.equal(response.headers['www-authenticate'], `DPoP error="invalid_token", ${ALGS}`, `${message}: the challenge`)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN', `${message}: the code`)
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** Every rule a protected route enforces on a DPoP-bound token, each in its own test named by its section. */
export function protectedRouteCases (t: Test, setup: (t: Test) => Promise<ProtectedSetup>): void {
  const key = proofKey('ES256')
  const proofFor = (token: string, extra: Partial<Parameters<typeof makeProof>[1]> = {}) =>
    makeProof(key, { htm: 'GET', htu: htu('/private'), accessToken: token, ...extra })

  t.test('a bound token with a valid proof of its key passes, cached or not; request.user.cnf.jkt names the key', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    for (let i = 0; i < 3; i++) {
      const response = await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token) })
      t.equal(response.statusCode, 200, `request ${i + 1}`)
      t.equal(response.json().user.cnf.jkt, key.jkt)
    }
    const query = await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token) }, '/private?page=2#x')
    t.equal(query.statusCode, 200, '§4.3 (9): the query of the request is not part of htu')
    const spelled = await get(app, { authorization: `dpop ${token}`, dpop: proofFor(token, { htu: 'HTTP://LOCALHOST:80/private' }) })
    t.equal(spelled.statusCode, 200, 'scheme names are case-insensitive; htu is compared after RFC 3986 normalisation')
  })

  t.test('RFC 9449 §4.3 (12), §7.1: a proof from another key is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: makeProof(proofKey(), { htm: 'GET', htu: htu('/private'), accessToken: token }) }), 'another key')
    t.equal((await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token) })).statusCode, 200, 'its own key still passes')
  })

  t.test('RFC 9449 §4.3 (12), §11.1: a replayed proof (the same jti) is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    const proof = proofFor(token)
    t.equal((await get(app, { authorization: `DPoP ${token}`, dpop: proof })).statusCode, 200)
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proof }), 'the same proof again')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { jti: JSON.parse(Buffer.from(proof.split('.')[1], 'base64url').toString()).jti }) }),
      'a new proof reusing the jti')
  })

  t.test('RFC 9449 §4.3 (8): a proof whose htm is not the request method is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { htm: 'POST' }) }), 'htm POST on a GET')
  })

  t.test('RFC 9449 §4.3 (9): a proof whose htu is not the request URI is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    for (const wrong of [htu('/other'), 'https://localhost/private', 'http://evil.example/private', 'not a url', 'http://user@localhost/private']) {
      assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { htu: wrong }) }), `htu ${wrong}`)
    }
  })

  t.test('RFC 9449 §4.3 (10), §7.1: a proof whose ath is missing or not the hash of the token is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: makeProof(key, { htm: 'GET', htu: htu('/private') }) }), 'no ath')
    const other = await boundToken(key)
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(other) }), 'the ath of another token')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { claims: { ath: createHash('sha256').update(token).digest('base64') } }) }),
      'ath in base64 rather than base64url')
  })

  t.test('RFC 9449 §4.3 (11): a proof whose iat is too old or in the future is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    const now = Math.floor(Date.now() / 1000)
    // proofMaxAge 60s and the clock tolerance of 5s
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { iat: now - 120 }) }), 'iat two minutes ago')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { iat: now + 60 }) }), 'iat a minute ahead')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { claims: { iat: String(now) } }) }), 'iat not a number')
    t.equal((await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { iat: now - 30 }) })).statusCode, 200, 'iat 30s ago is fresh')
    t.equal((await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { iat: now + 2 }) })).statusCode, 200, 'within the tolerance ahead')
  })

  t.test('RFC 9449 §4.3 (11): a proof grows stale as the clock moves past proofMaxAge', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    const proof = proofFor(token)
    const clock = fakeClock(t)
    clock.advance(70)
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proof }), 'made 70s ago, never used')
  })

  t.test('RFC 9449 §4.3 (4): a proof whose typ is not dpop+jwt, or missing, is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    for (const typ of ['jwt', 'JWT', 'at+jwt', 'DPOP+JWT', undefined]) {
      assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { typ } }) }), `typ ${String(typ)}`)
    }
  })

  t.test('RFC 9449 §4.3 (7): a proof whose jwk carries a private key, or none, is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    const privateJwk = key.privateKey.export({ format: 'jwk' })
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { jwk: privateJwk } }) }), 'the private JWK')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { jwk: undefined } }) }), 'no jwk')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { jwk: 'key' } }) }), 'a jwk that is no object')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { jwk: { kty: 'oct', k: 'c2VjcmV0' } } }) }), 'a symmetric jwk')
  })

  t.test('RFC 9449 §4.3 (5): alg none, an HMAC alg, or one not in dpop.algorithms is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    const claims = { jti: 'j-none', htm: 'GET', htu: htu('/private'), iat: Math.floor(Date.now() / 1000), ath: createHash('sha256').update(token).digest('base64url') }
    for (const alg of ['none', 'None', 'NONE']) {
      const unsigned = `${b64({ typ: 'dpop+jwt', alg, jwk: key.jwk })}.${b64(claims)}.`
      assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: unsigned }), `alg ${alg} without signature`)
      assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: `${unsigned}AAAA` }), `alg ${alg} with one`)
    }
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { alg: 'HS256', jwk: { kty: 'oct', k: 'c2VjcmV0' } } }) }), 'alg HS256')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { alg: 'ES384' } }) }), 'alg ES384, not accepted')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { alg: 'RS256' } }) }), 'RS256 over an EC key')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { crit: ['exp'] } }) }), 'a crit extension')
  })

  t.test('RFC 9449 §4.3 (6): a proof whose signature does not verify with its jwk is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { signWith: proofKey().privateKey }) }), 'signed by another key')
    const proof = proofFor(token)
    const [h, , s] = proof.split('.')
    const otherPayload = b64({ jti: 'forged', htm: 'GET', htu: htu('/private'), iat: Math.floor(Date.now() / 1000) })
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: `${h}.${otherPayload}.${s}` }), 'a payload swapped under the signature')
  })

  t.test('RFC 9449 §4.3 (1)-(3): a malformed, oversized or repeated DPoP header is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    const cases: Array<[string, string]> = [
      ['not a JWT', 'garbage'],
      ['four parts', `${proofFor(token)}.x`],
      ['non-base64url characters', proofFor(token).replace('.', '.+')],
      ['a header that is no JSON', `bm90IGpzb24.${b64({})}.AAAA`],
      ['a header that is a JSON array', `${b64([1])}.${b64({})}.AAAA`],
      ['a payload that is no JSON object', makeProofWithPayload(key, '"text"')],
      ['9 KB', `${'a'.repeat(9000)}.b.c`],
      ['two DPoP headers (joined by a comma)', `${proofFor(token)}, ${proofFor(token)}`]
    ]
    for (const [name, proof] of cases) assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proof }), name)
  })

  t.test('RFC 9449 §4.3: jti missing or too long, a nonce that is not a string: refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { claims: { jti: undefined } }) }), 'no jti')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { jti: 'j'.repeat(300) }) }), 'a 300-character jti')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { claims: { nonce: 42 } }) }), 'a numeric nonce')
  })

  t.test('RFC 9449 §7.1: Authorization: DPoP without a DPoP header is refused', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}` }), 'no proof')
  })

  t.test('RFC 9449 §7.2: a bound token under the Bearer scheme is refused, with or without a proof', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    assertTokenRefused(t, await get(app, { authorization: `Bearer ${token}` }), 'Bearer')
    assertTokenRefused(t, await get(app, { authorization: `Bearer ${token}`, dpop: proofFor(token) }), 'Bearer with a proof')
  })

  t.test('RFC 9449 §7.1: an unbound token under the DPoP scheme is refused; under Bearer it still works', async t => {
    const { app, bearerToken } = await setup(t)
    const token = await bearerToken()
    assertTokenRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token) }), 'unbound as DPoP')
    t.equal((await get(app, { authorization: `Bearer ${token}` })).statusCode, 200, 'unbound as Bearer')
  })

  t.test('RFC 9449 §7.1: an invalid token under the DPoP scheme is invalid_token; no token offers both schemes', async t => {
    const { app } = await setup(t)
    assertTokenRefused(t, await get(app, { authorization: 'DPoP not-a-token', dpop: 'x' }), 'a bad token')
    const none = await get(app, {})
    t.equal(none.statusCode, 401)
    t.match(none.headers['www-authenticate'], /^Bearer realm="[^"]+", DPoP algs="ES256 RS256 PS256 EdDSA"$/, 'Bearer and DPoP offered')
    t.equal((await get(app, { authorization: 'DPoP ' })).json().code, 'FST_REFRESH_AUTH_NO_TOKEN', 'a scheme without a token is no token')
    const bearer = await get(app, { authorization: 'Bearer not-a-token' })
    t.equal(bearer.statusCode, 401)
    t.match(bearer.headers['www-authenticate'], /^Bearer realm="[^"]+", error="invalid_token"$/, 'an invalid Bearer token keeps the Bearer challenge')
  })

  t.test('RFC 9449 §4.3 (5)-(7): proofs of every accepted algorithm pass (ES256, RS256, PS256, EdDSA)', async t => {
    const { app, boundToken } = await setup(t)
    for (const alg of ['ES256', 'RS256', 'PS256', 'EdDSA'] as const) {
      const algKey = proofKey(alg)
      const token = await boundToken(algKey)
      const response = await get(app, { authorization: `DPoP ${token}`, dpop: makeProof(algKey, { htm: 'GET', htu: htu('/private'), accessToken: token }) })
      t.equal(response.statusCode, 200, alg)
      t.equal(response.json().user.cnf.jkt, algKey.jkt, `${alg}: RFC 7638 thumbprint`)
    }
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 })
    const smallKey: ProofKeyPair = { alg: 'RS256', privateKey: small.privateKey, jwk: small.publicKey.export({ format: 'jwk' }) as Record<string, string>, jkt: 'unused' }
    const token = await boundToken(key)
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: makeProof(smallKey, { htm: 'GET', htu: htu('/private'), accessToken: token }) }),
      'an RSA key under 2048 bits')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { jwk: { ...key.jwk, x: 'AAAA' } } }) }), 'an EC point off the curve')
    assertProofRefused(t, await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token, { header: { jwk: { ...key.jwk, y: 42 } } }) }), 'a jwk member that is no string')
  })

  t.test('a flood of proofs from distinct keys is verified like any other, and the first key still passes after it', async t => {
    const { app, boundToken } = await setup(t)
    const token = await boundToken(key)
    // more distinct keys than the verifier keeps parsed headers of (1024)
    for (let i = 0; i < 1100; i++) {
      const response = await get(app, { authorization: `DPoP ${token}`, dpop: makeProof(proofKey(), { htm: 'GET', htu: htu('/private'), accessToken: token }) })
      if (response.statusCode !== 401) t.fail(`flood proof ${i} answered ${response.statusCode}`)
    }
    t.equal((await get(app, { authorization: `DPoP ${token}`, dpop: proofFor(token) })).statusCode, 200)
  })
}

function makeProofWithPayload (key: ProofKeyPair, payloadJson: string): string {
  return makeProof(key, { htu: htu('/private'), rawPayload: Buffer.from(payloadJson).toString('base64url') })
}
