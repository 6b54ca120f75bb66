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
  /** 401: `verifyCredentials` found no user. */
  INVALID_CREDENTIALS: 'FST_REFRESH_AUTH_INVALID_CREDENTIALS',
  /** 401: the refresh token is unknown, expired, revoked or reused. */
  INVALID_REFRESH_TOKEN: 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN',
  /** 403: a cookie-authenticated route was called from another site. */
  CROSS_SITE: 'FST_REFRESH_AUTH_CROSS_SITE',
  /** 503: the session store failed. */
  STORE_UNAVAILABLE: 'FST_REFRESH_AUTH_STORE_UNAVAILABLE',
  /** A `RedisStore` operation did not finish in time: logged; the client gets `STORE_UNAVAILABLE`. */
  STORE_TIMEOUT: 'FST_REFRESH_AUTH_STORE_TIMEOUT',
  /** 503: a resource server has not loaded its JWKS yet. */
  KEYS_UNAVAILABLE: 'FST_REFRESH_AUTH_KEYS_UNAVAILABLE',
  /** Thrown at registration: an option was refused. */
  INVALID_OPTION: 'FST_REFRESH_AUTH_INVALID_OPTION'
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
export type ErrorMessages = Partial<Record<Exclude<RefreshAuthErrorCode, 'FST_REFRESH_AUTH_INVALID_OPTION' | 'FST_REFRESH_AUTH_STORE_TIMEOUT'>, string>>

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
  401, TypeError, false
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
  401, TypeError, false
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
  403, TypeError, false
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
  401, TypeError, false
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
  401, TypeError, false
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
  403, TypeError, false
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
 * A store operation did not finish in time (or reached Redis after its deadline and was refused there).
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

// Each class is also a type, so `catch (err) { if (err instanceof InvalidTokenError) … }` reads naturally.
/* eslint-disable @typescript-eslint/no-redeclare */
export type MissingTokenError = InstanceType<typeof MissingTokenError>
export type InvalidTokenError = InstanceType<typeof InvalidTokenError>
export type InsufficientScopeError = InstanceType<typeof InsufficientScopeError>
export type InvalidCredentialsError = InstanceType<typeof InvalidCredentialsError>
export type InvalidRefreshTokenError = InstanceType<typeof InvalidRefreshTokenError>
export type CrossSiteRequestError = InstanceType<typeof CrossSiteRequestError>
export type StoreUnavailableError = InstanceType<typeof StoreUnavailableError>
export type StoreTimeoutError = InstanceType<typeof StoreTimeoutError>
export type InvalidOptionError = InstanceType<typeof InvalidOptionError>
export type KeysUnavailableError = InstanceType<typeof KeysUnavailableError>
/* eslint-enable @typescript-eslint/no-redeclare */

/** Refuses an option at registration: the message names the option and what it must be. */
export function refuseOption (message: string): never {
  throw new InvalidOptionError(message)
}

const CUSTOMIZABLE_CODES: ReadonlySet<string> = new Set(
  Object.values(ErrorCodes).filter(code => code !== ErrorCodes.INVALID_OPTION && code !== ErrorCodes.STORE_TIMEOUT)
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
