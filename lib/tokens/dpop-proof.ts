import { constants, createHash, createPublicKey, verify, type KeyObject } from 'node:crypto'

// DPoP proofs (RFC 9449 §4.2, §4.3): a compact JWS signed by the client's key, which rides in its own header.
// jsonwebtoken cannot verify a token against a key the token itself carries, so this checks it here, strictly,
// with node:crypto.

/** The proof algorithms this plugin can verify. */
export type DpopAlgorithm = 'ES256' | 'RS256' | 'PS256' | 'EdDSA'
export const DPOP_ALGORITHMS: readonly DpopAlgorithm[] = ['ES256', 'RS256', 'PS256', 'EdDSA']

// Far above any honest proof (an RSA-4096 key in the header and its signature come to about 2.5 KB).
export const MAX_PROOF_LENGTH = 8192
const BASE64URL = /^[\w-]+$/
const PROOF_TYPE = 'dpop+jwt'
// The members of a private or symmetric JWK: a proof's key must be public (RFC 9449 §4.2).
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']
const MIN_RSA_BITS = 2048
// A `jti` is an id, not a payload: a longer one would only fill the replay cache.
const MAX_JTI_LENGTH = 256
// Distinct proof keys whose parsed header is kept: a client signs every proof with the same header bytes.
const MAX_CACHED_HEADERS = 1024

interface AlgorithmRule {
  kty: string
  crv?: string
  /** The RFC 7638 required members, in lexicographic order: the thumbprint hashes exactly these. */
  members: readonly string[]
  check (data: Buffer, key: KeyObject, signature: Buffer): boolean
}

const RULES: Record<DpopAlgorithm, AlgorithmRule> = {
  ES256: {
    kty: 'EC',
    crv: 'P-256',
    members: ['crv', 'kty', 'x', 'y'],
    check: (data, key, signature) => signature.length === 64 && verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
  },
  RS256: {
    kty: 'RSA',
    members: ['e', 'kty', 'n'],
    check: (data, key, signature) => verify('sha256', data, key, signature)
  },
  PS256: {
    kty: 'RSA',
    members: ['e', 'kty', 'n'],
    // RFC 7518 §3.5: the salt is as long as the hash
    check: (data, key, signature) => verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature)
  },
  EdDSA: {
    kty: 'OKP',
    crv: 'Ed25519',
    members: ['crv', 'kty', 'x'],
    check: (data, key, signature) => signature.length === 64 && verify(null, data, key, signature)
  }
}

/** The proof's key, parsed and imported once per distinct header. */
interface ProofKey {
  alg: DpopAlgorithm
  key: KeyObject
  /** RFC 7638 SHA-256 thumbprint of the public key, base64url. */
  jkt: string
}

/** What the request a proof came with must match. */
export interface ProofExpectation {
  /** The request's method (`htm`). */
  method: string
  /** The request's URI without query and fragment (`htu`). */
  uri: string
  /** For a protected route: base64url SHA-256 of the access token (`ath`); undefined at the token endpoint. */
  accessTokenHash?: string
  /** Seconds since the epoch. */
  now: number
}

/** A proof that passed every check of RFC 9449 §4.3 but the replay and nonce checks, which need state. */
export interface VerifiedProof {
  jkt: string
  jti: string
  /** Seconds since the epoch. */
  iat: number
  nonce: string | undefined
}

export interface ProofVerifierOptions {
  algorithms: readonly DpopAlgorithm[]
  /** Seconds a proof's `iat` may be in the past. */
  maxAge: number
  /** Seconds of clock skew accepted, in the past and the future. */
  clockTolerance: number
}

/**
 * Verifies DPoP proofs: size, compact form, `typ`, `alg` in the allow-list, a public `jwk` of the
 * algorithm's key type, the signature, then `htm`, `htu`, `iat`, `jti` and `ath`. Answers the verified
 * proof, or a short reason (for logs, never the proof itself) when it must be refused.
 */
export class ProofVerifier {
  readonly #algorithms: ReadonlySet<string>
  readonly #maxAge: number
  readonly #clockTolerance: number
  readonly #keys = new Map<string, ProofKey>()

  constructor ({ algorithms, maxAge, clockTolerance }: ProofVerifierOptions) {
    this.#algorithms = new Set(algorithms)
    this.#maxAge = maxAge
    this.#clockTolerance = clockTolerance
  }

  verify (proof: string, expected: ProofExpectation): VerifiedProof | string {
    if (proof.length > MAX_PROOF_LENGTH) return 'too long'
    const parts = proof.split('.')
    if (parts.length !== 3 || !parts.every(part => BASE64URL.test(part))) return 'not a compact JWS'
    const [header, payload, signature] = parts
    const key = this.#proofKey(header)
    if (typeof key === 'string') return key
    if (!RULES[key.alg].check(Buffer.from(`${header}.${payload}`), key.key, Buffer.from(signature, 'base64url'))) return 'bad signature'
    const claims = parseObject(payload)
    if (claims === null) return 'payload is not a JSON object'
    return this.#checkClaims(claims, key.jkt, expected)
  }

  #proofKey (header: string): ProofKey | string {
    const cached = this.#keys.get(header)
    if (cached !== undefined) return cached
    const key = this.#parseHeader(header)
    if (typeof key !== 'string') {
      // a flood of distinct keys only costs the parse it would cost anyway
      if (this.#keys.size >= MAX_CACHED_HEADERS) this.#keys.clear()
      this.#keys.set(header, key)
    }
    return key
  }

  #parseHeader (encoded: string): ProofKey | string {
    const header = parseObject(encoded)
    if (header === null) return 'header is not a JSON object'
    if (header.typ !== PROOF_TYPE) return 'typ is not dpop+jwt'
    const alg = header.alg
    if (typeof alg !== 'string' || !this.#algorithms.has(alg)) return 'alg not accepted'
    // extensions we do not understand must be refused (RFC 7515 §4.1.11)
    if (header.crit !== undefined) return 'crit not supported'
    const jwk = header.jwk
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'no jwk'
    const members = jwk as Record<string, unknown>
    if (PRIVATE_MEMBERS.some(name => name in members)) return 'jwk has private members'
    const rule = RULES[alg as DpopAlgorithm]
    if (members.kty !== rule.kty || (rule.crv !== undefined && members.crv !== rule.crv)) return 'jwk does not fit alg'
    const publicJwk: Record<string, string> = {}
    for (const name of rule.members) {
      const value = members[name]
      if (typeof value !== 'string' || (name !== 'kty' && name !== 'crv' && !BASE64URL.test(value))) return 'jwk member missing'
      publicJwk[name] = value
    }
    let key: KeyObject
    try {
      key = createPublicKey({ key: publicJwk, format: 'jwk' })
    } catch {
      return 'jwk is not a valid key'
    }
    if (rule.kty === 'RSA' && (key.asymmetricKeyDetails as { modulusLength: number }).modulusLength < MIN_RSA_BITS) return 'RSA key too short'
    return { alg: alg as DpopAlgorithm, key, jkt: thumbprintOf(publicJwk, rule.members) }
  }

  #checkClaims (claims: Record<string, unknown>, jkt: string, expected: ProofExpectation): VerifiedProof | string {
    const { jti, htm, htu, iat, ath, nonce } = claims
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) return 'jti missing'
    if (htm !== expected.method) return 'htm does not match'
    if (typeof htu !== 'string' || !sameUri(htu, expected.uri)) return 'htu does not match'
    if (typeof iat !== 'number' || !Number.isFinite(iat)) return 'iat missing'
    if (iat < expected.now - this.#maxAge - this.#clockTolerance) return 'iat too old'
    if (iat > expected.now + this.#clockTolerance) return 'iat in the future'
    if (expected.accessTokenHash !== undefined && ath !== expected.accessTokenHash) return 'ath does not match'
    if (nonce !== undefined && typeof nonce !== 'string') return 'nonce is not a string'
    return { jkt, jti, iat, nonce }
  }
}

/** RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace, base64url. */
function thumbprintOf (jwk: Record<string, string>, members: readonly string[]): string {
  const canonical = `{${members.map(name => `${JSON.stringify(name)}:${JSON.stringify(jwk[name])}`).join(',')}}`
  return createHash('sha256').update(canonical).digest('base64url')
}

/** `ath`: base64url SHA-256 of the access token (RFC 9449 §4.2). */
export function accessTokenHash (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

function parseObject (encoded: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : null
  } catch {
    return null
  }
}

/**
 * RFC 9449 §4.3: `htu` matches the request's URI ignoring query and fragment, after the syntax-based
 * normalisation of RFC 3986 §6.2.2 and the scheme-based one of §6.2.3 (case, default port) that URL parsing does.
 */
function sameUri (htu: string, expected: string): boolean {
  if (htu === expected) return true
  try {
    const given = new URL(htu)
    const wanted = new URL(expected)
    return given.origin === wanted.origin && given.pathname === wanted.pathname && given.username === '' && given.password === ''
  } catch {
    return false
  }
}
