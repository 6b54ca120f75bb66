import createError from '@fastify/error'

// Created once: every failure below is an expected outcome, not a bug, so 401s skip the stack trace.

/** No access token was presented: 401 with a bare `Bearer realm` challenge (RFC 6750 §3.1). */
export const MissingTokenError = createError(
  'FST_REFRESH_AUTH_NO_TOKEN',
  'Authorization header with a Bearer token is required',
  401, TypeError, false
)

/** The access token is malformed, expired, of the wrong type or badly signed: 401 `invalid_token`. */
export const InvalidTokenError = createError(
  'FST_REFRESH_AUTH_INVALID_TOKEN',
  'The access token is invalid or expired',
  401, TypeError, false
)

/** `verifyCredentials` found no user: one answer for unknown user and wrong password. */
export const InvalidCredentialsError = createError(
  'FST_REFRESH_AUTH_INVALID_CREDENTIALS',
  'Invalid credentials',
  401, TypeError, false
)

/** Any refused refresh: unknown, expired, revoked or reused token all look the same to the client. */
export const InvalidRefreshTokenError = createError(
  'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN',
  'The refresh token is invalid or expired',
  401, TypeError, false
)

/** A cookie-authenticated route was called from another site (Fetch Metadata or the Origin allow-list). */
export const CrossSiteRequestError = createError(
  'FST_REFRESH_AUTH_CROSS_SITE',
  'Cross-site request refused',
  403, TypeError, false
)

/** The session store failed or timed out: nothing was issued; the client may retry. */
export const StoreUnavailableError = createError(
  'FST_REFRESH_AUTH_STORE_UNAVAILABLE',
  'Session store unavailable, try again later',
  503
)

/** Plugin options refused at registration. */
export const InvalidOptionError = createError<[string]>(
  'FST_REFRESH_AUTH_INVALID_OPTION',
  'fastify-refresh-auth: %s',
  500
)

/** A resource server has never loaded its JWKS, so it cannot check any token yet: 503, the client may retry. */
export const KeysUnavailableError = createError(
  'FST_REFRESH_AUTH_KEYS_UNAVAILABLE',
  'Token verification keys unavailable, try again later',
  503
)

// Each class is also a type, so `catch (err) { if (err instanceof InvalidTokenError) … }` reads naturally.
/* eslint-disable @typescript-eslint/no-redeclare */
export type MissingTokenError = InstanceType<typeof MissingTokenError>
export type InvalidTokenError = InstanceType<typeof InvalidTokenError>
export type InvalidCredentialsError = InstanceType<typeof InvalidCredentialsError>
export type InvalidRefreshTokenError = InstanceType<typeof InvalidRefreshTokenError>
export type CrossSiteRequestError = InstanceType<typeof CrossSiteRequestError>
export type StoreUnavailableError = InstanceType<typeof StoreUnavailableError>
export type InvalidOptionError = InstanceType<typeof InvalidOptionError>
export type KeysUnavailableError = InstanceType<typeof KeysUnavailableError>
