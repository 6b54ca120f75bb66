import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { readsRefreshCookie, RefreshCookie } from './cookie.js'
import { CrossSiteRequestError, InvalidCredentialsError, InvalidOptionError, InvalidRefreshTokenError } from '../errors.js'
import { callHost } from '../host-call.js'
import { refreshRouteSecurity } from './openapi.js'
import type { CookieSettings, HostCallbacks, RouteSettings } from '../options/types.js'
import { hostRememberMe } from './remember-me.js'
import type { IssuedTokens, LogoutScope, SessionPolicy } from '../sessions/policy.js'
import { MAX_TOKEN_LENGTH } from '../tokens/codec.js'
import { reportedLogin } from '../telemetry/session-telemetry.js'

/** A route schema with the OpenAPI keys that @fastify/swagger reads. */
type RouteSchema = NonNullable<RouteOptions['schema']> & {
  response?: unknown
  tags?: readonly string[]
  summary?: string
  description?: string
  security?: ReadonlyArray<Record<string, readonly string[]>>
}

/**
 * What a route factory accepts: anything of `RouteOptions` but the handler, which is the plugin's.
 * A `schema` is merged with the route's own: its `body` replaces ours, its `response` entries are
 * added status by status, its `tags`, `summary`, `description` and `security` win.
 *
 * @example
 * const overrides: RouteOverrides = {
 *   url: '/signin',
 *   schema: { body: { type: 'object', required: ['email', 'password'], properties: { email: { type: 'string' }, password: { type: 'string' } } } },
 *   config: { rateLimit: { max: 5, timeWindow: '1 minute' } }
 * }
 * app.route(app.refreshAuth.loginRoute(overrides))
 */
export type RouteOverrides = Partial<Omit<RouteOptions, 'handler'>>

/**
 * The route factories, also behind `app.refreshAuth`: register the auth routes yourself
 * (with `routes: false`) to move them, add hooks, rate limits or your own body schema.
 *
 * @example
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, routes: false })
 * app.route(app.refreshAuth.loginRoute({ url: '/api/session' }))
 * app.route(app.refreshAuth.refreshRoute({ url: '/api/session/refresh' }))
 * app.route(app.refreshAuth.logoutRoute({ url: '/api/session/logout' }))
 */
export interface RouteFactories {
  /** `POST {prefix}/login`: `verifyCredentials`, then tokens. */
  loginRoute (overrides?: RouteOverrides): RouteOptions
  /** `POST {prefix}/refresh`: trades the refresh cookie for new tokens. */
  refreshRoute (overrides?: RouteOverrides): RouteOptions
  /**
   * `POST {prefix}/logout`: revokes the session and clears the cookie, 204. Body `{ "all": true }`: every
   * session of the user; `{ "others": true }`: every other one, this session and its cookie kept.
   */
  logoutRoute (overrides?: RouteOverrides): RouteOptions
}

/** RFC 6749 §5.1 access token response; `refresh_token` only for clients on the body transport. */
function tokenResponseSchema (withRefreshToken: boolean): object {
  return {
    type: 'object',
    required: ['access_token', 'token_type', 'expires_in'],
    properties: {
      access_token: { type: 'string' },
      token_type: { type: 'string', enum: ['Bearer'] },
      expires_in: { type: 'integer', description: 'Seconds the access token lives' },
      ...(withRefreshToken ? { refresh_token: { type: 'string', description: 'Only for clients on the body transport' } } : {})
    },
    additionalProperties: false
  }
}

/**
 * The body of every error this plugin answers with (Fastify's error shape). Open to more fields:
 * a host's error handler or another plugin (a rate limiter) may add its own, and they must not be dropped.
 */
const errorResponseSchema = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' }
  },
  additionalProperties: true
} as const

/**
 * The refresh and logout body of non-browser clients. Keyed by content type so that Fastify validates
 * JSON bodies only: a browser's cookie request has no body at all.
 */
const refreshTokenBodySchema = {
  content: {
    'application/json': {
      schema: {
        type: 'object',
        properties: { refresh_token: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH } }
      }
    }
  }
} as const

/**
 * The logout body: what to sign out, and the refresh token of non-browser clients. Optional, as for
 * refresh: a browser's plain logout has no body.
 */
function logoutBodySchema (withRefreshToken: boolean): object {
  return {
    content: {
      'application/json': {
        schema: {
          type: 'object',
          properties: {
            // untyped: anything but `true` means no, as it always has, rather than a 400
            all: { description: '`true`: sign out every session of the user' },
            others: { description: '`true`: sign out every other session of the user; this one stays' },
            ...(withRefreshToken ? refreshTokenBodySchema.content['application/json'].schema.properties : {})
          }
        }
      }
    }
  }
}

/** `{ "all": true }` wins over `{ "others": true }`: it asks for more. */
function logoutScope (body: unknown): LogoutScope {
  const { all, others } = (typeof body === 'object' && body !== null ? body : {}) as { all?: unknown, others?: unknown }
  return all === true ? 'all' : others === true ? 'others' : 'session'
}

/**
 * The host's login body is its own: by default any JSON object (replace it through the overrides).
 * Keyed by content type: a login may carry no body at all (credentials in a header, say).
 */
const loginBodySchema = {
  content: {
    'application/json': { schema: { type: 'object', description: 'The credentials verifyCredentials reads' } }
  }
} as const

// A client on the body transport asks for it at login with this header (`'both'` only).
const TRANSPORT_HEADER = 'refresh-token-transport'

/** The route factories of an auth server: its session policy serves them. */
export function createRouteFactories (
  { routes, cookie: cookieSettings, hooks }: { routes: RouteSettings, cookie: CookieSettings, hooks: HostCallbacks },
  sessions: SessionPolicy
): RouteFactories {
  const cookie = new RefreshCookie(cookieSettings)

  // Fetch Metadata first (browsers send it on every request), then the optional Origin allow-list.
  // Runs before anything is read, so a refused request consumes no token.
  function refuseCrossSite (request: FastifyRequest): void {
    // `includes`, not `===`: repeated headers arrive joined (`cross-site, cross-site`); fail closed on those too
    const site = request.headers['sec-fetch-site']
    if (site !== undefined && site.includes('cross-site')) throw new CrossSiteRequestError()
    const origin = request.headers.origin
    if (routes.trustedOrigins !== null && origin !== undefined && !routes.trustedOrigins.has(origin)) {
      throw new CrossSiteRequestError()
    }
  }

  const transport = routes.transport
  const bodyAllowed = transport !== 'cookie'
  const cookieAllowed = transport !== 'body'

  // The refresh token goes back the way it came: a cookie session never gets its token in a body
  // (where page scripts could read it), a body client never gets a cookie.
  function sendTokens (reply: FastifyReply, tokens: IssuedTokens, inBody: boolean): FastifyReply {
    if (inBody) {
      return reply.send({
        access_token: tokens.accessToken, token_type: 'Bearer', expires_in: tokens.accessExpiresIn, refresh_token: tokens.refreshToken
      })
    }
    cookie.set(reply, tokens.refreshToken, tokens.refreshMaxAge)
    return reply.send({ access_token: tokens.accessToken, token_type: 'Bearer', expires_in: tokens.accessExpiresIn })
  }

  function bodyRefreshToken (request: FastifyRequest): string | undefined {
    if (!bodyAllowed) return undefined
    const body = request.body as { refresh_token?: unknown } | null | undefined
    const token = typeof body === 'object' && body !== null ? body.refresh_token : undefined
    return typeof token === 'string' ? token : undefined
  }

  // Throws DuplicateCookieError on a tossed cookie, before anything is consumed or revoked.
  function readRefreshCookie (request: FastifyRequest): string | undefined {
    return cookieAllowed ? cookie.read(request) : undefined
  }

  function clearRefreshCookie (reply: FastifyReply): void {
    if (cookieAllowed) cookie.clear(reply)
  }

  // The refresh and logout routes read the cookie: where it is sent must cover their URL (checked on
  // registration, prefixes included).
  function cookieRoute (handler: RouteOptions['handler']): RouteOptions['handler'] {
    return cookieAllowed ? readsRefreshCookie(handler, cookieSettings.path) : handler
  }

  // Login answers in the body on the body transport, or on 'both' when the client asks for it.
  function loginInBody (request: FastifyRequest): boolean {
    return transport === 'body' || (transport === 'both' && request.headers[TRANSPORT_HEADER] === 'body')
  }

  // Token responses must not be cached (RFC 6749 §5.1): set before anything can fail.
  function noStore (reply: FastifyReply): void {
    reply.header('cache-control', 'no-store')
    reply.header('pragma', 'no-cache')
  }

  // OpenAPI: the refresh and logout routes authenticate with the cookie, the body token, or either.
  const refreshSecurity = refreshRouteSecurity(transport)
  const tokenResponses = {
    200: tokenResponseSchema(bodyAllowed),
    '4xx': errorResponseSchema,
    '5xx': errorResponseSchema
  }
  const logoutResponses = {
    204: { type: 'null', description: 'Signed out' },
    '4xx': errorResponseSchema,
    '5xx': errorResponseSchema
  }
  const refreshBody = bodyAllowed ? { body: refreshTokenBodySchema } : {}

  /** OpenAPI of the two routes a refresh token authenticates. */
  function refreshTokenRouteSchema (summary: string, description: string, response: RouteSchema['response']): RouteSchema {
    return { tags: ['auth'], summary, description, security: refreshSecurity, ...refreshBody, response }
  }

  /**
   * Our schema, then the host's on top: its body replaces ours, its responses are merged status by
   * status, and its tags, summary or security win.
   */
  function route (name: string, overrides: RouteOverrides, handler: RouteOptions['handler'], schema: RouteSchema): RouteOptions {
    const hostSchema: RouteSchema = overrides.schema ?? {}
    return {
      method: 'POST',
      url: `${routes.prefix}/${name}`,
      ...overrides,
      schema: {
        ...schema,
        ...hostSchema,
        response: { ...schema.response as object, ...hostSchema.response as object }
      },
      handler
    }
  }

  return {
    loginRoute (overrides = {}) {
      const verifyCredentials = hooks.verifyCredentials
      if (verifyCredentials === undefined) throw new InvalidOptionError('verifyCredentials is required for the login route')
      return route('login', overrides, reportedLogin(sessions.telemetry, async function login (request, reply) {
        noStore(reply)
        refuseCrossSite(request)
        const user = await callHost('verifyCredentials', request.log, () => verifyCredentials(request))
        if (user === null || user === undefined) throw new InvalidCredentialsError()
        const inBody = loginInBody(request)
        // remember me only shapes the cookie: a login answered in the body never asks
        const remember = inBody || await hostRememberMe(hooks.rememberMe, user, request)
        // signing in again on this device replaces its session rather than adding one
        const presented = bodyRefreshToken(request) ?? (cookieAllowed ? cookie.readIfSingle(request) : undefined)
        return sendTokens(reply, await sessions.startSession(user, request, remember, presented), inBody)
      }), {
        tags: ['auth'],
        summary: 'Sign in',
        description: 'Checks the credentials; answers an access token and starts a refresh-token session.',
        security: [],
        body: loginBodySchema,
        response: tokenResponses
      })
    },

    refreshRoute (overrides = {}) {
      return route('refresh', overrides, cookieRoute(async function refresh (request, reply) {
        noStore(reply)
        refuseCrossSite(request)
        const bodyToken = bodyRefreshToken(request)
        const inBody = bodyToken !== undefined
        const tokens = await sessions.rotateRefreshToken(inBody ? bodyToken : readRefreshCookie(request), request)
        if (tokens === null) {
          // one answer whatever the reason, and the dead cookie goes
          if (!inBody) clearRefreshCookie(reply)
          throw new InvalidRefreshTokenError()
        }
        return sendTokens(reply, tokens, inBody)
      }), refreshTokenRouteSchema(
        'Refresh the access token',
        'Trades the refresh token for a new access token and a new refresh token (rotation).',
        tokenResponses
      ))
    },

    logoutRoute (overrides = {}) {
      return route('logout', overrides, cookieRoute(async function logout (request, reply) {
        noStore(reply)
        refuseCrossSite(request)
        const bodyToken = bodyRefreshToken(request)
        const scope = logoutScope(request.body)
        await sessions.revokeFamily(bodyToken ?? readRefreshCookie(request), request, scope)
        // signing out the other devices keeps this one signed in
        if (bodyToken === undefined && scope !== 'others') clearRefreshCookie(reply)
        return reply.code(204).send()
      }), {
        ...refreshTokenRouteSchema(
          'Sign out',
          'Revokes the session of the refresh token and clears the refresh cookie. `{ "all": true }` revokes every ' +
          'session of its user; `{ "others": true }` every other session of its user, keeping this one and its cookie.',
          logoutResponses
        ),
        body: logoutBodySchema(bodyAllowed)
      })
    }
  }
}

/** A resource server signs nothing, so it has no sessions: its factories exist, and refuse. */
export function resourceServerRouteFactories (): RouteFactories {
  function refuse (name: string): () => never {
    return () => {
      throw new InvalidOptionError(`this app only verifies access tokens (no secret or no private key to sign with): it cannot serve the ${name} route`)
    }
  }
  return { loginRoute: refuse('login'), refreshRoute: refuse('refresh'), logoutRoute: refuse('logout') }
}
