import type { FastifyRequest } from 'fastify'
import { parseDuration } from '../options/duration.js'
import { InsufficientUserAuthenticationError, InvalidArgumentError } from '../errors.js'
import { REQUIRES_BEARER } from './openapi.js'
import type { Duration } from '../options/types.js'
import type { ClaimGuard } from './scopes.js'

/**
 * The step-up guard behind `app.refreshAuth.requireFreshAuth`, for sensitive actions (change the
 * password or the e-mail address, delete the account, pay).
 *
 * @example
 * app.post('/account/email', { preHandler: app.refreshAuth.requireFreshAuth('5m') }, changeEmail)
 */
export interface FreshAuthGuards {
  /**
   * Requires a recent sign-in: a preHandler (also usable with `@fastify/auth`) that authenticates the
   * request if nothing did yet (401 as usual), then answers 401 `insufficient_user_authentication` with
   * `max_age` (RFC 9470) when the token's `auth_time` (the login that started its session; refreshes
   * keep it) is more than `maxAge` ago, or missing. The client signs the user in again, then retries.
   * `maxAge` is a duration as the other options take (`'5m'`, or seconds), at least one second.
   *
   * @example
   * app.delete('/account', { preHandler: app.refreshAuth.requireFreshAuth('5m') }, deleteAccount)
   * // with a scope too: both must pass
   * app.post('/payouts', { preHandler: [app.refreshAuth.requireScopes('payouts:write'), app.refreshAuth.requireFreshAuth(300)] }, payout)
   */
  requireFreshAuth (maxAge: Duration): ClaimGuard
}

export function createFreshAuthGuards (realm: string): FreshAuthGuards {
  return {
    requireFreshAuth (maxAge) {
      const seconds = parseDuration(maxAge)
      if (Number.isNaN(seconds) || seconds < 1) {
        throw new InvalidArgumentError("requireFreshAuth: maxAge must be a duration of at least one second, such as '5m' or 300")
      }
      // RFC 9470 §3: the challenge tells the client how recent a sign-in the route needs.
      const challenge = {
        'www-authenticate': `Bearer realm="${realm}", error="insufficient_user_authentication", max_age="${seconds}"`
      }

      async function requireFreshSignIn (request: FastifyRequest): Promise<void> {
        const user = request.user ?? await request.authenticate()
        const authTime = user.auth_time
        // whole seconds on both sides, as auth_time is; a missing auth_time fails closed
        if (authTime === undefined || Math.floor(Date.now() / 1000) - authTime > seconds) {
          throw Object.assign(new InsufficientUserAuthenticationError(), { headers: challenge })
        }
      }
      return Object.assign(requireFreshSignIn, { [REQUIRES_BEARER]: true })
    }
  }
}
