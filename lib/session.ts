import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { notify } from './audit.js'
import { InvalidArgumentError, StoreUnavailableError } from './errors.js'
import { hostClaims, hostSubject, userIdOf } from './host-claims.js'
import type { LoginUser } from './user.js'
import type { ResolvedOptions } from './options.js'
import type { SessionInfo, SessionRecord, SessionStore } from './stores/store.js'
import type { RegisteredClaims, TokenCodec } from './tokens.js'

/** Claims of a refresh token: the registered ones and the host's extras to copy into access tokens. */
export interface RefreshTokenClaims extends RegisteredClaims {
  ext?: Record<string, unknown>
  /**
   * `false` when `rememberMe` said no at login: the session's cookie is a browser-session cookie, at every
   * rotation. Carried by the (signed) token so the store keeps nothing more; absent means remembered.
   */
  remember?: false
}

/** What login and refresh hand to the client. */
export interface IssuedTokens {
  accessToken: string
  /** Seconds. */
  accessExpiresIn: number
  refreshToken: string
  /** Seconds the refresh cookie may live; null: a browser-session cookie (`rememberMe` said no). */
  refreshMaxAge: number | null
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
  /** The user's live sessions, for an "active devices" page; no token ids. The id as for `revokeUserSessions`. */
  listUserSessions (userId: string | number): Promise<SessionInfo[]>
}

// Enough to tell browsers apart; a longer header is cut rather than stored whole.
const MAX_USER_AGENT_LENGTH = 256

export interface SessionPolicyOptions {
  options: ResolvedOptions
  store: SessionStore
  accessTokens: TokenCodec<RegisteredClaims>
  refreshTokens: TokenCodec<RefreshTokenClaims>
}

/**
 * Session policy: login starts a session, refresh rotates its token (with reuse detection), logout
 * revokes it. Stores only persist; every rule lives here.
 */
export class SessionPolicy {
  readonly #options: ResolvedOptions
  readonly #store: SessionStore
  readonly #accessTokens: TokenCodec<RegisteredClaims>
  readonly #refreshTokens: TokenCodec<RefreshTokenClaims>

  constructor ({ options, store, accessTokens, refreshTokens }: SessionPolicyOptions) {
    this.#options = options
    this.#store = store
    this.#accessTokens = accessTokens
    this.#refreshTokens = refreshTokens
  }

  /**
   * Starts a session for a user that `verifyCredentials` accepted; `remember` false makes its refresh
   * cookie a browser-session cookie for the whole session.
   */
  async startSession (user: LoginUser, request: FastifyRequest, remember = true): Promise<IssuedTokens> {
    const sub = await hostSubject(this.#options.subject, user, request)
    const ext = this.#options.claims === undefined ? undefined : await hostClaims(this.#options.claims, user, request)
    const now = Date.now()
    const absoluteExpiresAt = now + this.#options.absoluteExpiresIn * 1000
    const session: SessionRecord = {
      sessionId: randomUUID(),
      userId: sub,
      tokenId: randomUUID(),
      previousTokenId: null,
      createdAt: now,
      rotatedAt: now,
      expiresAt: Math.min(now + this.#options.refreshExpiresIn * 1000, absoluteExpiresAt),
      absoluteExpiresAt,
      userAgent: request.headers['user-agent']?.slice(0, MAX_USER_AGENT_LENGTH),
      ip: request.ip
    }
    await callStore(request.log, () => this.#store.create(session))
    notify('onLogin', this.#options.onLogin, { userId: sub, sessionId: session.sessionId }, request)
    return this.#issueTokens(session, now, ext, remember)
  }

  /**
   * Trades a refresh token for new tokens, or returns null when it must be refused
   * (invalid, expired, unknown, revoked, or reused: then the whole session is revoked).
   */
  async rotateRefreshToken (refreshToken: string | undefined, request: FastifyRequest): Promise<IssuedTokens | null> {
    const claims = refreshToken === undefined ? null : this.#refreshTokens.verify(refreshToken)
    if (claims === null) return null
    const now = Date.now()
    const result = await callStore(request.log, () => this.#store.rotate({
      sessionId: claims.sid,
      presentedTokenId: claims.jti,
      nextTokenId: randomUUID(),
      now,
      nextExpiresAt: now + this.#options.refreshExpiresIn * 1000,
      reuseIntervalMs: this.#options.reuseInterval * 1000
    }))
    if (result.outcome === 'reused') {
      // RFC 9700 §4.14.2: a replayed refresh token means it leaked; the store revoked the family.
      request.log.warn({ sessionId: claims.sid, userId: claims.sub }, 'fastify-refresh-auth: refresh token reuse detected, session revoked')
      notify('onReuseDetected', this.#options.onReuseDetected, { userId: claims.sub, sessionId: claims.sid }, request)
      return null
    }
    if (result.outcome === 'not-found' || result.session.userId !== claims.sub) return null
    notify('onRefresh', this.#options.onRefresh, { userId: claims.sub, sessionId: claims.sid }, request)
    return this.#issueTokens(result.session, now, claims.ext, claims.remember !== false)
  }

  /**
   * Revokes the session of a refresh token, or with `all` every session of its user; an invalid token
   * revokes nothing.
   */
  async revokeFamily (refreshToken: string | undefined, request: FastifyRequest, all = false): Promise<void> {
    const claims = refreshToken === undefined ? null : this.#refreshTokens.verify(refreshToken)
    if (claims === null) return
    await callStore(request.log, () => all ? this.#store.revokeUser(claims.sub) : this.#store.revoke(claims.sid))
    notify('onLogout', this.#options.onLogout, { userId: claims.sub, sessionId: claims.sid, all }, request)
  }

  #issueTokens (session: SessionRecord, now: number, ext: Record<string, unknown> | undefined, remember: boolean): IssuedTokens {
    const iat = Math.floor(now / 1000)
    const refreshExp = Math.floor(Math.min(session.expiresAt, session.absoluteExpiresAt) / 1000)
    // the login that started the session, whatever refreshes came since (RFC 9068 §2.2.1)
    const authTime = Math.floor(session.createdAt / 1000)
    const accessToken = this.#accessTokens.sign({
      sub: session.userId, sid: session.sessionId, jti: randomUUID(), iat, exp: iat + this.#options.accessExpiresIn, auth_time: authTime
    }, ext)
    const refreshToken = this.#refreshTokens.sign({
      sub: session.userId, sid: session.sessionId, jti: session.tokenId, iat, exp: refreshExp
    }, refreshTokenExtras(ext, remember))
    return {
      accessToken,
      accessExpiresIn: this.#options.accessExpiresIn,
      refreshToken,
      refreshMaxAge: remember ? refreshExp - iat : null
    }
  }
}

/**
 * Session management for calls outside a request, straight on the store (a resource server sharing the
 * store has it too); store failures are logged to `log` and reject with a 503 `StoreUnavailableError`.
 */
export function createSessionManagement (store: SessionStore, log: FastifyBaseLogger): SessionManagement {
  return {
    async revokeSession (sessionId) {
      if (typeof sessionId !== 'string' || sessionId.length === 0) throw new InvalidArgumentError('revokeSession: sessionId must be a non-empty string')
      await callStore(log, () => store.revoke(sessionId))
    },
    async revokeUserSessions (userId) {
      const id = requireUserId(userId, 'revokeUserSessions')
      await callStore(log, () => store.revokeUser(id))
    },
    async listUserSessions (userId) {
      const id = requireUserId(userId, 'listUserSessions')
      return await callStore(log, () => store.listUserSessions(id, Date.now()))
    }
  }
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

/** What a refresh token carries besides its registered claims: the host's extras, and a "not remembered". */
function refreshTokenExtras (ext: Record<string, unknown> | undefined, remember: boolean): Omit<RefreshTokenClaims, keyof RegisteredClaims> | undefined {
  if (remember) return ext === undefined ? undefined : { ext }
  return ext === undefined ? { remember: false } : { ext, remember: false }
}
