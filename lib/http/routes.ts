import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { RefreshCookie } from './cookie.js'
import { CrossSiteRequestError, InvalidCredentialsError, InvalidOptionError, InvalidRefreshTokenError } from '../errors.js'
import { callHost } from '../sessions/host-call.js'
import { refreshRouteSecurity } from './openapi.js'
import type { CookieSettings, HostCallbacks, RouteSettings } from '../options/types.js'
import type { ErrorMessages } from '../errors.js'
import { RefreshTransport } from './refresh-transport.js'
import { hostRememberMe } from './remember-me.js'
import { authRouteSchemas, type RouteSchema } from './schemas.js'
import type { LogoutScope, SessionPolicy } from '../sessions/policy.js'
import { reportedLogin } from '../telemetry/session-telemetry.js'
import { answeringDpopErrors, type DpopGate } from './dpop.js'

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

/** `{ "all": true }` wins over `{ "others": true }`: it asks for more. */
function logoutScope (body: unknown): LogoutScope {
  const { all, others } = (typeof body === 'object' && body !== null ? body : {}) as { all?: unknown, others?: unknown }
  return all === true ? 'all' : others === true ? 'others' : 'session'
}

/**
 * Fetch Metadata first (browsers send it on every request), then the optional Origin allow-list. Runs
 * before anything is read, so a refused request consumes no token.
 */
function refuseCrossSite (request: FastifyRequest, trustedOrigins: ReadonlySet<string> | null): void {
  // `includes`, not `===`: repeated headers arrive joined (`cross-site, cross-site`); fail closed on those too
  const site = request.headers['sec-fetch-site']
  if (site !== undefined && site.includes('cross-site')) throw new CrossSiteRequestError()
  const origin = request.headers.origin
  if (trustedOrigins !== null && origin !== undefined && !trustedOrigins.has(origin)) throw new CrossSiteRequestError()
}

// Token responses must not be cached (RFC 6749 §5.1): set before anything can fail.
function noStore (reply: FastifyReply): void {
  reply.header('cache-control', 'no-store')
  reply.header('pragma', 'no-cache')
}

/**
 * Our route, then the host's overrides on top: its schema's body replaces ours, its responses are merged
 * status by status, and its tags, summary or security win.
 */
function withOverrides (url: string, overrides: RouteOverrides, handler: RouteOptions['handler'], schema: RouteSchema): RouteOptions {
  const hostSchema: RouteSchema = overrides.schema ?? {}
  return {
    method: 'POST',
    url,
    ...overrides,
    schema: { ...schema, ...hostSchema, response: { ...schema.response as object, ...hostSchema.response as object } },
    handler
  }
}

/** The route factories of an auth server: its session policy serves them. */
export function createRouteFactories (
  { routes, cookie, hooks, messages }: { routes: RouteSettings, cookie: CookieSettings, hooks: HostCallbacks, messages: ErrorMessages | null },
  sessions: SessionPolicy,
  dpop: DpopGate | null = null
): RouteFactories {
  const transport = new RefreshTransport(routes.transport, new RefreshCookie(cookie))
  const schemas = authRouteSchemas(transport.bodyAllowed, refreshRouteSecurity(routes.transport), routes.loginBody, dpop !== null)
  const { trustedOrigins } = routes

  // what every token route does first: no caching of its answer, DPoP refusals answered as RFC 9449 §5 says,
  // and a cross-site request refused before anything is read or consumed
  function tokenEndpoint (handle: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) {
    return async function (request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
      noStore(reply)
      return await answeringDpopErrors(reply, dpop, messages, async () => {
        refuseCrossSite(request, trustedOrigins)
        return await handle(request, reply)
      })
    }
  }

  return {
    loginRoute (overrides = {}) {
      const verifyCredentials = hooks.verifyCredentials
      if (verifyCredentials === undefined) throw new InvalidOptionError('verifyCredentials is required for the login route')
      return withOverrides(`${routes.prefix}/login`, overrides, reportedLogin(sessions.telemetry, tokenEndpoint(async function login (request, reply) {
        // the proof before the credentials: a refused proof costs no password check
        const jkt = dpop?.tokenEndpointKey(request)
        const user = await callHost('verifyCredentials', request.log, hooks.timeout, () => verifyCredentials(request))
        if (user === null || user === undefined) throw new InvalidCredentialsError()
        const channel = transport.loginChannel(request)
        // remember me only shapes the cookie: a login answered in the body never asks
        const remember = channel === 'body' || await hostRememberMe(hooks.rememberMe, user, request, hooks.timeout)
        // signing in again on this device replaces its session rather than adding one
        const tokens = await sessions.startSession(user, request, { channel, remember, jkt }, transport.presentedAtLogin(request))
        return transport.send(reply, tokens, channel)
      })), schemas.login)
    },

    refreshRoute (overrides = {}) {
      return withOverrides(`${routes.prefix}/refresh`, overrides, transport.cookieRoute(tokenEndpoint(async function refresh (request, reply) {
        const presented = transport.presented(request)
        const tokens = await sessions.rotateRefreshToken(presented, request, dpop?.tokenEndpointKey(request))
        if (tokens === null) {
          // one answer whatever the reason, and the dead cookie goes
          if (presented?.channel !== 'body') transport.clearCookie(reply)
          throw new InvalidRefreshTokenError()
        }
        return transport.send(reply, tokens, (presented as { channel: 'cookie' | 'body' }).channel)
      })), schemas.refresh)
    },

    logoutRoute (overrides = {}) {
      return withOverrides(`${routes.prefix}/logout`, overrides, transport.cookieRoute(tokenEndpoint(async function logout (request, reply) {
        const presented = transport.presented(request)
        const scope = logoutScope(request.body)
        await sessions.revokeFamily(presented, request, scope, dpop?.tokenEndpointKey(request))
        // signing out the other devices keeps this one signed in
        if (presented?.channel !== 'body' && scope !== 'others') transport.clearCookie(reply)
        return reply.code(204).send()
      })), schemas.logout)
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
