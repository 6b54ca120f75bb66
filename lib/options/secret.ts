import { refuseOption } from '../errors.js'

// A random 32-character hex secret (128 bits) estimates at 87 bits or more; `'a'.repeat(32)` at 0,
// 24 times 'a' plus 8 random characters at 50. Below this, a secret is mostly a few bytes over and over.
const MIN_ESTIMATED_BITS = 64
const HOW_TO_GENERATE = 'generate one with `openssl rand -base64 48`'

/**
 * Refuses a secret that is obviously not random: made of few distinct bytes, or one pattern repeated
 * (`'changeme'` four times, `'abcd…'`). A sanity check against placeholders, not a measure of entropy:
 * a secret that passes is not thereby strong.
 */
export function checkSecretLooksRandom (secret: string | Buffer): void {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret
  let reason: string | null = null
  if (estimatedBits(bytes) < MIN_ESTIMATED_BITS) reason = 'it is made of too few distinct bytes'
  else if (isRepeated(bytes)) reason = 'it repeats one pattern'
  else if (isRepeated(steps(bytes))) reason = 'it is one run of evenly spaced bytes'
  if (reason !== null) refuseOption(`secret does not look random (${reason}); ${HOW_TO_GENERATE}`)
}

/** Length times the Shannon entropy of the byte frequencies: what the secret would hold if its bytes were drawn independently. */
function estimatedBits (bytes: Uint8Array): number {
  const counts = new Map<number, number>()
  for (const byte of bytes) counts.set(byte, (counts.get(byte) ?? 0) + 1)
  let bits = 0
  for (const count of counts.values()) bits -= count * Math.log2(count / bytes.length)
  return bits
}

/** True when the sequence has a period of at most half its length: one pattern, repeated at least twice. */
function isRepeated (sequence: Uint8Array): boolean {
  // KMP prefix function, linear in the length: the longest border (a prefix that is also a suffix)
  // of the whole sequence leaves its smallest period
  const border = new Uint32Array(sequence.length)
  for (let i = 1; i < sequence.length; i++) {
    let length = border[i - 1]
    while (length > 0 && sequence[i] !== sequence[length]) length = border[length - 1]
    if (sequence[i] === sequence[length]) length++
    border[i] = length
  }
  const period = sequence.length - border[sequence.length - 1]
  return period * 2 <= sequence.length
}

/** The differences between neighbouring bytes (mod 256): constant for `'abcdef…'`. */
function steps (bytes: Uint8Array): Uint8Array {
  const result = new Uint8Array(bytes.length - 1)
  for (let i = 1; i < bytes.length; i++) result[i - 1] = bytes[i] - bytes[i - 1]
  return result
}
