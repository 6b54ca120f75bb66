import { isCustomizableCode, refuseOption as fail, type ErrorMessages } from '../errors.js'
import type { LoginUser } from '../types.js'
import { checkCookiePrefix } from './cookie-prefix.js'
import { durationOption as duration } from './duration.js'
import { resolveDpop } from './dpop.js'
import { resolveServerRole } from './server-role.js'
import type { EventStreamsOptions, EventStreamsSettings, FastifyRefreshAuthOptions, HostCallbacks, JwksRouteSettings, RefreshTokenTransport, ResolvedOptions, RevocationOptions, RevocationSettings } from './types.js'
import type { KeySet } from '../tokens/keys.js'

// Seconds: a client retrying a refresh whose answer it lost, or two tabs refreshing together, get the live token.
const DEFAULT_REUSE_INTERVAL = 10

// Seconds of skew between instances' clocks accepted on `iat`, `nbf` and `exp` (RFC 7519 §4.1.4 leeway):
// NTP keeps servers within milliseconds, but a VM resumed or a container on a drifting host can be a second
// or two off, and a refused refresh token signs the user out. Small against any access-token lifetime.
const DEFAULT_CLOCK_TOLERANCE = 5

/** The refresh cookie's name unless `cookie.name` says otherwise. */
export const DEFAULT_COOKIE_NAME = '__Secure-refresh_token'

const SAME_SITE = ['strict', 'lax'] as const
const TRANSPORTS: readonly RefreshTokenTransport[] = ['cookie', 'body', 'both']
const STORE_METHODS = ['create', 'rotate', 'present', 'revoke', 'revokeUser', 'revokeOtherSessions', 'listUserSessions'] as const
const SESSION_LIMIT_POLICIES = ['revoke-oldest', 'refuse'] as const
const PATH = /^\/[\w\-./~]*$/
// RFC 6265 cookie-name token, and a quoted-string without quotes or backslashes for the realm
const COOKIE_NAME = /^[\w!#$%&'*+\-.^`|~]+$/
const REALM = /^[\x20\x21\x23-\x5b\x5d-\x7e]+$/

function isOneOf<T extends string> (value: unknown, allowed: readonly T[]): value is T {
  return (allowed as readonly unknown[]).includes(value)
}

function text (value: unknown, fallback: string, name: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value.length === 0) fail(`${name} must be a non-empty string`)
  return value
}

function optionalFunction<T> (value: T | undefined, name: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') fail(`${name} must be a function`)
  return value
}

function defaultSubject (user: LoginUser): unknown {
  return (user as { id?: unknown }).id
}

/** Applies defaults and refuses unusable options with a message that names the option. */
export function resolveOptions (options: FastifyRefreshAuthOptions): ResolvedOptions {
  const routes = options.routes ?? true
  const role = resolveServerRole(options.secret, options.accessToken, routes !== false)
  const jwks = resolveJwksRoute(options.jwks, role.publicKeys)

  if (typeof routes !== 'boolean' && typeof routes !== 'object') fail('routes must be a boolean or an object')
  const prefix = text(typeof routes === 'object' ? routes.prefix : undefined, '/auth', 'routes.prefix')
  if (!PATH.test(prefix) || prefix.endsWith('/')) fail("routes.prefix must be a path such as '/auth', without a trailing slash")
  const sessionsRoutes = typeof routes === 'object' ? routes.sessions ?? false : false
  if (typeof sessionsRoutes !== 'boolean') fail('routes.sessions must be a boolean')
  const loginBody = typeof routes === 'object' ? routes.loginBody ?? null : null
  if (loginBody !== null && (typeof loginBody !== 'object' || Array.isArray(loginBody))) fail('routes.loginBody must be a JSON schema (an object)')

  // The host typed the login body (`LoginBody`); the plugin calls its callbacks with a route's request, whose
  // body is what `routes.loginBody` let through: the one place that trusts the host's type.
  const verifyCredentials = optionalFunction(options.verifyCredentials, 'verifyCredentials') as HostCallbacks['verifyCredentials']
  if (routes !== false && verifyCredentials === undefined) fail('verifyCredentials is required while the login route is registered')

  const store = options.store
  if (store !== undefined) {
    if (store === null || typeof store !== 'object') fail('store must be a SessionStore object')
    const missing = STORE_METHODS.filter(method => typeof store[method] !== 'function')
    if (missing.length > 0) {
      fail(`store must implement ${STORE_METHODS.map(m => `${m}()`).join(', ')}; missing: ${missing.map(m => `${m}()`).join(', ')}`)
    }
    if (store.watchRevocations !== undefined && typeof store.watchRevocations !== 'function') fail('store.watchRevocations must be a function')
  }

  const accessExpiresIn = duration(options.accessToken?.expiresIn, '15m', 'accessToken.expiresIn')
  const accessCacheSize = options.accessToken?.cacheSize ?? 10_000
  if (!Number.isSafeInteger(accessCacheSize) || accessCacheSize < 0) fail('accessToken.cacheSize must be a non-negative integer')
  const refreshExpiresIn = duration(options.refreshToken?.expiresIn, '7d', 'refreshToken.expiresIn')
  const absoluteExpiresIn = duration(options.refreshToken?.absoluteExpiresIn, '30d', 'refreshToken.absoluteExpiresIn')
  if (refreshExpiresIn <= accessExpiresIn) fail('refreshToken.expiresIn must be longer than accessToken.expiresIn')
  if (absoluteExpiresIn < refreshExpiresIn) fail('refreshToken.absoluteExpiresIn must not be shorter than refreshToken.expiresIn')
  const reuseInterval = options.refreshToken?.reuseInterval === undefined
    ? Math.min(DEFAULT_REUSE_INTERVAL, refreshExpiresIn - 1)
    : duration(options.refreshToken.reuseInterval, 0, 'refreshToken.reuseInterval', true)
  if (reuseInterval >= refreshExpiresIn) fail('refreshToken.reuseInterval must be shorter than refreshToken.expiresIn')
  const revocation = resolveRevocation(options.accessToken?.revocation)

  const cookie = options.cookie ?? {}
  if (typeof cookie !== 'object') fail('cookie must be an object')
  const cookieName = text(cookie.name, DEFAULT_COOKIE_NAME, 'cookie.name')
  if (!COOKIE_NAME.test(cookieName)) fail('cookie.name must be a valid cookie name')
  const cookiePath = text(cookie.path, prefix, 'cookie.path')
  if (!PATH.test(cookiePath)) fail("cookie.path must be a path such as '/auth'")
  const cookieSecure = cookie.secure ?? true
  if (typeof cookieSecure !== 'boolean') fail('cookie.secure must be a boolean')
  checkCookiePrefix({ name: cookieName, path: cookiePath, secure: cookieSecure })
  const cookieSameSite = cookie.sameSite ?? 'strict'
  if (!isOneOf(cookieSameSite, SAME_SITE)) fail("cookie.sameSite must be 'strict' or 'lax'")

  const realm = text(options.realm, 'fastify-refresh-auth', 'realm')
  if (!REALM.test(realm)) fail('realm must be printable ASCII without quotes or backslashes')

  const clockTolerance = options.clockTolerance ?? DEFAULT_CLOCK_TOLERANCE
  if (typeof clockTolerance !== 'number' || !Number.isFinite(clockTolerance) || clockTolerance < 0) {
    fail('clockTolerance must be a non-negative number of seconds')
  }

  const trustedOrigins = options.trustedOrigins
  if (trustedOrigins !== undefined && (!Array.isArray(trustedOrigins) || !trustedOrigins.every(o => typeof o === 'string'))) {
    fail('trustedOrigins must be an array of origins')
  }

  const maxSessionsPerUser = options.maxSessionsPerUser
  if (maxSessionsPerUser !== undefined && !(Number.isSafeInteger(maxSessionsPerUser) && maxSessionsPerUser >= 1)) {
    fail('maxSessionsPerUser must be a positive integer')
  }
  const onSessionLimit = options.onSessionLimit ?? 'revoke-oldest'
  if (!isOneOf(onSessionLimit, SESSION_LIMIT_POLICIES)) fail("onSessionLimit must be 'revoke-oldest' or 'refuse'")

  const refreshTokenTransport = options.refreshTokenTransport ?? 'cookie'
  if (!isOneOf(refreshTokenTransport, TRANSPORTS)) {
    fail("refreshTokenTransport must be 'cookie', 'body' or 'both'")
  }

  return {
    role,
    tokens: {
      issuer: text(options.issuer, 'fastify-refresh-auth', 'issuer'),
      audience: text(options.audience, 'fastify-refresh-auth', 'audience'),
      clockTolerance,
      accessCacheSize
    },
    sessions: { accessExpiresIn, refreshExpiresIn, reuseInterval, absoluteExpiresIn, maxSessionsPerUser, onSessionLimit },
    hooks: {
      verifyCredentials,
      loadUser: optionalFunction(options.loadUser, 'loadUser'),
      subject: optionalFunction(options.subject, 'subject') ?? defaultSubject,
      claims: optionalFunction(options.claims, 'claims'),
      rememberMe: optionalFunction(options.rememberMe, 'rememberMe') as HostCallbacks['rememberMe'],
      onLogin: optionalFunction(options.onLogin, 'onLogin'),
      onRefresh: optionalFunction(options.onRefresh, 'onRefresh'),
      onLogout: optionalFunction(options.onLogout, 'onLogout'),
      onReuseDetected: optionalFunction(options.onReuseDetected, 'onReuseDetected'),
      timeout: callbackTimeout(options.callbackTimeout)
    },
    cookie: { name: cookieName, path: cookiePath, secure: cookieSecure, sameSite: cookieSameSite },
    routes: {
      register: routes !== false,
      prefix,
      sessions: sessionsRoutes,
      loginBody,
      events: resolveEvents(options.events),
      transport: refreshTokenTransport,
      trustedOrigins: trustedOrigins === undefined ? null : new Set(trustedOrigins)
    },
    jwks,
    store,
    revocation,
    realm,
    messages: resolveMessages(options.messages),
    dpop: resolveDpop(options.dpop, options.secret)
  }
}

// A longer timer would overflow setTimeout (about 24.8 days) and fire at once; no request waits an hour anyway.
const MAX_CALLBACK_TIMEOUT = 3600

function callbackTimeout (value: unknown): number {
  const seconds = duration(value, '10s', 'callbackTimeout')
  if (seconds > MAX_CALLBACK_TIMEOUT) fail("callbackTimeout must be at most '1h'")
  return seconds
}

function resolveRevocation (revocation: boolean | RevocationOptions | undefined): RevocationSettings | null {
  if (revocation === false) return null
  if (revocation !== undefined && revocation !== true && (revocation === null || typeof revocation !== 'object')) {
    fail('accessToken.revocation must be a boolean or an object')
  }
  const settings = typeof revocation === 'object' ? revocation : {}
  const failClosed = settings.failClosed ?? false
  if (typeof failClosed !== 'boolean') fail('accessToken.revocation.failClosed must be a boolean')
  return { failClosed, feedTolerance: duration(settings.feedTolerance, '10s', 'accessToken.revocation.feedTolerance') }
}

function resolveEvents (events: boolean | EventStreamsOptions | undefined): EventStreamsSettings | null {
  if (events === false) return null
  if (events !== undefined && events !== true && (events === null || typeof events !== 'object')) fail('events must be a boolean or an object')
  const settings = typeof events === 'object' ? events : {}
  const maxStreams = settings.maxStreams ?? 10_000
  if (!Number.isSafeInteger(maxStreams) || maxStreams < 1) fail('events.maxStreams must be a positive integer')
  return { maxStreams, heartbeatMs: duration(settings.heartbeatInterval, 15, 'events.heartbeatInterval') * 1000 }
}

function resolveMessages (messages: unknown): ErrorMessages | null {
  if (messages === undefined) return null
  if (messages === null || typeof messages !== 'object') fail('messages must be an object of error codes to messages')
  for (const [code, message] of Object.entries(messages)) {
    if (!isCustomizableCode(code)) fail(`messages: ${code} is not an error code of this plugin that a client sees`)
    if (typeof message !== 'string' || message.length === 0) fail(`messages.${code} must be a non-empty string`)
  }
  return { ...messages }
}

function resolveJwksRoute (jwks: FastifyRefreshAuthOptions['jwks'] = false, publicKeys: KeySet | null): JwksRouteSettings {
  if (typeof jwks !== 'boolean' && (jwks === null || typeof jwks !== 'object')) fail('jwks must be a boolean or an object')
  const serveJwks = jwks !== false
  if (serveJwks && publicKeys === null) {
    fail('jwks needs asymmetric accessToken.keys with a privateKey: it is served by the auth server that signs (HS256 keys are secret)')
  }
  const settings = typeof jwks === 'object' ? jwks : {}
  const url = text(settings.url, '/.well-known/jwks.json', 'jwks.url')
  if (!PATH.test(url)) fail("jwks.url must be a path such as '/.well-known/jwks.json'")
  return { serve: serveJwks, url, maxAge: duration(settings.maxAge, '5m', 'jwks.maxAge', true) }
}
