import { createSecretKey, hkdfSync } from 'node:crypto'
import { refuseOption as fail } from '../errors.js'
import { DpopNonces } from '../tokens/dpop-nonce.js'
import { DPOP_ALGORITHMS, type DpopAlgorithm } from '../tokens/dpop-proof.js'
import { durationOption as duration } from './duration.js'
import type { DpopOptions, DpopSettings } from './types.js'

// Not the SALT of the token keys: a nonce key never equals a signing key, whatever the secret.
const NONCE_KEY_INFO = 'fastify-refresh-auth dpop-nonce'
const ORIGIN = /^https?:\/\/[^/?#\s]+$/

/**
 * `dpop`, resolved; null when off. Nonces need the secret every instance shares: without one (a resource
 * server on public keys) `nonce: true` is refused, as each instance would mint nonces the others refuse.
 */
export function resolveDpop (dpop: boolean | DpopOptions | undefined, secret: string | Buffer | undefined): DpopSettings | null {
  if (dpop === undefined || dpop === false) return null
  if (dpop !== true && (dpop === null || typeof dpop !== 'object')) fail('dpop must be a boolean or an object')
  const options: DpopOptions = dpop === true ? {} : dpop
  const required = options.required ?? false
  if (typeof required !== 'boolean') fail('dpop.required must be a boolean')
  const nonce = options.nonce ?? false
  if (typeof nonce !== 'boolean') fail('dpop.nonce must be a boolean')
  const proofMaxAge = duration(options.proofMaxAge, '60s', 'dpop.proofMaxAge')
  if (proofMaxAge < 2) fail('dpop.proofMaxAge must be at least 2 seconds')
  const algorithms = options.algorithms ?? DPOP_ALGORITHMS
  if (!Array.isArray(algorithms) || algorithms.length === 0 || !algorithms.every(alg => (DPOP_ALGORITHMS as readonly unknown[]).includes(alg))) {
    fail(`dpop.algorithms must be a non-empty array of ${DPOP_ALGORITHMS.join(', ')}`)
  }
  const origin = options.origin ?? null
  if (origin !== null && (typeof origin !== 'string' || !ORIGIN.test(origin))) fail("dpop.origin must be an origin such as 'https://api.example.com', without a path")
  if (nonce && secret === undefined) fail('dpop.nonce needs the secret the instances share: nonces are an HMAC under a key derived from it')
  return {
    required,
    algorithms: [...new Set(algorithms as DpopAlgorithm[])],
    proofMaxAge,
    origin: origin?.toLowerCase() ?? null,
    // a nonce lives one to two slots: half the proof age each, so a nonce never outlives proofMaxAge
    nonces: nonce ? new DpopNonces(nonceKey(secret as string | Buffer), proofMaxAge * 500) : null
  }
}

function nonceKey (secret: string | Buffer): ReturnType<typeof createSecretKey> {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, '', NONCE_KEY_INFO, 32)))
}
