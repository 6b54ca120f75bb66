import { constants, createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto'

// A DPoP client as RFC 9449 §4.2 describes it, with node:crypto: the tests' own proofs, each field
// overridable so a test can break exactly one rule.

export type ProofAlgorithm = 'ES256' | 'RS256' | 'PS256' | 'EdDSA'

export interface ProofKeyPair {
  alg: ProofAlgorithm
  privateKey: KeyObject
  /** The public JWK as the proof's header carries it. */
  jwk: Record<string, string>
  /** Its RFC 7638 thumbprint, computed here independently of the plugin. */
  jkt: string
}

export function proofKey (alg: ProofAlgorithm = 'ES256'): ProofKeyPair {
  const { privateKey, publicKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>
  const members = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : jwk.kty === 'OKP' ? ['crv', 'kty', 'x'] : ['e', 'kty', 'n']
  const canonical = JSON.stringify(Object.fromEntries(members.map(name => [name, jwk[name]])))
  return { alg, privateKey, jwk, jkt: createHash('sha256').update(canonical).digest('base64url') }
}

export interface ProofOptions {
  htm?: string
  htu: string
  /** The access token whose hash goes in `ath`. */
  accessToken?: string
  nonce?: string
  /** Seconds since the epoch; default now. */
  iat?: number
  jti?: string
  /** Header fields to set (or, as undefined, to drop). */
  header?: Record<string, unknown>
  /** Claims to set (or, as undefined, to drop). */
  claims?: Record<string, unknown>
  /** Sign with this key instead (the header still names `key`'s JWK). */
  signWith?: KeyObject
  /** The payload segment as it is (base64url), in place of the claims. */
  rawPayload?: string
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

export function makeProof (key: ProofKeyPair, options: ProofOptions): string {
  const header = dropUndefined({ typ: 'dpop+jwt', alg: key.alg, jwk: key.jwk, ...options.header })
  const claims = dropUndefined({
    jti: options.jti ?? randomUUID(),
    htm: options.htm ?? 'POST',
    htu: options.htu,
    iat: options.iat ?? Math.floor(Date.now() / 1000),
    ath: options.accessToken === undefined ? undefined : createHash('sha256').update(options.accessToken).digest('base64url'),
    nonce: options.nonce,
    ...options.claims
  })
  const input = `${b64(header)}.${options.rawPayload ?? b64(claims)}`
  return `${input}.${signature(key.alg, options.signWith ?? key.privateKey, input).toString('base64url')}`
}

function signature (alg: ProofAlgorithm, privateKey: KeyObject, input: string): Buffer {
  const data = Buffer.from(input)
  if (alg === 'ES256') return sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' })
  if (alg === 'EdDSA') return sign(null, data, privateKey)
  if (alg === 'PS256') return sign('sha256', data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
  return sign('sha256', data, privateKey)
}

function dropUndefined (value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined))
}

/** The URL the plugin expects in `htu` for an injected request to `path`. */
export const htu = (path: string) => `http://localhost${path}`
