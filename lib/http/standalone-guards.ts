import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { PluginNotRegisteredError } from '../errors.js'
import type { AuthenticateHook } from './authenticate.js'
import { createFreshAuthGuards, type FreshAuthGuards } from './fresh-auth.js'
import { REQUIRES_BEARER } from './openapi.js'
import { createClaimGuards, type ClaimGuard, type ClaimGuardOptions, type ClaimGuards } from './scopes.js'
import type { Duration } from '../options/types.js'

/**
 * What the plugin leaves on the instance it is registered on, for the standalone hooks to find at request
 * time. `Symbol.for`: the CommonJS and ES module copies of the package, loaded together, find each other's.
 */
export const PLUGIN_STATE: unique symbol = Symbol.for('fastify-refresh-auth.state') as never

/** The plugin's hook and guards, as `app.authenticate` and `app.refreshAuth` hold them. */
export interface PluginState {
  authenticate: AuthenticateHook
  guards: ClaimGuards & FreshAuthGuards
}

// The realm is the plugin's, known only at request time: the guards below check their arguments with this one
// when they are made, so a wrong argument still throws where the route is declared.
const argumentChecks = { ...createClaimGuards('-'), ...createFreshAuthGuards('-') }

function stateOf (request: FastifyRequest): PluginState | undefined {
  return (request.server as FastifyInstance & { [PLUGIN_STATE]?: PluginState })[PLUGIN_STATE]
}

/**
 * `app.authenticate` as a function of the package, safe to name before the plugin is registered (a
 * `require` without `await`): it finds the plugin on the instance serving the request, and answers 500
 * `FST_REFRESH_AUTH_NOT_REGISTERED` where the plugin is not registered, so a route is never silently public.
 *
 * @example
 * const { fastifyRefreshAuth, authenticate } = require('fastify-refresh-auth')
 * app.register(fastifyRefreshAuth, { secret, verifyCredentials })
 * app.get('/me', { preHandler: authenticate }, async (request) => request.user)
 */
export function authenticate (request: FastifyRequest, reply: FastifyReply, done?: HookHandlerDoneFunction): Promise<void> | undefined {
  const state = stateOf(request)
  if (state !== undefined) return state.authenticate(request, reply, done)
  if (done === undefined) return Promise.reject(new PluginNotRegisteredError())
  done(new PluginNotRegisteredError())
  return undefined
}
authenticate[REQUIRES_BEARER] = true

/** A guard that becomes the plugin's own at its first request on an instance. */
function deferredGuard (make: (guards: PluginState['guards']) => ClaimGuard): ClaimGuard {
  const byInstance = new WeakMap<PluginState, ClaimGuard>()
  async function guard (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const state = stateOf(request)
    if (state === undefined) throw new PluginNotRegisteredError()
    let own = byInstance.get(state)
    if (own === undefined) {
      own = make(state.guards)
      byInstance.set(state, own)
    }
    await own(request, reply)
  }
  return Object.assign(guard, { [REQUIRES_BEARER]: true })
}

/**
 * `app.refreshAuth.requireScopes` as a function of the package, safe to name before the plugin is registered.
 *
 * @example
 * app.get('/orders', { preHandler: requireScopes('orders:read') }, listOrders)
 */
export function requireScopes (scopes: string | readonly string[], options: ClaimGuardOptions = {}): ClaimGuard {
  argumentChecks.requireScopes(scopes, options)
  const [values, settings] = [typeof scopes === 'string' ? scopes : [...scopes], { ...options }]
  return deferredGuard(guards => guards.requireScopes(values, settings))
}

/**
 * `app.refreshAuth.requireRoles` as a function of the package, safe to name before the plugin is registered.
 *
 * @example
 * app.delete('/users/:id', { preHandler: requireRoles('admin') }, removeUser)
 */
export function requireRoles (roles: string | readonly string[], options: ClaimGuardOptions = {}): ClaimGuard {
  argumentChecks.requireRoles(roles, options)
  const [values, settings] = [typeof roles === 'string' ? roles : [...roles], { ...options }]
  return deferredGuard(guards => guards.requireRoles(values, settings))
}

/**
 * `app.refreshAuth.requireFreshAuth` as a function of the package, safe to name before the plugin is registered.
 *
 * @example
 * app.delete('/account', { preHandler: requireFreshAuth('5m') }, deleteAccount)
 */
export function requireFreshAuth (maxAge: Duration): ClaimGuard {
  argumentChecks.requireFreshAuth(maxAge)
  return deferredGuard(guards => guards.requireFreshAuth(maxAge))
}
