import { InvalidOptionError } from '../errors.js'
import type { RegisteredClaims } from './codec.js'

interface CacheEntry<Claims> {
  /** The whole key (the Authorization header that carried the token): an entry answers only for it. */
  key: string
  claims: Claims
  /** The token's `exp` in milliseconds: the entry is dead from this instant on. */
  expiresAtMs: number
  /** Set by each hit, cleared when eviction passes over the entry (second chance). */
  used: boolean
}

/**
 * A 32-bit hash of the key's last characters (the token's signature: for verified tokens, effectively
 * random). Entries are found by it and then matched on the whole key: a number is a cheaper Map key than
 * any string cut from the header, which would have to be allocated and hashed on every request.
 */
function tailHash (key: string): number {
  let hash = 0x811c9dc5
  for (let i = Math.max(0, key.length - 12); i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  return hash | 1 // never 0, the value of an empty doorkeeper slot
}

// Admission when full: a token is cached only on a second sighting within roughly `slots` refused
// admissions. A stream of tokens that never come back soon (every request a miss) then costs no insertion,
// no eviction and no long-lived garbage, so a miss is no dearer than with no cache at all; a token that is
// used again is cached from its second request on.
const MIN_DOORKEEPER_SLOTS = 64

/**
 * Access tokens that already passed verification, keyed by the exact Authorization header that carried
 * them, so a token presented again skips the header parsing, the HMAC, the base64 and the JSON parsing. Bounded: past `maxEntries` the least recently used entries go, by the
 * second-chance approximation of LRU (a hit sets a flag rather than reordering anything), and a full cache
 * admits a token only on its second sighting (see the doorkeeper above). Only
 * successful verifications may be stored (the caller's duty), an entry answers only for its exact
 * key and never at or past the token's `exp`, and `clear()` empties it whenever the access-token keys
 * change. Two keys with the same hash share a place: the later verified one takes it.
 */
export class TokenCache<Claims extends RegisteredClaims = RegisteredClaims> {
  // A Map iterates in insertion order: the first entry is the oldest.
  readonly #entries = new Map<number, CacheEntry<Claims>>()
  readonly #maxEntries: number
  // Eviction walks the Map from its front with one long-lived iterator: a fresh iterator per eviction
  // would step again over every slot deleted since V8 last compacted the table. Everything the
  // iterator has passed was deleted (evicted or moved to the back), so its next entry is the oldest.
  #front: MapIterator<[number, CacheEntry<Claims>]>
  // Hashes of tokens refused admission, one per slot: a later token landing on the same slot overwrites it.
  readonly #doorkeeper: Int32Array
  readonly #doorkeeperMask: number

  constructor (maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new InvalidOptionError('TokenCache: maxEntries must be a positive integer')
    this.#maxEntries = maxEntries
    this.#front = this.#entries.entries()
    // about a quarter of the cache: a token must come back within a few thousand misses to be admitted
    let slots = MIN_DOORKEEPER_SLOTS
    while (slots * 4 < maxEntries) slots *= 2
    this.#doorkeeper = new Int32Array(slots)
    this.#doorkeeperMask = slots - 1
  }

  /** Number of entries held, expired ones not yet looked up included. */
  get size (): number {
    return this.#entries.size
  }

  /** The claims of a cached, unexpired token, or undefined. */
  get (key: string, nowMs: number): Claims | undefined {
    const hash = tailHash(key)
    const entry = this.#entries.get(hash)
    if (entry === undefined || entry.key !== key) return undefined
    if (nowMs >= entry.expiresAtMs) {
      this.#entries.delete(hash)
      return undefined
    }
    entry.used = true
    return entry.claims
  }

  /**
   * Remembers a token that verified, under the key that carried it. `claims` must have its nested values
   * frozen (see `freezeNested`): every later request with this key gets a copy of it that shares them.
   */
  set (key: string, claims: Claims, nowMs: number): void {
    const expiresAtMs = claims.exp * 1000
    if (nowMs >= expiresAtMs) return
    const hash = tailHash(key)
    if (!this.#entries.delete(hash) && this.#entries.size >= this.#maxEntries) {
      if (!this.#seenRecently(hash)) return
      this.#evictOne()
    }
    this.#entries.set(hash, { key, claims, expiresAtMs, used: false })
  }

  /** Whether a key of this hash was refused admission recently; if not, remembers it for next time. */
  #seenRecently (hash: number): boolean {
    const slot = hash & this.#doorkeeperMask
    if (this.#doorkeeper[slot] === hash) return true
    this.#doorkeeper[slot] = hash
    return false
  }

  /** Forgets every token: call it whenever a key that verified them may no longer be trusted. */
  clear (): void {
    this.#entries.clear()
    this.#front = this.#entries.entries()
  }

  // Oldest first; an entry used since it was last passed over moves to the back instead of going.
  // Each pass clears the flag it meets, so this ends within one trip round the Map.
  #evictOne (): void {
    let oldest = this.#oldest()
    while (oldest[1].used) {
      oldest[1].used = false
      this.#entries.delete(oldest[0])
      this.#entries.set(oldest[0], oldest[1])
      oldest = this.#oldest()
    }
    this.#entries.delete(oldest[0])
  }

  // Only called on a full Map. Every live entry lies ahead of the iterator (it never reaches the end:
  // each eviction is followed by an insertion), and a Map iterator also sees entries added after it.
  #oldest (): [number, CacheEntry<Claims>] {
    return this.#front.next().value as [number, CacheEntry<Claims>]
  }
}

/**
 * Freezes every object and array inside a claims object, leaving the claims object itself as it is: it is
 * only ever handed out as a copy (`{ ...claims }`, fast on an unfrozen object, slow on a frozen one), while
 * the nested values are shared by every copy, so a handler that writes to them could otherwise change the
 * cache and the next request. Verified claims come from JSON.parse: plain objects and arrays.
 */
export function freezeNested<T extends object> (claims: T): T {
  for (const key in claims) deepFreeze(claims[key])
  return claims
}

function deepFreeze (value: unknown): void {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    // for…in rather than Object.keys: no array per object on the path of every uncached token
    for (const key in value) deepFreeze((value as Record<string, unknown>)[key])
  }
}
