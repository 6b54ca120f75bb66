import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { CrossSiteRequestError, InvalidCredentialsError, InvalidOptionError, InvalidRefreshTokenError } from './errors.js'
import type { ResolvedOptions } from './options.js'
import type { IssuedTokens, SessionPolicy } from './session.js'

/** What a route factory accepts: anything of `RouteOptions` but the handler, which is the plugin's. */
export type RouteOverrides = Partial<Omit<RouteOptions, 'handler'>>

/** The route factories, also behind `app.refreshAuth`. */
export interface RouteFactories {
  /** `POST {prefix}/login`: `verifyCredentials`, then tokens. */
  loginRoute (overrides?: RouteOverrides): RouteOptions
  /** `POST {prefix}/refresh`: trades the refresh cookie for new tokens. */
  refreshRoute (overrides?: RouteOverrides): RouteOptions
  /** `POST {prefix}/logout`: revokes the session, clears the cookie, 204. */
  logoutRoute (overrides?: RouteOverrides): RouteOptions
}

/** RFC 6749 §5.1 access token response. */
const tokenResponseSchema = {
  type: 'object',
  required: ['access_token', 'token_type', 'expires_in'],
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer'] },
    expires_in: { type: 'integer' }
  },
  additionalProperties: false
} as const

// Responses go through these schemas: fast serialisation, and nothing but these fields leaves.
const tokenResponses = { 200: tokenResponseSchema }
const logoutResponses = { 204: { type: 'null' } }

/** `sessions` is null on a resource server, which can sign nothing: every factory refuses there. */
export function createRouteFactories (options: ResolvedOptions, sessionPolicy: SessionPolicy | null): RouteFactories {
  const cookieOptions = {
    httpOnly: true,
    secure: options.cookieSecure,
    sameSite: options.cookieSameSite,
    path: options.cookiePath
  } as const

  // Fetch Metadata first (browsers send it on every request), then the optional Origin allow-list.
  // Runs before anything is read, so a refused request consumes no token.
  function refuseCrossSite (request: FastifyRequest): void {
    if (request.headers['sec-fetch-site'] === 'cross-site') throw new CrossSiteRequestError()
    const origin = request.headers.origin
    if (options.trustedOrigins !== null && origin !== undefined && !options.trustedOrigins.has(origin)) {
      throw new CrossSiteRequestError()
    }
  }

  function sendTokens (reply: FastifyReply, tokens: IssuedTokens): FastifyReply {
    reply.setCookie(options.cookieName, tokens.refreshToken, { ...cookieOptions, maxAge: tokens.refreshMaxAge })
    return reply.send({ access_token: tokens.accessToken, token_type: 'Bearer', expires_in: tokens.accessExpiresIn })
  }

  function readRefreshCookie (request: FastifyRequest): string | undefined {
    // `hook: false` in a host's @fastify/cookie leaves request.cookies unset: parse the header then
    const cookies = request.cookies ?? request.server.parseCookie(request.headers.cookie ?? '')
    return cookies[options.cookieName]
  }

  // Token responses must not be cached (RFC 6749 §5.1): set before anything can fail.
  function noStore (reply: FastifyReply): void {
    reply.header('cache-control', 'no-store')
    reply.header('pragma', 'no-cache')
  }

  function route (name: string, overrides: RouteOverrides, handler: RouteOptions['handler'], response: object): RouteOptions {
    return {
      method: 'POST',
      url: `${options.prefix}/${name}`,
      ...overrides,
      schema: { response, ...overrides.schema },
      handler
    }
  }

  const sessions = sessionPolicy as SessionPolicy
  function refuseOnResourceServer (name: string): void {
    if (sessionPolicy === null) {
      throw new InvalidOptionError(`this app only verifies access tokens (no secret or no private key to sign with): it cannot serve the ${name} route`)
    }
  }

  return {
    loginRoute (overrides = {}) {
      refuseOnResourceServer('login')
      const verifyCredentials = options.verifyCredentials
      if (verifyCredentials === undefined) throw new InvalidOptionError('verifyCredentials is required for the login route')
      return route('login', overrides, async function login (request, reply) {
        noStore(reply)
        refuseCrossSite(request)
        const user = await verifyCredentials(request)
        if (user === null || user === undefined) throw new InvalidCredentialsError()
        return sendTokens(reply, await sessions.startSession(user, request))
      }, tokenResponses)
    },

    refreshRoute (overrides = {}) {
      refuseOnResourceServer('refresh')
      return route('refresh', overrides, async function refresh (request, reply) {
        noStore(reply)
        refuseCrossSite(request)
        const tokens = await sessions.rotateRefreshToken(readRefreshCookie(request), request)
        if (tokens === null) {
          // one answer whatever the reason, and the dead cookie goes
          reply.clearCookie(options.cookieName, cookieOptions)
          throw new InvalidRefreshTokenError()
        }
        return sendTokens(reply, tokens)
      }, tokenResponses)
    },

    logoutRoute (overrides = {}) {
      refuseOnResourceServer('logout')
      return route('logout', overrides, async function logout (request, reply) {
        noStore(reply)
        refuseCrossSite(request)
        await sessions.revokeFamily(readRefreshCookie(request), request)
        reply.clearCookie(options.cookieName, cookieOptions)
        return reply.code(204).send()
      }, logoutResponses)
    }
  }
}
