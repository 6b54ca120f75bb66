import { InvalidOptionError, StoreConflictError } from '../errors.js'
import { decideLogin, decidePresent, decideRotation, isExpired } from '../sessions/decisions.js'
import {
  toSessionInfo, type CreateOptions, type CreateResult, type PresentRequest, type PresentResult, type RotateRequest, type RotateResult,
  type SessionInfo, type SessionRecord, type SessionStore
} from './store.js'

/**
 * A session record as the backend holds it, with its version: a number the backend raises at each write, so
 * that a write made on a stale read is refused (compare-and-set).
 *
 * @example
 * const stored: StoredSession = { record: JSON.parse(row.data), version: row.version }
 */
export interface StoredSession {
  record: SessionRecord
  version: number
}

/**
 * A user as the backend holds them: a version raised at each login of theirs, and the ids of their sessions.
 *
 * @example
 * const user: StoredUser = { version: row?.version ?? 0, sessionIds: rows.map(row => row.id) }
 */
export interface StoredUser {
  /** 0 for a user never seen. */
  version: number
  /** The sessions stored under the user, live or not (the rules skip the expired ones). */
  sessionIds: string[]
}

/**
 * A login to save in one atomic step, if no other login of the same user came first.
 *
 * @example
 * // BEGIN; UPDATE users SET version = version + 1 WHERE id = ? AND version = ? (or INSERT at version 1);
 * // INSERT the session at version 0; DELETE the sessions of endSessionIds; COMMIT
 */
export interface LoginCommit {
  session: SessionRecord
  /** The user's version the decision was made on. */
  userVersion: number
  /** Sessions of the same user this login ends (the replaced one, and those that make room at the limit). */
  endSessionIds: string[]
}

/**
 * What a backend implements for {@link createSessionStore}: storage only, no rule. Every method rejects when
 * the backend fails (the plugin then answers 503). What must be atomic: `updateSession` (a compare-and-set on
 * the version) and `commitLogin` (a compare-and-set on the user's version, with the insert and the deletes).
 *
 * @example
 * const store = createSessionStore({ getSession, updateSession, deleteSession, getUser, commitLogin, deleteExpired })
 */
export interface SessionPrimitives {
  /** The session and its version, or undefined. */
  getSession (sessionId: string): Promise<StoredSession | undefined>
  /** Saves `record` in place of the stored session if its version is still `version`, raising it; answers whether it did. */
  updateSession (record: SessionRecord, version: number): Promise<boolean>
  /**
   * Deletes a session; with `version`, only if it is still at that version. Answers whether it deleted one
   * (an unknown session is not an error).
   */
  deleteSession (sessionId: string, version?: number): Promise<boolean>
  /** The user's version and session ids. */
  getUser (userId: string): Promise<StoredUser>
  /** Saves a login if the user's version is still `userVersion`, raising it: see {@link LoginCommit}. Answers whether it did. */
  commitLogin (login: LoginCommit): Promise<boolean>
  /** Deletes the sessions expired at `now` (milliseconds). Without it, expired sessions go only when met. */
  deleteExpired? (now: number): Promise<void>
  /** Stops what the primitives started, never the host's client or pool. */
  close? (): Promise<void>
}

/**
 * Options of {@link createSessionStore}.
 *
 * @example
 * createSessionStore(primitives, { sweepInterval: 300 })
 */
export interface SessionStoreOptions {
  /** Seconds between calls of `deleteExpired`. Default 60. */
  sweepInterval?: number
}

// A write refused because another one came first is decided again on a fresh read; past this many rounds
// the backend is thrashing, and the call fails (503) rather than loop.
const MAX_ROUNDS = 100

/**
 * Turns storage primitives into a full `SessionStore`: every rule (rotation, the reuse interval, retries,
 * reuse, a token from ahead after a failover, expiry, per-user limits and replacement) comes from the plugin's
 * own decisions, and each write is a compare-and-set, decided again when it loses a race. Concurrent logins
 * of one user are serialised by the user's version, so they never leave more than the limit. It has no
 * revocation feed: each instance refuses the access tokens of the sessions it ended itself (see
 * `watchRevocations` in the full contract for one shared by every instance).
 *
 * @example
 * const store = createSessionStore({ getSession, updateSession, deleteSession, getUser, commitLogin })
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store })
 */
export function createSessionStore (primitives: SessionPrimitives, options: SessionStoreOptions = {}): SessionStore & { close (): Promise<void> } {
  return new PrimitiveStore(primitives, options)
}

class PrimitiveStore implements SessionStore {
  readonly #backend: SessionPrimitives
  readonly #sweep: NodeJS.Timeout | null

  constructor (backend: SessionPrimitives, options: SessionStoreOptions) {
    const { sweepInterval = 60 } = options
    if (typeof sweepInterval !== 'number' || !(sweepInterval > 0)) {
      throw new InvalidOptionError('createSessionStore: sweepInterval must be a positive number of seconds')
    }
    this.#backend = backend
    const deleteExpired = backend.deleteExpired?.bind(backend)
    // unref'd: a sweep must never keep the process alive; a failed sweep is retried at the next one
    this.#sweep = deleteExpired === undefined ? null : setInterval(() => { deleteExpired(Date.now()).catch(() => {}) }, sweepInterval * 1000).unref()
  }

  async create (session: SessionRecord, options: CreateOptions = {}): Promise<CreateResult> {
    return await this.#rounds('create', async () => {
      const user = await this.#backend.getUser(session.userId)
      const live = await this.#liveSessions(user.sessionIds, session.createdAt)
      const decision = decideLogin(live, options)
      if (decision.outcome === 'limit-reached') return decision
      const endSessionIds = decision.ended.map(other => other.sessionId)
      if (!await this.#backend.commitLogin({ session, userVersion: user.version, endSessionIds })) return undefined
      return { outcome: 'created', endedSessionIds: endSessionIds }
    })
  }

  async rotate (request: RotateRequest): Promise<RotateResult> {
    return await this.#rounds('rotate', async () => {
      const stored = await this.#backend.getSession(request.sessionId)
      const session = stored?.record
      const decision = decideRotation(session, request)
      if (decision.outcome === 'not-found') {
        if (decision.expired) await this.#backend.deleteSession(request.sessionId)
        return { outcome: 'not-found' }
      }
      const current = session as SessionRecord
      if (decision.outcome === 'reused') {
        await this.#backend.deleteSession(request.sessionId)
        return { outcome: 'reused', session: current }
      }
      if (decision.outcome === 'rotated' && decision.next !== null) {
        return await this.#backend.updateSession(decision.next, (stored as StoredSession).version) ? { outcome: 'rotated', session: decision.next } : undefined
      }
      return { outcome: decision.outcome, session: current }
    })
  }

  async present (request: PresentRequest): Promise<PresentResult> {
    return await this.#rounds('present', async () => {
      const stored = await this.#backend.getSession(request.sessionId)
      const decision = decidePresent(stored?.record, request)
      if (decision.outcome === 'not-found') {
        if (decision.expired) await this.#backend.deleteSession(request.sessionId)
        return { outcome: 'not-found' }
      }
      const { record, version } = stored as StoredSession
      if (decision.outcome === 'reused') await this.#backend.deleteSession(request.sessionId)
      // a logout ends the session it read: of concurrent logouts one finds it live, the others not-found
      else if (request.end && !await this.#backend.deleteSession(request.sessionId, version)) return undefined
      return { outcome: decision.outcome, session: record }
    })
  }

  async revoke (sessionId: string): Promise<void> {
    await this.#backend.deleteSession(sessionId)
  }

  async revokeUser (userId: string): Promise<void> {
    await this.#endAll(userId, undefined)
  }

  async revokeOtherSessions (userId: string, keepSessionId: string): Promise<void> {
    await this.#endAll(userId, keepSessionId)
  }

  async listUserSessions (userId: string, now: number): Promise<SessionInfo[]> {
    const { sessionIds } = await this.#backend.getUser(userId)
    return (await this.#liveSessions(sessionIds, now)).map(toSessionInfo)
  }

  async close (): Promise<void> {
    if (this.#sweep !== null) clearInterval(this.#sweep)
    await this.#backend.close?.()
  }

  /** Runs a decision until its write lands (`undefined`: it lost a race, decide again on a fresh read). */
  async #rounds<T> (operation: string, round: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < MAX_ROUNDS; i++) {
      const result = await round()
      if (result !== undefined) return result
    }
    throw new StoreConflictError(`${operation} lost ${MAX_ROUNDS} races in a row`)
  }

  async #liveSessions (sessionIds: readonly string[], now: number): Promise<SessionRecord[]> {
    const stored = await Promise.all(sessionIds.map(async id => await this.#backend.getSession(id)))
    return stored.flatMap(entry => entry === undefined || isExpired(entry.record, now) ? [] : [entry.record])
  }

  async #endAll (userId: string, keepSessionId: string | undefined): Promise<void> {
    const { sessionIds } = await this.#backend.getUser(userId)
    await Promise.all(sessionIds.filter(id => id !== keepSessionId).map(async id => await this.#backend.deleteSession(id)))
  }
}
