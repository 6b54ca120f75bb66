import createError from '@fastify/error'

/**
 * The stable `code` of every error this plugin answers with. Codes never change between minor
 * versions; messages may, and hosts can replace them with the `messages` option.
 *
 * @example
 * app.setErrorHandler((error, request, reply) => {
 *   if (error.code === ErrorCodes.INVALID_CREDENTIALS) request.log.info('failed login')
 *   reply.send(error)
 * })
 */
export const ErrorCodes = {
  /** 401: no access token was presented. */
  NO_TOKEN: 'FST_REFRESH_AUTH_NO_TOKEN',
  /** 401: the access token is malformed, expired, of the wrong type or badly signed. */
  INVALID_TOKEN: 'FST_REFRESH_AUTH_INVALID_TOKEN',
  /** 403: the access token is valid but lacks a required scope or role. */
  INSUFFICIENT_SCOPE: 'FST_REFRESH_AUTH_INSUFFICIENT_SCOPE',
  /** 401: the access token is valid but its sign-in (`auth_time`) is older than a `requireFreshAuth` route allows. */
  INSUFFICIENT_USER_AUTHENTICATION: 'FST_REFRESH_AUTH_INSUFFICIENT_USER_AUTHENTICATION',
  /** 401: `verifyCredentials` found no user. */
  INVALID_CREDENTIALS: 'FST_REFRESH_AUTH_INVALID_CREDENTIALS',
  /** 401: the refresh token is unknown, expired, revoked or reused. */
  INVALID_REFRESH_TOKEN: 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN',
  /** 403: the user is at `maxSessionsPerUser` and `onSessionLimit` is `'refuse'`: the login started no session. */
  SESSION_LIMIT: 'FST_REFRESH_AUTH_SESSION_LIMIT',
  /** 404: `DELETE {prefix}/sessions/:sessionId` named no live session of the signed-in user (unknown, ended, or another user's). */
  SESSION_NOT_FOUND: 'FST_REFRESH_AUTH_SESSION_NOT_FOUND',
  /** 403: a cookie-authenticated route was called from another site. */
  CROSS_SITE: 'FST_REFRESH_AUTH_CROSS_SITE',
  /** 503: the session store failed. */
  STORE_UNAVAILABLE: 'FST_REFRESH_AUTH_STORE_UNAVAILABLE',
  /** A `RedisStore` or `PostgresStore` operation did not finish in time: logged; the client gets `STORE_UNAVAILABLE`. */
  STORE_TIMEOUT: 'FST_REFRESH_AUTH_STORE_TIMEOUT',
  /**
   * A `RedisStore` login found its user's sessions revoked while it saved its own (a revocation racing it): the
   * session is not created; logged, and the client gets `STORE_UNAVAILABLE` (it may sign in again).
   */
  STORE_CONFLICT: 'FST_REFRESH_AUTH_STORE_CONFLICT',
  /** 503: a resource server has not loaded its JWKS yet. */
  KEYS_UNAVAILABLE: 'FST_REFRESH_AUTH_KEYS_UNAVAILABLE',
  /**
   * 503: with `accessToken.revocation.failClosed`, this instance cannot confirm that the token's session is
   * still live (its revocation feed is down, or lost revocations while it was).
   */
  REVOCATION_UNCONFIRMED: 'FST_REFRESH_AUTH_REVOCATION_UNCONFIRMED',
  /** 503: this instance holds `events.maxStreams` events streams already; the client tries again later. */
  EVENT_STREAMS_FULL: 'FST_REFRESH_AUTH_EVENT_STREAMS_FULL',
  /** Thrown at registration: an option was refused. */
  INVALID_OPTION: 'FST_REFRESH_AUTH_INVALID_OPTION',
  /** Thrown at a call: an argument was refused (`revokeSession(123)`, `requireScopes('')`…). */
  INVALID_ARGUMENT: 'FST_REFRESH_AUTH_INVALID_ARGUMENT',
  /** 400: refresh or logout carried the refresh cookie more than once (cookie tossing); nothing was changed. */
  DUPLICATE_COOKIE: 'FST_REFRESH_AUTH_DUPLICATE_COOKIE',
  /** 500: the `claims` option gave something that is not plain JSON data with safe names; the reason is logged. */
  INVALID_CLAIMS: 'FST_REFRESH_AUTH_INVALID_CLAIMS',
  /** 500: the `subject` option (default: the user's `id`) gave no non-empty string or finite number; the reason is logged. */
  INVALID_SUBJECT: 'FST_REFRESH_AUTH_INVALID_SUBJECT',
  /** 500: a host callback (`verifyCredentials`, `claims`, `subject`, `rememberMe`…) threw an error without a 4xx status (logged whole), or `rememberMe` answered no boolean. */
  CALLBACK_FAILED: 'FST_REFRESH_AUTH_CALLBACK_FAILED',
  /**
   * 500: a route names the standalone `authenticate` (or a standalone guard) but the plugin is not registered
   * on the instance serving it (or on a parent): the request is refused rather than served unprotected.
   */
  NOT_REGISTERED: 'FST_REFRESH_AUTH_NOT_REGISTERED',
  /** 503: a host callback (`verifyCredentials`, `loadUser`, `claims`…) did not settle within `callbackTimeout`; nothing was issued or rotated. */
  CALLBACK_TIMEOUT: 'FST_REFRESH_AUTH_CALLBACK_TIMEOUT',
  /**
   * A DPoP proof was refused (RFC 9449 `invalid_dpop_proof`): 400 from login, refresh and logout when the proof
   * itself is invalid (or missing with `dpop.required`); 401 when a bound session's refresh token or a bound
   * access token comes without a proof from its key, with `WWW-Authenticate: DPoP` on protected routes.
   */
  INVALID_DPOP_PROOF: 'FST_REFRESH_AUTH_INVALID_DPOP_PROOF',
  /** The proof must carry the server's nonce (`dpop.nonce`), given in the `DPoP-Nonce` header: 400 on the auth routes, 401 elsewhere. */
  USE_DPOP_NONCE: 'FST_REFRESH_AUTH_USE_DPOP_NONCE',
  /** A resource server's JWKS fetch failed (error status, too large, not a JWK Set): logged; the last good keys stay. */
  JWKS_FETCH_FAILED: 'FST_REFRESH_AUTH_JWKS_FETCH_FAILED'
} as const

/** One of the codes in {@link ErrorCodes}. */
export type RefreshAuthErrorCode = typeof ErrorCodes[keyof typeof ErrorCodes]

/**
 * Codes whose message a client can see, and so a host may replace through the `messages` option.
 *
 * @example
 * await app.register(fastifyRefreshAuth, {
 *   secret, verifyCredentials,
 *   messages: { FST_REFRESH_AUTH_INVALID_CREDENTIALS: 'Wrong e-mail or password' }
 * })
 */
export type ErrorMessages = Partial<Record<Exclude<RefreshAuthErrorCode, ServerOnlyCode>, string>>

// Codes no client is meant to see: they are thrown at the host's own code or only logged.
const SERVER_ONLY_CODES = [
  ErrorCodes.INVALID_OPTION, ErrorCodes.INVALID_ARGUMENT, ErrorCodes.STORE_TIMEOUT, ErrorCodes.STORE_CONFLICT, ErrorCodes.JWKS_FETCH_FAILED
] as const
type ServerOnlyCode = typeof SERVER_ONLY_CODES[number]

// Created once: every failure below is an expected outcome, not a bug, so 4xx errors skip the stack trace.

/**
 * No access token was presented: 401 with a bare `Bearer realm` challenge (RFC 6750 §3.1).
 *
 * @example
 * try { await request.authenticate() } catch (err) { if (err instanceof MissingTokenError) … }
 */
export const MissingTokenError = createError(
  ErrorCodes.NO_TOKEN,
  'Authorization header with a Bearer token is required',
  401, Error, false
)

/**
 * The access token is malformed, expired, of the wrong type or badly signed: 401 `invalid_token`.
 *
 * @example
 * if (error.code === 'FST_REFRESH_AUTH_INVALID_TOKEN') reply.header('x-token-expired', '1')
 */
export const InvalidTokenError = createError(
  ErrorCodes.INVALID_TOKEN,
  'The access token is invalid or expired',
  401, Error, false
)

/**
 * A valid access token lacks a scope or role a route requires: 403 `insufficient_scope` (RFC 6750 §3.1).
 *
 * @example
 * app.get('/admin', { preHandler: app.refreshAuth.requireRoles('admin') }, handler) // 403 with this error
 */
export const InsufficientScopeError = createError(
  ErrorCodes.INSUFFICIENT_SCOPE,
  'The access token does not grant access to this resource',
  403, Error, false
)

/**
 * A valid access token whose sign-in is older than a `requireFreshAuth(maxAge)` route allows (or that
 * carries no `auth_time`): 401 `insufficient_user_authentication` with the route's `max_age` (RFC 9470 §3).
 * The user signs in again (the new session's tokens carry a fresh `auth_time`), then retries.
 *
 * @example
 * // DELETE /account with a token from a sign-in 20 minutes ago, behind requireFreshAuth('5m')
 * { statusCode: 401, code: 'FST_REFRESH_AUTH_INSUFFICIENT_USER_AUTHENTICATION', error: 'Unauthorized', message: 'A more recent sign-in is required' }
 */
export const InsufficientUserAuthenticationError = createError(
  ErrorCodes.INSUFFICIENT_USER_AUTHENTICATION,
  'A more recent sign-in is required',
  401, Error, false
)

/**
 * `verifyCredentials` found no user: one answer for unknown user and wrong password.
 *
 * @example
 * // answered by POST /auth/login when verifyCredentials resolves to null
 * { statusCode: 401, code: 'FST_REFRESH_AUTH_INVALID_CREDENTIALS', error: 'Unauthorized', message: 'Invalid credentials' }
 */
export const InvalidCredentialsError = createError(
  ErrorCodes.INVALID_CREDENTIALS,
  'Invalid credentials',
  401, Error, false
)

/**
 * Any refused refresh: unknown, expired, revoked or reused token all look the same to the client.
 *
 * @example
 * // answered by POST /auth/refresh, which also clears the refresh cookie
 * { statusCode: 401, code: 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN', error: 'Unauthorized', message: '…' }
 */
export const InvalidRefreshTokenError = createError(
  ErrorCodes.INVALID_REFRESH_TOKEN,
  'The refresh token is invalid or expired',
  401, Error, false
)

/**
 * A login of a user already at `maxSessionsPerUser`, with `onSessionLimit: 'refuse'`: no session started.
 * The credentials were right; the user must sign out elsewhere first.
 *
 * @example
 * // answered by POST /auth/login
 * { statusCode: 403, code: 'FST_REFRESH_AUTH_SESSION_LIMIT', error: 'Forbidden', message: 'Too many active sessions' }
 */
export const SessionLimitError = createError(
  ErrorCodes.SESSION_LIMIT,
  'Too many active sessions',
  403, Error, false
)

/**
 * A cookie-authenticated route was called from another site (Fetch Metadata or the Origin allow-list).
 *
 * @example
 * // POST /auth/refresh with `Sec-Fetch-Site: cross-site`
 * { statusCode: 403, code: 'FST_REFRESH_AUTH_CROSS_SITE', error: 'Forbidden', message: 'Cross-site request refused' }
 */
export const CrossSiteRequestError = createError(
  ErrorCodes.CROSS_SITE,
  'Cross-site request refused',
  403, Error, false
)

/**
 * The session store failed or timed out: nothing was issued; the client may retry.
 *
 * @example
 * // POST /auth/login while Redis is down
 * { statusCode: 503, code: 'FST_REFRESH_AUTH_STORE_UNAVAILABLE', error: 'Service Unavailable', message: '…' }
 */
export const StoreUnavailableError = createError(
  ErrorCodes.STORE_UNAVAILABLE,
  'Session store unavailable, try again later',
  503
)

/**
 * A store operation did not finish in time (or reached Redis or PostgreSQL after its deadline and was refused there).
 *
 * @example
 * const store = new RedisStore({ client: redis, timeout: 500 }) // an operation past 500 ms rejects with it; the client gets 503
 */
export const StoreTimeoutError = createError<'FST_REFRESH_AUTH_STORE_TIMEOUT', 503, [string]>(
  ErrorCodes.STORE_TIMEOUT,
  'Session store: %s',
  503
)

/**
 * A store operation found what it was to change changed under it by another one: a login whose session was
 * revoked (with its user's others) while it was being saved. Nothing was created; the client gets 503.
 *
 * @example
 * // logged when POST /auth/login races app.refreshAuth.revokeUserSessions(userId) on RedisStore
 * // FST_REFRESH_AUTH_STORE_CONFLICT Session store: the session was revoked while it was being created
 */
export const StoreConflictError = createError<'FST_REFRESH_AUTH_STORE_CONFLICT', 503, [string]>(
  ErrorCodes.STORE_CONFLICT,
  'Session store: %s',
  503
)

/**
 * Plugin options refused at registration; the message names the option.
 *
 * @example
 * await app.register(fastifyRefreshAuth, { secret: 'short' })
 * // rejects: FST_REFRESH_AUTH_INVALID_OPTION fastify-refresh-auth: secret must be at least 32 bytes long
 */
export const InvalidOptionError = createError<[string]>(
  ErrorCodes.INVALID_OPTION,
  'fastify-refresh-auth: %s',
  500
)

/**
 * A resource server has never loaded its JWKS, so it cannot check any token yet: 503, the client may retry.
 *
 * @example
 * // GET /orders on a resource server whose JWKS URL has not answered yet
 * { statusCode: 503, code: 'FST_REFRESH_AUTH_KEYS_UNAVAILABLE', error: 'Service Unavailable', message: '…' }
 */
export const KeysUnavailableError = createError(
  ErrorCodes.KEYS_UNAVAILABLE,
  'Token verification keys unavailable, try again later',
  503
)

/**
 * `accessToken.revocation.failClosed` is set and this instance cannot confirm that sessions ended elsewhere
 * reached it (the store's revocation feed is down, or came back after losing some): protected requests answer
 * 503 until it can; the client may retry.
 *
 * @example
 * // GET /orders while the Redis revocation feed has been down for longer than accessToken.revocation.feedTolerance
 * { statusCode: 503, code: 'FST_REFRESH_AUTH_REVOCATION_UNCONFIRMED', error: 'Service Unavailable', message: '…' }
 */
export const RevocationUnconfirmedError = createError(
  ErrorCodes.REVOCATION_UNCONFIRMED,
  'Session revocations cannot be confirmed, try again later',
  503
)

/**
 * `GET {prefix}/events` found this instance holding `events.maxStreams` open streams: 503, the client tries
 * again later (the session is not affected).
 *
 * @example
 * // GET /auth/events on an instance at its cap
 * { statusCode: 503, code: 'FST_REFRESH_AUTH_EVENT_STREAMS_FULL', error: 'Service Unavailable', message: '…' }
 */
export const EventStreamsFullError = createError(
  ErrorCodes.EVENT_STREAMS_FULL,
  'Too many open event streams, try again later',
  503
)

/**
 * `DELETE {prefix}/sessions/:sessionId` named no live session of the signed-in user: one answer whether it is
 * unknown, already ended, or another user's, so a session id says nothing of who holds it.
 *
 * @example
 * // DELETE /auth/sessions/<another user's session id>
 * { statusCode: 404, code: 'FST_REFRESH_AUTH_SESSION_NOT_FOUND', error: 'Not Found', message: '…' }
 */
export const SessionNotFoundError = createError(
  ErrorCodes.SESSION_NOT_FOUND,
  'No such session',
  404, Error, false
)

/**
 * A function of this plugin was called with an argument it cannot use; the message names it.
 *
 * @example
 * await app.refreshAuth.revokeSession(123 as never)
 * // rejects: FST_REFRESH_AUTH_INVALID_ARGUMENT fastify-refresh-auth: revokeSession: sessionId must be a non-empty string
 */
export const InvalidArgumentError = createError<[string]>(
  ErrorCodes.INVALID_ARGUMENT,
  'fastify-refresh-auth: %s',
  500, TypeError
)

/**
 * Refresh or logout carried the refresh cookie's name more than once, as when a sibling subdomain plants a
 * cookie of the same name (cookie tossing): the request is refused before any token is read, so nothing is
 * consumed or revoked, and the cookies are left as they are.
 *
 * @example
 * // POST /auth/refresh with `Cookie: __Secure-refresh_token=…; __Secure-refresh_token=…`
 * { statusCode: 400, code: 'FST_REFRESH_AUTH_DUPLICATE_COOKIE', error: 'Bad Request', message: '…' }
 */
export const DuplicateCookieError = createError(
  ErrorCodes.DUPLICATE_COOKIE,
  'The request carries the refresh cookie more than once',
  400, Error, false
)

/**
 * The `claims` option gave something that cannot go into a token (not plain JSON data, a name such as
 * `constructor`, too deep or too large). The reason is logged; the client gets this fixed message.
 *
 * @example
 * // claims: (user) => ({ constructor: 'x' }) answers POST /auth/login with
 * { statusCode: 500, code: 'FST_REFRESH_AUTH_INVALID_CLAIMS', error: 'Internal Server Error', message: '…' }
 */
export const InvalidClaimsError = createError(
  ErrorCodes.INVALID_CLAIMS,
  'The claims option gave data that cannot go into a token',
  500
)

/**
 * The `subject` option (by default the user's `id`) gave neither a non-empty string nor a finite number.
 * The reason is logged; the client gets this fixed message.
 *
 * @example
 * // verifyCredentials resolved to { id: { tenant: 1, user: 2 } } without a subject option:
 * { statusCode: 500, code: 'FST_REFRESH_AUTH_INVALID_SUBJECT', error: 'Internal Server Error', message: '…' }
 */
export const InvalidSubjectError = createError(
  ErrorCodes.INVALID_SUBJECT,
  'The subject option gave no usable user id',
  500
)

/**
 * A host callback threw (or rejected with) an error without a 4xx `statusCode`: the error is logged whole,
 * the client gets this generic 500. An error with a 4xx `statusCode` is answered as it is instead.
 *
 * @example
 * // claims: (user) => ({ scope: user.scopes.join(' ') }) for a user without scopes:
 * { statusCode: 500, code: 'FST_REFRESH_AUTH_CALLBACK_FAILED', error: 'Internal Server Error', message: '…' }
 */
export const CallbackFailedError = createError(
  ErrorCodes.CALLBACK_FAILED,
  'The server could not complete the request',
  500
)

/**
 * A host callback did not settle within `callbackTimeout`: 503, logged with the callback's name. Nothing was
 * issued or rotated, and whatever the callback settles to later is ignored: the client may retry.
 *
 * @example
 * // loadUser waiting on a dead database connection, with callbackTimeout: '2s':
 * { statusCode: 503, code: 'FST_REFRESH_AUTH_CALLBACK_TIMEOUT', error: 'Service Unavailable', message: '…' }
 */
export const CallbackTimeoutError = createError(
  ErrorCodes.CALLBACK_TIMEOUT,
  'The server could not complete the request in time; try again',
  503
)

/**
 * A resource server could not use a JWKS answer; logged with the URL, never sent (the last good keys stay).
 *
 * @example
 * // logged: FST_REFRESH_AUTH_JWKS_FETCH_FAILED JWKS fetch failed: the answer is larger than 262144 bytes
 */
export const JwksFetchError = createError<[string]>(
  ErrorCodes.JWKS_FETCH_FAILED,
  'JWKS fetch failed: %s',
  502
)

/**
 * A route protected by the standalone `authenticate` (or `requireScopes`, `requireRoles`,
 * `requireFreshAuth`) was called on an instance where the plugin is not registered: 500, fail closed.
 *
 * @example
 * // logged: FST_REFRESH_AUTH_NOT_REGISTERED fastify-refresh-auth is not registered on the instance serving this route
 */
export const PluginNotRegisteredError = createError(
  ErrorCodes.NOT_REGISTERED,
  'fastify-refresh-auth is not registered on the instance serving this route',
  500
)

/**
 * A DPoP proof was refused, or a bound token or session came without a proof from its key. The auth routes
 * answer it with the OAuth body `{ "error": "invalid_dpop_proof" }` (400, or 401 for a bound session's
 * refresh without its key: nothing is consumed); protected routes with 401 and `WWW-Authenticate: DPoP`.
 *
 * @example
 * // POST /auth/refresh of a bound session without a DPoP header
 * { statusCode: 401, code: 'FST_REFRESH_AUTH_INVALID_DPOP_PROOF', error: 'invalid_dpop_proof', message: '…' }
 */
export const InvalidDpopProofError = createError(
  ErrorCodes.INVALID_DPOP_PROOF,
  'The DPoP proof is missing or invalid',
  401, Error, false
)

/**
 * The DPoP proof must carry the server's current nonce, sent in the `DPoP-Nonce` header of this answer:
 * sign a new proof with it and try again (RFC 9449 §8, §9).
 *
 * @example
 * // POST /auth/login with dpop: { nonce: true } and a proof without a nonce: 400, `DPoP-Nonce: …`
 * { statusCode: 400, code: 'FST_REFRESH_AUTH_USE_DPOP_NONCE', error: 'use_dpop_nonce', message: '…' }
 */
export const UseDpopNonceError = createError(
  ErrorCodes.USE_DPOP_NONCE,
  'The DPoP proof must carry the nonce of the DPoP-Nonce header',
  401, Error, false
)

// Each class is also a type, so `catch (err) { if (err instanceof InvalidTokenError) … }` reads naturally.
/* eslint-disable @typescript-eslint/no-redeclare */
export type MissingTokenError = InstanceType<typeof MissingTokenError>
export type InvalidTokenError = InstanceType<typeof InvalidTokenError>
export type InsufficientScopeError = InstanceType<typeof InsufficientScopeError>
export type InsufficientUserAuthenticationError = InstanceType<typeof InsufficientUserAuthenticationError>
export type InvalidCredentialsError = InstanceType<typeof InvalidCredentialsError>
export type InvalidRefreshTokenError = InstanceType<typeof InvalidRefreshTokenError>
export type SessionLimitError = InstanceType<typeof SessionLimitError>
export type CrossSiteRequestError = InstanceType<typeof CrossSiteRequestError>
export type StoreUnavailableError = InstanceType<typeof StoreUnavailableError>
export type StoreTimeoutError = InstanceType<typeof StoreTimeoutError>
export type StoreConflictError = InstanceType<typeof StoreConflictError>
export type InvalidOptionError = InstanceType<typeof InvalidOptionError>
export type KeysUnavailableError = InstanceType<typeof KeysUnavailableError>
export type RevocationUnconfirmedError = InstanceType<typeof RevocationUnconfirmedError>
export type EventStreamsFullError = InstanceType<typeof EventStreamsFullError>
export type InvalidArgumentError = InstanceType<typeof InvalidArgumentError>
export type SessionNotFoundError = InstanceType<typeof SessionNotFoundError>
export type DuplicateCookieError = InstanceType<typeof DuplicateCookieError>
export type InvalidClaimsError = InstanceType<typeof InvalidClaimsError>
export type InvalidSubjectError = InstanceType<typeof InvalidSubjectError>
export type CallbackFailedError = InstanceType<typeof CallbackFailedError>
export type JwksFetchError = InstanceType<typeof JwksFetchError>
export type CallbackTimeoutError = InstanceType<typeof CallbackTimeoutError>
export type PluginNotRegisteredError = InstanceType<typeof PluginNotRegisteredError>
export type InvalidDpopProofError = InstanceType<typeof InvalidDpopProofError>
export type UseDpopNonceError = InstanceType<typeof UseDpopNonceError>
/* eslint-enable @typescript-eslint/no-redeclare */

/** Refuses an option at registration: the message names the option and what it must be. */
export function refuseOption (message: string): never {
  throw new InvalidOptionError(message)
}

const CUSTOMIZABLE_CODES: ReadonlySet<string> = new Set(
  Object.values(ErrorCodes).filter(code => !(SERVER_ONLY_CODES as readonly string[]).includes(code))
)

/** Whether `code` is one whose message the `messages` option may replace. */
export function isCustomizableCode (code: string): boolean {
  return CUSTOMIZABLE_CODES.has(code)
}

/**
 * An `onError` hook that gives this plugin's errors the host's messages. The error objects are new
 * for each request, so changing their message touches nothing shared; the code stays as it is.
 */
export function messageReplacer (messages: ErrorMessages): (request: unknown, reply: unknown, error: Error & { code?: string }, done: () => void) => void {
  const byCode = new Map<string, string>(Object.entries(messages) as Array<[string, string]>)
  return function replaceErrorMessage (_request, _reply, error, done) {
    const message = error.code === undefined ? undefined : byCode.get(error.code)
    if (message !== undefined) error.message = message
    done()
  }
}
