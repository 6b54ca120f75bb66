import { InvalidArgumentError, InvalidOptionError } from '../errors.js'
import { deliver, LocalListeners, report } from './listeners.js'
import {
  compareIds, toSessionInfo, type CreateOptions, type CreateResult, type PresentRequest, type PresentResult, type RevocationListener, type RevocationWatch,
  type RotateRequest, type RotateResult, type SessionInfo, type SessionRecord, type SessionStore, type WatchOptions
} from './store.js'

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

/** Sessions ended at one time, kept for watchers that start later. */
interface Revocation {
  sessionIds: readonly string[]
  revokedAt: number
}

/**
 * The embedded default store: sessions in a Map of this process. Safe for one process only
 * (use a shared store such as Redis behind a load balancer). Each method does its work
 * synchronously, so every operation is atomic. Its revocation feed is in-process: every session it
 * ends is told to its watchers before the method resolves, and a watcher that starts later first hears
 * what was ended within its retention (kept only while someone watches).
 *
 * @example
 * const store = new MemoryStore({ maxSessions: 10_000 })
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store })
 */
export class MemoryStore implements SessionStore {
  readonly #sessions = new Map<string, SessionRecord>()
  // userId → its session ids: a bare string for the usual one session, a Set past that, so that ending one
  // session costs the same however many sessions its user holds
  readonly #byUser = new Map<string, string | Set<string>>()
  readonly #maxSessions: number
  readonly #timer: NodeJS.Timeout
  readonly #listeners = new LocalListeners()
  // oldest first; trimmed to the longest retention a watcher asked for
  readonly #revocations: Revocation[] = []

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

  /**
   * Saves a session; with `options`, first ends the replaced session and, at the user's limit, the least
   * recently refreshed ones (or refuses). All in one synchronous step, so concurrent logins cannot overshoot.
   */
  async create (session: SessionRecord, options: CreateOptions = {}): Promise<CreateResult> {
    const { maxSessionsPerUser: limit, onLimit = 'revoke-oldest', replaceSessionId } = options
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) {
      throw new InvalidArgumentError('MemoryStore: maxSessionsPerUser must be a positive integer')
    }
    const existing = this.#sessions.get(session.sessionId)
    if (existing !== undefined) this.#delete(existing)
    let replaced: SessionRecord[] = []
    let evicted: SessionRecord[] = []
    if (limit !== undefined || replaceSessionId !== undefined) {
      let live = this.#liveSessionsOf(session.userId, session.createdAt)
      replaced = live.filter(other => other.sessionId === replaceSessionId)
      live = live.filter(other => other.sessionId !== replaceSessionId)
      if (limit !== undefined && live.length >= limit) {
        if (onLimit === 'refuse') return { outcome: 'limit-reached' }
        evicted = live.sort(leastRecentlyUsedFirst).slice(0, live.length - limit + 1)
      }
    }
    const ended = [...evicted, ...replaced]
    if (ended.length > 0) this.#endSessions(ended)
    // at capacity the least recently refreshed session goes, and its access tokens with it
    else if (existing === undefined && this.#sessions.size >= this.#maxSessions) this.#endSessions([this.#sessions.values().next().value as SessionRecord])
    this.#sessions.set(session.sessionId, { ...session })
    this.#index(session.userId, session.sessionId)
    return { outcome: 'created', endedSessionIds: ended.map(other => other.sessionId) }
  }

  async rotate (request: RotateRequest): Promise<RotateResult> {
    const session = this.#liveSession(request.sessionId, request.now)
    if (session === undefined) return { outcome: 'not-found' }
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
    this.#endSessions([session])
    return { outcome: 'reused', session }
  }

  async present (request: PresentRequest): Promise<PresentResult> {
    const session = this.#liveSession(request.sessionId, request.now)
    if (session === undefined) return { outcome: 'not-found' }
    const presented = request.presentedTokenId
    const live = presented === session.tokenId ||
      (presented === session.previousTokenId && request.now - session.rotatedAt < request.reuseIntervalMs)
    if (!live || request.end) this.#endSessions([session])
    return { outcome: live ? 'live' : 'reused', session: { ...session } }
  }

  async revoke (sessionId: string): Promise<void> {
    const session = this.#sessions.get(sessionId)
    if (session !== undefined) this.#endSessions([session])
  }

  async revokeUser (userId: string): Promise<void> {
    const sessions = this.#sessionIdsOf(userId).map(id => this.#sessions.get(id) as SessionRecord)
    if (sessions.length > 0) this.#endSessions(sessions)
  }

  async revokeOtherSessions (userId: string, keepSessionId: string): Promise<void> {
    const sessions = this.#sessionIdsOf(userId).filter(id => id !== keepSessionId).map(id => this.#sessions.get(id) as SessionRecord)
    if (sessions.length > 0) this.#endSessions(sessions)
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

  /**
   * The in-process revocation feed: `listener` hears first what was ended within `retentionMs` while
   * someone watched, then `live`, then every session this store ends, synchronously.
   */
  watchRevocations (listener: RevocationListener, options: WatchOptions): RevocationWatch {
    const watcher = this.#listeners.add(listener, options)
    this.#trimRevocations(Date.now())
    const since = Date.now() - watcher.retentionMs
    for (const { sessionIds, revokedAt } of this.#revocations) {
      if (revokedAt >= since) deliver(watcher, sessionIds, revokedAt)
    }
    report(watcher, 'live')
    return {
      close: async () => {
        this.#listeners.remove(watcher)
        if (this.#listeners.size === 0) this.#revocations.length = 0
      }
    }
  }

  /** Stops the sweep timer. */
  close (): void {
    clearInterval(this.#timer)
  }

  /** Deletes sessions and tells the watchers, in one synchronous step: every way this store ends a session. */
  #endSessions (sessions: readonly SessionRecord[]): void {
    for (const session of sessions) this.#delete(session)
    if (this.#listeners.size === 0) return
    const revokedAt = Date.now()
    const sessionIds = sessions.map(session => session.sessionId)
    this.#revocations.push({ sessionIds, revokedAt })
    this.#trimRevocations(revokedAt)
    this.#listeners.announce(sessionIds, revokedAt)
  }

  #trimRevocations (now: number): void {
    const since = now - this.#listeners.retentionMs(0)
    let stale = 0
    while (stale < this.#revocations.length && this.#revocations[stale].revokedAt < since) stale++
    if (stale > 0) this.#revocations.splice(0, stale)
  }

  /** The session if it is live at `now`; an expired one is dropped (expiry is not announced). */
  #liveSession (sessionId: string, now: number): SessionRecord | undefined {
    const session = this.#sessions.get(sessionId)
    if (session === undefined || !isExpired(session, now)) return session
    this.#delete(session)
    return undefined
  }

  #delete (session: SessionRecord): void {
    this.#sessions.delete(session.sessionId)
    // every stored session is indexed under its user
    const ids = this.#byUser.get(session.userId) as string | Set<string>
    if (typeof ids === 'string') {
      this.#byUser.delete(session.userId)
    } else {
      ids.delete(session.sessionId)
      if (ids.size === 1) this.#byUser.set(session.userId, ids.values().next().value as string)
    }
  }

  #index (userId: string, sessionId: string): void {
    const ids = this.#byUser.get(userId)
    if (ids === undefined) this.#byUser.set(userId, sessionId)
    else if (typeof ids === 'string') this.#byUser.set(userId, new Set([ids, sessionId]))
    else ids.add(sessionId)
  }

  /** The user's sessions live at `now`; expired ones met on the way are dropped. */
  #liveSessionsOf (userId: string, now: number): SessionRecord[] {
    const live: SessionRecord[] = []
    for (const sessionId of this.#sessionIdsOf(userId)) {
      const session = this.#liveSession(sessionId, now)
      if (session !== undefined) live.push(session)
    }
    return live
  }

  /** A copy: the callers end sessions while they walk it. */
  #sessionIdsOf (userId: string): readonly string[] {
    const ids = this.#byUser.get(userId)
    return ids === undefined ? [] : typeof ids === 'string' ? [ids] : [...ids]
  }
}

// the oldest last refresh first; ties by id, as every shipped store orders them
function leastRecentlyUsedFirst (a: SessionRecord, b: SessionRecord): number {
  return a.rotatedAt - b.rotatedAt || compareIds(a.sessionId, b.sessionId)
}

function isExpired (session: SessionRecord, now: number): boolean {
  return now >= session.expiresAt || now >= session.absoluteExpiresAt
}
