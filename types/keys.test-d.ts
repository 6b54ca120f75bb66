// Type-level tests of asymmetric keys, the JWKS route and resource-server options.
import { generateKeyPairSync } from 'node:crypto'
import Fastify, { type RouteOptions } from 'fastify'
import fastifyRefreshAuth, {
  KeysUnavailableError,
  type AccessTokenAlgorithm,
  type AccessTokenKey,
  type FastifyRefreshAuthOptions
} from 'fastify-refresh-auth'

function expectType<T> (value: T): T { return value }

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })

const authServer: FastifyRefreshAuthOptions = {
  secret: 'x'.repeat(32),
  verifyCredentials: async () => ({ id: 1 }),
  accessToken: {
    algorithm: 'ES256',
    keys: [
      { kid: '2026-11', privateKey, publicKey },
      { kid: '2026-08', publicKey: publicKey.export({ format: 'jwk' }) },
      { kid: 'pem', publicKey: '-----BEGIN PUBLIC KEY-----' }
    ]
  },
  jwks: { url: '/.well-known/jwks.json', maxAge: '5m' }
}
expectType<FastifyRefreshAuthOptions>(authServer)

const staticResourceServer: FastifyRefreshAuthOptions = {
  routes: false,
  accessToken: { algorithm: 'RS256', keys: [{ kid: 'k', publicKey: Buffer.from('pem') }] }
}
const jwksResourceServer: FastifyRefreshAuthOptions = {
  routes: false,
  issuer: 'https://auth.example',
  audience: 'api',
  accessToken: { jwksUrl: 'https://auth.example/.well-known/jwks.json', jwksTimeout: '5s', jwksCooldown: 30, jwksRefreshInterval: '10m' }
}
expectType<FastifyRefreshAuthOptions[]>([staticResourceServer, jwksResourceServer])

// @ts-expect-error EdDSA is not offered (jsonwebtoken 9 has none)
const eddsa: AccessTokenAlgorithm = 'EdDSA'
expectType<AccessTokenAlgorithm>(eddsa)

// @ts-expect-error every key needs a kid
const noKid: AccessTokenKey = { publicKey }
expectType<AccessTokenKey>(noKid)

export async function setup (): Promise<void> {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, authServer)
  expectType<RouteOptions>(app.refreshAuth.jwksRoute({ url: '/keys' }))
  expectType<number>(new KeysUnavailableError().statusCode as number)
}
