/**
 * Why a session ended, as `onSessionEnd` and the events stream tell it (the client's `end` reasons):
 * - `logout`: the session's own refresh token signed out (`POST {prefix}/logout`, plain or `{ "all": true }`);
 * - `revoked`: ended by something else: `revokeSession`, `revokeUserSessions`, `revokeOtherSessions`, a logout
 *   of another session with `all` or `others`, a `loadUser` refusal, a login at `maxSessionsPerUser`, a login
 *   that replaced it, and any end heard from another instance without its reason;
 * - `reuse`: a rotated refresh token of the session was presented again, and the whole session ended;
 * - `expired`, `unknown`: never sent by the server today; the client uses them (a refused refresh).
 *
 * @example
 * app.refreshAuth.onSessionEnd(({ reason }) => { if (reason === 'reuse') metrics.reuse.inc() })
 */
export type SessionEndReason = 'logout' | 'revoked' | 'expired' | 'reuse' | 'unknown'

/**
 * What `app.refreshAuth.onSessionEnd` listeners receive.
 *
 * @example
 * app.refreshAuth.onSessionEnd(({ sessionId, userId, reason }) => sockets.closeSession(sessionId, reason))
 */
export interface SessionEndEvent {
  sessionId: string
  /**
   * The user, when this instance knows it: it ended the session, or holds its events stream. Null for an
   * end heard only from another instance's announcement, which carries session ids alone.
   */
  userId: string | null
  reason: SessionEndReason
}

/**
 * A listener of `app.refreshAuth.onSessionEnd`. It runs synchronously: start slow work without awaiting it.
 *
 * @example
 * const listener: SessionEndListener = ({ sessionId }) => sockets.get(sessionId)?.close()
 */
export type SessionEndListener = (event: SessionEndEvent) => void

// An end heard from the feed waits this long for this instance's own account of it (with its reason),
// which comes once the store call that ended it resolves: the store announces before it resolves.
const ACCOUNT_WAIT_MS = 200
// Ends already told are remembered this long, so a second announcement of one is not told again.
const TOLD_MS = 60_000

/**
 * Every session end this instance hears of, told once to the listeners (`onSessionEnd`, the events streams):
 * from its own session policy (with the user and the reason) and from the store's revocation feed (ids only,
 * from any instance). Listeners that throw are reported as warnings and change nothing.
 */
export class SessionEnds {
  readonly #listeners = new Set<SessionEndListener>()
  readonly #waiting = new Map<string, NodeJS.Timeout>()
  // session id → when it was told, in the order told
  readonly #told = new Map<string, number>()
  // the users of the sessions whose events streams this instance holds
  readonly #users = new Map<string, string>()

  /** Adds a listener; returns the function that removes it. */
  on (listener: SessionEndListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  get listening (): boolean {
    return this.#listeners.size !== 0
  }

  /** The user of a session whose end matters here (an open events stream): named in its event. */
  know (sessionId: string, userId: string): () => void {
    this.#users.set(sessionId, userId)
    return () => { this.#users.delete(sessionId) }
  }

  /** Ends this instance caused, with the user and the reason: told at once. */
  ended (sessionIds: readonly string[], userId: string | null, reason: SessionEndReason): void {
    for (const sessionId of sessionIds) this.#tell(sessionId, userId, reason)
  }

  /** Ends the revocation feed announced (any instance): told once this instance had a moment to give its reason. */
  heard (sessionIds: readonly string[]): void {
    for (const sessionId of sessionIds) {
      if (this.#told.has(sessionId) || this.#waiting.has(sessionId)) continue
      this.#waiting.set(sessionId, setTimeout(() => this.#tell(sessionId, null, 'revoked'), ACCOUNT_WAIT_MS).unref())
    }
  }

  /** Stops the waits (the app closes). */
  stop (): void {
    for (const timer of this.#waiting.values()) clearTimeout(timer)
    this.#waiting.clear()
  }

  #tell (sessionId: string, userId: string | null, reason: SessionEndReason): void {
    const now = Date.now()
    clearTimeout(this.#waiting.get(sessionId))
    this.#waiting.delete(sessionId)
    for (const [id, at] of this.#told) {
      if (at > now - TOLD_MS) break
      this.#told.delete(id)
    }
    if (this.#told.has(sessionId)) return
    this.#told.set(sessionId, now)
    const event: SessionEndEvent = { sessionId, userId: userId ?? this.#users.get(sessionId) ?? null, reason }
    for (const listener of [...this.#listeners]) {
      try {
        listener(event)
      } catch (err) {
        process.emitWarning(err as Error)
      }
    }
  }
}
