import { createSecretKey, generateKeyPairSync } from 'node:crypto'
import Fastify from 'fastify'
import t from 'tap'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../lib/index.js'
import { KeySet, tokenKid } from '../lib/tokens/keys.js'
import { TokenCodec } from '../lib/tokens/codec.js'
import { SECRET, verifyCredentials, getPrivate, login } from './helpers/app.js'
import { ec, pem, protectedApp, rsa } from './helpers/keys.js'

const es = ec()
const other = ec()
const rs = rsa()
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
const ed = generateKeyPairSync('ed25519')
const weak = rsa(1024)

async function register (options: Record<string, unknown>) {
  const app = Fastify()
  try {
    await app.register(fastifyRefreshAuth, options as unknown as FastifyRefreshAuthOptions)
    await app.ready()
  } finally {
    await app.close()
  }
}

const auth = { secret: SECRET, verifyCredentials }

t.test('registration refuses unusable keys, naming the problem', async t => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['RSA key under ES256', { algorithm: 'ES256', keys: [{ kid: 'a', privateKey: rs.privateKey }] }, /keys 'a' publicKey is an rsa key, but ES256 needs an EC P-256 key/],
    ['EC key under RS256', { algorithm: 'RS256', keys: [{ kid: 'a', privateKey: es.privateKey }] }, /is an ec prime256v1 key, but RS256 needs an RSA key/],
    ['P-384 under ES256', { algorithm: 'ES256', keys: [{ kid: 'a', publicKey: p384.publicKey, privateKey: p384.privateKey }] }, /ec secp384r1 key, but ES256 needs an EC P-256 key/],
    ['Ed25519 under ES256', { algorithm: 'ES256', keys: [{ kid: 'a', privateKey: ed.privateKey }] }, /an ed25519 key, but ES256/],
    ['RSA 1024', { algorithm: 'PS256', keys: [{ kid: 'a', privateKey: weak.privateKey }] }, /1024-bit RSA key, but PS256 needs at least 2048 bits/],
    ['duplicate kid', { algorithm: 'ES256', keys: [{ kid: 'a', privateKey: es.privateKey }, { kid: 'a', publicKey: other.publicKey }] }, /duplicate kid 'a'/],
    ['mismatched pair', { algorithm: 'ES256', keys: [{ kid: 'a', privateKey: es.privateKey, publicKey: other.publicKey }] }, /keys 'a': the privateKey does not match the publicKey/],
    ['private PEM as publicKey', { algorithm: 'ES256', keys: [{ kid: 'p', privateKey: es.privateKey }, { kid: 'a', publicKey: pem(other).privateKey }] }, /'a' publicKey must be a public key, not a private key/],
    ['private JWK as publicKey', { algorithm: 'ES256', keys: [{ kid: 'p', privateKey: es.privateKey }, { kid: 'a', publicKey: other.privateKey.export({ format: 'jwk' }) }] }, /must be a public key, not a private key/],
    ['private KeyObject as publicKey', { algorithm: 'ES256', keys: [{ kid: 'p', privateKey: es.privateKey }, { kid: 'a', publicKey: other.privateKey }] }, /must be a public key, not a private key/],
    ['secret KeyObject as publicKey', { algorithm: 'RS256', keys: [{ kid: 'p', privateKey: rs.privateKey }, { kid: 'a', publicKey: createSecretKey(Buffer.alloc(32)) }] }, /must be a public key, not a secret key/],
    ['symmetric JWK as publicKey', { algorithm: 'RS256', keys: [{ kid: 'p', privateKey: rs.privateKey }, { kid: 'a', publicKey: { kty: 'oct', k: 'c2VjcmV0' } }] }, /must be a public key, not a symmetric key/],
    ['garbage publicKey', { algorithm: 'ES256', keys: [{ kid: 'p', privateKey: es.privateKey }, { kid: 'a', publicKey: 'not a key' }] }, /'a' publicKey is not a PEM or JWK public key/],
    ['garbage JWK publicKey', { algorithm: 'ES256', keys: [{ kid: 'p', privateKey: es.privateKey }, { kid: 'a', publicKey: { kty: 'EC' } }] }, /is not a PEM or JWK public key/],
    ['garbage privateKey', { algorithm: 'ES256', keys: [{ kid: 'a', privateKey: 'nope' }] }, /'a' privateKey is not a PEM or JWK private key/],
    ['garbage JWK privateKey', { algorithm: 'ES256', keys: [{ kid: 'a', privateKey: { kty: 'EC' } }] }, /is not a PEM or JWK private key/],
    ['public KeyObject as privateKey', { algorithm: 'ES256', keys: [{ kid: 'a', privateKey: es.publicKey }] }, /'a' privateKey must be a private key, not a public key/],
    ['no key at all', { algorithm: 'ES256', keys: [{ kid: 'p', privateKey: es.privateKey }, { kid: 'a' }] }, /'a' needs a publicKey or a privateKey/],
    ['empty kid', { algorithm: 'ES256', keys: [{ kid: '', privateKey: es.privateKey }] }, /keys\[0\]\.kid must be 1 to 128 printable ASCII/],
    ['kid with a space', { algorithm: 'ES256', keys: [{ kid: 'a b', privateKey: es.privateKey }] }, /kid must be/],
    ['numeric kid', { algorithm: 'ES256', keys: [{ kid: 1, privateKey: es.privateKey }] }, /kid must be/],
    ['EdDSA', { algorithm: 'EdDSA', keys: [{ kid: 'a', privateKey: ed.privateKey }] }, /EdDSA is not supported \(jsonwebtoken 9 has no EdDSA\)/],
    ['HS512', { algorithm: 'HS512' }, /algorithm must be one of HS256, RS256, PS256, ES256/],
    ['keys under HS256', { keys: [{ kid: 'a', privateKey: es.privateKey }] }, /keys needs an asymmetric accessToken.algorithm/],
    ['keys and jwksUrl', { algorithm: 'ES256', keys: [{ kid: 'a', privateKey: es.privateKey }], jwksUrl: 'http://a/' }, /exclude each other/],
    ['empty keys', { algorithm: 'ES256', keys: [] }, /keys must be a non-empty array/],
    ['keys not an array', { algorithm: 'ES256', keys: { kid: 'a' } }, /keys must be a non-empty array/],
    ['no private key while routes are on', { algorithm: 'ES256', keys: [{ kid: 'a', publicKey: es.publicKey }, null] }, /no privateKey to sign with; a resource server that only verifies sets routes: false/],
    ['RS256 without keys', { algorithm: 'RS256' }, /algorithm RS256 needs accessToken.keys/],
    ['jwksUrl with routes', { jwksUrl: 'http://auth.internal/jwks.json' }, /jwksUrl makes a resource server.*routes: false/]
  ]
  for (const [name, accessToken, message] of cases) {
    await t.rejects(register({ ...auth, accessToken }), { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message }, name)
  }
})

t.test('resource-server and JWKS options are checked', async t => {
  const publicOnly = { algorithm: 'ES256', keys: [{ kid: 'a', publicKey: es.publicKey }] }
  const signing = { algorithm: 'ES256', keys: [{ kid: 'a', privateKey: es.privateKey }] }
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['null key entry', { routes: false, accessToken: { algorithm: 'ES256', keys: [null] } }, /keys\[0\] must be an object/],
    ['jwksUrl not http', { routes: false, accessToken: { jwksUrl: 'file:///etc/passwd' } }, /jwksUrl must be an http\(s\) URL/],
    ['jwksUrl not a URL', { routes: false, accessToken: { jwksUrl: 'auth.internal' } }, /jwksUrl must be an http\(s\) URL/],
    ['jwksTimeout 0', { routes: false, accessToken: { jwksUrl: 'http://a/', jwksTimeout: 0 } }, /jwksTimeout must be a positive/],
    ['no secret with routes', { verifyCredentials, accessToken: signing }, /secret is required while the routes are registered/],
    ['no secret, no keys', { routes: false }, /secret is required/],
    ['jwks under HS256', { ...auth, jwks: true }, /jwks needs asymmetric accessToken.keys with a privateKey/],
    ['jwks on a resource server', { routes: false, accessToken: publicOnly, jwks: true }, /jwks needs asymmetric accessToken.keys/],
    ['jwks on a JWKS client', { routes: false, accessToken: { jwksUrl: 'http://a/' }, jwks: {} }, /jwks needs/],
    ['jwks a string', { ...auth, accessToken: signing, jwks: 'yes' }, /jwks must be a boolean or an object/],
    ['jwks null', { ...auth, accessToken: signing, jwks: null }, /jwks must be a boolean or an object/],
    ['jwks.url', { ...auth, accessToken: signing, jwks: { url: 'keys' } }, /jwks.url must be a path/],
    ['jwks.maxAge', { ...auth, accessToken: signing, jwks: { maxAge: -1 } }, /jwks.maxAge must be a non-negative/]
  ]
  for (const [name, options, message] of cases) {
    await t.rejects(register(options), { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message }, name)
  }
})

t.test('what can sign decides what can be served', async t => {
  // a secret and public keys only: verifies, cannot issue access tokens
  const verifier = await protectedApp(t, { secret: SECRET, routes: false, accessToken: { algorithm: 'ES256', keys: [{ kid: 'a', publicKey: es.publicKey }] } })
  t.throws(() => verifier.refreshAuth.loginRoute(), { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /cannot serve the login route/ })
  // private keys and routes: false, no secret: refresh tokens could not be signed
  const noSecret = await protectedApp(t, { routes: false, accessToken: { algorithm: 'ES256', keys: [{ kid: 'a', privateKey: es.privateKey }] } })
  t.throws(() => noSecret.refreshAuth.refreshRoute(), { message: /cannot serve the refresh route/ })
  t.ok(noSecret.refreshAuth.jwksRoute(), 'its public keys can still be published')
  // HS256 has nothing public
  const hs = await protectedApp(t, { secret: SECRET, routes: false })
  t.throws(() => hs.refreshAuth.jwksRoute(), { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /HS256 keys are secret/ })
  // routes: false on an auth server: the factories work
  const manual = await protectedApp(t, { secret: SECRET, verifyCredentials, routes: false, accessToken: { algorithm: 'RS256', keys: [{ kid: 'r', privateKey: pem(rs).privateKey }] } })
  manual.route(manual.refreshAuth.loginRoute())
  manual.route(manual.refreshAuth.logoutRoute())
  const { accessToken } = await login(manual)
  t.equal((await getPrivate(manual, accessToken)).statusCode, 200)
})

t.test('key set internals', async t => {
  const secretKeys = KeySet.fromSecretKey(createSecretKey(Buffer.alloc(32, 1)))
  t.same(secretKeys.toJwks(), { keys: [] }, 'a symmetric key is never published')

  const keySet = new KeySet([])
  let changes = 0
  keySet.onChange(() => { changes++ })
  keySet.replace([{ algorithm: 'ES256', key: es.publicKey, kid: 'a' }])
  t.equal(changes, 1, 'onChange hears of every replace')
  t.ok(keySet.has('a'))

  const codec = new TokenCodec({ keys: keySet, type: 'at+jwt', issuer: 'i', audience: 'a', clockTolerance: 0 })
  t.throws(() => codec.sign({ sub: 's', sid: 's', jti: 'j', iat: 1, exp: 2 }), /no key to sign with/)

  const encode = (value: string) => Buffer.from(value).toString('base64url')
  t.equal(tokenKid(`${encode('{"kid":"a"}')}.x.y`), 'a')
  t.equal(tokenKid(`${encode('null')}.x.y`), undefined)
  t.equal(tokenKid(`${encode('{"kid":1}')}.x.y`), undefined)
  t.equal(tokenKid(`${encode('{kid')}.x.y`), undefined)
  t.equal(codec.verify(`${encode('{kid')}.eA.eA`), null, 'a header that is not JSON is refused')
})
