import { createPrivateKey, createPublicKey, createSecretKey, hkdfSync, KeyObject, type JsonWebKey } from 'node:crypto'
import { JwksFetchError, refuseOption as fail } from '../errors.js'

/**
 * Access-token algorithms. jsonwebtoken 9 has no EdDSA, so neither has this plugin.
 *
 * @example
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, accessToken: { algorithm: 'ES256', keys } })
 */
export type AccessTokenAlgorithm = 'HS256' | 'RS256' | 'PS256' | 'ES256'
export type AsymmetricAlgorithm = Exclude<AccessTokenAlgorithm, 'HS256'>

export const ASYMMETRIC_ALGORITHMS: readonly AsymmetricAlgorithm[] = ['RS256', 'PS256', 'ES256']

/** Key material: PEM (string or Buffer), a JWK object or a `crypto.KeyObject`. */
export type KeyInput = string | Buffer | JsonWebKey | KeyObject

/**
 * One entry of `accessToken.keys`: a private key signs, the public key verifies.
 *
 * @example
 * const keys: AccessTokenKey[] = [
 *   { kid: '2026-11', privateKey: readFileSync('keys/2026-11.pem') }, // signs
 *   { kid: '2026-10', publicKey: readFileSync('keys/2026-10.pub.pem') } // still verifies older tokens
 * ]
 */
export interface AccessTokenKey {
  /** Written to the `kid` header of the tokens this key signs; selects the key on verify. */
  kid: string
  /** Only on the auth server, and only for keys that sign (the first key that has one signs). */
  privateKey?: KeyInput
  /** Derived from `privateKey` when left out. */
  publicKey?: KeyInput
}

/** A verification key and the one algorithm it may be used with. */
export interface TokenKey {
  algorithm: AccessTokenAlgorithm
  /** A public key. */
  key: KeyObject
  /** The `kid` header that selects it. */
  kid: string
}

/** The key tokens are signed with: its private (or secret) half. */
export interface SigningKey {
  algorithm: AccessTokenAlgorithm
  key: KeyObject
  /** Undefined only for the derived key of secret-derived HS256 mode, whose tokens carry no `kid`. */
  kid?: string
}

// Changing these invalidates every token issued before: they are part of the token format.
const SALT = 'fastify-refresh-auth'
const ACCESS_INFO = 'access-token HS256 v1'
const REFRESH_INFO = 'refresh-token HS256 v1'

const MIN_RSA_BITS = 2048
const KID = /^[\x21-\x7e]{1,128}$/

/**
 * The keys tokens of one type are verified with, looked up by `kid`, and the key that signs them.
 * The set behind a JWKS URL changes when it is refetched: `onChange` listeners hear of it
 * (a cache of verified tokens must be cleared then).
 */
export class KeySet {
  readonly signingKey: SigningKey | null
  #byKid: Map<string, TokenKey>
  readonly #listeners: Array<() => void> = []

  constructor (keys: TokenKey[], signingKey: SigningKey | null = null) {
    this.signingKey = signingKey
    this.#byKid = byKid(keys)
  }

  /**
   * The one HS256 key of secret-derived mode: tokens carry no `kid`, and are signed and verified with it
   * through the one-pass HS256 path (`lib/tokens/hs256.ts`), never looked up here.
   */
  static fromSecretKey (key: KeyObject): KeySet {
    return new KeySet([], { algorithm: 'HS256', key })
  }

  /**
   * The key for a token, chosen by its `kid` header among the configured keys only (never a path, URL
   * or query). Every other key pointer in the header (`jku`, `x5u`, `jwk`, `x5c`) is ignored.
   */
  select (token: string): TokenKey | undefined {
    const kid = tokenKid(token)
    return kid === undefined ? undefined : this.#byKid.get(kid)
  }

  has (kid: string): boolean {
    return this.#byKid.has(kid)
  }

  /** Swaps in a new set of verification keys (a refetched JWKS). */
  replace (keys: TokenKey[]): void {
    this.#byKid = byKid(keys)
    for (const listener of this.#listeners) listener()
  }

  /** Called after every `replace`. */
  onChange (listener: () => void): void {
    this.#listeners.push(listener)
  }

  /** The public keys as a JWK Set (RFC 7517 §5): never a private or symmetric key. */
  toJwks (): { keys: JsonWebKey[] } {
    const keys: JsonWebKey[] = []
    for (const { kid, algorithm, key } of this.#byKid.values()) {
      if (key.type === 'public') keys.push({ ...key.export({ format: 'jwk' }), kid, alg: algorithm, use: 'sig' })
    }
    return { keys }
  }
}

function byKid (keys: TokenKey[]): Map<string, TokenKey> {
  const map = new Map<string, TokenKey>()
  for (const key of keys) map.set(key.kid, key)
  return map
}

/** The `kid` header of a compact JWS, if it is a string; the token is not verified here. */
export function tokenKid (token: string): string | undefined {
  let header: unknown
  try {
    header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
  const kid = (header as { kid?: unknown } | null)?.kid
  return typeof kid === 'string' ? kid : undefined
}

/** The two keys derived from the secret: one per token type. */
export interface SecretKeys {
  access: KeyObject
  refresh: KeyObject
}

/**
 * Derives one key per token type from the host's secret (HKDF-SHA256, RFC 5869), so an access token
 * can never verify as a refresh token or the reverse, and the secret itself never signs anything.
 * Keys are KeyObjects made once: jsonwebtoken would otherwise re-parse a string key at every call.
 */
export function deriveKeys (secret: string | Buffer): SecretKeys {
  return { access: deriveKey(secret, ACCESS_INFO), refresh: deriveKey(secret, REFRESH_INFO) }
}

function deriveKey (secret: string | Buffer, info: string): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, SALT, info, 32)))
}

/**
 * The key set of `accessToken.keys`, every key checked at registration: its type against the
 * algorithm, RSA size, unique `kid`, and the private key against its public key.
 */
export function createAccessKeySet (algorithm: AsymmetricAlgorithm, keys: AccessTokenKey[]): KeySet {
  const verification: TokenKey[] = []
  let signingKey: SigningKey | null = null
  const seen = new Set<string>()
  for (const [index, entry] of keys.entries()) {
    if (entry === null || typeof entry !== 'object') fail(`accessToken.keys[${index}] must be an object`)
    const { kid } = entry
    if (typeof kid !== 'string' || !KID.test(kid)) fail(`accessToken.keys[${index}].kid must be 1 to 128 printable ASCII characters`)
    if (seen.has(kid)) fail(`duplicate kid '${kid}' in accessToken.keys`)
    seen.add(kid)
    const where = `accessToken.keys '${kid}'`
    if (entry.privateKey === undefined && entry.publicKey === undefined) fail(`${where} needs a publicKey or a privateKey`)
    const privateKey = entry.privateKey === undefined ? null : toPrivateKey(entry.privateKey, `${where} privateKey`)
    const publicKey = entry.publicKey === undefined
      ? createPublicKey(privateKey as KeyObject)
      : toPublicKey(entry.publicKey, `${where} publicKey`)
    checkKeyType(publicKey, algorithm, `${where} publicKey`)
    if (privateKey !== null) {
      if (!createPublicKey(privateKey).equals(publicKey)) fail(`${where}: the privateKey does not match the publicKey`)
      signingKey ??= { algorithm, key: privateKey, kid }
    }
    verification.push({ algorithm, key: publicKey, kid })
  }
  return new KeySet(verification, signingKey)
}

/**
 * The usable keys of a fetched JWK Set. Keys for another use or algorithm, and symmetric keys, are
 * skipped; a key that claims a supported algorithm but does not fit it makes the whole set refused.
 */
export function keysFromJwks (jwks: unknown, only?: AsymmetricAlgorithm): TokenKey[] {
  const entries = (jwks as { keys?: unknown } | null)?.keys
  if (!Array.isArray(entries)) throw new JwksFetchError('the answer is not a JWK Set')
  const keys: TokenKey[] = []
  const seen = new Set<string>()
  for (const jwk of entries) {
    const { kid, alg, use } = (jwk ?? {}) as { kid?: unknown, alg?: unknown, use?: unknown }
    if (typeof kid !== 'string' || (use !== undefined && use !== 'sig')) continue
    if (!ASYMMETRIC_ALGORITHMS.includes(alg as AsymmetricAlgorithm) || (only !== undefined && alg !== only)) continue
    if (seen.has(kid)) throw new JwksFetchError(`duplicate kid '${kid}'`)
    seen.add(kid)
    const key = toPublicKey(jwk, `JWK '${kid}'`)
    checkKeyType(key, alg as AsymmetricAlgorithm, `JWK '${kid}'`)
    keys.push({ algorithm: alg as AsymmetricAlgorithm, key, kid })
  }
  return keys
}

function isPem (input: unknown): input is string | Buffer {
  return typeof input === 'string' || Buffer.isBuffer(input)
}

function toPublicKey (input: KeyInput, where: string): KeyObject {
  if (input instanceof KeyObject) {
    if (input.type !== 'public') fail(`${where} must be a public key, not a ${input.type} key`)
    return input
  }
  // createPublicKey would quietly derive a public key from private material: refuse it instead
  if (isPem(input) ? /PRIVATE KEY/.test(input.toString()) : typeof input === 'object' && input !== null && 'd' in input) {
    fail(`${where} must be a public key, not a private key`)
  }
  if ((input as JsonWebKey | null)?.kty === 'oct') fail(`${where} must be a public key, not a symmetric key`)
  try {
    return isPem(input) ? createPublicKey(input) : createPublicKey({ key: input as JsonWebKey, format: 'jwk' })
  } catch {
    return fail(`${where} is not a PEM or JWK public key`)
  }
}

function toPrivateKey (input: KeyInput, where: string): KeyObject {
  if (input instanceof KeyObject) {
    if (input.type !== 'private') fail(`${where} must be a private key, not a ${input.type} key`)
    return input
  }
  try {
    return isPem(input) ? createPrivateKey(input) : createPrivateKey({ key: input as JsonWebKey, format: 'jwk' })
  } catch {
    return fail(`${where} is not a PEM or JWK private key`)
  }
}

function checkKeyType (key: KeyObject, algorithm: AsymmetricAlgorithm, where: string): void {
  const type = key.asymmetricKeyType
  // every asymmetric KeyObject has details in Node 20
  const details = key.asymmetricKeyDetails as { namedCurve?: string, modulusLength?: number }
  if (algorithm === 'ES256') {
    if (type !== 'ec' || details.namedCurve !== 'prime256v1') {
      fail(`${where} is ${describe(key)} key, but ES256 needs an EC P-256 key`)
    }
    return
  }
  if (type !== 'rsa') fail(`${where} is ${describe(key)} key, but ${algorithm} needs an RSA key`)
  const bits = details.modulusLength as number
  if (bits < MIN_RSA_BITS) fail(`${where} is a ${bits}-bit RSA key, but ${algorithm} needs at least ${MIN_RSA_BITS} bits`)
}

function describe (key: KeyObject): string {
  const { namedCurve } = key.asymmetricKeyDetails as { namedCurve?: string }
  return `an ${key.asymmetricKeyType}${namedCurve === undefined ? '' : ` ${namedCurve}`}`
}
