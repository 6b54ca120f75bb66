import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { readsRefreshCookie, type RefreshCookie } from './cookie.js'
import type { RefreshTokenTransport } from '../options/types.js'
import type { IssuedTokens, PresentedRefreshToken, TokenChannel } from '../sessions/policy.js'

// A client on the body transport asks for it at login with this header (`'both'` only).
const TRANSPORT_HEADER = 'refresh-token-transport'

/**
 * How refresh tokens travel between a client and the auth routes (`refreshTokenTransport`): the HTTP-only
 * cookie, the `refresh_token` of JSON bodies, or either. A token goes back the way it came: a cookie
 * session never gets its token in a body (where page scripts could read it), a body client never gets a cookie.
 */
export class RefreshTransport {
  constructor (private readonly transport: RefreshTokenTransport, private readonly cookie: RefreshCookie) {}

  /** Whether refresh tokens may travel in JSON bodies. */
  get bodyAllowed (): boolean {
    return this.transport !== 'cookie'
  }

  get #cookieAllowed (): boolean {
    return this.transport !== 'body'
  }

  /** Where a login's tokens go: the body on the body transport, or on `'both'` when the client asks for it. */
  loginChannel (request: FastifyRequest): TokenChannel {
    return this.transport === 'body' || (this.transport === 'both' && request.headers[TRANSPORT_HEADER] === 'body') ? 'body' : 'cookie'
  }

  /**
   * The refresh token of a refresh or logout: the body's when it has one, else the cookie's. Throws
   * `DuplicateCookieError` on a tossed cookie, before anything is consumed or revoked.
   */
  presented (request: FastifyRequest): PresentedRefreshToken | undefined {
    return this.#fromBody(request) ?? this.#fromCookie(this.#cookieAllowed ? this.cookie.read(request) : undefined)
  }

  /**
   * The refresh token a login carries, only to replace the device's previous session: a cookie counts only if
   * it came once, so a planted one cannot block the login.
   */
  presentedAtLogin (request: FastifyRequest): PresentedRefreshToken | undefined {
    return this.#fromBody(request) ?? this.#fromCookie(this.#cookieAllowed ? this.cookie.readIfSingle(request) : undefined)
  }

  /** Answers with the tokens, the refresh token by `channel`. */
  send (reply: FastifyReply, tokens: IssuedTokens, channel: TokenChannel): FastifyReply {
    // RFC 9449 §5: a bound access token is of type DPoP
    const tokenType = tokens.jkt === undefined ? 'Bearer' : 'DPoP'
    if (channel === 'body') {
      return reply.send({
        access_token: tokens.accessToken, token_type: tokenType, expires_in: tokens.accessExpiresIn, refresh_token: tokens.refreshToken
      })
    }
    this.cookie.set(reply, tokens.refreshToken, tokens.refreshMaxAge)
    return reply.send({ access_token: tokens.accessToken, token_type: tokenType, expires_in: tokens.accessExpiresIn })
  }

  /** Clears the refresh cookie, where there is one to clear. */
  clearCookie (reply: FastifyReply): void {
    if (this.#cookieAllowed) this.cookie.clear(reply)
  }

  /** A refresh or logout handler, marked as reading the cookie: its route must be where the cookie is sent. */
  cookieRoute (handler: RouteOptions['handler']): RouteOptions['handler'] {
    return this.#cookieAllowed ? readsRefreshCookie(handler, this.cookie.path) : handler
  }

  #fromBody (request: FastifyRequest): PresentedRefreshToken | undefined {
    if (!this.bodyAllowed) return undefined
    const body = request.body as { refresh_token?: unknown } | null | undefined
    const token = typeof body === 'object' && body !== null ? body.refresh_token : undefined
    return typeof token === 'string' ? { token, channel: 'body' } : undefined
  }

  #fromCookie (token: string | undefined): PresentedRefreshToken | undefined {
    return token === undefined ? undefined : { token, channel: 'cookie' }
  }
}
