// Expired entries dropped per insertion: enough to keep pace with the arrivals, never a long pause.
const EXPIRED_DROPPED_PER_CLAIM = 4

/**
 * The proof ids (`jti`) this instance has seen, each until its proof is too old to be accepted anyway
 * (RFC 9449 §11.1). Bounded in time and in size: past `maxEntries` the oldest ids go first, and a proof
 * whose id was dropped early is still refused once its `iat` leaves the accepted window.
 */
export class ProofReplayCache {
  // Insertion order is close to expiry order: proofs arrive fresh, so the front expires first.
  readonly #seen = new Map<string, number>()
  readonly #maxEntries: number

  constructor (maxEntries: number) {
    this.#maxEntries = maxEntries
  }

  get size (): number {
    return this.#seen.size
  }

  /**
   * Records a proof id until `expiresAtMs`; false when it was seen already and has not expired (a replay).
   */
  claim (id: string, expiresAtMs: number, nowMs: number): boolean {
    const known = this.#seen.get(id)
    if (known !== undefined && known > nowMs) return false
    if (known !== undefined) this.#seen.delete(id)
    this.#dropExpired(nowMs)
    if (this.#seen.size >= this.#maxEntries) this.#seen.delete(this.#seen.keys().next().value as string)
    this.#seen.set(id, expiresAtMs)
    return true
  }

  #dropExpired (nowMs: number): void {
    let dropped = 0
    for (const [id, expiresAtMs] of this.#seen) {
      if (expiresAtMs > nowMs || dropped === EXPIRED_DROPPED_PER_CLAIM) return
      this.#seen.delete(id)
      dropped++
    }
  }
}
