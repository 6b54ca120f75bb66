/**
 * One refresh-token session (a token family), as a store keeps it.
 * The store never sees a raw token: sessions are keyed by id and tokens by their `jti`.
 *
 * @example
 * // a SQL store saves it as one row
 * async create (session: SessionRecord) {
 *   await sql`INSERT INTO sessions ${sql(session)}`
 * }
 */
export interface SessionRecord {
  /** The session (token family) id, carried in every token as the `sid` claim. */
  sessionId: string
  /** The user's id, the tokens' `sub`. */
  userId: string
  /** `jti` of the one live refresh token of this session. */
  tokenId: string
  /** `jti` of its immediate parent (replayable within the reuse interval), or null right after login. */
  previousTokenId: string | null
  /** Milliseconds since the epoch: login. */
  createdAt: number
  /** Milliseconds since the epoch: when `tokenId` was issued (the last rotation, or login). */
  rotatedAt: number
  /** Milliseconds since the epoch: the idle limit of `tokenId`; renewed by each rotation. */
  expiresAt: number
  /** Milliseconds since the epoch: the end of the session, never extended. */
  absoluteExpiresAt: number
  /** The login request's User-Agent, for "active devices" lists. */
  userAgent?: string
  /** The login request's IP address. */
  ip?: string
}

/**
 * A live session as `listUserSessions` shows it: no token ids.
 *
 * @example
 * const sessions: SessionInfo[] = await app.refreshAuth.listUserSessions(userId)
 * const devices = sessions.map(({ sessionId, userAgent, lastRefreshedAt }) => ({ sessionId, userAgent, lastRefreshedAt }))
 */
export interface SessionInfo {
  sessionId: string
  userId: string
  /** Milliseconds since the epoch: login. */
  createdAt: number
  /** Milliseconds since the epoch: the last refresh (login if none yet). */
  lastRefreshedAt: number
  /** Milliseconds since the epoch: the idle limit; the session ends earlier if not refreshed by then. */
  expiresAt: number
  /** Milliseconds since the epoch: the end of the session, never extended. */
  absoluteExpiresAt: number
  userAgent?: string
  ip?: string
}

/**
 * What `SessionStore.rotate` is asked to do, in one atomic step.
 *
 * @example
 * async rotate ({ sessionId, presentedTokenId, nextTokenId, now, nextExpiresAt }: RotateRequest) {
 *   // UPDATE sessions SET token_id = $nextTokenId, previous_token_id = token_id, rotated_at = $now, expires_at = $nextExpiresAt
 *   //   WHERE id = $sessionId AND token_id = $presentedTokenId AND expires_at > $now RETURNING *
 * }
 */
export interface RotateRequest {
  sessionId: string
  /** `jti` of the refresh token the client presented. */
  presentedTokenId: string
  /** `jti` the successor gets if the presented token is the live one. */
  nextTokenId: string
  /** Milliseconds since the epoch, as the caller sees it. */
  now: number
  /** Idle limit of the successor; the session still ends at its `absoluteExpiresAt`. */
  nextExpiresAt: number
  /** How long after a rotation the immediate parent may still be presented; 0 disables it. */
  reuseIntervalMs: number
}

/**
 * The outcome of a rotation:
 * - `rotated`: the presented token was the live one; `nextTokenId` is live now, the presented one its parent.
 *   A retry of the same request (same presented and next ids) answers `rotated` again.
 * - `grace`: the presented token is the parent of the live one and was rotated less than
 *   `reuseIntervalMs` ago; nothing changed, the caller re-issues the live token.
 * - `reused`: any other token of the session: the store has revoked the whole session.
 * - `not-found`: no live session by that id (never existed, expired or revoked).
 *
 * @example
 * const result: RotateResult = await store.rotate(request)
 * if (result.outcome === 'reused') audit.alert(result.session.userId)
 */
export type RotateResult =
  | { outcome: 'rotated', session: SessionRecord }
  | { outcome: 'grace', session: SessionRecord }
  | { outcome: 'reused', session: SessionRecord }
  | { outcome: 'not-found' }

/**
 * Persistence of refresh-token sessions. Every method must be atomic on its own:
 * `rotate` is a compare-and-set on the live token id (a Lua script on Redis,
 * `UPDATE … WHERE token_id = $presented` in SQL), never a read followed by a write.
 * A store that fails must reject: the plugin then answers 503 and issues nothing.
 *
 * @example
 * class SqlStore implements SessionStore {
 *   async create (session) { … }
 *   async rotate (request) { … } // UPDATE sessions SET token_id = $next WHERE id = $sid AND token_id = $presented
 *   async revoke (sessionId) { … }
 * }
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store: new SqlStore(pool) })
 */
export interface SessionStore {
  /** Saves a new session. */
  create (session: SessionRecord): Promise<void>
  /** Consumes a refresh token: see `RotateResult`. */
  rotate (request: RotateRequest): Promise<RotateResult>
  /** Ends a session; ending an unknown session is not an error. */
  revoke (sessionId: string): Promise<void>
  /** Ends every session of a user (logout everywhere); a user without sessions is not an error. */
  revokeUser (userId: string): Promise<void>
  /** The user's live sessions at `now` (milliseconds since the epoch), in no particular order. */
  listUserSessions (userId: string, now: number): Promise<SessionInfo[]>
}

/** The public view of a session: everything but the token ids. */
export function toSessionInfo (session: SessionRecord): SessionInfo {
  const info: SessionInfo = {
    sessionId: session.sessionId,
    userId: session.userId,
    createdAt: session.createdAt,
    lastRefreshedAt: session.rotatedAt,
    expiresAt: session.expiresAt,
    absoluteExpiresAt: session.absoluteExpiresAt
  }
  if (session.userAgent !== undefined) info.userAgent = session.userAgent
  if (session.ip !== undefined) info.ip = session.ip
  return info
}
