import fp from 'fastify-plugin'
import './decorators.js'
import { REFRESH_AUTH_PLUGIN, refreshAuth, type RefreshAuthPlugin } from './plugin.js'

/**
 * Secure sign-in sessions for Fastify: short-lived JWT access tokens (`Authorization: Bearer`) and
 * rotating refresh tokens in an HTTP-only cookie, with reuse detection and revocation.
 *
 * @example
 * await app.register(fastifyRefreshAuth, {
 *   secret: process.env.AUTH_SECRET,               // at least 32 bytes
 *   verifyCredentials: async (request) => users.check(request.body)
 * })
 * app.get('/me', { preHandler: app.authenticate }, async (request) => request.user)
 */
const fastifyRefreshAuth: RefreshAuthPlugin = Object.assign(fp(refreshAuth, { fastify: '5.x', name: 'fastify-refresh-auth' }),
  { [REFRESH_AUTH_PLUGIN]: true as const })

export default fastifyRefreshAuth
export { fastifyRefreshAuth }
export { authenticate, requireScopes, requireRoles, requireFreshAuth } from './http/standalone-guards.js'
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js'
export { RedisStore, type RedisStoreOptions, type RedisClient } from './stores/redis.js'
export type { RedisFeedConnection } from './stores/redis-feed.js'
export { PostgresStore, type PostgresStoreOptions } from './stores/postgres.js'
export type { PostgresPool, PostgresPoolClient, PostgresNotification } from './stores/postgres-client.js'
// what a host meets of the store contract; store authors have the whole of it at `fastify-refresh-auth/store`
export type { SessionStore, SessionInfo } from './stores/store.js'
export type { FastifyRefreshAuthOptions, Duration, RefreshTokenTransport, RevocationOptions, SessionLimitPolicy, EventStreamsOptions, DpopOptions } from './options/types.js'
export type { AuthenticatedUser, AuthenticateHook, Frozen } from './http/authenticate.js'
export type { AuthenticatedHandler, AuthenticatedRequest, AuthenticatedRouteOptions } from './http/authenticated-route.js'
export type { LoginUser, RefreshAuthUser } from './types.js'
export type { RegisteredClaims } from './tokens/codec.js'
export type { RouteFactories, RouteOverrides } from './http/routes.js'
export type { ClaimGuard, ClaimGuards, ClaimGuardOptions } from './http/scopes.js'
export type { FreshAuthGuards } from './http/fresh-auth.js'
export type { JwksRouteFactory } from './http/jwks.js'
export type { SessionsRouteFactories } from './http/sessions-routes.js'
export type { AccessTokenAlgorithm, AccessTokenKey, KeyInput } from './tokens/keys.js'
export type { RefreshAuthApi, RefreshAuthPlugin } from './plugin.js'
export type { SessionManagement } from './sessions/policy.js'
export type { UserSession, SessionDevice, DeviceType } from './sessions/devices.js'
export type { AuditHook, SessionEvent, LogoutEvent } from './audit.js'
export type { SessionEndEvent, SessionEndListener, SessionEndReason } from './sessions/ends.js'
export {
  openApiSecuritySchemes,
  openApiBearerSecurity,
  BEARER_SCHEME,
  DPOP_SCHEME,
  REFRESH_COOKIE_SCHEME,
  type OpenApiSecuritySchemesOptions,
  type OpenApiSecuritySchemes
} from './http/openapi.js'
// Only the errors a client or a host's catch can meet; the store's own (StoreTimeoutError, StoreConflictError)
// are at `fastify-refresh-auth/store`, and a JWKS fetch failure is only logged.
export {
  ErrorCodes,
  type RefreshAuthErrorCode,
  type ErrorMessages,
  MissingTokenError,
  InvalidTokenError,
  InsufficientScopeError,
  InsufficientUserAuthenticationError,
  InvalidCredentialsError,
  InvalidRefreshTokenError,
  SessionLimitError,
  CrossSiteRequestError,
  StoreUnavailableError,
  KeysUnavailableError,
  RevocationUnconfirmedError,
  EventStreamsFullError,
  InvalidOptionError,
  InvalidArgumentError,
  SessionNotFoundError,
  DuplicateCookieError,
  InvalidClaimsError,
  InvalidSubjectError,
  CallbackFailedError,
  PluginNotRegisteredError,
  InvalidDpopProofError,
  UseDpopNonceError,
  CallbackTimeoutError
} from './errors.js'

// CommonJS: make `require('fastify-refresh-auth')` the plugin itself, carrying the named exports.
// (The ESM build has no `module`, and keeps its `export default`.)
if (typeof module === 'object' && module !== null) {
  module.exports = Object.assign(fastifyRefreshAuth, module.exports)
}
