import type { RegisteredClaims } from './tokens.js'

interface CacheEntry<Claims> {
  claims: Claims
  /** The token's `exp` in milliseconds: the entry is dead from this instant on. */
  expiresAtMs: number
}

/**
 * Access tokens that already passed verification, keyed by the exact token string, so a token
 * presented again skips the HMAC, the base64 and the JSON parsing. Bounded: past `maxEntries` the
 * least recently used entry goes. Only successful verifications may be stored (the caller's duty),
 * an entry is never served at or past its token's `exp`, and `clear()` empties it whenever the
 * access-token keys change.
 */
export class TokenCache<Claims extends RegisteredClaims = RegisteredClaims> {
  // A Map iterates in insertion order: re-inserting on each hit keeps the least recently used first.
  readonly #entries = new Map<string, CacheEntry<Claims>>()
  readonly #maxEntries: number

  constructor (maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new TypeError('TokenCache: maxEntries must be a positive integer')
    this.#maxEntries = maxEntries
  }

  /** Number of entries held, expired ones not yet looked up included. */
  get size (): number {
    return this.#entries.size
  }

  /** The claims of a cached, unexpired token, or undefined. */
  get (token: string, nowMs: number): Claims | undefined {
    const entry = this.#entries.get(token)
    if (entry === undefined) return undefined
    this.#entries.delete(token)
    if (nowMs >= entry.expiresAtMs) return undefined
    this.#entries.set(token, entry)
    return entry.claims
  }

  /**
   * Remembers a token that verified. `claims` must be immutable (see `deepFreeze`): every later
   * request with this token gets the very same object.
   */
  set (token: string, claims: Claims, nowMs: number): void {
    const expiresAtMs = claims.exp * 1000
    if (nowMs >= expiresAtMs) return
    this.#entries.delete(token)
    if (this.#entries.size >= this.#maxEntries) {
      // full, so there is a first key
      this.#entries.delete(this.#entries.keys().next().value as string)
    }
    this.#entries.set(token, { claims, expiresAtMs })
  }

  /** Forgets every token: call it whenever a key that verified them may no longer be trusted. */
  clear (): void {
    this.#entries.clear()
  }
}

/**
 * Freezes a JSON value and everything in it, so a handler that writes to `request.user` can change
 * neither the cache nor the next request. Verified claims come from JSON.parse: plain objects and arrays.
 */
export function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
  }
  return value
}
