import { refuseOption as fail } from '../errors.js'
import { ASYMMETRIC_ALGORITHMS, createAccessKeySet, deriveKeys, KeySet, type AccessTokenAlgorithm, type AccessTokenKey, type AsymmetricAlgorithm, type SecretKeys } from '../tokens/keys.js'
import { durationOption } from './duration.js'
import type { FastifyRefreshAuthOptions, RemoteJwks, ServerRole, AsymmetricAuthServer, Hs256AuthServer, ResourceServer } from './types.js'
import { checkSecretLooksRandom } from './secret.js'

// What this app is (auth server or resource server), decided here once from the options, with its keys
// already built: the plugin wires sessions, the JWKS client and the JWKS route from the kind, and nothing
// else asks again.

type AccessTokenOptions = NonNullable<FastifyRefreshAuthOptions['accessToken']>

const MIN_SECRET_BYTES = 32
const ACCESS_TOKEN_ALGORITHMS: readonly AccessTokenAlgorithm[] = ['HS256', ...ASYMMETRIC_ALGORITHMS]

/** Access tokens and refresh tokens both signed with keys derived from the secret. */
function hs256AuthServer (secretKeys: SecretKeys): Hs256AuthServer {
  return {
    kind: 'hs256-auth-server',
    accessKeys: KeySet.fromSecretKey(secretKeys.access),
    refreshKeys: KeySet.fromSecretKey(secretKeys.refresh),
    publicKeys: null
  }
}

/**
 * `accessToken.keys`: an auth server when a key can sign and a secret signs refresh tokens; otherwise
 * a resource server that verifies with them.
 */
function keyedServer (algorithm: AsymmetricAlgorithm, keys: AccessTokenKey[], secretKeys: SecretKeys | null): AsymmetricAuthServer | ResourceServer {
  const accessKeys = createAccessKeySet(algorithm, keys)
  const publicKeys = accessKeys.signingKey === null ? null : accessKeys
  if (publicKeys === null || secretKeys === null) return { kind: 'resource-server', accessKeys, publicKeys, remoteJwks: null }
  return { kind: 'asymmetric-auth-server', accessKeys, refreshKeys: KeySet.fromSecretKey(secretKeys.refresh), publicKeys }
}

/** `accessToken.jwksUrl`: a resource server whose keys come from the auth server's JWK Set. */
function jwksResourceServer (remoteJwks: RemoteJwks): ResourceServer {
  return { kind: 'resource-server', accessKeys: new KeySet([]), publicKeys: null, remoteJwks }
}

/** Where access-token keys come from: the secret (HS256), `accessToken.keys`, or a JWKS URL. */
type AccessKeySource =
  | { source: 'secret' }
  | { source: 'keys', algorithm: AsymmetricAlgorithm, keys: AccessTokenKey[] }
  | { source: 'jwks', remoteJwks: RemoteJwks }

/**
 * Decides once what this app is. A secret, when given, is checked even where it signs nothing; without
 * one the app can only verify access tokens, so it registers no route.
 */
export function resolveServerRole (secret: unknown, accessToken: AccessTokenOptions | undefined, routes: boolean): ServerRole {
  const access = resolveAccessKeys(accessToken, routes)
  if (access.source === 'secret') {
    if (secret === undefined) fail('secret is required: it signs the tokens (a resource server sets routes: false with accessToken.keys or accessToken.jwksUrl)')
    return hs256AuthServer(deriveKeys(checkSecret(secret)))
  }
  if (secret === undefined && routes) {
    fail('secret is required while the routes are registered (refresh tokens are signed with it); a resource server sets routes: false')
  }
  const secretKeys = secret === undefined ? null : deriveKeys(checkSecret(secret))
  return access.source === 'keys' ? keyedServer(access.algorithm, access.keys, secretKeys) : jwksResourceServer(access.remoteJwks)
}

function checkSecret (secret: unknown): string | Buffer {
  if (typeof secret !== 'string' && !Buffer.isBuffer(secret)) fail('secret must be a string or a Buffer')
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) fail(`secret must be at least ${MIN_SECRET_BYTES} bytes long`)
  checkSecretLooksRandom(secret)
  return secret
}

function resolveAccessKeys (accessToken: AccessTokenOptions | undefined, routes: boolean): AccessKeySource {
  const { algorithm = 'HS256', keys, jwksUrl } = accessToken ?? {}
  if (algorithm === 'EdDSA') fail('accessToken.algorithm EdDSA is not supported (jsonwebtoken 9 has no EdDSA)')
  if (!(ACCESS_TOKEN_ALGORITHMS as readonly unknown[]).includes(algorithm)) fail('accessToken.algorithm must be one of HS256, RS256, PS256, ES256')
  // checked whether or not a JWKS URL is set: a wrong value is refused, never silently unused
  const timeout = durationOption(accessToken?.jwksTimeout, '5s', 'accessToken.jwksTimeout')
  const cooldown = jwksCooldown(accessToken?.jwksCooldown)
  const refreshInterval = durationOption(accessToken?.jwksRefreshInterval, '10m', 'accessToken.jwksRefreshInterval')
  if (keys !== undefined && jwksUrl !== undefined) fail('accessToken.keys and accessToken.jwksUrl exclude each other')
  if (keys !== undefined) {
    if (algorithm === 'HS256') fail('accessToken.keys needs an asymmetric accessToken.algorithm (RS256, PS256 or ES256); HS256 keys come from secret')
    if (!Array.isArray(keys) || keys.length === 0) fail('accessToken.keys must be a non-empty array')
    if (routes && !hasPrivateKey(keys)) {
      fail('accessToken.keys has no privateKey to sign with; a resource server that only verifies sets routes: false')
    }
    return { source: 'keys', algorithm: algorithm as AsymmetricAlgorithm, keys }
  }
  if (jwksUrl !== undefined) {
    if (!isHttpUrl(jwksUrl)) fail('accessToken.jwksUrl must be an http(s) URL')
    if (routes) fail('accessToken.jwksUrl makes a resource server, which only verifies: set routes: false')
    const only = algorithm === 'HS256' ? undefined : algorithm as AsymmetricAlgorithm
    return { source: 'jwks', remoteJwks: { url: jwksUrl, algorithm: only, timeout, cooldown, refreshInterval } }
  }
  if (algorithm !== 'HS256') fail(`accessToken.algorithm ${algorithm} needs accessToken.keys (or accessToken.jwksUrl on a resource server)`)
  return { source: 'secret' }
}

// Every request with an unknown `kid` may refetch the JWKS once per cooldown: below a second, anyone
// could make a resource server fetch as often as they send requests.
function jwksCooldown (value: unknown): number {
  const seconds = durationOption(value, '30s', 'accessToken.jwksCooldown', true)
  if (seconds < 1) fail('accessToken.jwksCooldown must be at least 1 second')
  return seconds
}

function hasPrivateKey (keys: AccessTokenKey[]): boolean {
  return keys.some(key => key?.privateKey !== undefined)
}

function isHttpUrl (value: unknown): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(value as string).protocol)
  } catch {
    return false
  }
}
