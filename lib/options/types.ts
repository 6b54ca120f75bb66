import type { FastifyRequest } from 'fastify'
import type { AuditHook, LogoutEvent } from '../audit.js'
import type { ErrorMessages } from '../errors.js'
import type { SessionStore } from '../stores/store.js'
import type { AccessTokenAlgorithm, AccessTokenKey, AsymmetricAlgorithm, KeySet } from '../tokens/keys.js'
import type { LoginUser, RefreshAuthUser } from '../types.js'
import type { DpopNonces } from '../tokens/dpop-nonce.js'
import type { DpopAlgorithm } from '../tokens/dpop-proof.js'

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
export type Duration = number | DurationString

/** The units `ms` reads, in any case (`'7d'`, `'7 Days'`, `'7 DAYS'`): a misspelt unit does not compile. */
export type DurationUnit =
  | 'Years' | 'Year' | 'Yrs' | 'Yr' | 'Y' | 'Weeks' | 'Week' | 'W' | 'Days' | 'Day' | 'D'
  | 'Hours' | 'Hour' | 'Hrs' | 'Hr' | 'H' | 'Minutes' | 'Minute' | 'Mins' | 'Min' | 'M'
  | 'Seconds' | 'Second' | 'Secs' | 'Sec' | 's' | 'Milliseconds' | 'Millisecond' | 'Msecs' | 'Msec' | 'Ms'

/** A duration string: seconds without a unit (`'600'`), or a count and a unit, with or without a space. */
export type DurationString =
  | `${number}`
  | `${number}${DurationUnit | Uppercase<DurationUnit> | Lowercase<DurationUnit>}`
  | `${number} ${DurationUnit | Uppercase<DurationUnit> | Lowercase<DurationUnit>}`

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
 *
 * `LoginBody` types the body `verifyCredentials` and `rememberMe` read: inferred from the type you give
 * `verifyCredentials`' request (`FastifyRequest<{ Body: LoginBody }>`), checked at run time by the JSON schema
 * of `routes.loginBody`. Default `unknown`: narrow it yourself.
 */
export interface FastifyRefreshAuthOptions<LoginBody = unknown> {
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
  verifyCredentials?: (request: FastifyRequest<{ Body: LoginBody }>) => Promise<LoginUser | null | undefined> | LoginUser | null | undefined
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
  /**
   * `false` registers no route; an object moves them (`prefix`) and adds the devices routes (`sessions: true`:
   * `GET {prefix}/sessions` lists the signed-in user's sessions, `DELETE {prefix}/sessions/:sessionId` ends one,
   * both authenticated by the access token). Default `{ prefix: '/auth', sessions: false }`.
   */
  routes?: boolean | {
    prefix?: string
    sessions?: boolean
    /**
     * The JSON schema of the login body: a body it refuses is answered 400 `FST_ERR_VALIDATION` before
     * `verifyCredentials` runs, so the `LoginBody` you type the request with holds at run time. Default: any JSON object.
     */
    loginBody?: object
  }
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
  /**
   * How long `verifyCredentials`, `loadUser`, `subject`, `claims` and `rememberMe` may take: one that has not
   * settled by then answers 503 `FST_REFRESH_AUTH_CALLBACK_TIMEOUT`, with nothing issued or rotated, and what
   * it settles to later is ignored. Default `'10s'`.
   */
  callbackTimeout?: Duration
  /**
   * Seconds of clock skew between instances accepted when checking `exp`, `nbf` and `iat` (RFC 7519 §4.1.4
   * leeway): a token is valid this much past its `exp`, and its `iat` may be this far ahead. Default 5.
   */
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
  rememberMe?: (user: LoginUser, request: FastifyRequest<{ Body: LoginBody }>) => boolean | Promise<boolean>
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
  /**
   * OpenTelemetry metrics and spans, through the host's providers, when `@opentelemetry/api` is installed
   * (see docs/observability.md). `false` turns them off; `{ countAuthentications: true }` adds the
   * `refresh_auth.authentications` counter, one count per `authenticate` (the hot path). Default `true`.
   */
  telemetry?: boolean | { countAuthentications?: boolean }
  /**
   * DPoP, sender-constrained tokens (RFC 9449; see docs/dpop.md). `true`, or an object: a login or refresh
   * carrying a valid `DPoP` proof binds its session to the proof's key (`cnf.jkt` in the access tokens,
   * `token_type: "DPoP"`), and every later use of its tokens needs a proof from that key. Default off.
   */
  dpop?: boolean | DpopOptions
}

/**
 * The `dpop` option as an object.
 *
 * @example
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, dpop: { required: true, nonce: true } })
 */
export interface DpopOptions {
  /**
   * Refuse every login and refresh without a proof (400 `invalid_dpop_proof`) and every Bearer token. Default
   * false: DPoP when the client sends a proof, Bearer otherwise.
   */
  required?: boolean
  /** Server-provided nonces (RFC 9449 §8, §9), the same on every instance sharing the secret. Default false. */
  nonce?: boolean
  /** How old a proof's `iat` may be (and, by the clock tolerance, how far in the future). Default `'60s'`. */
  proofMaxAge?: Duration
  /** Proof algorithms accepted, of `ES256`, `RS256`, `PS256`, `EdDSA` (Ed25519). Default all four. */
  algorithms?: string[]
  /**
   * The public origin (`https://api.example.com`) the proofs' `htu` names, for an app behind a proxy that
   * changes it. Default: the request's, from its Host and protocol (trustProxy-aware).
   */
  origin?: string
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

/** The token claims both token types are signed and checked with. */
export interface TokenSettings {
  issuer: string
  audience: string
  /** Seconds of skew accepted on `exp`, `nbf` and `iat`. */
  clockTolerance: number
  /** Verified access tokens remembered; 0: none. */
  accessCacheSize: number
}

/** What a session's rules need: lifetimes in seconds, and the per-user limit. */
export interface SessionSettings {
  accessExpiresIn: number
  refreshExpiresIn: number
  reuseInterval: number
  absoluteExpiresIn: number
  /** Undefined: no limit. */
  maxSessionsPerUser: number | undefined
  onSessionLimit: SessionLimitPolicy
}

/** The host's callbacks, each checked to be a function when given. */
export interface HostCallbacks {
  verifyCredentials: ((request: FastifyRequest) => ReturnType<NonNullable<FastifyRefreshAuthOptions['verifyCredentials']>>) | undefined
  loadUser: FastifyRefreshAuthOptions['loadUser']
  /** What names the user: checked at login, where it becomes `sub`. */
  subject: (user: LoginUser) => unknown
  claims: FastifyRefreshAuthOptions['claims']
  rememberMe: ((user: LoginUser, request: FastifyRequest) => boolean | Promise<boolean>) | undefined
  onLogin: AuditHook | undefined
  onRefresh: AuditHook | undefined
  onLogout: AuditHook<LogoutEvent> | undefined
  onReuseDetected: AuditHook | undefined
  /** `callbackTimeout`: seconds an awaited callback may take. */
  timeout: number
}

/** The refresh cookie's attributes, every one the plugin's own. */
export interface CookieSettings {
  name: string
  path: string
  secure: boolean
  sameSite: 'strict' | 'lax'
}

/**
 * The `events` option: the session-ended push, `GET {prefix}/events`.
 *
 * @example
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store, events: { maxStreams: 20_000 } })
 */
export interface EventStreamsOptions {
  /** Open streams this instance holds at most; one more answers 503 `EVENT_STREAMS_FULL`. Default 10,000. */
  maxStreams?: number
  /** Seconds between heartbeats (an SSE comment), so proxies keep the connection. Default 15. */
  heartbeatInterval?: Duration
}

/** `events` once resolved. */
export interface EventStreamsSettings {
  maxStreams: number
  /** Milliseconds. */
  heartbeatMs: number
}

/** The auth routes. */
export interface RouteSettings {
  /** Whether the plugin registers them itself (`routes` not `false`). */
  register: boolean
  prefix: string
  /** Whether the devices routes, `GET {prefix}/sessions` and `DELETE {prefix}/sessions/:sessionId`, are registered too. */
  sessions: boolean
  /** The login body's JSON schema, or null: any JSON object. */
  loginBody: object | null
  /** `events`, or null when turned off. */
  events: EventStreamsSettings | null
  transport: RefreshTokenTransport
  /** Null: any origin (Fetch Metadata still refuses cross-site requests). */
  trustedOrigins: ReadonlySet<string> | null
}

/** The JWKS route. */
export interface JwksRouteSettings {
  /** Whether the plugin registers it itself. */
  serve: boolean
  url: string
  /** Its `Cache-Control` max-age, seconds. */
  maxAge: number
}

/** `accessToken.revocation` once resolved: null when turned off. Seconds. */
export interface RevocationSettings {
  /** Answer 503 to tokens whose session cannot be confirmed live, rather than serve them. */
  failClosed: boolean
  /** How long the feed may be down before revocations count as unconfirmed. */
  feedTolerance: number
}

/** Options after defaults and validation, in groups: each part of the plugin receives only its own. */
export interface ResolvedOptions {
  /** What this app is (auth server with HS256 or asymmetric keys, or resource server), with its keys built. */
  role: ServerRole
  tokens: TokenSettings
  sessions: SessionSettings
  hooks: HostCallbacks
  cookie: CookieSettings
  routes: RouteSettings
  jwks: JwksRouteSettings
  store: SessionStore | undefined
  /** Null when turned off. */
  revocation: RevocationSettings | null
  /** The realm of `WWW-Authenticate` challenges. */
  realm: string
  messages: ErrorMessages | null
  /** Null when `dpop` is off. */
  dpop: DpopSettings | null
}

/** `dpop` once resolved. */
export interface DpopSettings {
  required: boolean
  algorithms: readonly DpopAlgorithm[]
  /** Seconds. */
  proofMaxAge: number
  /** Null: the request's own origin. */
  origin: string | null
  /** Null when `dpop.nonce` is off. */
  nonces: DpopNonces | null
}

// What this app is: decided once from the options (`resolveServerRole`), with its keys already built.

/** An auth server whose access tokens are HS256 with the key derived from its secret. */
export interface Hs256AuthServer {
  kind: 'hs256-auth-server'
  accessKeys: KeySet
  refreshKeys: KeySet
  /** HS256 keys are secret: nothing to publish. */
  publicKeys: null
}

/** An auth server that signs access tokens with the first of its asymmetric keys that has a private key. */
export interface AsymmetricAuthServer {
  kind: 'asymmetric-auth-server'
  accessKeys: KeySet
  refreshKeys: KeySet
  /** Its access-token keys, which it may publish as a JWK Set. */
  publicKeys: KeySet
}

/** An app that only verifies access tokens: it has no sessions, so its route factories refuse. */
export interface ResourceServer {
  kind: 'resource-server'
  /** Static public keys, or the set a JWKS client fills (empty until the first fetch). */
  accessKeys: KeySet
  /** Its own keys when it holds a private key (but no secret for refresh tokens): they may still be published. */
  publicKeys: KeySet | null
  /** Where its keys come from when they are fetched. */
  remoteJwks: RemoteJwks | null
}

export type ServerRole = Hs256AuthServer | AsymmetricAuthServer | ResourceServer

/** A resource server's JWK Set URL and how it is fetched (seconds). */
export interface RemoteJwks {
  url: string
  /** When set, keys of any other algorithm are skipped. */
  algorithm: AsymmetricAlgorithm | undefined
  timeout: number
  cooldown: number
  refreshInterval: number
}
