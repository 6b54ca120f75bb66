import type { SessionEndCause, SessionEndNotice } from '../stores/store.js'

/**
 * Why a session ended, as `onSessionEnd` and the events stream tell it (the client's `end` reasons):
 * - `logout`: the session's own refresh token signed out (`POST {prefix}/logout`, plain or `{ "all": true }`);
 * - `revoked`: ended by something else: `revokeSession`, `revokeUserSessions`, `revokeOtherSessions`, a logout
 *   of another session with `all` or `others`, a `loadUser` refusal, a login at `maxSessionsPerUser`, and a
 *   login that replaced it;
 * - `reuse`: a rotated refresh token of the session was presented again, and the whole session ended;
 * - `expired`, `unknown`: never sent by the server today; the client uses them (a refused refresh).
 *
 * @example
 * app.refreshAuth.onSessionEnd(({ reason }) => { if (reason === 'reuse') metrics.reuse.inc() })
 */
export type SessionEndReason = 'logout' | 'revoked' | 'expired' | 'reuse' | 'unknown'

/**
 * What `app.refreshAuth.onSessionEnd` listeners receive, the same on every instance.
 *
 * @example
 * app.refreshAuth.onSessionEnd(({ sessionId, userId, reason }) => sockets.closeSession(sessionId, reason))
 */
export interface SessionEndEvent {
  sessionId: string
  /**
   * The session's user. Null only when nobody could say: `revokeSession` of a session the store no longer
   * held (expired), with no events stream of it open on this instance.
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

/** The rule: the reason an end is told with, from what ended it (as the store announced it, on any instance). */
export function reasonOf (cause: SessionEndCause): SessionEndReason {
  if (cause === 'logout' || cause === 'reuse') return cause
  return 'revoked'
}

// Ends already told are remembered this long, so a second announcement of one is not told again.
const TOLD_MS = 60_000

/**
 * Every session end this instance hears of, told once to the listeners (`onSessionEnd`, the events streams):
 * from the store's revocation feed (any instance; each announcement carries the user and the cause) and, for a
 * store without a feed, from this instance's own session policy with the same notice. Listeners that throw are
 * reported as warnings and change nothing.
 */
export class SessionEnds {
  readonly #listeners = new Set<SessionEndListener>()
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

  /** The user of a session whose end matters here (an open events stream): named in its event if the store could not. */
  know (sessionId: string, userId: string): () => void {
    this.#users.set(sessionId, userId)
    return () => { this.#users.delete(sessionId) }
  }

  /** Sessions that ended, anywhere, with their user and what ended them: told at once, each once. */
  ended (sessionIds: readonly string[], { userId, cause }: SessionEndNotice): void {
    const reason = reasonOf(cause)
    for (const sessionId of sessionIds) this.#tell(sessionId, userId, reason)
  }

  #tell (sessionId: string, userId: string | null, reason: SessionEndReason): void {
    const now = Date.now()
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
