import type { RotateRequest, RotateResult, SessionRecord, SessionStore } from './store.js'

/**
 * Options of {@link MemoryStore}.
 *
 * @example
 * const store = new MemoryStore({ maxSessions: 10_000, pruneInterval: 30 })
 */
export interface MemoryStoreOptions {
  /** Most sessions kept; past it the least recently refreshed one is dropped. Default 100,000. */
  maxSessions?: number
  /** Seconds between sweeps that drop expired sessions. Default 60. */
  pruneInterval?: number
}

/**
 * The embedded default store: sessions in a Map of this process. Safe for one process only
 * (use a shared store such as Redis behind a load balancer). Each method does its work
 * synchronously, so every operation is atomic.
 *
 * @example
 * const store = new MemoryStore({ maxSessions: 10_000 })
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store })
 */
export class MemoryStore implements SessionStore {
  readonly #sessions = new Map<string, SessionRecord>()
  readonly #maxSessions: number
  readonly #timer: NodeJS.Timeout

  constructor (options: MemoryStoreOptions = {}) {
    const { maxSessions = 100_000, pruneInterval = 60 } = options
    if (!Number.isInteger(maxSessions) || maxSessions < 1) {
      throw new TypeError('MemoryStore: maxSessions must be a positive integer')
    }
    if (typeof pruneInterval !== 'number' || !(pruneInterval > 0)) {
      throw new TypeError('MemoryStore: pruneInterval must be a positive number of seconds')
    }
    this.#maxSessions = maxSessions
    // unref'd: a sweep timer must never keep the process alive
    this.#timer = setInterval(() => this.prune(), pruneInterval * 1000).unref()
  }

  /** Number of sessions held, expired ones not yet swept included. */
  get size (): number {
    return this.#sessions.size
  }

  async create (session: SessionRecord): Promise<void> {
    if (this.#sessions.size >= this.#maxSessions) this.#dropOldest()
    this.#sessions.set(session.sessionId, { ...session })
  }

  async rotate (request: RotateRequest): Promise<RotateResult> {
    const session = this.#sessions.get(request.sessionId)
    if (session === undefined) return { outcome: 'not-found' }
    if (request.now >= session.expiresAt || request.now >= session.absoluteExpiresAt) {
      this.#sessions.delete(request.sessionId)
      return { outcome: 'not-found' }
    }
    const presented = request.presentedTokenId
    if (presented === session.tokenId) {
      session.previousTokenId = presented
      session.tokenId = request.nextTokenId
      session.rotatedAt = request.now
      session.expiresAt = request.nextExpiresAt
      // re-insert so the Map's order is least recently refreshed first
      this.#sessions.delete(request.sessionId)
      this.#sessions.set(request.sessionId, session)
      return { outcome: 'rotated', session: { ...session } }
    }
    if (presented === session.previousTokenId) {
      if (session.tokenId === request.nextTokenId) return { outcome: 'rotated', session: { ...session } }
      if (request.now - session.rotatedAt < request.reuseIntervalMs) return { outcome: 'grace', session: { ...session } }
    }
    this.#sessions.delete(request.sessionId)
    return { outcome: 'reused', session }
  }

  async revoke (sessionId: string): Promise<void> {
    this.#sessions.delete(sessionId)
  }

  /** Drops expired sessions now; the timer calls this on its own. */
  prune (now = Date.now()): void {
    for (const [id, session] of this.#sessions) {
      if (now >= session.expiresAt || now >= session.absoluteExpiresAt) this.#sessions.delete(id)
    }
  }

  /** Stops the sweep timer. */
  close (): void {
    clearInterval(this.#timer)
  }

  #dropOldest (): void {
    // only called when the Map is full, so there is a first key
    this.#sessions.delete(this.#sessions.keys().next().value as string)
  }
}
