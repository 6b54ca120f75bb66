import type { RouteHandlerMethod } from 'fastify'
import type { LogoutEvent } from '../audit.js'

// What the plugin reports, as plain values: nothing here depends on @opentelemetry/api, an optional peer,
// so the declarations users compile against never name it.

/** `outcome` of `refresh_auth.logins` and the `refresh_auth.login` span. */
export type LoginOutcome = 'success' | 'invalid_credentials' | 'limit_refused' | 'error'

/** `outcome` of `refresh_auth.refreshes` and the `refresh_auth.refresh` span. */
export type RefreshOutcome =
  'rotated' | 'grace' | 'reuse' | 'expired' | 'invalid' | 'revoked' | 'refused_by_host' | 'unavailable'

/** `outcome` of the `refresh_auth.logout` span. */
export type LogoutOutcome = 'success' | 'reuse' | 'invalid' | 'unavailable'

/** `outcome` of the opt-in `refresh_auth.authentications` counter. */
export type AuthenticationOutcome = 'success' | 'refused'

/** `reason` of `refresh_auth.sessions.ended`: the `onLogout` reasons. */
export type SessionEndReason = LogoutEvent['reason']

/** A step's result with the outcome it is reported under. */
export interface Reported<Outcome extends string, T> {
  outcome: Outcome
  value: T
}

/** Where the session policy and the routes report what they do; `NO_TELEMETRY` when OpenTelemetry is absent. */
export interface SessionTelemetry {
  /** Runs a login in its span; the outcome follows from how it ended (an error's class). */
  login: <T>(run: () => Promise<T>) => Promise<T>
  /** Runs a refresh in its span; a rejection is `unavailable`. */
  refresh: <T>(run: () => Promise<Reported<RefreshOutcome, T>>) => Promise<T>
  /** Runs a logout in its span; a rejection is `unavailable`. */
  logout: <T>(run: () => Promise<Reported<LogoutOutcome, T>>) => Promise<T>
}

async function unwrap<T> (run: () => Promise<Reported<string, T>>): Promise<T> {
  return (await run()).value
}

/** Telemetry off: each step only runs. */
export const NO_TELEMETRY: SessionTelemetry = {
  login: async run => await run(),
  refresh: unwrap,
  logout: unwrap
}

/** The login handler run in the login's span, with its outcome counted. */
export function reportedLogin (telemetry: SessionTelemetry, handler: RouteHandlerMethod): RouteHandlerMethod {
  return async function login (request, reply) {
    return await telemetry.login(async () => await handler.call(this, request, reply))
  }
}
