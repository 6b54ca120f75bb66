// Type tests of asymmetric keys, the JWKS route and resource-server options (tstyche).
import { generateKeyPairSync } from 'node:crypto'
import Fastify, { type RouteOptions } from 'fastify'
import { describe, expect, test } from 'tstyche'
import fastifyRefreshAuth, {
  KeysUnavailableError,
  type AccessTokenAlgorithm,
  type AccessTokenKey,
  type FastifyRefreshAuthOptions,
  type KeyInput
} from 'fastify-refresh-auth'

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })

describe('access-token keys', () => {
  test('the algorithms are the four jsonwebtoken 9 has, without EdDSA', () => {
    expect<AccessTokenAlgorithm>().type.toBe<'HS256' | 'RS256' | 'PS256' | 'ES256'>()
  })

  test('a key is a kid with a private key, a public key or both, in PEM, JWK or KeyObject form', () => {
    expect<AccessTokenKey>().type.toBeAssignableFrom({ kid: '2026-11', privateKey, publicKey })
    expect<AccessTokenKey>().type.toBeAssignableFrom({ kid: '2026-08', publicKey: publicKey.export({ format: 'jwk' }) })
    expect<AccessTokenKey>().type.toBeAssignableFrom({ kid: 'pem', publicKey: '-----BEGIN PUBLIC KEY-----' })
    expect<KeyInput>().type.toBeAssignableFrom(Buffer.from('pem'))
    expect<AccessTokenKey>().type.not.toBeAssignableFrom({ publicKey })
    expect<AccessTokenKey>().type.not.toBeAssignableFrom({ kid: 'k', publicKey: 42 })
  })
})

describe('auth server and resource servers', () => {
  test('an auth server signs with its keys and publishes them', async () => {
    const app = Fastify()
    await app.register(fastifyRefreshAuth, {
      secret: 'x'.repeat(32),
      verifyCredentials: async () => ({ id: 1 }),
      accessToken: { algorithm: 'ES256', keys: [{ kid: '2026-11', privateKey }] },
      jwks: { url: '/.well-known/jwks.json', maxAge: '5m' }
    })
    expect(app.refreshAuth.jwksRoute({ url: '/keys' })).type.toBe<RouteOptions>()
  })

  test('a resource server needs no secret: static public keys, or a JWKS URL', () => {
    expect<FastifyRefreshAuthOptions>().type.toBeAssignableFrom({
      routes: false,
      accessToken: { algorithm: 'RS256', keys: [{ kid: 'k', publicKey: Buffer.from('pem') }] }
    })
    expect<FastifyRefreshAuthOptions>().type.toBeAssignableFrom({
      routes: false,
      issuer: 'https://auth.example',
      audience: 'api',
      accessToken: { jwksUrl: 'https://auth.example/.well-known/jwks.json', jwksTimeout: '5s' as const, jwksCooldown: 30, jwksRefreshInterval: '10m' as const }
    })
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ accessToken: { jwksUrl: new URL('https://auth.example/jwks') } })
  })

  test('a resource server that has not loaded its keys answers 503', () => {
    expect(new KeysUnavailableError().code).type.toBe<'FST_REFRESH_AUTH_KEYS_UNAVAILABLE'>()
    expect(new KeysUnavailableError().statusCode).type.toBe<503>()
  })
})
