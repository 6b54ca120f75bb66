import type { FastifyReply, FastifyRequest } from 'fastify'
import { InsufficientScopeError, InvalidArgumentError } from '../errors.js'
import { REQUIRES_BEARER } from './openapi.js'

/**
 * Options of `requireScopes` and `requireRoles`.
 *
 * @example
 * // Azure-style `scp` array claim, any one of the scopes is enough
 * app.refreshAuth.requireScopes(['mail.read', 'mail.admin'], { claim: 'scp', match: 'any' })
 */
export interface ClaimGuardOptions {
  /**
   * The access-token claim holding the grants: a space-separated string (OAuth `scope`) or an
   * array of strings. Default `'scope'` for scopes, `'roles'` for roles.
   */
  claim?: string
  /** `'all'`: every listed value is needed (default for scopes); `'any'`: one is enough (default for roles). */
  match?: 'all' | 'any'
}

/**
 * A preHandler (also usable with `@fastify/auth`) that authenticates the request if nothing did yet
 * (401 as usual), then refuses a token that does not meet the route's need: 403 `insufficient_scope`
 * for a scope or role it lacks, 401 `insufficient_user_authentication` for a sign-in too old for `requireFreshAuth`.
 *
 * @example
 * // with @fastify/auth: a Bearer token with the scope, or an API key
 * app.put('/orders/:id', { preHandler: app.auth([app.refreshAuth.requireScopes('orders:write'), apiKeyCheck]) }, updateOrder)
 */
export type ClaimGuard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

/**
 * The guards behind `app.refreshAuth.requireScopes` and `app.refreshAuth.requireRoles`. Put the
 * claims in access tokens with the `claims` option.
 *
 * @example
 * await app.register(fastifyRefreshAuth, {
 *   secret, verifyCredentials,
 *   claims: async (user) => ({ scope: (user.scopes ?? []).join(' '), roles: user.roles ?? [] })
 * })
 * app.get('/reports', { preHandler: app.refreshAuth.requireRoles('analyst') }, listReports)
 */
export interface ClaimGuards {
  /**
   * Requires OAuth-style scopes, read from the space-separated `scope` claim (RFC 9068 §2.2.3)
   * that your `claims` option puts in access tokens.
   *
   * @example
   * app.get('/orders', { preHandler: app.refreshAuth.requireScopes('orders:read') }, listOrders)
   * app.post('/orders', { preHandler: app.refreshAuth.requireScopes(['orders:read', 'orders:write']) }, addOrder)
   */
  requireScopes (scopes: string | readonly string[], options?: ClaimGuardOptions): ClaimGuard
  /**
   * Requires one of the given roles (all of them with `match: 'all'`), read from the `roles` claim.
   *
   * @example
   * app.delete('/users/:id', { preHandler: app.refreshAuth.requireRoles(['admin', 'support']) }, removeUser)
   */
  requireRoles (roles: string | readonly string[], options?: ClaimGuardOptions): ClaimGuard
}

// RFC 6749 §3.3 scope-token: printable ASCII without space, quote or backslash, so it fits the challenge.
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

export function createClaimGuards (realm: string): ClaimGuards {
  function guard (values: string | readonly string[], options: ClaimGuardOptions, claim: string, match: 'all' | 'any', kind: string): ClaimGuard {
    const required = typeof values === 'string' ? [values] : [...values]
    if (required.length === 0 || !required.every(value => typeof value === 'string' && SCOPE_TOKEN.test(value))) {
      throw new InvalidArgumentError(`${kind} must be one or more strings without spaces, quotes or backslashes`)
    }
    const claimName = options.claim ?? claim
    // fail closed: anything but 'any' needs every value
    const needsAll = (options.match ?? match) !== 'any'
    // RFC 6750 §3: the `scope` attribute tells the client what the route needs.
    const challenge = {
      'www-authenticate': `Bearer realm="${realm}", error="insufficient_scope", scope="${required.join(' ')}"`
    }

    async function requireClaims (request: FastifyRequest): Promise<void> {
      const user = request.user ?? await request.authenticate()
      const granted = grantsOf((user as unknown as Record<string, unknown>)[claimName])
      const allowed = needsAll ? required.every(value => granted.includes(value)) : required.some(value => granted.includes(value))
      if (!allowed) throw Object.assign(new InsufficientScopeError(), { headers: challenge })
    }
    return Object.assign(requireClaims, { [REQUIRES_BEARER]: true })
  }

  return {
    requireScopes (scopes, options = {}) {
      return guard(scopes, options, 'scope', 'all', 'requireScopes: scopes')
    },
    requireRoles (roles, options = {}) {
      return guard(roles, options, 'roles', 'any', 'requireRoles: roles')
    }
  }
}

/** The grants in a claim: a space-separated string or an array; anything else grants nothing. */
function grantsOf (claim: unknown): readonly string[] {
  if (typeof claim === 'string') return claim.split(' ')
  if (Array.isArray(claim)) return claim.filter((value): value is string => typeof value === 'string')
  return []
}
