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
  /**
   * The generation of `tokenId`: 0 at login, one more at each rotation. Refresh tokens carry theirs (the
   * `gen` claim), so a token from a rotation the store lost (a failover) is told apart from a rotated one.
   */
  generation: number
  /** Milliseconds since the epoch: login. */
  createdAt: number
  /** Milliseconds since the epoch: when `tokenId` was issued (the last rotation, or login). */
  rotatedAt: number
  /** Milliseconds since the epoch: the idle limit; each rotation renews it, and the session ends at it if none does. */
  expiresAt: number
  /** Milliseconds since the epoch: the end of the session, never extended. */
  absoluteExpiresAt: number
  /** The login request's User-Agent, for "active devices" lists. */
  userAgent?: string
  /** The login request's IP address. */
  ip?: string
  /**
   * DPoP: the RFC 7638 thumbprint of the key the session is bound to (at login, or by the rotation that bound
   * it: `RotateRequest.jkt`), kept for its whole life; absent for a session of Bearer tokens.
   */
  jkt?: string
}

/**
 * A live session as `listUserSessions` shows it: no token ids.
 *
 * @example
 * const sessions: SessionInfo[] = await app.refreshAuth.listUserSessions(userId)
 * const devices = sessions.map(({ sessionId, userAgent, lastRefreshedAt }) => ({ sessionId, userAgent, lastRefreshedAt }))
 */
export interface SessionInfo extends Pick<SessionRecord, 'sessionId' | 'userId' | 'createdAt' | 'expiresAt' | 'absoluteExpiresAt' | 'userAgent' | 'ip'> {
  /** Milliseconds since the epoch: the last refresh (login if none yet). */
  lastRefreshedAt: number
}

/**
 * A refresh token presented for a session, as `rotate` and `present` receive it; the immediate parent of
 * the live token counts as live for `reuseIntervalMs` after the rotation that replaced it.
 *
 * @example
 * const presented: PresentedToken = { sessionId: claims.sid, presentedTokenId: claims.jti, now: Date.now(), reuseIntervalMs: 10_000 }
 */
export interface PresentedToken {
  sessionId: string
  /** `jti` of the refresh token the client presented. */
  presentedTokenId: string
  /**
   * Its generation (the `gen` claim; the plugin always sends it). A token of a generation above the
   * record's is one the store lost: the session goes on from it instead of ending as reuse. Absent: never so.
   */
  presentedGeneration?: number
  /** Milliseconds since the epoch, as the caller sees it. */
  now: number
  /** How long after a rotation the immediate parent may still be presented; 0 disables it. */
  reuseIntervalMs: number
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
export interface RotateRequest extends PresentedToken {
  /**
   * The `sub` of the presented token: the session's user as the plugin sees it. A store that keeps
   * per-user bookkeeping (least-recently-used order for `maxSessionsPerUser`) may use it; others ignore it.
   */
  userId?: string
  /** `jti` the successor gets if the presented token is the live one. */
  nextTokenId: string
  /** Idle limit of the successor; the session still ends at its `absoluteExpiresAt`. */
  nextExpiresAt: number
  /**
   * DPoP: the key of the refresh's proof. A rotation of an unbound session binds it to this key in the same
   * atomic step (`SessionRecord.jkt`); a bound session keeps its key. `grace`, `reused` and a retry write nothing.
   */
  jkt?: string
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
 * What `SessionStore.create` is asked besides saving the session: the per-user limit, and a session of
 * the same user that this login replaces. Both are decided atomically among the logins of that user
 * (one step with the save in MemoryStore and PostgresStore; one script on the user's slot in RedisStore),
 * so that concurrent logins never leave more than the limit live.
 *
 * @example
 * await store.create(session, { maxSessionsPerUser: 3, onLimit: 'revoke-oldest' })
 */
export interface CreateOptions {
  /** The most live sessions the user may have, the new one included; undefined: no limit. */
  maxSessionsPerUser?: number
  /**
   * At the limit: `'revoke-oldest'` (default) ends the user's least recently used sessions (oldest
   * `rotatedAt`) to make room; `'refuse'` saves nothing and answers `limit-reached`.
   */
  onLimit?: 'revoke-oldest' | 'refuse'
  /**
   * A session this login replaces (re-authentication on the same device): ended with the save and not
   * counted toward the limit. Ignored unless it is a live session of the same user.
   */
  replaceSessionId?: string
}

/**
 * The outcome of `SessionStore.create`:
 * - `created`: saved; `endedSessionIds` lists the sessions ended to make room, and the replaced one.
 * - `limit-reached`: `onLimit: 'refuse'` and the user is at the limit: nothing was saved or ended.
 *
 * @example
 * const result: CreateResult = await store.create(session, { maxSessionsPerUser: 1, onLimit: 'refuse' })
 * if (result.outcome === 'limit-reached') throw new SessionLimitError()
 */
export type CreateResult =
  | { outcome: 'created', endedSessionIds: string[] }
  | { outcome: 'limit-reached' }

/**
 * What `SessionStore.present` is asked: is the presented refresh token the session's live one? Used where
 * only the live token may speak for a session (logout, logout everywhere, sign out the others,
 * re-authentication), with the same rules as `rotate`: the immediate parent within `reuseIntervalMs` counts
 * as live; any other token of the session is reuse, and the store then ends the session.
 *
 * @example
 * const result = await store.present({ sessionId, presentedTokenId, now: Date.now(), reuseIntervalMs: 10_000, end: true })
 */
export interface PresentRequest extends PresentedToken {
  /** End the session in the same atomic step when the token is live (a logout). */
  end: boolean
}

/**
 * The outcome of `SessionStore.present`:
 * - `live`: the presented token is the live one (or its parent within the reuse interval); with `end` the
 *   session has been ended.
 * - `reused`: any other token of the session: the store has ended the whole session, as `rotate` does.
 * - `not-found`: no live session by that id (never existed, expired or ended).
 *
 * @example
 * const result: PresentResult = await store.present(request)
 * if (result.outcome === 'reused') audit.alert(result.session.userId)
 */
export type PresentResult =
  | { outcome: 'live', session: SessionRecord }
  | { outcome: 'reused', session: SessionRecord }
  | { outcome: 'not-found' }

/**
 * The health of a store's revocation feed, as `RevocationListener.status` hears it:
 * - `live`: connected and caught up: every revocation the backend holds has been delivered;
 * - `down`: the feed's connection is lost; revocations made elsewhere are not arriving;
 * - `gap`: caught up again after an outage that outlasted the backend's retention: revocations made
 *   during it may never be delivered.
 *
 * @example
 * const status: RevocationFeedStatus = 'live'
 */
export type RevocationFeedStatus = 'live' | 'down' | 'gap'

/**
 * What ended sessions, as a store's feed announces it (the plugin tells the reason from it, in one place):
 * - `logout`: `present` with `end`;
 * - `reuse`: reuse found by `rotate` or `present`;
 * - `revoke`, `revoke-user`, `revoke-others`: those methods (`revokeUser`, `revokeOtherSessions`);
 * - `create`: sessions a login ended (the per-user limit, the replaced session, a full store's eviction).
 *
 * @example
 * listener.revoked([sessionId], Date.now(), { userId, cause: 'revoke' })
 */
export type SessionEndCause = 'logout' | 'reuse' | 'revoke' | 'revoke-user' | 'revoke-others' | 'create'

const SESSION_END_CAUSES: ReadonlySet<string> = new Set<SessionEndCause>(['logout', 'reuse', 'revoke', 'revoke-user', 'revoke-others', 'create'])

/** Whether a value read back from a backend's feed is a `SessionEndCause`. */
export function isSessionEndCause (value: unknown): value is SessionEndCause {
  return typeof value === 'string' && SESSION_END_CAUSES.has(value)
}

/**
 * Whose sessions an announcement ended and what ended them: every announcement ends sessions of one user.
 *
 * @example
 * const notice: SessionEndNotice = { userId: session.userId, cause: 'logout' }
 */
export interface SessionEndNotice {
  /** The sessions' user; null only when the store no longer knew it (`revoke` of a session it did not hold). */
  userId: string | null
  cause: SessionEndCause
}

/**
 * Hears every session that ends, through any store instance that shares the backend.
 *
 * @example
 * store.watchRevocations?.({
 *   revoked: (sessionIds, revokedAt) => revokedSet.add(sessionIds, revokedAt),
 *   status: (status) => log.info({ status }, 'revocation feed')
 * }, { retentionMs: 16 * 60_000 })
 */
export interface RevocationListener {
  /**
   * Sessions that ended at `revokedAt` (milliseconds since the epoch), with their user and what ended them
   * (`notice`, carried by the backend to every instance). Called synchronously, before the store's method
   * resolves, for sessions that this very store object ends; as soon as the backend delivers them for
   * sessions ended elsewhere. A session may be announced more than once.
   */
  revoked (sessionIds: readonly string[], revokedAt: number, notice: SessionEndNotice): void
  /**
   * The feed's health changed. The first call, `live`, comes once the revocations the backend holds are loaded.
   * With `live` and `gap`, a feed that knows it may pass `since`: when the backend's history of ends begins
   * (milliseconds since the epoch), later for a backend that lost its data. Sessions that ended before it are
   * unknown to every instance: the plugin treats access tokens issued before it as a gap while they may live.
   */
  status (status: RevocationFeedStatus, since?: number): void
}

/**
 * What the plugin asks of a revocation feed.
 *
 * @example
 * const watch = store.watchRevocations?.(listener, { retentionMs: accessTokenLifetimeMs + 60_000 })
 */
export interface WatchOptions {
  /**
   * How long (ms) each revocation must stay readable in the backend, so an instance that reconnects can
   * catch up: the access-token lifetime plus the clock tolerance and a margin.
   */
  retentionMs: number
}

/**
 * A running subscription to a store's revocation feed.
 *
 * @example
 * app.addHook('onClose', async () => watch.close())
 */
export interface RevocationWatch {
  /** Stops delivering and releases what the feed holds (its own connection); resolves once released. */
  close (): Promise<void>
}

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
 *   async present (request) { … } // SELECT … FOR UPDATE, then the rules of rotate; DELETE with `end`
 *   async revoke (sessionId) { … }
 *   // revokeUser, listUserSessions; watchRevocations (optional) for revocation across instances
 * }
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store: new SqlStore(pool) })
 */
export interface SessionStore {
  /** Saves a new session, applying `options` in the same atomic step: see `CreateOptions` and `CreateResult`. */
  create (session: SessionRecord, options?: CreateOptions): Promise<CreateResult>
  /** Consumes a refresh token: see `RotateResult`. */
  rotate (request: RotateRequest): Promise<RotateResult>
  /**
   * Checks that a presented refresh token is the session's live one, and with `end` ends the session in
   * the same atomic step: see `PresentResult`.
   */
  present (request: PresentRequest): Promise<PresentResult>
  /** Ends a session; ending an unknown session is not an error. */
  revoke (sessionId: string): Promise<void>
  /** Ends every session of a user (logout everywhere); a user without sessions is not an error. */
  revokeUser (userId: string): Promise<void>
  /** Ends every session of a user but `keepSessionId` ("sign out the other devices"); none to end is not an error. */
  revokeOtherSessions (userId: string, keepSessionId: string): Promise<void>
  /** The user's live sessions at `now` (milliseconds since the epoch), in no particular order. */
  listUserSessions (userId: string, now: number): Promise<SessionInfo[]>
  /**
   * The revocation feed: tells `listener` of every session that ends, through this store object or any
   * other sharing the backend. Every way a store ends a session (`revoke`, `revokeUser`,
   * `revokeOtherSessions`, reuse found by `rotate` or `present`, `present` with `end`, sessions ended by
   * `create`, capacity eviction) must be announced; expiry need not be. A store without a feed still
   * works: revocation is then local to each instance.
   */
  watchRevocations? (listener: RevocationListener, options: WatchOptions): RevocationWatch
  /**
   * Stops what the store started (timers, its own connections, feeds): the plugin calls it when the app
   * closes, whether it made the store or you gave it. It never closes the client or pool you gave the store.
   */
  close? (): Promise<void>
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
  return withDevice(info, session)
}

/** `target` with the login's device (User-Agent, IP) of `session`: what it lacks stays absent, not undefined. */
export function withDevice<T extends Pick<SessionRecord, 'userAgent' | 'ip'>> (target: T, session: Pick<SessionRecord, 'userAgent' | 'ip'>): T {
  if (session.userAgent !== undefined) target.userAgent = session.userAgent
  if (session.ip !== undefined) target.ip = session.ip
  return target
}

/** Orders session ids by code unit, the same in every store (not by locale): ties of recency break on it. */
export function compareIds (a: string, b: string): number {
  return Number(a > b) - Number(a < b)
}
