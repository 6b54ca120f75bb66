import type { FastifyRequest } from 'fastify'

/** What the audit hooks receive: ids only, never a token. The request gives the IP, User-Agent and logger. */
export interface SessionEvent {
  /** The user's id, the tokens' `sub`. */
  userId: string
  /** The session (token family) id, the tokens' `sid`. */
  sessionId: string
}

/** What `onLogout` receives. */
export interface LogoutEvent extends SessionEvent {
  /** True for `{ "all": true }`: every session of the user was revoked, not only this one. */
  all: boolean
  /**
   * True for `{ "others": true }`: every other session of the user was revoked; `sessionId`, the one
   * that asked, lives on.
   */
  others: boolean
  /**
   * Why the session ended: `'logout'`, the client signed out (`POST /auth/logout`); `'user-refused'`,
   * `loadUser` resolved to null or undefined at a refresh (the account is disabled or gone);
   * `'session-limit'`, a login of the user at `maxSessionsPerUser` made room by ending it (the least
   * recently used); `'replaced'`, the user signed in again on the same device, and the new session
   * took its place; `'ended-by-user'`, the user ended it from their list of sessions
   * (`DELETE {prefix}/sessions/:sessionId`, `routes: { sessions: true }`).
   */
  reason: 'logout' | 'user-refused' | 'session-limit' | 'replaced' | 'ended-by-user'
}

/**
 * An audit hook. Called once the store has done its part, before the response is sent; not awaited, so a slow
 * audit sink never delays sign-in. Whatever it throws or rejects with is logged and changes nothing.
 *
 * @example
 * await app.register(fastifyRefreshAuth, {
 *   secret, verifyCredentials,
 *   onReuseDetected: async (event, request) => alerts.send(`refresh token reuse for ${event.userId} from ${request.ip}`)
 * })
 */
export type AuditHook<E extends SessionEvent = SessionEvent> = (event: E, request: FastifyRequest) => void | Promise<void>

/** Runs an audit hook without letting it touch the response: a throw or a rejection is only logged. */
export function notify<E extends SessionEvent> (name: string, hook: AuditHook<E> | undefined, event: E, request: FastifyRequest): void {
  if (hook === undefined) return
  const logFailure = (err: unknown): void => {
    request.log.error({ err, hook: name, sessionId: event.sessionId }, 'fastify-refresh-auth: an audit hook failed')
  }
  try {
    const result = hook(event, request)
    if (result instanceof Promise) result.catch(logFailure)
  } catch (err) {
    logFailure(err)
  }
}
