import type { FastifyInstance, FastifyReply, FastifyRequest, RouteGenericInterface } from 'fastify'
import type { AuthenticatedUser, AuthenticateHook } from './authenticate.js'

/**
 * A request behind `app.authenticate`: its `user` is never null.
 *
 * @example
 * function auditTrail (request: AuthenticatedRequest): string {
 *   return `${request.user.sub} ${request.method} ${request.url}`
 * }
 */
export type AuthenticatedRequest<RouteGeneric extends RouteGenericInterface = RouteGenericInterface> =
  FastifyRequest<RouteGeneric> & { user: AuthenticatedUser }

/**
 * A handler of a protected route, typed with a non-null `request.user`.
 *
 * @example
 * const me: AuthenticatedHandler = async (request) => ({ sub: request.user.sub })
 * app.get('/me', app.refreshAuth.authenticated(me))
 */
export type AuthenticatedHandler<RouteGeneric extends RouteGenericInterface = RouteGenericInterface> =
  (this: FastifyInstance, request: AuthenticatedRequest<RouteGeneric>, reply: FastifyReply<RouteGeneric>) => unknown

/**
 * Route options with `app.authenticate` as preHandler and the handler: spread them, or pass them as they are.
 *
 * @example
 * const options: AuthenticatedRouteOptions = app.refreshAuth.authenticated(async (request) => request.user)
 * app.get('/me', { ...options, schema: { tags: ['account'] } })
 */
export interface AuthenticatedRouteOptions<RouteGeneric extends RouteGenericInterface = RouteGenericInterface> {
  preHandler: AuthenticateHook
  handler: (this: FastifyInstance, request: FastifyRequest<RouteGeneric>, reply: FastifyReply<RouteGeneric>) => Promise<unknown>
}

export interface AuthenticatedRouteFactory {
  /**
   * A protected route whose handler gets a non-null `request.user`, with no cast and no null check.
   *
   * @example
   * app.get('/me', app.refreshAuth.authenticated(async (request) => ({ sub: request.user.sub })))
   * app.post<{ Body: { name: string } }>('/notes', app.refreshAuth.authenticated(async (request) => save(request.user.sub, request.body.name)))
   */
  authenticated: <RouteGeneric extends RouteGenericInterface = RouteGenericInterface>(
    handler: AuthenticatedHandler<RouteGeneric>
  ) => AuthenticatedRouteOptions<RouteGeneric>
}

export function createAuthenticatedRouteFactory (hook: AuthenticateHook): AuthenticatedRouteFactory {
  return {
    authenticated: handler => ({
      preHandler: hook,
      async handler (request, reply) {
        // the user the preHandler verified, handed back without verifying again
        const user = await request.authenticate()
        return await handler.call(this, Object.assign(request, { user }), reply)
      }
    })
  }
}
