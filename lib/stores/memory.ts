import { InvalidOptionError } from '../errors.js'
import { decideLogin, decidePresent, decideRotation, isExpired } from '../sessions/decisions.js'
import { deliver, LocalListeners, report } from './listeners.js'
import {
  toSessionInfo, type CreateOptions, type CreateResult, type PresentRequest, type PresentResult, type RevocationListener, type RevocationWatch,
  type RotateRequest, type RotateResult, type SessionEndCause, type SessionEndNotice, type SessionInfo, type SessionRecord, type SessionStore, type WatchOptions
} from './store.js'
import { UserSessionIndex } from './user-index.js'

/**
 * Options of {@link MemoryStore}.
 *
 * @example
 * const store = new MemoryStore({ maxSessions: 10_000, pruneInterval: 30 })
 */
export interface MemoryStoreOptions {
  /**
   * Most sessions kept. Past it a login ends the least recently refreshed session of the user who holds the
   * most sessions (the user logging in first among equals), so one account signing in again and again ends
   * only its own sessions while it holds more than anyone else. Default 100,000.
   */
  maxSessions?: number
  /** Seconds between sweeps that drop expired sessions. Default 60. */
  pruneInterval?: number
}

/** Sessions ended at one time, kept for watchers that start later. */
interface Revocation {
  sessionIds: readonly string[]
  revokedAt: number
  notice: SessionEndNotice
}

/**
 * The embedded default store: sessions in a Map of this process. Safe for one process only
 * (use a shared store such as Redis behind a load balancer). Each method does its work
 * synchronously, so every operation is atomic. Its revocation feed is in-process: every session it
 * ends is told to its watchers before the method resolves, and a watcher that starts later first hears
 * what was ended within its retention (kept only while someone watches, and dropped once older than it).
 *
 * @example
 * const store = new MemoryStore({ maxSessions: 10_000 })
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store })
 */
export class MemoryStore implements SessionStore {
  readonly #sessions = new Map<string, SessionRecord>()
  readonly #byUser = new UserSessionIndex()
  readonly #maxSessions: number
  readonly #timer: NodeJS.Timeout
  readonly #listeners = new LocalListeners()
  // oldest first; trimmed to the longest retention a watcher asked for, by a timer set for the oldest entry
  readonly #revocations: Revocation[] = []
  #trimTimer: NodeJS.Timeout | null = null

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
    const existing = this.#sessions.get(session.sessionId)
    // a session saved again under its own id is not counted against itself
    const live = this.#liveSessionsOf(session.userId, session.createdAt).filter(other => other !== existing)
    const decision = decideLogin(live, options)
    if (decision.outcome === 'limit-reached') return decision
    if (existing !== undefined) this.#delete(existing)
    const ended = decision.ended
    if (ended.length > 0) this.#endSessions(ended, 'create')
    else if (existing === undefined && this.#sessions.size >= this.#maxSessions) this.#endSessions([this.#evictionCandidate(session.userId)], 'create')
    this.#sessions.set(session.sessionId, { ...session })
    this.#byUser.add(session.userId, session.sessionId)
    return { outcome: 'created', endedSessionIds: ended.map(other => other.sessionId) }
  }

  async rotate (request: RotateRequest): Promise<RotateResult> {
    const session = this.#sessions.get(request.sessionId)
    const decision = decideRotation(session, request)
    if (decision.outcome === 'not-found') {
      if (decision.expired) this.#delete(session as SessionRecord)
      return { outcome: 'not-found' }
    }
    const current = session as SessionRecord
    if (decision.outcome === 'reused') {
      this.#endSessions([current], 'reuse')
      return { outcome: 'reused', session: current }
    }
    if (decision.outcome === 'rotated' && decision.next !== null) {
      // re-inserted, here and in the user's index, so both orders stay least recently refreshed first
      this.#sessions.delete(request.sessionId)
      this.#sessions.set(request.sessionId, decision.next)
      this.#byUser.touch(current.userId, request.sessionId)
      return { outcome: 'rotated', session: { ...decision.next } }
    }
    return { outcome: decision.outcome, session: { ...current } }
  }

  async present (request: PresentRequest): Promise<PresentResult> {
    const session = this.#sessions.get(request.sessionId)
    const decision = decidePresent(session, request)
    if (decision.outcome === 'not-found') {
      if (decision.expired) this.#delete(session as SessionRecord)
      return { outcome: 'not-found' }
    }
    const current = session as SessionRecord
    if (decision.outcome === 'reused' || request.end) this.#endSessions([current], decision.outcome === 'reused' ? 'reuse' : 'logout')
    return { outcome: decision.outcome, session: { ...current } }
  }

  async revoke (sessionId: string): Promise<void> {
    const session = this.#sessions.get(sessionId)
    if (session !== undefined) this.#endSessions([session], 'revoke')
  }

  async revokeUser (userId: string): Promise<void> {
    const sessions = this.#sessionsOf(userId)
    if (sessions.length > 0) this.#endSessions(sessions, 'revoke-user')
  }

  async revokeOtherSessions (userId: string, keepSessionId: string): Promise<void> {
    const sessions = this.#sessionsOf(userId).filter(session => session.sessionId !== keepSessionId)
    if (sessions.length > 0) this.#endSessions(sessions, 'revoke-others')
  }

  async listUserSessions (userId: string, now: number): Promise<SessionInfo[]> {
    return this.#sessionsOf(userId).filter(session => !isExpired(session, now)).map(toSessionInfo)
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
    this.#trimRevocations()
    const since = Date.now() - watcher.retentionMs
    for (const { sessionIds, revokedAt, notice } of this.#revocations) {
      if (revokedAt >= since) deliver(watcher, sessionIds, revokedAt, notice)
    }
    report(watcher, 'live')
    return {
      close: async () => {
        this.#listeners.remove(watcher)
        if (this.#listeners.size === 0) this.#revocations.length = 0
        this.#trimRevocations()
      }
    }
  }

  /** Stops the timers. Nothing else to release: the sessions go with the object. */
  async close (): Promise<void> {
    clearInterval(this.#timer)
    this.#clearTrimTimer()
  }

  /**
   * Deletes sessions (all of one user) and tells the watchers, in one synchronous step: every way this store
   * ends a session.
   */
  #endSessions (sessions: readonly SessionRecord[], cause: SessionEndCause): void {
    for (const session of sessions) this.#delete(session)
    if (this.#listeners.size === 0) return
    const revokedAt = Date.now()
    const sessionIds = sessions.map(session => session.sessionId)
    const notice = { userId: sessions[0].userId, cause }
    this.#revocations.push({ sessionIds, revokedAt, notice })
    this.#trimRevocations()
    this.#listeners.announce(sessionIds, revokedAt, notice)
  }

  /**
   * Drops what is older than the longest retention, then sets an unref'd timer for when the oldest entry
   * left is due, so an idle process gives the memory back without waiting for the next revocation.
   */
  #trimRevocations (): void {
    this.#clearTrimTimer()
    const retentionMs = this.#listeners.retentionMs(0)
    const since = Date.now() - retentionMs
    let stale = 0
    while (stale < this.#revocations.length && this.#revocations[stale].revokedAt < since) stale++
    if (stale > 0) this.#revocations.splice(0, stale)
    if (this.#revocations.length === 0) return
    const due = this.#revocations[0].revokedAt + retentionMs - Date.now() + 1
    this.#trimTimer = setTimeout(() => this.#trimRevocations(), Math.max(due, 1)).unref()
  }

  #clearTrimTimer (): void {
    if (this.#trimTimer === null) return
    clearTimeout(this.#trimTimer)
    this.#trimTimer = null
  }

  /**
   * The session a full store drops: the least recently refreshed of the user holding the most sessions, the
   * user logging in first when they hold as many as anyone.
   */
  #evictionCandidate (userId: string): SessionRecord {
    const owner = this.#byUser.largest(userId)
    return this.#sessions.get(this.#byUser.leastRecentlyRefreshed(owner)) as SessionRecord
  }

  #delete (session: SessionRecord): void {
    this.#sessions.delete(session.sessionId)
    this.#byUser.remove(session.userId, session.sessionId)
  }

  /** The user's sessions live at `now`; expired ones met on the way are dropped. */
  #liveSessionsOf (userId: string, now: number): SessionRecord[] {
    const live: SessionRecord[] = []
    for (const session of this.#sessionsOf(userId)) {
      if (isExpired(session, now)) this.#delete(session)
      else live.push(session)
    }
    return live
  }

  /** A copy: the callers end sessions while they walk it. */
  #sessionsOf (userId: string): SessionRecord[] {
    return this.#byUser.sessionIdsOf(userId).map(id => this.#sessions.get(id) as SessionRecord)
  }
}
