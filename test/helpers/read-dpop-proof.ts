import { createHash, createPublicKey, verify } from 'node:crypto'

// DPoP proofs read and checked in the test, with node:crypto only: not the plugin's verifier, so a proof the
// client gets wrong is not judged by code that might share its mistake.

export interface ReadProof {
  header: { typ: string, alg: string, jwk: Record<string, string> }
  payload: { jti: string, htm: string, htu: string, iat: number, ath?: string, nonce?: string }
  /** RFC 7638 thumbprint of the header's key. */
  jkt: string
}

const decode = (part: string): any => JSON.parse(Buffer.from(part, 'base64url').toString())

/** The proof's header and claims once its ES256 signature has been checked against its own `jwk`; throws otherwise. */
export function readProof (proof: string): ReadProof {
  const [header, payload, signature] = proof.split('.')
  const parsed = decode(header)
  const key = createPublicKey({ key: parsed.jwk, format: 'jwk' })
  if (!verify('sha256', Buffer.from(`${header}.${payload}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))) {
    throw new Error('bad proof signature')
  }
  const { crv, kty, x, y } = parsed.jwk
  return { header: parsed, payload: decode(payload), jkt: createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url') }
}

/** base64url SHA-256 of an access token: a proof's `ath`. */
export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('base64url')

/** The claims of a JWT, read without checking it. */
export const claimsOf = (token: string): any => decode(token.split('.')[1])
