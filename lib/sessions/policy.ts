import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { notify } from '../audit.js'
import { InvalidArgumentError, InvalidDpopProofError, SessionLimitError, StoreUnavailableError } from '../errors.js'
import { callHost } from './host-call.js'
import { hostClaims, hostSubject, userIdOf } from './host-claims.js'
import type { LoginUser } from '../types.js'
import type { HostCallbacks, SessionSettings } from '../options/types.js'
import type { SessionRevocations } from './revocation.js'
import type { SessionEnds } from './ends.js'
import type { CreateOptions, PresentResult, SessionInfo, SessionRecord, SessionStore } from '../stores/store.js'
import { describeSession, type UserSession } from './devices.js'
import { loginRecord } from './decisions.js'
import type { RegisteredClaims, TokenCodec } from '../tokens/codec.js'
import { NO_TELEMETRY, type LogoutOutcome, type RefreshOutcome, type Reported, type SessionTelemetry } from '../telemetry/session-telemetry.js'

/** Claims of a refresh token: the registered ones and the host's extras to copy into access tokens. */
export interface RefreshTokenClaims extends RegisteredClaims {
  /** The token's generation in its session: 0 at login, one more at each rotation (see `SessionRecord.generation`). */
  gen: number
  ext?: Record<string, unknown>
  /**
   * `false` when `rememberMe` said no at login: the session's cookie is a browser-session cookie, at every
   * rotation. Carried by the (signed) token so the store keeps nothing more; absent means remembered.
   */
  remember?: false
  /**
   * `'body'` when the session's tokens travel in JSON bodies; absent: in the cookie. A token is refused on the
   * other channel, so a body session cannot become a cookie one that `rememberMe` was never asked about.
   */
  channel?: 'body'
}

/** The way a refresh token travels: the refresh cookie, or the `refresh_token` of a JSON body. */
export type TokenChannel = 'cookie' | 'body'

/** A refresh token as a request carried it. */
export interface PresentedRefreshToken {
  token: string
  channel: TokenChannel
}

/** How a login's session sends its refresh tokens, and whether its cookie outlives the browser session. */
export interface SessionStart {
  channel: TokenChannel
  /** False: the refresh cookie is a browser-session cookie, for the whole session. */
  remember: boolean
  /** The thumbprint of the key of the login's DPoP proof: the session is bound to it for its whole life. */
  jkt?: string
}

/** What login and refresh hand to the client. */
export interface IssuedTokens {
  accessToken: string
  /** Seconds. */
  accessExpiresIn: number
  refreshToken: string
  /** Seconds the refresh cookie may live; null: a browser-session cookie (`rememberMe` said no). */
  refreshMaxAge: number | null
  /** The key the tokens are bound to (DPoP), or undefined for Bearer tokens. */
  jkt: string | undefined
}

/**
 * Session management, behind `app.refreshAuth`. Store failures reject with a 503 `StoreUnavailableError`.
 *
 * @example
 * app.post('/account/password', { preHandler: app.authenticate }, async (request) => {
 *   const user = await request.authenticate()
 *   await changePassword(user.sub, request.body)
 *   await app.refreshAuth.revokeUserSessions(user.sub) // sign out every device
 * })
 */
export interface SessionManagement {
  /** Ends one session (check first that it belongs to the user asking). */
  revokeSession (sessionId: string): Promise<void>
  /**
   * Ends every session of a user: logout everywhere, after a password change or a compromise.
   * The id is the user's `sub`, or what `subject` returned for them (a number is made a string, as in `sub`).
   */
  revokeUserSessions (userId: string | number): Promise<void>
  /**
   * Ends every session of a user but `keepSessionId` ("sign out the other devices"): after a password
   * change, keep the device that changed it. The id as for `revokeUserSessions`; `keepSessionId` is the
   * `sid` of the caller's access token.
   */
  revokeOtherSessions (userId: string | number, keepSessionId: string): Promise<void>
  /**
   * The user's live sessions, for an "active devices" page: no token ids, with when each was last seen and its
   * device (browser, OS, type) read from its User-Agent. The id as for `revokeUserSessions`.
   */
  listUserSessions (userId: string | number): Promise<UserSession[]>
}

/** What a logout ends: the presented token's session, every session of its user, or every other one. */
export type LogoutScope = 'session' | 'all' | 'others'

// Enough to tell browsers apart; a longer header is cut rather than stored whole.
const MAX_USER_AGENT_LENGTH = 256

export interface SessionPolicyOptions {
  settings: SessionSettings
  hooks: HostCallbacks
  store: SessionStore
  accessTokens: TokenCodec<RegisteredClaims>
  refreshTokens: TokenCodec<RefreshTokenClaims>
  /** The sessions this instance knows ended, or null with `accessToken.revocation: false`. */
  revocations: SessionRevocations | null
  /** Where the ends this instance causes are told, with their user and reason (`onSessionEnd`, events streams). */
  ends: SessionEnds
  /** Where refreshes and logouts report their outcome and span; none by default. */
  telemetry?: SessionTelemetry
}

/**
 * Session policy: login starts a session, refresh rotates its token (with reuse detection), logout
 * revokes it. Stores only persist; every rule lives here.
 */
export class SessionPolicy {
  readonly #settings: SessionSettings
  readonly #hooks: HostCallbacks
  readonly #store: SessionStore
  readonly #accessTokens: TokenCodec<RegisteredClaims>
  readonly #refreshTokens: TokenCodec<RefreshTokenClaims>
  readonly #revocations: SessionRevocations | null
  readonly #ends: SessionEnds
  readonly #telemetry: SessionTelemetry

  constructor ({ settings, hooks, store, accessTokens, refreshTokens, revocations, ends, telemetry = NO_TELEMETRY }: SessionPolicyOptions) {
    this.#ends = ends
    this.#telemetry = telemetry
    this.#settings = settings
    this.#hooks = hooks
    this.#store = store
    this.#accessTokens = accessTokens
    this.#refreshTokens = refreshTokens
    this.#revocations = revocations
  }

  /** Where logins, refreshes and logouts report: the login route reports through it too. */
  get telemetry (): SessionTelemetry {
    return this.#telemetry
  }

  /**
   * Starts a session for a user that `verifyCredentials` accepted, its tokens bound to `start.channel`;
   * `start.remember` false makes its refresh cookie a browser-session cookie for the whole session. A live
   * refresh token of the same user that the login carried (`presented`) names the session this one replaces. At `maxSessionsPerUser`
   * the store ends the least recently used sessions, or (`onSessionLimit: 'refuse'`) this throws a 403.
   */
  async startSession (user: LoginUser, request: FastifyRequest, start: SessionStart, presented?: PresentedRefreshToken): Promise<IssuedTokens> {
    const sub = await hostSubject(this.#hooks.subject, user, request, this.#hooks.timeout)
    const ext = this.#hooks.claims === undefined ? undefined : await hostClaims(this.#hooks.claims, user, request, this.#hooks.timeout)
    const replaceSessionId = presented === undefined ? undefined : await this.#replaceableSession(presented, sub, request, start.jkt)
    const now = Date.now()
    const absoluteExpiresAt = now + this.#settings.absoluteExpiresIn * 1000
    const session = loginRecord({
      sessionId: randomUUID(),
      userId: sub,
      tokenId: randomUUID(),
      now,
      expiresAt: Math.min(now + this.#settings.refreshExpiresIn * 1000, absoluteExpiresAt),
      absoluteExpiresAt,
      userAgent: request.headers['user-agent']?.slice(0, MAX_USER_AGENT_LENGTH),
      ip: request.ip,
      jkt: start.jkt
    })
    const createOptions: CreateOptions = { onLimit: this.#settings.onSessionLimit }
    if (this.#settings.maxSessionsPerUser !== undefined) createOptions.maxSessionsPerUser = this.#settings.maxSessionsPerUser
    if (replaceSessionId !== undefined) createOptions.replaceSessionId = replaceSessionId
    const result = await callStore(request.log, () => this.#store.create(session, createOptions))
    if (result.outcome === 'limit-reached') {
      request.log.info({ userId: sub }, 'fastify-refresh-auth: login refused, the user is at maxSessionsPerUser')
      throw new SessionLimitError()
    }
    const ended = result.endedSessionIds
    if (ended.length > 0) {
      this.#revocations?.ended(ended)
      this.#ends.ended(ended, { userId: sub, cause: 'create' })
      for (const sessionId of ended) {
        const reason = sessionId === replaceSessionId ? 'replaced' : 'session-limit'
        notify('onLogout', this.#hooks.onLogout, { userId: sub, sessionId, all: false, others: false, reason }, request)
      }
    }
    notify('onLogin', this.#hooks.onLogin, { userId: sub, sessionId: session.sessionId }, request)
    return this.#issueTokens(session, now, ext, start)
  }

  /**
   * The session a login replaces: the one of a refresh token of the same user, if that token is the live
   * one. A token of another user is ignored, so it cannot end that user's session; a rotated one is reuse.
   */
  async #replaceableSession (presented: PresentedRefreshToken, sub: string, request: FastifyRequest, jkt: string | undefined): Promise<string | undefined> {
    const claims = this.#verifyRefreshToken(presented, request)
    if (claims === null || claims.sub !== sub || this.#revocations?.has(claims.sid) === true) return undefined
    // a bound session speaks only with its key, even to be replaced
    if (keyRefusal(claims.cnf?.jkt, jkt) !== null) return undefined
    const result = await this.#present(claims, false, request)
    if (result.outcome === 'reused') this.#reuseDetected(claims, request)
    if (result.outcome !== 'live' || result.session.userId !== sub) return undefined
    // the record's key too: the unbound parent, in its grace after the refresh that bound the session
    return keyRefusal(result.session.jkt, jkt) === null ? claims.sid : undefined
  }

  /**
   * Trades a refresh token for new tokens, or returns null when it must be refused (invalid, expired,
   * unknown, revoked, reused: then the whole session is revoked; or its user refused by `loadUser`). Its
   * immediate parent within the reuse interval gets the live token again (a retry, another tab). `jkt` is the
   * key of the request's DPoP proof: a bound session refuses any other (401, nothing consumed), an unbound one
   * is bound to it from this refresh on.
   */
  async rotateRefreshToken (presented: PresentedRefreshToken | undefined, request: FastifyRequest, jkt?: string): Promise<IssuedTokens | null> {
    const result = await this.#telemetry.refresh(() => this.#rotate(presented, request, jkt))
    if (result instanceof Error) throw result
    return result
  }

  async #rotate (
    presented: PresentedRefreshToken | undefined, request: FastifyRequest, jkt: string | undefined
  ): Promise<Reported<RefreshOutcome, IssuedTokens | null | Error>> {
    const claims = presented === undefined ? null : this.#verifyRefreshToken(presented, request)
    if (claims === null) return refused(presented !== undefined && hasExpired(presented.token) ? 'expired' : 'invalid')
    // heard of as ended (here or on another instance), even if the store has yet to delete it
    if (this.#revocations?.has(claims.sid) === true) return refused('revoked')
    // before the store: a thief without the key consumes nothing and ends nothing
    const wrongKey = keyRefusal(claims.cnf?.jkt, jkt)
    if (wrongKey !== null) return { outcome: 'invalid', value: wrongKey }
    let ext = claims.ext
    const loadUser = this.#hooks.loadUser
    if (loadUser !== undefined) {
      // before the rotation: a failure here leaves the session as it was
      const user = await loadHostUser(loadUser, claims.sub, request, this.#hooks.timeout)
      if (user === null || user === undefined) {
        await this.#endRefusedSession(claims, request)
        return refused('refused_by_host')
      }
      ext = this.#hooks.claims === undefined ? undefined : await hostClaims(this.#hooks.claims, user, request, this.#hooks.timeout)
    }
    const now = Date.now()
    const result = await callStore(request.log, () => this.#store.rotate({
      sessionId: claims.sid,
      userId: claims.sub,
      presentedTokenId: claims.jti,
      presentedGeneration: claims.gen,
      nextTokenId: randomUUID(),
      now,
      nextExpiresAt: now + this.#settings.refreshExpiresIn * 1000,
      reuseIntervalMs: this.#settings.reuseInterval * 1000,
      jkt
    }))
    if (result.outcome === 'reused') {
      this.#reuseDetected(claims, request)
      return refused('reuse')
    }
    // unknown to the store: ended, or expired and deleted
    if (result.outcome === 'not-found') return refused('revoked')
    if (result.session.userId !== claims.sub) return refused('invalid')
    // the record's key, which the rotation itself may have just set: an unbound parent in grace after the
    // binding refresh, or a rival key in that race, gets nothing (grace consumed nothing)
    const recordKey = keyRefusal(result.session.jkt, jkt)
    if (recordKey !== null) return { outcome: 'invalid', value: recordKey }
    notify('onRefresh', this.#hooks.onRefresh, { userId: claims.sub, sessionId: claims.sid }, request)
    // the record's key; the proof's for a store that does not keep a binding made at refresh (the tokens stay bound)
    const start: SessionStart = { channel: claims.channel ?? 'cookie', remember: claims.remember !== false, jkt: result.session.jkt ?? jkt }
    const value = this.#issueTokens(result.session, now, ext, start)
    return { outcome: result.outcome, value }
  }

  /**
   * Logout: ends the session of a refresh token, every session of its user (`all`), or every session of
   * its user but this one (`others`), but only for the session's live token (or its parent within the
   * reuse interval). A rotated token is reuse: its session ends, `onReuseDetected` fires, and nothing else
   * happens. An invalid or unknown token ends nothing; nor does a bound session's token without a proof from
   * its key (`jkt`): 401, so a thief cannot sign the user out.
   */
  async revokeFamily (presented: PresentedRefreshToken | undefined, request: FastifyRequest, scope: LogoutScope = 'session', jkt?: string): Promise<void> {
    const wrongKey = await this.#telemetry.logout(() => this.#endFamily(presented, request, scope, jkt))
    if (wrongKey !== undefined) throw wrongKey
  }

  async #endFamily (
    presented: PresentedRefreshToken | undefined, request: FastifyRequest, scope: LogoutScope, jkt: string | undefined
  ): Promise<Reported<LogoutOutcome, Error | undefined>> {
    const claims = presented === undefined ? null : this.#verifyRefreshToken(presented, request)
    if (claims === null) return { outcome: 'invalid', value: undefined }
    const wrongKey = keyRefusal(claims.cnf?.jkt, jkt)
    if (wrongKey !== null) return { outcome: 'invalid', value: wrongKey }
    // A bound token ends its session in one step. An unbound one may be the parent of a token a refresh has
    // bound since, so the record's key is read before anything ends (one more round trip): only that key's
    // holder signs the session out. `all` and `others` look first too, so a failure in between leaves the
    // session for a retry.
    const endsAtOnce = scope === 'session' && claims.cnf?.jkt !== undefined
    const result = await this.#present(claims, endsAtOnce, request)
    if (result.outcome === 'not-found') return { outcome: 'invalid', value: undefined }
    if (result.outcome === 'reused') {
      this.#reuseDetected(claims, request)
      return { outcome: 'reuse', value: undefined }
    }
    const recordKey = keyRefusal(result.session.jkt, jkt)
    if (recordKey !== null) return { outcome: 'invalid', value: recordKey }
    // the store's user, the one whose live token this is
    const { userId } = result.session
    // the others first, then this session by its own logout: a failure in between leaves its token live for a retry
    if (scope !== 'session') await endUserSessions(this.#store, this.#revocations, this.#ends, userId, request.log, claims.sid)
    if (scope !== 'others' && !endsAtOnce && (await this.#present(claims, true, request)).outcome === 'reused') {
      // rotated meanwhile past the reuse interval (another tab's refresh did not win): the store ended it as reuse
      this.#reuseDetected(claims, request)
      return { outcome: 'reuse', value: undefined }
    }
    if (scope !== 'others') {
      this.#revocations?.ended([claims.sid])
      this.#ends.ended([claims.sid], { userId, cause: 'logout' })
    }
    const event = { userId, sessionId: claims.sid, all: scope === 'all', others: scope === 'others', reason: 'logout' as const }
    notify('onLogout', this.#hooks.onLogout, event, request)
    return { outcome: 'success', value: undefined }
  }

  /** Asks the store whether the token is its session's live one (the reuse rules of `rotate`); `end` ends it too. */
  async #present (claims: RefreshTokenClaims, end: boolean, request: FastifyRequest): Promise<PresentResult> {
    return await callStore(request.log, () => this.#store.present({
      sessionId: claims.sid,
      presentedTokenId: claims.jti,
      presentedGeneration: claims.gen,
      now: Date.now(),
      reuseIntervalMs: this.#settings.reuseInterval * 1000,
      end
    }))
  }

  /**
   * A refresh token's claims, or null; its generation must be a count, as every token we sign carries, and it
   * must come by the channel it was issued for (refused, not reuse: the session is not ended).
   */
  #verifyRefreshToken ({ token, channel }: PresentedRefreshToken, request: FastifyRequest): RefreshTokenClaims | null {
    const claims = this.#refreshTokens.verify(token)
    if (claims === null || !Number.isSafeInteger(claims.gen) || claims.gen < 0) return null
    if ((claims.channel ?? 'cookie') !== channel) {
      request.log.warn({ sessionId: claims.sid, issuedFor: claims.channel ?? 'cookie', came: channel },
        'fastify-refresh-auth: refused a refresh token on another channel than the one it was issued for')
      return null
    }
    return claims
  }

  // RFC 9700 §4.14.2: a replayed refresh token means it leaked; the store ended the whole session.
  #reuseDetected (claims: RefreshTokenClaims, request: FastifyRequest): void {
    this.#revocations?.ended([claims.sid])
    this.#ends.ended([claims.sid], { userId: claims.sub, cause: 'reuse' })
    request.log.warn({ sessionId: claims.sid, userId: claims.sub }, 'fastify-refresh-auth: refresh token reuse detected, session revoked')
    notify('onReuseDetected', this.#hooks.onReuseDetected, { userId: claims.sub, sessionId: claims.sid }, request)
  }

  // `loadUser` said the user may no longer refresh: the session ends everywhere, as at a logout.
  async #endRefusedSession (claims: RefreshTokenClaims, request: FastifyRequest): Promise<void> {
    await callStore(request.log, () => this.#store.revoke(claims.sid))
    this.#revocations?.ended([claims.sid])
    this.#ends.ended([claims.sid], { userId: claims.sub, cause: 'revoke' })
    request.log.info({ sessionId: claims.sid, userId: claims.sub }, 'fastify-refresh-auth: loadUser refused the user at refresh, session ended')
    notify('onLogout', this.#hooks.onLogout, { userId: claims.sub, sessionId: claims.sid, all: false, others: false, reason: 'user-refused' }, request)
  }

  #issueTokens (session: SessionRecord, now: number, ext: Record<string, unknown> | undefined, { channel, remember, jkt }: SessionStart): IssuedTokens {
    const iat = Math.floor(now / 1000)
    const refreshExp = Math.floor(Math.min(session.expiresAt, session.absoluteExpiresAt) / 1000)
    // an access token never outlives its session: expiry is not announced on the revocation feed
    const accessExp = Math.min(iat + this.#settings.accessExpiresIn, Math.floor(session.absoluteExpiresAt / 1000))
    // the login that started the session, whatever refreshes came since (RFC 9068 §2.2.1)
    const authTime = Math.floor(session.createdAt / 1000)
    // RFC 9449 §6.1: both tokens of a bound session name its key
    const cnf = jkt === undefined ? undefined : { jkt }
    const accessToken = this.#accessTokens.sign({
      sub: session.userId, sid: session.sessionId, jti: randomUUID(), iat, exp: accessExp, auth_time: authTime, cnf
    }, ext)
    const refreshToken = this.#refreshTokens.sign({
      sub: session.userId, sid: session.sessionId, jti: session.tokenId, iat, exp: refreshExp, cnf
    }, refreshTokenExtras(session.generation, ext, remember, channel))
    return {
      accessToken,
      accessExpiresIn: accessExp - iat,
      refreshToken,
      refreshMaxAge: remember ? refreshExp - iat : null,
      jkt
    }
  }
}

/**
 * Session management for calls outside a request, straight on the store (a resource server sharing the
 * store has it too); store failures are logged to `log` and reject with a 503 `StoreUnavailableError`.
 */
export function createSessionManagement (
  store: SessionStore, log: FastifyBaseLogger, revocations: SessionRevocations | null, ends: SessionEnds
): SessionManagement {
  return {
    async revokeSession (sessionId) {
      await endSession(store, revocations, ends, log, requireSessionId(sessionId, 'revokeSession', 'sessionId'), null)
    },
    async revokeUserSessions (userId) {
      const id = requireUserId(userId, 'revokeUserSessions')
      await endUserSessions(store, revocations, ends, id, log)
    },
    async revokeOtherSessions (userId, keepSessionId) {
      const id = requireUserId(userId, 'revokeOtherSessions')
      const keep = requireSessionId(keepSessionId, 'revokeOtherSessions', 'keepSessionId')
      await endUserSessions(store, revocations, ends, id, log, keep)
    },
    async listUserSessions (userId) {
      const id = requireUserId(userId, 'listUserSessions')
      const sessions = await callStore(log, () => store.listUserSessions(id, Date.now()))
      return sessions.map(describeSession)
    }
  }
}

/** What the sessions routes do for a signed-in user: list their sessions, and end one of them. */
export interface UserSessionControls {
  listUserSessions (userId: string, request: FastifyRequest): Promise<UserSession[]>
  /**
   * Ends `sessionId` if it is a live session of `userId`, as `revokeSession` does, and tells `onLogout`
   * (`'ended-by-user'`); false, ending nothing, when the user has no such session (another user's, say).
   */
  endUserSession (userId: string, sessionId: string, request: FastifyRequest): Promise<boolean>
}

/** The signed-in user's own session controls, for the sessions routes. */
export function createUserSessionControls (
  store: SessionStore, revocations: SessionRevocations | null, ends: SessionEnds, onLogout: HostCallbacks['onLogout']
): UserSessionControls {
  const liveSessions = async (userId: string, request: FastifyRequest): Promise<SessionInfo[]> =>
    await callStore(request.log, () => store.listUserSessions(userId, Date.now()))
  return {
    async listUserSessions (userId, request) {
      return (await liveSessions(userId, request)).map(describeSession)
    },
    async endUserSession (userId, sessionId, request) {
      // the store's own list: a session id alone says nothing of whose it is
      const sessions = await liveSessions(userId, request)
      if (!sessions.some(session => session.sessionId === sessionId)) return false
      await endSession(store, revocations, ends, request.log, sessionId, userId)
      notify('onLogout', onLogout, { userId, sessionId, all: false, others: false, reason: 'ended-by-user' }, request)
      return true
    }
  }
}

/** Ends one session: the store, this instance's revocations, and its listeners (with its user when known). */
async function endSession (
  store: SessionStore, revocations: SessionRevocations | null, ends: SessionEnds, log: FastifyBaseLogger, sessionId: string, userId: string | null
): Promise<void> {
  await callStore(log, () => store.revoke(sessionId))
  revocations?.ended([sessionId])
  ends.ended([sessionId], { userId, cause: 'revoke' })
}

/**
 * Ends every session of a user, or every one but `keepSessionId`. Without a revocation feed heard here
 * (a store without one, or `accessToken.revocation: false`) nothing says which sessions the store ended: they
 * are listed first, so this instance at least refuses their access tokens and tells `onSessionEnd` of them.
 */
async function endUserSessions (
  store: SessionStore, revocations: SessionRevocations | null, ends: SessionEnds, userId: string, log: FastifyBaseLogger,
  keepSessionId?: string
): Promise<void> {
  const list = revocations === null ? ends.listening : revocations.recordsLocally
  const listed = list ? await callStore(log, () => store.listUserSessions(userId, Date.now())) : []
  await callStore(log, () => keepSessionId === undefined ? store.revokeUser(userId) : store.revokeOtherSessions(userId, keepSessionId))
  const ended = listed.map(session => session.sessionId).filter(sessionId => sessionId !== keepSessionId)
  revocations?.ended(ended)
  ends.ended(ended, { userId, cause: keepSessionId === undefined ? 'revoke-user' : 'revoke-others' })
}

/**
 * Calls `loadUser`. Whatever it throws is logged and answered 503, like a store failure: the session is
 * left as it was, for a retry.
 */
async function loadHostUser (
  loadUser: NonNullable<HostCallbacks['loadUser']>, userId: string, request: FastifyRequest, timeout: number
): Promise<LoginUser | null | undefined> {
  return await callHost('loadUser', request.log, timeout, () => loadUser(userId, request), () => new StoreUnavailableError())
}

/** Runs a store call; any failure is logged for the operator and becomes a generic 503 for the client. */
async function callStore<T> (log: FastifyBaseLogger, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (err) {
    log.error({ err }, 'fastify-refresh-auth: session store failed')
    throw new StoreUnavailableError()
  }
}

function requireUserId (userId: unknown, method: string): string {
  const id = userIdOf(userId)
  if (id === null) throw new InvalidArgumentError(`${method}: userId must be a non-empty string or a finite number`)
  return id
}

/** `argument` of `method`, a session id: a non-empty string. */
function requireSessionId (sessionId: unknown, method: string, argument: string): string {
  if (typeof sessionId !== 'string' || sessionId.length === 0) throw new InvalidArgumentError(`${method}: ${argument} must be a non-empty string`)
  return sessionId
}

/**
 * SECURITY 34-35, the one place of the rule: a session bound to a key (`boundTo`: its refresh token's
 * `cnf.jkt`, or its record's) is used only with a valid proof from that key (`jkt`, the proof's). The 401 it
 * answers leaves the session as it was.
 */
function keyRefusal (boundTo: string | undefined, jkt: string | undefined): Error | null {
  return boundTo === undefined || boundTo === jkt ? null : new InvalidDpopProofError()
}

function refused (outcome: RefreshOutcome): Reported<RefreshOutcome, null> {
  return { outcome, value: null }
}

/**
 * Whether a refused token's unverified `exp` has passed: only a label for telemetry, never a decision
 * (the token was refused already), read only when it was refused.
 */
function hasExpired (token: string): boolean {
  try {
    const payload: unknown = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString())
    return typeof payload === 'object' && payload !== null && 'exp' in payload &&
      typeof payload.exp === 'number' && payload.exp * 1000 <= Date.now()
  } catch {
    return false
  }
}

/**
 * What a refresh token carries besides its registered claims: its generation, the host's extras, a "not
 * remembered", and the body channel.
 */
function refreshTokenExtras (
  gen: number, ext: Record<string, unknown> | undefined, remember: boolean, channel: TokenChannel
): Omit<RefreshTokenClaims, keyof RegisteredClaims> {
  const extras: Omit<RefreshTokenClaims, keyof RegisteredClaims> = { gen }
  if (ext !== undefined) extras.ext = ext
  if (!remember) extras.remember = false
  if (channel === 'body') extras.channel = 'body'
  return extras
}
