/**
 * Each user's session ids, least recently refreshed first, and who holds the most: what MemoryStore needs to
 * list, count and end a user's sessions, and to pick whom a full store takes a session from, each in
 * constant time however many sessions a user holds.
 */
export class UserSessionIndex {
  // a bare string for the usual one session, a Set (in refresh order) past that
  readonly #byUser = new Map<string, string | Set<string>>()
  // session count → the users holding that many; #largest is the highest non-empty count
  readonly #usersByCount = new Map<number, Set<string>>()
  #largest = 0

  add (userId: string, sessionId: string): void {
    const ids = this.#byUser.get(userId)
    if (ids === undefined) this.#byUser.set(userId, sessionId)
    else if (typeof ids === 'string') this.#byUser.set(userId, new Set([ids, sessionId]))
    else ids.add(sessionId)
    this.#recount(userId, ids === undefined ? 0 : typeof ids === 'string' ? 1 : ids.size - 1, 1)
  }

  /** Removes a session the index holds. */
  remove (userId: string, sessionId: string): void {
    const ids = this.#byUser.get(userId) as string | Set<string>
    if (typeof ids === 'string') {
      this.#byUser.delete(userId)
      this.#recount(userId, 1, -1)
      return
    }
    ids.delete(sessionId)
    if (ids.size === 1) this.#byUser.set(userId, ids.values().next().value as string)
    this.#recount(userId, ids.size + 1, -1)
  }

  /** Moves a session to the most recently refreshed end of its user's order. */
  touch (userId: string, sessionId: string): void {
    const ids = this.#byUser.get(userId)
    if (typeof ids === 'object' && ids.delete(sessionId)) ids.add(sessionId)
  }

  /** A copy, least recently refreshed first: the callers end sessions while they walk it. */
  sessionIdsOf (userId: string): string[] {
    const ids = this.#byUser.get(userId)
    return ids === undefined ? [] : typeof ids === 'string' ? [ids] : [...ids]
  }

  /** The user holding the most sessions (some user holds one): `preferred` when it holds as many as anyone. */
  largest (preferred: string): string {
    const holders = this.#usersByCount.get(this.#largest) as Set<string>
    if (holders.has(preferred)) return preferred
    return holders.values().next().value as string
  }

  /** The user's least recently refreshed session id (the user must hold one). */
  leastRecentlyRefreshed (userId: string): string {
    const ids = this.#byUser.get(userId) as string | Set<string>
    return typeof ids === 'string' ? ids : ids.values().next().value as string
  }

  #recount (userId: string, before: number, change: 1 | -1): void {
    const after = before + change
    const from = this.#usersByCount.get(before)
    if (from !== undefined) {
      from.delete(userId)
      if (from.size === 0) this.#usersByCount.delete(before)
    }
    if (after > 0) {
      const to = this.#usersByCount.get(after)
      if (to === undefined) this.#usersByCount.set(after, new Set([userId]))
      else to.add(userId)
    }
    // counts move by one, so when the largest count empties, the next one down holds the user that moved
    if (after > this.#largest) this.#largest = after
    else if (before === this.#largest && !this.#usersByCount.has(before)) this.#largest = after
  }
}
