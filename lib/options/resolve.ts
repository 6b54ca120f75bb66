import type { FastifyRequest } from 'fastify'
import type { AuditHook, LogoutEvent } from '../sessions/audit.js'
import { checkCookiePrefix } from '../http/cookie.js'
import type { EventStreamsOptions, EventStreamsSettings } from '../http/events.js'
import { isCustomizableCode, refuseOption as fail, type ErrorMessages } from '../errors.js'
import { parseDuration } from './duration.js'
import type { RevocationSettings } from '../sessions/revocation.js'
import { checkSecretLooksRandom } from './secret.js'
import type { LoginUser, RefreshAuthUser } from '../types.js'
import type { SessionStore } from '../stores/store.js'
import { ASYMMETRIC_ALGORITHMS, deriveKeys, type AccessTokenAlgorithm, type AccessTokenKey, type AsymmetricAlgorithm, type KeySet } from '../tokens/keys.js'
import { hs256AuthServer, jwksResourceServer, keyedServer, type RemoteJwks, type ServerRole } from './server-role.js'

/**
 * A lifetime in whole seconds: a number, or a string with a unit as the `ms` package reads it
 * (`'15m'`, `'7d'`, `'30 days'`, `'1.5h'`). A string without a unit is seconds too (`'600'`), unlike in
 * `ms` and jsonwebtoken, where it means milliseconds. Negative values are refused.
 *
 * @example
 * await app.register(fastifyRefreshAuth, {
 *   secret, verifyCredentials,
 *   accessToken: { expiresIn: '10m' },
 *   refreshToken: { expiresIn: 14 * 86400, absoluteExpiresIn: '90 days' }
 * })
 */
export type Duration = number | string

/**
 * A value of a literal union, or any string: options kept in a variable widen to `string`, and must
 * still compile. Editors still offer the literals; any other string is refused at registration.
 */
type OneOf<T extends string> = T | (string & Record<never, never>)

/**
 * The plugin's options, checked at registration (an `InvalidOptionError` names the one refused).
 * `secret` is required, except on a resource server that only verifies access tokens (`routes: false`
 * with public `accessToken.keys` or `accessToken.jwksUrl`).
 *
 * @example
 * const options: FastifyRefreshAuthOptions = {
 *   secret: process.env.AUTH_SECRET, // refused at registration when unset or shorter than 32 bytes
 *   verifyCredentials: async (request) => users.check(request.body),
 *   accessToken: { expiresIn: '10m' },
 *   claims: async (user) => ({ roles: user.roles })
 * }
 * await app.register(fastifyRefreshAuth, options)
 */
export interface FastifyRefreshAuthOptions {
  /**
   * At least 32 bytes. Never used as a key itself: one key per token type is derived from it (HKDF).
   * Required but on a resource server; `string | undefined` is accepted so that `process.env.X` can be
   * passed as it is, and a missing secret is refused at registration.
   */
  secret?: string | Buffer
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
    algorithm?: OneOf<AccessTokenAlgorithm>
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
    /**
     * Access tokens die with their session: once a session ends (logout, `revokeSession`,
     * `revokeUserSessions`, reuse detection, `loadUser` refusing), every instance sharing the store refuses
     * its access tokens, cached ones included, without a store round trip per request. Default on; `false`
     * turns it off (tokens then live until their `exp`); an object tunes what happens when the store's
     * revocation feed is down. See docs/sessions-end.md.
     */
    revocation?: boolean | RevocationOptions
  }
  /** Serve the public access-token keys as a JWK Set, at `GET /.well-known/jwks.json` unless `url` says otherwise. */
  jwks?: boolean | { url?: string, maxAge?: Duration }
  refreshToken?: {
    /** Idle limit, renewed by each rotation. Default `'7d'`. */
    expiresIn?: Duration
    /**
     * How long after a rotation the immediate parent of the live token may be presented again, and gets the
     * live token back rather than counting as reuse: a client retrying a refresh whose answer it lost, or two
     * tabs refreshing at once. Once the live token has been used, the parent is reuse. Default `'10s'`;
     * 0 is strict (any replay is reuse; of concurrent refreshes of one token exactly one succeeds).
     */
    reuseInterval?: Duration
    /** Absolute session limit from login, never extended. Default `'30d'`. */
    absoluteExpiresIn?: Duration
  }
  /** `false` registers no route; an object moves them. Default `{ prefix: '/auth' }`. */
  routes?: boolean | { prefix?: string }
  /**
   * The session-ended push, `GET {prefix}/events` (for `fastify-refresh-auth/client`): registered with the
   * other routes when the store has a revocation feed. `false` turns it off. Default `{ maxStreams: 10_000,
   * heartbeatInterval: 15 }`.
   */
  events?: boolean | EventStreamsOptions
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
    sameSite?: OneOf<'strict' | 'lax'>
  }
  /** The realm of `WWW-Authenticate` challenges. Default `'fastify-refresh-auth'`. */
  realm?: string
  /** Seconds of clock skew accepted when checking `exp`, `nbf` and `iat`. Default 0. */
  clockTolerance?: number
  /**
   * The user's id for `sub`: a non-empty string (at most 256 characters) or a finite number (made a
   * string). Default `user.id`. Anything else refuses the login with `FST_REFRESH_AUTH_INVALID_SUBJECT`.
   */
  subject?: (user: LoginUser) => string | number
  /**
   * Extra claims for access tokens (roles, say), computed at login and kept for the session's life.
   * Typed against `RefreshAuthUser`: what you declare there, it must return. Reserved names (`iss`,
   * `sub`, `aud`, `exp`, `iat`, `nbf`, `jti`, `typ`, `sid`, …) are dropped. The rest must be plain JSON
   * data (objects, arrays, strings, finite numbers, booleans, null; at most 8 levels deep and 4 KiB as
   * JSON) with no name of `Object.prototype` (`constructor`, `__proto__`…); anything else refuses the
   * login with `FST_REFRESH_AUTH_INVALID_CLAIMS` and logs why.
   */
  claims?: (user: LoginUser, request: FastifyRequest) => Promise<RefreshAuthUser & Record<string, unknown>> | (RefreshAuthUser & Record<string, unknown>)
  /**
   * Asked at each login answered with the refresh cookie ("Keep me signed in"): `false` makes the cookie a
   * browser-session cookie (no `Max-Age`, gone when the browser ends its session) for that session's
   * whole life, every rotation included; the session's idle and absolute limits still apply on the
   * server. Must answer a boolean. Default: always true (a persistent cookie). Not asked on the body transport.
   */
  rememberMe?: (user: LoginUser, request: FastifyRequest) => boolean | Promise<boolean>
  /**
   * The most live sessions one user may hold, a positive integer; `1` is "a single session per user".
   * Counted and enforced by the store in one atomic step with the login. Default: no limit.
   */
  maxSessionsPerUser?: number
  /**
   * A login of a user at `maxSessionsPerUser`: `'revoke-oldest'` (default) ends the user's least recently
   * used session (the oldest last refresh) as a logout would, its access tokens included; `'refuse'`
   * answers 403 `FST_REFRESH_AUTH_SESSION_LIMIT` and starts nothing.
   */
  onSessionLimit?: OneOf<SessionLimitPolicy>
  /**
   * Called at every refresh, after the refresh token checked out and before anything is issued, with the
   * token's `sub`: resolve to the user, whose `claims` are then computed again (a role change shows at the
   * next refresh), or to null/undefined to end the session (401, revoked everywhere, `onLogout` with
   * `reason: 'user-refused'`): a disabled or deleted account. If it throws, the refresh answers 503 and the
   * session stays as it was. Without it, a refresh copies the claims of the login.
   */
  loadUser?: (userId: string, request: FastifyRequest) => Promise<LoginUser | null | undefined> | LoginUser | null | undefined
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
  refreshTokenTransport?: OneOf<RefreshTokenTransport>
  /**
   * Messages to answer with instead of the plugin's own, by error code; the codes stay as they are.
   * Example: `{ FST_REFRESH_AUTH_INVALID_CREDENTIALS: 'Wrong e-mail or password' }`.
   */
  messages?: ErrorMessages
}

/**
 * `accessToken.revocation` as an object: what this instance does while it cannot confirm that it heard of
 * every session ended elsewhere (the store's revocation feed down longer than `feedTolerance`, or back after
 * losing revocations): by default it logs it once and keeps serving, each token's own expiry being the limit.
 *
 * @example
 * await app.register(fastifyRefreshAuth, {
 *   secret, verifyCredentials, store,
 *   accessToken: { revocation: { failClosed: true, feedTolerance: '5s' } }
 * })
 */
export interface RevocationOptions {
  /**
   * Answer protected requests with 503 `FST_REFRESH_AUTH_REVOCATION_UNCONFIRMED` instead of serving them
   * while revocations cannot be confirmed (after a loss, only tokens issued before it). Default false.
   */
  failClosed?: boolean
  /** How long the feed may be down before revocations count as unconfirmed (logged once). Default `'10s'`. */
  feedTolerance?: Duration
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

/**
 * What a login does for a user at `maxSessionsPerUser`: see `FastifyRefreshAuthOptions.onSessionLimit`.
 *
 * @example
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, maxSessionsPerUser: 1, onSessionLimit: 'refuse' })
 */
export type SessionLimitPolicy = 'revoke-oldest' | 'refuse'

/** Options after defaults and validation; lifetimes in seconds. */
export interface ResolvedOptions {
  /** What this app is (auth server with HS256 or asymmetric keys, or resource server), with its keys built. */
  role: ServerRole
  /** Whether the plugin registers the JWKS route itself. */
  serveJwks: boolean
  /** The JWKS route's path and its `Cache-Control` max-age in seconds. */
  jwksRoute: { url: string, maxAge: number }
  verifyCredentials: FastifyRefreshAuthOptions['verifyCredentials']
  store: SessionStore | undefined
  accessExpiresIn: number
  accessCacheSize: number
  /** `accessToken.revocation`, or null when turned off. */
  revocation: RevocationSettings | null
  loadUser: FastifyRefreshAuthOptions['loadUser']
  refreshExpiresIn: number
  reuseInterval: number
  absoluteExpiresIn: number
  registerRoutes: boolean
  prefix: string
  /** `events`, or null when turned off. */
  events: EventStreamsSettings | null
  issuer: string
  audience: string
  cookieName: string
  cookiePath: string
  cookieSecure: boolean
  cookieSameSite: 'strict' | 'lax'
  realm: string
  clockTolerance: number
  /** What names the user: checked at login, where it becomes `sub`. */
  subject: (user: LoginUser) => unknown
  claims: FastifyRefreshAuthOptions['claims']
  rememberMe: FastifyRefreshAuthOptions['rememberMe']
  /** Undefined: no limit. */
  maxSessionsPerUser: number | undefined
  onSessionLimit: SessionLimitPolicy
  trustedOrigins: ReadonlySet<string> | null
  onLogin: AuditHook | undefined
  onRefresh: AuditHook | undefined
  onLogout: AuditHook<LogoutEvent> | undefined
  onReuseDetected: AuditHook | undefined
  refreshTokenTransport: RefreshTokenTransport
  messages: ErrorMessages | null
}

// Seconds: a client retrying a refresh whose answer it lost, or two tabs refreshing together, get the live token.
const DEFAULT_REUSE_INTERVAL = 10

/** The refresh cookie's name unless `cookie.name` says otherwise. */
export const DEFAULT_COOKIE_NAME = '__Secure-refresh_token'

const MIN_SECRET_BYTES = 32
const SAME_SITE = ['strict', 'lax'] as const
const ACCESS_TOKEN_ALGORITHMS: readonly AccessTokenAlgorithm[] = ['HS256', ...ASYMMETRIC_ALGORITHMS]
const TRANSPORTS: readonly RefreshTokenTransport[] = ['cookie', 'body', 'both']
const STORE_METHODS = ['create', 'rotate', 'present', 'revoke', 'revokeUser', 'revokeOtherSessions', 'listUserSessions'] as const
const SESSION_LIMIT_POLICIES = ['revoke-oldest', 'refuse'] as const
const PATH = /^\/[\w\-./~]*$/
// RFC 6265 cookie-name token, and a quoted-string without quotes or backslashes for the realm
const COOKIE_NAME = /^[\w!#$%&'*+\-.^`|~]+$/
const REALM = /^[\x20\x21\x23-\x5b\x5d-\x7e]+$/

function duration (value: unknown, fallback: Duration, name: string, allowZero = false): number {
  const seconds = parseDuration(value ?? fallback)
  if (Number.isNaN(seconds) || (!allowZero && seconds < 1)) {
    fail(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number of seconds or a duration string such as '15m'`)
  }
  return seconds
}

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
  const role = resolveServerRole(options.secret, resolveAccessKeys(options.accessToken, routes !== false), routes !== false)
  const jwks = resolveJwksRoute(options.jwks, role.publicKeys)

  if (typeof routes !== 'boolean' && typeof routes !== 'object') fail('routes must be a boolean or an object')
  const prefix = text(typeof routes === 'object' ? routes.prefix : undefined, '/auth', 'routes.prefix')
  if (!PATH.test(prefix) || prefix.endsWith('/')) fail("routes.prefix must be a path such as '/auth', without a trailing slash")

  const verifyCredentials = optionalFunction(options.verifyCredentials, 'verifyCredentials')
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

  const clockTolerance = options.clockTolerance ?? 0
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
    ...jwks,
    verifyCredentials,
    store,
    accessExpiresIn,
    accessCacheSize,
    revocation,
    loadUser: optionalFunction(options.loadUser, 'loadUser'),
    refreshExpiresIn,
    reuseInterval,
    absoluteExpiresIn,
    registerRoutes: routes !== false,
    prefix,
    events: resolveEvents(options.events),
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
    rememberMe: optionalFunction(options.rememberMe, 'rememberMe'),
    maxSessionsPerUser,
    onSessionLimit,
    trustedOrigins: trustedOrigins === undefined ? null : new Set(trustedOrigins),
    onLogin: optionalFunction(options.onLogin, 'onLogin'),
    onRefresh: optionalFunction(options.onRefresh, 'onRefresh'),
    onLogout: optionalFunction(options.onLogout, 'onLogout'),
    onReuseDetected: optionalFunction(options.onReuseDetected, 'onReuseDetected'),
    refreshTokenTransport,
    messages: resolveMessages(options.messages)
  }
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

const JWKS_DEFAULT_URL = '/.well-known/jwks.json'

/** Where access-token keys come from: the secret (HS256), `accessToken.keys`, or a JWKS URL. */
type AccessKeySource =
  | { source: 'secret' }
  | { source: 'keys', algorithm: AsymmetricAlgorithm, keys: AccessTokenKey[] }
  | { source: 'jwks', remoteJwks: RemoteJwks }

/**
 * Decides once what this app is. A secret, when given, is checked even where it signs nothing; without
 * one the app can only verify access tokens, so it registers no route.
 */
function resolveServerRole (secret: unknown, access: AccessKeySource, routes: boolean): ServerRole {
  if (access.source === 'secret') {
    if (secret === undefined) fail('secret is required: it signs the tokens (a resource server sets routes: false with accessToken.keys or accessToken.jwksUrl)')
    return hs256AuthServer(deriveKeys(checkSecret(secret)))
  }
  if (secret === undefined && routes) {
    fail('secret is required while the routes are registered (refresh tokens are signed with it); a resource server sets routes: false')
  }
  const secretKeys = secret === undefined ? null : deriveKeys(checkSecret(secret))
  return access.source === 'keys' ? keyedServer(access.algorithm, access.keys, secretKeys) : jwksResourceServer(access.remoteJwks)
}

function checkSecret (secret: unknown): string | Buffer {
  if (typeof secret !== 'string' && !Buffer.isBuffer(secret)) fail('secret must be a string or a Buffer')
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) fail(`secret must be at least ${MIN_SECRET_BYTES} bytes long`)
  checkSecretLooksRandom(secret)
  return secret
}

function resolveAccessKeys (accessToken: FastifyRefreshAuthOptions['accessToken'], routes: boolean): AccessKeySource {
  const { algorithm = 'HS256', keys, jwksUrl } = accessToken ?? {}
  if (algorithm === 'EdDSA') fail('accessToken.algorithm EdDSA is not supported (jsonwebtoken 9 has no EdDSA)')
  if (!isOneOf(algorithm, ACCESS_TOKEN_ALGORITHMS)) fail('accessToken.algorithm must be one of HS256, RS256, PS256, ES256')
  // checked whether or not a JWKS URL is set: a wrong value is refused, never silently unused
  const timeout = duration(accessToken?.jwksTimeout, '5s', 'accessToken.jwksTimeout')
  const cooldown = jwksCooldown(accessToken?.jwksCooldown)
  const refreshInterval = duration(accessToken?.jwksRefreshInterval, '10m', 'accessToken.jwksRefreshInterval')
  if (keys !== undefined && jwksUrl !== undefined) fail('accessToken.keys and accessToken.jwksUrl exclude each other')
  if (keys !== undefined) {
    if (algorithm === 'HS256') fail('accessToken.keys needs an asymmetric accessToken.algorithm (RS256, PS256 or ES256); HS256 keys come from secret')
    if (!Array.isArray(keys) || keys.length === 0) fail('accessToken.keys must be a non-empty array')
    if (routes && !hasPrivateKey(keys)) {
      fail('accessToken.keys has no privateKey to sign with; a resource server that only verifies sets routes: false')
    }
    return { source: 'keys', algorithm, keys }
  }
  if (jwksUrl !== undefined) {
    if (!isHttpUrl(jwksUrl)) fail('accessToken.jwksUrl must be an http(s) URL')
    if (routes) fail('accessToken.jwksUrl makes a resource server, which only verifies: set routes: false')
    const only = algorithm === 'HS256' ? undefined : algorithm
    return { source: 'jwks', remoteJwks: { url: jwksUrl, algorithm: only, timeout, cooldown, refreshInterval } }
  }
  if (algorithm !== 'HS256') fail(`accessToken.algorithm ${algorithm} needs accessToken.keys (or accessToken.jwksUrl on a resource server)`)
  return { source: 'secret' }
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

function resolveJwksRoute (jwks: FastifyRefreshAuthOptions['jwks'] = false, publicKeys: KeySet | null) {
  if (typeof jwks !== 'boolean' && (jwks === null || typeof jwks !== 'object')) fail('jwks must be a boolean or an object')
  const serveJwks = jwks !== false
  if (serveJwks && publicKeys === null) {
    fail('jwks needs asymmetric accessToken.keys with a privateKey: it is served by the auth server that signs (HS256 keys are secret)')
  }
  const settings = typeof jwks === 'object' ? jwks : {}
  const url = text(settings.url, JWKS_DEFAULT_URL, 'jwks.url')
  if (!PATH.test(url)) fail("jwks.url must be a path such as '/.well-known/jwks.json'")
  return { serveJwks, jwksRoute: { url, maxAge: duration(settings.maxAge, '5m', 'jwks.maxAge', true) } }
}
