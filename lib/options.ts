import type { FastifyRequest } from 'fastify'
import type { AuditHook, LogoutEvent } from './audit.js'
import { checkCookiePrefix } from './cookie.js'
import { InvalidOptionError, isCustomizableCode, type ErrorMessages } from './errors.js'
import { parseDuration } from './duration.js'
import { defaultSubject } from './host-claims.js'
import type { LoginUser } from './index.js'
import { checkSecretLooksRandom } from './secret.js'
import type { SessionStore } from './stores/store.js'
import { ASYMMETRIC_ALGORITHMS, type AccessTokenAlgorithm, type AccessTokenKey } from './keys.js'

/**
 * A lifetime: a number of seconds, or a string such as `'15m'`, `'7d'` or `'30 days'`.
 *
 * @example
 * const lifetimes: FastifyRefreshAuthOptions['refreshToken'] = { expiresIn: '7d', absoluteExpiresIn: 30 * 86400 }
 */
export type Duration = number | string

/**
 * The plugin's options: `secret` is required, except on a resource server that only verifies
 * access tokens (`routes: false` with public `accessToken.keys` or `accessToken.jwksUrl`).
 *
 * @example
 * const options: FastifyRefreshAuthOptions = {
 *   secret: process.env.AUTH_SECRET!,
 *   verifyCredentials: async (request) => users.check(request.body),
 *   accessToken: { expiresIn: '10m' },
 *   claims: async (user) => ({ roles: user.roles })
 * }
 * await app.register(fastifyRefreshAuth, options)
 */
export type FastifyRefreshAuthOptions =
  | (RefreshAuthCommonOptions & {
    /** At least 32 bytes. Never used as a key itself: one key per token type is derived from it (HKDF). */
    secret: string | Buffer
  })
  | (RefreshAuthCommonOptions & { secret?: undefined, routes: false })

/** Every option but `secret`. */
export interface RefreshAuthCommonOptions {
  /**
   * Checks the login request (password, one-time code…) and resolves to the user, or to null/undefined
   * when the credentials are wrong. Required while the login route is registered.
   */
  verifyCredentials?: (request: FastifyRequest) => Promise<LoginUser | null | undefined> | LoginUser | null | undefined
  /** Persistence of refresh-token sessions. Default: a new `MemoryStore` (one process only). */
  store?: SessionStore
  accessToken?: {
    /** Default `'15m'`. */
    expiresIn?: Duration
    /**
     * How many verified access tokens to remember, so a token presented again skips verification
     * (least recently used dropped first; an entry never outlives its token). 0 disables it. Default 10,000.
     */
    cacheSize?: number
    /** Default `'HS256'` with a key derived from `secret`; `RS256`, `PS256` and `ES256` need `keys`. */
    algorithm?: AccessTokenAlgorithm
    /** Asymmetric keys, each with a `kid`: the first that has a private key signs, all verify. */
    keys?: AccessTokenKey[]
    /** Resource server: verify with the keys this JWK Set URL publishes (each key's algorithm from its `alg`). */
    jwksUrl?: string
    /** Give up a JWKS fetch after this long. Default `'5s'`. */
    jwksTimeout?: Duration
    /** An unknown `kid` refetches the JWKS at most once per this interval. Default `'30s'`. */
    jwksCooldown?: Duration
    /** Refetch the JWKS this often, to drop retired keys. Default `'10m'`. */
    jwksRefreshInterval?: Duration
  }
  /** Serve the public access-token keys as a JWK Set, at `GET /.well-known/jwks.json` unless `url` says otherwise. */
  jwks?: boolean | { url?: string, maxAge?: Duration }
  refreshToken?: {
    /** Idle limit, renewed by each rotation. Default `'7d'`. */
    expiresIn?: Duration
    /** Seconds during which the immediate parent of the live token may be presented again. Default 0. */
    reuseInterval?: Duration
    /** Absolute session limit from login, never extended. Default `'30d'`. */
    absoluteExpiresIn?: Duration
  }
  /** `false` registers no route; an object moves them. Default `{ prefix: '/auth' }`. */
  routes?: boolean | { prefix?: string }
  /** The `iss` claim set and checked. Default `'fastify-refresh-auth'`. */
  issuer?: string
  /** The `aud` claim set and checked. Default `'fastify-refresh-auth'`. */
  audience?: string
  /** The refresh cookie. Defaults: name `'__Secure-refresh_token'`, path the routes' prefix, secure true, sameSite `'strict'`. */
  cookie?: {
    name?: string
    path?: string
    /** Only for plain-HTTP development on a host other than localhost; never turn it off in production. */
    secure?: boolean
    sameSite?: 'strict' | 'lax'
  }
  /** The realm of `WWW-Authenticate` challenges. Default `'fastify-refresh-auth'`. */
  realm?: string
  /** Seconds of clock skew accepted when checking `exp`, `nbf` and `iat`. Default 0. */
  clockTolerance?: number
  /**
   * The user's id for `sub`: a non-empty string (at most 256 characters) or a finite number, which is
   * stringified. Default `user.id`. Anything else refuses the login with `FST_REFRESH_AUTH_INVALID_SUBJECT`.
   */
  subject?: (user: LoginUser) => string | number
  /**
   * Extra claims for access tokens (roles, say), computed at login and kept for the session's life.
   * Reserved names (`iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, `jti`, `typ`, `sid`, …) are dropped. The
   * rest must be plain JSON data (objects, arrays, strings, finite numbers, booleans, null; at most 8
   * levels deep and 4 KiB as JSON) with no name of `Object.prototype` (`constructor`, `__proto__`…);
   * anything else refuses the login with `FST_REFRESH_AUTH_INVALID_CLAIMS` and logs why.
   */
  claims?: (user: LoginUser, request: FastifyRequest) => Promise<Record<string, unknown>> | Record<string, unknown>
  /** When set, cookie-authenticated routes refuse a request whose `Origin` header is not in this list. */
  trustedOrigins?: string[]
  /** Audit hook: a session started. Receives ids only, never a token; errors are logged and ignored. */
  onLogin?: AuditHook
  /** Audit hook: a refresh issued tokens (a rotation, or a re-issue within the reuse interval). */
  onRefresh?: AuditHook
  /** Audit hook: a logout revoked a session (`all: true`: every session of the user). */
  onLogout?: AuditHook<LogoutEvent>
  /** Audit hook: a rotated refresh token was replayed and its session revoked; alert, force a password reset… */
  onReuseDetected?: AuditHook
  /**
   * How the refresh token travels. `'cookie'` (default): only in the HTTP-only cookie, for browsers.
   * `'body'`: only as `refresh_token` in JSON bodies, for mobile and CLI clients; no cookie is set.
   * `'both'`: the cookie for browsers, the body for clients that send `refresh_token` in the body
   * or log in with the `Refresh-Token-Transport: body` header. A token always comes back the way it came.
   */
  refreshTokenTransport?: RefreshTokenTransport
  /**
   * Messages to answer with instead of the plugin's own, by error code; the codes stay as they are.
   * Example: `{ FST_REFRESH_AUTH_INVALID_CREDENTIALS: 'Wrong e-mail or password' }`.
   */
  messages?: ErrorMessages
}

/**
 * Where refresh tokens travel: see `FastifyRefreshAuthOptions.refreshTokenTransport`.
 *
 * @example
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, refreshTokenTransport: 'both' })
 * // a mobile app: POST /auth/login with `Refresh-Token-Transport: body`, then
 * // POST /auth/refresh with `{ "refresh_token": "…" }`
 */
export type RefreshTokenTransport = 'cookie' | 'body' | 'both'

/** Options after defaults and validation; lifetimes in seconds. */
export interface ResolvedOptions {
  /** Undefined on a resource server. */
  secret: string | Buffer | undefined
  accessAlgorithm: AccessTokenAlgorithm
  accessKeys: AccessTokenKey[] | null
  jwksUrl: string | null
  jwksTimeout: number
  jwksCooldown: number
  jwksRefreshInterval: number
  /** Whether the plugin registers the JWKS route itself. */
  serveJwks: boolean
  /** The JWKS route's path and its `Cache-Control` max-age in seconds. */
  jwksRoute: { url: string, maxAge: number }
  verifyCredentials: FastifyRefreshAuthOptions['verifyCredentials']
  store: SessionStore | undefined
  accessExpiresIn: number
  accessCacheSize: number
  refreshExpiresIn: number
  reuseInterval: number
  absoluteExpiresIn: number
  registerRoutes: boolean
  prefix: string
  issuer: string
  audience: string
  cookieName: string
  cookiePath: string
  cookieSecure: boolean
  cookieSameSite: 'strict' | 'lax'
  realm: string
  clockTolerance: number
  /** Unchecked: its result is checked at each login. */
  subject: (user: LoginUser) => unknown
  claims: FastifyRefreshAuthOptions['claims']
  trustedOrigins: ReadonlySet<string> | null
  onLogin: AuditHook | undefined
  onRefresh: AuditHook | undefined
  onLogout: AuditHook<LogoutEvent> | undefined
  onReuseDetected: AuditHook | undefined
  refreshTokenTransport: RefreshTokenTransport
  messages: ErrorMessages | null
}

const MIN_SECRET_BYTES = 32
const STORE_METHODS = ['create', 'rotate', 'revoke', 'revokeUser', 'listUserSessions'] as const
const PATH = /^\/[\w\-./~]*$/
// RFC 6265 cookie-name token, and a quoted-string without quotes or backslashes for the realm
const COOKIE_NAME = /^[\w!#$%&'*+\-.^`|~]+$/
const REALM = /^[\x20\x21\x23-\x5b\x5d-\x7e]+$/

function fail (message: string): never {
  throw new InvalidOptionError(message)
}

function duration (value: unknown, fallback: Duration, name: string, allowZero = false): number {
  const seconds = parseDuration(value ?? fallback)
  if (Number.isNaN(seconds) || (!allowZero && seconds < 1)) {
    fail(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number of seconds or a duration string such as '15m'`)
  }
  return seconds
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

/** Applies defaults and refuses unusable options with a message that names the option. */
export function resolveOptions (options: FastifyRefreshAuthOptions): ResolvedOptions {
  const routes = options.routes ?? true
  const access = resolveAccessKeys(options.accessToken, routes !== false)
  const { secret } = options
  if (secret !== undefined || (access.accessKeys === null && access.jwksUrl === null)) {
    if (typeof secret !== 'string' && !Buffer.isBuffer(secret)) fail('secret must be a string or a Buffer')
    if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) fail(`secret must be at least ${MIN_SECRET_BYTES} bytes long`)
    checkSecretLooksRandom(secret)
  } else if (routes !== false) {
    fail('secret is required while the routes are registered (refresh tokens are signed with it); a resource server sets routes: false')
  }
  const jwks = resolveJwksRoute(options.jwks, access.accessKeys)

  if (typeof routes !== 'boolean' && typeof routes !== 'object') fail('routes must be a boolean or an object')
  const prefix = text(typeof routes === 'object' ? routes.prefix : undefined, '/auth', 'routes.prefix')
  if (!PATH.test(prefix) || prefix.endsWith('/')) fail("routes.prefix must be a path such as '/auth', without a trailing slash")

  const verifyCredentials = optionalFunction(options.verifyCredentials, 'verifyCredentials')
  if (routes !== false && verifyCredentials === undefined) fail('verifyCredentials is required while the login route is registered')

  const store = options.store
  if (store !== undefined && (store === null || typeof store !== 'object' ||
      STORE_METHODS.some(method => typeof store[method] !== 'function'))) {
    fail('store must implement create(), rotate(), revoke(), revokeUser() and listUserSessions()')
  }

  const accessExpiresIn = duration(options.accessToken?.expiresIn, '15m', 'accessToken.expiresIn')
  const accessCacheSize = options.accessToken?.cacheSize ?? 10_000
  if (!Number.isSafeInteger(accessCacheSize) || accessCacheSize < 0) fail('accessToken.cacheSize must be a non-negative integer')
  const refreshExpiresIn = duration(options.refreshToken?.expiresIn, '7d', 'refreshToken.expiresIn')
  const absoluteExpiresIn = duration(options.refreshToken?.absoluteExpiresIn, '30d', 'refreshToken.absoluteExpiresIn')
  const reuseInterval = duration(options.refreshToken?.reuseInterval, 0, 'refreshToken.reuseInterval', true)
  if (refreshExpiresIn <= accessExpiresIn) fail('refreshToken.expiresIn must be longer than accessToken.expiresIn')
  if (absoluteExpiresIn < refreshExpiresIn) fail('refreshToken.absoluteExpiresIn must not be shorter than refreshToken.expiresIn')
  if (reuseInterval >= refreshExpiresIn) fail('refreshToken.reuseInterval must be shorter than refreshToken.expiresIn')

  const cookie = options.cookie ?? {}
  if (typeof cookie !== 'object') fail('cookie must be an object')
  const cookieName = text(cookie.name, '__Secure-refresh_token', 'cookie.name')
  if (!COOKIE_NAME.test(cookieName)) fail('cookie.name must be a valid cookie name')
  const cookiePath = text(cookie.path, prefix, 'cookie.path')
  if (!PATH.test(cookiePath)) fail("cookie.path must be a path such as '/auth'")
  const cookieSecure = cookie.secure ?? true
  if (typeof cookieSecure !== 'boolean') fail('cookie.secure must be a boolean')
  checkCookiePrefix({ name: cookieName, path: cookiePath, secure: cookieSecure })
  const cookieSameSite = cookie.sameSite ?? 'strict'
  if (cookieSameSite !== 'strict' && cookieSameSite !== 'lax') fail("cookie.sameSite must be 'strict' or 'lax'")

  const realm = text(options.realm, 'fastify-refresh-auth', 'realm')
  if (!REALM.test(realm)) fail('realm must be printable ASCII without quotes or backslashes')

  const clockTolerance = options.clockTolerance ?? 0
  if (typeof clockTolerance !== 'number' || !Number.isFinite(clockTolerance) || clockTolerance < 0) {
    fail('clockTolerance must be a non-negative number of seconds')
  }

  const trustedOrigins = options.trustedOrigins
  if (trustedOrigins !== undefined && (!Array.isArray(trustedOrigins) || !trustedOrigins.every(o => typeof o === 'string'))) {
    fail('trustedOrigins must be an array of origins')
  }

  const refreshTokenTransport = options.refreshTokenTransport ?? 'cookie'
  if (refreshTokenTransport !== 'cookie' && refreshTokenTransport !== 'body' && refreshTokenTransport !== 'both') {
    fail("refreshTokenTransport must be 'cookie', 'body' or 'both'")
  }

  return {
    secret,
    ...access,
    ...jwks,
    verifyCredentials,
    store,
    accessExpiresIn,
    accessCacheSize,
    refreshExpiresIn,
    reuseInterval,
    absoluteExpiresIn,
    registerRoutes: routes !== false,
    prefix,
    issuer: text(options.issuer, 'fastify-refresh-auth', 'issuer'),
    audience: text(options.audience, 'fastify-refresh-auth', 'audience'),
    cookieName,
    cookiePath,
    cookieSecure,
    cookieSameSite,
    realm,
    clockTolerance,
    subject: optionalFunction(options.subject, 'subject') ?? defaultSubject,
    claims: optionalFunction(options.claims, 'claims'),
    trustedOrigins: trustedOrigins === undefined ? null : new Set(trustedOrigins),
    onLogin: optionalFunction(options.onLogin, 'onLogin'),
    onRefresh: optionalFunction(options.onRefresh, 'onRefresh'),
    onLogout: optionalFunction(options.onLogout, 'onLogout'),
    onReuseDetected: optionalFunction(options.onReuseDetected, 'onReuseDetected'),
    refreshTokenTransport,
    messages: resolveMessages(options.messages)
  }
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

const JWKS_DEFAULT_URL = '/.well-known/jwks.json'

function resolveAccessKeys (accessToken: FastifyRefreshAuthOptions['accessToken'], routes: boolean) {
  const { algorithm = 'HS256', keys, jwksUrl } = accessToken ?? {}
  if ((algorithm as string) === 'EdDSA') fail('accessToken.algorithm EdDSA is not supported (jsonwebtoken 9 has no EdDSA)')
  if (algorithm !== 'HS256' && !ASYMMETRIC_ALGORITHMS.includes(algorithm)) {
    fail('accessToken.algorithm must be one of HS256, RS256, PS256, ES256')
  }
  if (keys !== undefined && jwksUrl !== undefined) fail('accessToken.keys and accessToken.jwksUrl exclude each other')
  if (keys !== undefined) {
    if (algorithm === 'HS256') fail('accessToken.keys needs an asymmetric accessToken.algorithm (RS256, PS256 or ES256); HS256 keys come from secret')
    if (!Array.isArray(keys) || keys.length === 0) fail('accessToken.keys must be a non-empty array')
    if (routes && !hasPrivateKey(keys)) {
      fail('accessToken.keys has no privateKey to sign with; a resource server that only verifies sets routes: false')
    }
  } else if (jwksUrl !== undefined) {
    if (!isHttpUrl(jwksUrl)) fail('accessToken.jwksUrl must be an http(s) URL')
    if (routes) fail('accessToken.jwksUrl makes a resource server, which only verifies: set routes: false')
  } else if (algorithm !== 'HS256') {
    fail(`accessToken.algorithm ${algorithm} needs accessToken.keys (or accessToken.jwksUrl on a resource server)`)
  }
  return {
    accessAlgorithm: algorithm,
    accessKeys: keys ?? null,
    jwksUrl: jwksUrl ?? null,
    jwksTimeout: duration(accessToken?.jwksTimeout, '5s', 'accessToken.jwksTimeout'),
    jwksCooldown: jwksCooldown(accessToken?.jwksCooldown),
    jwksRefreshInterval: duration(accessToken?.jwksRefreshInterval, '10m', 'accessToken.jwksRefreshInterval')
  }
}

// Every request with an unknown `kid` may refetch the JWKS once per cooldown: below a second, anyone
// could make a resource server fetch as often as they send requests.
function jwksCooldown (value: unknown): number {
  const seconds = duration(value, '30s', 'accessToken.jwksCooldown', true)
  if (seconds < 1) fail('accessToken.jwksCooldown must be at least 1 second')
  return seconds
}

function hasPrivateKey (keys: AccessTokenKey[]): boolean {
  return keys.some(key => key?.privateKey !== undefined)
}

function isHttpUrl (value: unknown): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(value as string).protocol)
  } catch {
    return false
  }
}

function resolveJwksRoute (jwks: FastifyRefreshAuthOptions['jwks'] = false, keys: AccessTokenKey[] | null) {
  if (typeof jwks !== 'boolean' && (jwks === null || typeof jwks !== 'object')) fail('jwks must be a boolean or an object')
  const serveJwks = jwks !== false
  if (serveJwks && (keys === null || !hasPrivateKey(keys))) {
    fail('jwks needs asymmetric accessToken.keys with a privateKey: it is served by the auth server that signs (HS256 keys are secret)')
  }
  const settings = typeof jwks === 'object' ? jwks : {}
  const url = text(settings.url, JWKS_DEFAULT_URL, 'jwks.url')
  if (!PATH.test(url)) fail("jwks.url must be a path such as '/.well-known/jwks.json'")
  return { serveJwks, jwksRoute: { url, maxAge: duration(settings.maxAge, '5m', 'jwks.maxAge', true) } }
}
