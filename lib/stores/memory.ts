import { InvalidOptionError } from '../errors.js'
import { toSessionInfo, type CreateOptions, type RotateRequest, type RotateResult, type SessionInfo, type SessionRecord, type SessionStore } from './store.js'

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
  // userId → its session ids: a bare string for the usual one session, an array past that (small per session)
  readonly #byUser = new Map<string, string | string[]>()
  readonly #maxSessions: number
  readonly #timer: NodeJS.Timeout

  constructor (options: MemoryStoreOptions = {}) {
    const { maxSessions = 100_000, pruneInterval = 60 } = options
    if (!Number.isInteger(maxSessions) || maxSessions < 1) {
      throw new InvalidOptionError('MemoryStore: maxSessions must be a positive integer')
    }
    if (typeof pruneInterval !== 'number' || !(pruneInterval > 0)) {
      throw new InvalidOptionError('MemoryStore: pruneInterval must be a positive number of seconds')
    }
    this.#maxSessions = maxSessions
    // unref'd: a sweep timer must never keep the process alive
    this.#timer = setInterval(() => this.prune(), pruneInterval * 1000).unref()
  }

  /** Number of sessions held, expired ones not yet swept included. */
  get size (): number {
    return this.#sessions.size
  }

  // `options` (limits, replacement) are applied once issue 11 lands on this store
  async create (session: SessionRecord, _options?: CreateOptions): Promise<void> {
    const existing = this.#sessions.get(session.sessionId)
    if (existing !== undefined) this.#delete(existing)
    else if (this.#sessions.size >= this.#maxSessions) this.#dropOldest()
    this.#sessions.set(session.sessionId, { ...session })
    this.#index(session.userId, session.sessionId)
  }

  async rotate (request: RotateRequest): Promise<RotateResult> {
    const session = this.#sessions.get(request.sessionId)
    if (session === undefined) return { outcome: 'not-found' }
    if (isExpired(session, request.now)) {
      this.#delete(session)
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
    this.#delete(session)
    return { outcome: 'reused', session }
  }

  async revoke (sessionId: string): Promise<void> {
    const session = this.#sessions.get(sessionId)
    if (session !== undefined) this.#delete(session)
  }

  async revokeUser (userId: string): Promise<void> {
    for (const sessionId of this.#sessionIdsOf(userId)) this.#sessions.delete(sessionId)
    this.#byUser.delete(userId)
  }

  async listUserSessions (userId: string, now: number): Promise<SessionInfo[]> {
    const list: SessionInfo[] = []
    for (const sessionId of this.#sessionIdsOf(userId)) {
      const session = this.#sessions.get(sessionId) as SessionRecord
      if (!isExpired(session, now)) list.push(toSessionInfo(session))
    }
    return list
  }

  /** Drops expired sessions now; the timer calls this on its own. */
  prune (now = Date.now()): void {
    for (const session of this.#sessions.values()) {
      if (isExpired(session, now)) this.#delete(session)
    }
  }

  /** Stops the sweep timer. */
  close (): void {
    clearInterval(this.#timer)
  }

  #dropOldest (): void {
    // only called when the Map is full, so there is a first entry
    this.#delete(this.#sessions.values().next().value as SessionRecord)
  }

  #delete (session: SessionRecord): void {
    this.#sessions.delete(session.sessionId)
    // every stored session is indexed under its user
    const ids = this.#byUser.get(session.userId) as string | string[]
    if (typeof ids === 'string') {
      this.#byUser.delete(session.userId)
    } else {
      const kept = ids.filter(id => id !== session.sessionId)
      this.#byUser.set(session.userId, kept.length === 1 ? kept[0] : kept)
    }
  }

  #index (userId: string, sessionId: string): void {
    const ids = this.#byUser.get(userId)
    if (ids === undefined) this.#byUser.set(userId, sessionId)
    else if (Array.isArray(ids)) ids.push(sessionId)
    else this.#byUser.set(userId, [ids, sessionId])
  }

  #sessionIdsOf (userId: string): readonly string[] {
    const ids = this.#byUser.get(userId)
    return ids === undefined ? [] : Array.isArray(ids) ? ids : [ids]
  }
}

function isExpired (session: SessionRecord, now: number): boolean {
  return now >= session.expiresAt || now >= session.absoluteExpiresAt
}
