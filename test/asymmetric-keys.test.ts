import { createHmac, createSecretKey, createPublicKey } from 'node:crypto'
import jwt from 'jsonwebtoken'
import t from 'tap'
import { getPrivate, login, refresh } from './helpers/app.js'
import { authServer, ec, header, pem, protectedApp, rsa } from './helpers/keys.js'

const ecKey = ec()
const ecNext = ec()
const rsaKey = rsa()
const now = () => Math.floor(Date.now() / 1000)

/** Claims as the plugin issues them, to forge tokens with real keys. */
function claims (overrides: Record<string, unknown> = {}) {
  return {
    iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', sub: '42', sid: 's1', jti: 'j1', iat: now(), exp: now() + 60, ...overrides
  }
}

function forge (payload: object, key: jwt.Secret, algorithm: jwt.Algorithm, headerFields: Record<string, unknown>) {
  return jwt.sign(payload, key, { algorithm, header: { alg: algorithm, typ: 'at+jwt', ...headerFields } as jwt.JwtHeader })
}

for (const algorithm of ['RS256', 'PS256', 'ES256'] as const) {
  t.test(`${algorithm}: login issues tokens with kid and alg, verified with the public key`, async t => {
    const pair = algorithm === 'ES256' ? ecKey : rsaKey
    const app = await authServer(t, { algorithm, keys: [{ kid: 'k1', privateKey: pair.privateKey, publicKey: pair.publicKey }] })
    const { accessToken, refreshToken } = await login(app)
    t.same(header(accessToken), { alg: algorithm, typ: 'at+jwt', kid: 'k1' })
    t.ok(jwt.verify(accessToken, pair.publicKey, { algorithms: [algorithm] }), 'verifies with the public key alone')
    const response = await getPrivate(app, accessToken)
    t.equal(response.statusCode, 200)
    t.equal(response.json().user.sub, '42')
    t.equal(header(refreshToken).alg, 'HS256', 'refresh tokens stay HS256')
    t.equal(header(refreshToken).kid, undefined)
    const refreshed = await refresh(app, refreshToken)
    t.equal(refreshed.statusCode, 200)
    t.equal((await getPrivate(app, refreshed.json().access_token)).statusCode, 200)
  })
}

t.test('keys as PEM strings and as JWKs; a private key alone derives its public key', async t => {
  const { privateKey, publicKey } = pem(ecKey)
  const jwkPrivate = ecNext.privateKey.export({ format: 'jwk' })
  const jwkPublic = ecNext.publicKey.export({ format: 'jwk' })
  const fromPem = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'pem', privateKey, publicKey }] })
  t.equal((await getPrivate(fromPem, (await login(fromPem)).accessToken)).statusCode, 200)
  const fromJwk = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'jwk', privateKey: jwkPrivate, publicKey: jwkPublic }] })
  t.equal((await getPrivate(fromJwk, (await login(fromJwk)).accessToken)).statusCode, 200)
  const privateOnly = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'p', privateKey: Buffer.from(privateKey) }] })
  t.equal((await getPrivate(privateOnly, (await login(privateOnly)).accessToken)).statusCode, 200)
})

t.test('rotation: a published key verifies before it signs; the first key with a private key signs', async t => {
  const before = await authServer(t, {
    algorithm: 'ES256',
    keys: [{ kid: 'old', privateKey: ecKey.privateKey }, { kid: 'new', publicKey: ecNext.publicKey }]
  })
  const oldToken = (await login(before)).accessToken
  t.equal(header(oldToken).kid, 'old')

  // step 2: the new key signs, the old one still verifies
  const during = await authServer(t, {
    algorithm: 'ES256',
    keys: [{ kid: 'new', privateKey: ecNext.privateKey }, { kid: 'old', privateKey: ecKey.privateKey }]
  })
  const newToken = (await login(during)).accessToken
  t.equal(header(newToken).kid, 'new')
  t.equal((await getPrivate(during, oldToken)).statusCode, 200, 'old tokens still verify')
  t.equal((await getPrivate(before, newToken)).statusCode, 200, 'the published key already verified tokens it signs later')

  // step 3: the old key retired: only its tokens die
  const after = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'new', privateKey: ecNext.privateKey }] })
  t.equal((await getPrivate(after, newToken)).statusCode, 200)
  const refused = await getPrivate(after, oldToken)
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
})

t.test('attacks on an asymmetric auth server', async t => {
  const app = await authServer(t, { algorithm: 'RS256', keys: [{ kid: 'k1', privateKey: rsaKey.privateKey }] })
  const valid = (await login(app)).accessToken
  t.equal((await getPrivate(app, valid)).statusCode, 200)

  const expectRefused = async (token: string, what: string) => {
    const response = await getPrivate(app, token)
    t.equal(response.statusCode, 401, what)
    t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN', what)
  }

  // RS256 → HS256 key confusion: the public key (PEM, as published) used as the HMAC secret
  const publicPem = rsaKey.publicKey.export({ type: 'spki', format: 'pem' })
  const confusionHeader = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: 'k1' })).toString('base64url')
  const confusionPayload = Buffer.from(JSON.stringify(claims())).toString('base64url')
  const confusionSignature = createHmac('sha256', publicPem).update(`${confusionHeader}.${confusionPayload}`).digest('base64url')
  await expectRefused(`${confusionHeader}.${confusionPayload}.${confusionSignature}`, 'HS256 signed with the public key')
  await expectRefused(forge(claims(), createSecretKey(Buffer.from(publicPem)), 'HS256', { kid: 'k1' }), 'HS256 via jsonwebtoken')

  // mismatched alg for a kid: PS256 with the same RSA key is still not RS256
  await expectRefused(forge(claims(), rsaKey.privateKey, 'PS256', { kid: 'k1' }), 'PS256 under an RS256 kid')
  await expectRefused(forge(claims(), rsaKey.privateKey, 'RS512', { kid: 'k1' }), 'RS512 under an RS256 kid')
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
  for (const alg of ['none', 'None', 'NONE']) {
    await expectRefused(`${b64({ alg, typ: 'at+jwt', kid: 'k1' })}.${b64(claims())}.`, `alg ${alg} without a signature`)
    await expectRefused(`${b64({ alg, typ: 'at+jwt', kid: 'k1' })}.${b64(claims())}.${valid.split('.')[2]}`, `alg ${alg} with a stolen signature`)
  }

  // unknown kid, missing kid, kid injection
  await expectRefused(forge(claims(), rsaKey.privateKey, 'RS256', { kid: 'k2' }), 'unknown kid')
  await expectRefused(forge(claims(), rsaKey.privateKey, 'RS256', {}), 'no kid')
  for (const kid of ['../../dev/null', "' OR '1'='1", 'k1; DROP TABLE keys', '__proto__', 'constructor', 'k1\u0000']) {
    await expectRefused(forge(claims(), rsaKey.privateKey, 'RS256', { kid }), `kid ${JSON.stringify(kid)}`)
  }
  await expectRefused(forge(claims(), rsaKey.privateKey, 'RS256', { kid: ['k1'] }), 'kid as an array')

  // signed with the real key but for another issuer or audience
  await expectRefused(forge(claims({ iss: 'someone-else' }), rsaKey.privateKey, 'RS256', { kid: 'k1' }), 'other issuer')
  await expectRefused(forge(claims({ aud: 'another-api' }), rsaKey.privateKey, 'RS256', { kid: 'k1' }), 'other audience')
  // signed with the real key, but not typed as an access token
  await expectRefused(forge(claims(), rsaKey.privateKey, 'RS256', { kid: 'k1', typ: 'rt+jwt' }), 'typed as a refresh token')
  await expectRefused(forge(claims(), rsaKey.privateKey, 'RS256', { kid: 'k1', typ: 'JWT' }), 'typed JWT')
  await expectRefused(jwt.sign('"a string payload"', rsaKey.privateKey, { algorithm: 'RS256', header: { alg: 'RS256', typ: 'at+jwt', kid: 'k1' } as jwt.JwtHeader }), 'a string payload')
  // control: the same forging with the right claims passes, so the refusals above are about what they change
  t.equal((await getPrivate(app, forge(claims(), rsaKey.privateKey, 'RS256', { kid: 'k1' }))).statusCode, 200)
})

t.test('an HS256 app (secret) refuses tokens signed with an asymmetric key, and the reverse', async t => {
  const hs = await protectedApp(t, { secret: 'another-secret-that-is-long-enough-0123', routes: false })
  const es = await authServer(t, { algorithm: 'ES256', keys: [{ kid: 'k1', privateKey: ecKey.privateKey }] })
  const esToken = (await login(es)).accessToken
  t.equal((await getPrivate(hs, esToken)).statusCode, 401)
  const publicJwk = createPublicKey(ecKey.privateKey).export({ format: 'jwk' })
  t.equal((await getPrivate(es, forge(claims(), createSecretKey(Buffer.from(JSON.stringify(publicJwk))), 'HS256', { kid: 'k1' }))).statusCode, 401)
})
