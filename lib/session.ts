import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { StoreUnavailableError } from './errors.js'
import type { LoginUser } from './index.js'
import type { ResolvedOptions } from './options.js'
import type { SessionRecord, SessionStore } from './stores/store.js'
import { RESERVED_CLAIMS, type RegisteredClaims, type TokenCodec } from './tokens.js'

/** Claims of a refresh token: the registered ones and the host's extras to copy into access tokens. */
export interface RefreshTokenClaims extends RegisteredClaims {
  ext?: Record<string, unknown>
}

/** What login and refresh hand to the client. */
export interface IssuedTokens {
  accessToken: string
  /** Seconds. */
  accessExpiresIn: number
  refreshToken: string
  /** Seconds the refresh cookie may live. */
  refreshMaxAge: number
}

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

  /** Starts a session for a user that `verifyCredentials` accepted. */
  async startSession (user: LoginUser, request: FastifyRequest): Promise<IssuedTokens> {
    const sub = this.#options.subject(user)
    if (typeof sub !== 'string' || sub.length === 0) {
      throw new TypeError('fastify-refresh-auth: the user has no id; return one from verifyCredentials or set the subject option')
    }
    const ext = this.#options.claims === undefined ? undefined : withoutReserved(await this.#options.claims(user, request))
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
      userAgent: request.headers['user-agent'],
      ip: request.ip
    }
    await callStore(request.log, () => this.#store.create(session))
    return this.#issueTokens(session, now, ext)
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
      return null
    }
    if (result.outcome === 'not-found' || result.session.userId !== claims.sub) return null
    return this.#issueTokens(result.session, now, claims.ext)
  }

  /** Revokes the session of a refresh token; an invalid token revokes nothing. */
  async revokeFamily (refreshToken: string | undefined, request: FastifyRequest): Promise<void> {
    const claims = refreshToken === undefined ? null : this.#refreshTokens.verify(refreshToken)
    if (claims === null) return
    await callStore(request.log, () => this.#store.revoke(claims.sid))
  }

  #issueTokens (session: SessionRecord, now: number, ext: Record<string, unknown> | undefined): IssuedTokens {
    const iat = Math.floor(now / 1000)
    const refreshExp = Math.floor(Math.min(session.expiresAt, session.absoluteExpiresAt) / 1000)
    const accessToken = this.#accessTokens.sign({
      sub: session.userId, sid: session.sessionId, jti: randomUUID(), iat, exp: iat + this.#options.accessExpiresIn
    }, ext)
    const refreshToken = this.#refreshTokens.sign({
      sub: session.userId, sid: session.sessionId, jti: session.tokenId, iat, exp: refreshExp
    }, ext === undefined ? undefined : { ext })
    return {
      accessToken,
      accessExpiresIn: this.#options.accessExpiresIn,
      refreshToken,
      refreshMaxAge: refreshExp - iat
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

function withoutReserved (claims: Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = {}
  for (const name of Object.keys(claims)) {
    if (!RESERVED_CLAIMS.has(name)) kept[name] = claims[name]
  }
  return kept
}
