import { createAccessKeySet, KeySet, type AccessTokenKey, type AsymmetricAlgorithm, type SecretKeys } from '../tokens/keys.js'

// What this app is, decided once from the options (`resolveOptions`), with its keys already built:
// the plugin wires sessions, the JWKS client and the JWKS route from the kind, and nothing else asks again.

/** An auth server whose access tokens are HS256 with the key derived from its secret. */
export interface Hs256AuthServer {
  kind: 'hs256-auth-server'
  accessKeys: KeySet
  refreshKeys: KeySet
  /** HS256 keys are secret: nothing to publish. */
  publicKeys: null
}

/** An auth server that signs access tokens with the first of its asymmetric keys that has a private key. */
export interface AsymmetricAuthServer {
  kind: 'asymmetric-auth-server'
  accessKeys: KeySet
  refreshKeys: KeySet
  /** Its access-token keys, which it may publish as a JWK Set. */
  publicKeys: KeySet
}

/** An app that only verifies access tokens: it has no sessions, so its route factories refuse. */
export interface ResourceServer {
  kind: 'resource-server'
  /** Static public keys, or the set a JWKS client fills (empty until the first fetch). */
  accessKeys: KeySet
  /** Its own keys when it holds a private key (but no secret for refresh tokens): they may still be published. */
  publicKeys: KeySet | null
  /** Where its keys come from when they are fetched. */
  remoteJwks: RemoteJwks | null
}

export type ServerRole = Hs256AuthServer | AsymmetricAuthServer | ResourceServer

/** A resource server's JWK Set URL and how it is fetched (seconds). */
export interface RemoteJwks {
  url: string
  /** When set, keys of any other algorithm are skipped. */
  algorithm: AsymmetricAlgorithm | undefined
  timeout: number
  cooldown: number
  refreshInterval: number
}

/** Access tokens and refresh tokens both signed with keys derived from the secret. */
export function hs256AuthServer (secretKeys: SecretKeys): Hs256AuthServer {
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
export function keyedServer (algorithm: AsymmetricAlgorithm, keys: AccessTokenKey[], secretKeys: SecretKeys | null): AsymmetricAuthServer | ResourceServer {
  const accessKeys = createAccessKeySet(algorithm, keys)
  const publicKeys = accessKeys.signingKey === null ? null : accessKeys
  if (publicKeys === null || secretKeys === null) return { kind: 'resource-server', accessKeys, publicKeys, remoteJwks: null }
  return { kind: 'asymmetric-auth-server', accessKeys, refreshKeys: KeySet.fromSecretKey(secretKeys.refresh), publicKeys }
}

/** `accessToken.jwksUrl`: a resource server whose keys come from the auth server's JWK Set. */
export function jwksResourceServer (remoteJwks: RemoteJwks): ResourceServer {
  return { kind: 'resource-server', accessKeys: new KeySet([]), publicKeys: null, remoteJwks }
}
