import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { InvalidTokenError, KeysUnavailableError, MissingTokenError, RevocationUnconfirmedError } from '../errors.js'
import type { AuthenticationOutcome } from '../telemetry/session-telemetry.js'
import type { SessionRevocations } from '../sessions/revocation.js'
import type { RefreshAuthUser } from '../types.js'
import { freezeNested, type TokenCache } from '../tokens/cache.js'
import type { RegisteredClaims, TokenCodec } from '../tokens/codec.js'
import type { DpopGate } from './dpop.js'

/**
 * What `request.user` holds after authentication: the verified access-token claims, in an object of
 * the request's own; nested claim values (arrays, objects) are frozen, as later requests share them.
 * Behind `app.authenticate`, `await request.authenticate()` gives it without the null check.
 */
export type AuthenticatedUser = Omit<RegisteredClaims, 'auth_time'> & AccessTokenTime & { [K in keyof RefreshAuthUser]: Frozen<RefreshAuthUser[K]> }

/** What only access tokens carry. */
interface AccessTokenTime {
  /** When the user signed in to start this session, seconds since the epoch (RFC 9068 §2.2.1); a refresh keeps it. */
  auth_time: number
}

/** Readonly all the way down: nested claim values are frozen at run time, so changing one would throw. */
export type Frozen<T> = T extends (...args: never[]) => unknown ? T : T extends object ? { readonly [K in keyof T]: Frozen<T[K]> } : T

/**
 * `app.authenticate`: a preHandler/onRequest hook, or awaitable as `await app.authenticate(request, reply)`.
 *
 * @example
 * app.get('/me', { preHandler: app.authenticate }, async (request) => {
 *   const user = await request.authenticate() // already verified by the hook: not verified again
 *   return { id: user.sub }
 * })
 */
export type AuthenticateHook = (request: FastifyRequest, reply: FastifyReply, done?: HookHandlerDoneFunction) => Promise<void> | undefined

export interface Authenticator {
  hook: AuthenticateHook
  requestAuthenticate: (this: FastifyRequest) => Promise<AuthenticatedUser>
}

/** Where a resource server gets its keys (its JWKS client): a refused token may verify after a refetch. */
export interface KeySource {
  /** False until a key set was loaded: tokens cannot be checked yet (503). */
  readonly ready: boolean
  /** A refetch to wait for before trying the token again, or null when none may help. */
  refetchFor (token: string): Promise<void> | null
}

// What verifyRequest answers for a valid token whose session this instance cannot confirm (fail closed).
const UNCONFIRMED: unique symbol = Symbol('unconfirmed')

/**
 * The hot path: runs on every protected request, so it is synchronous inside and allocates
 * nothing on a cache hit but `request.user`'s copy of the claims; a token found in `cache` costs a hash
 * of the header's last characters, a Map lookup and one string comparison (`cache` null verifies every
 * request). A verified token (cached or not)
 * whose session ended is refused: one more Map lookup in `revocations`, none while it is empty, and
 * one boolean for the fail-closed state. Only a refused token on a JWKS resource server (unknown `kid`)
 * may wait for a refetch of the keys.
 */
export function createAuthenticator (
  accessTokens: TokenCodec<RegisteredClaims>,
  realm: string,
  cache: TokenCache<AuthenticatedUser> | null,
  keySource?: KeySource,
  revocations: SessionRevocations | null = null,
  countAuthentication: ((outcome: AuthenticationOutcome) => void) | null = null,
  dpop: DpopGate | null = null
): Authenticator {
  // RFC 6750 §3: no `error` when no token came, `invalid_token` when one did; RFC 9449 §7.1: the DPoP
  // scheme is offered beside Bearer, or alone when it is required.
  const bearerChallenge = `Bearer realm="${realm}"`
  const missingChallenge = {
    'www-authenticate': dpop === null ? bearerChallenge : dpop.required ? dpop.challenge : `${bearerChallenge}, ${dpop.challenge}`
  }
  const invalidChallenge = { 'www-authenticate': `Bearer realm="${realm}", error="invalid_token"` }

  // The token of `Authorization: Bearer <token>`, or of `DPoP <token>` where DPoP is on.
  function presentedToken (header: string | undefined): string | null {
    return bearerToken(header) ?? (dpop === null ? null : dpopToken(header))
  }

  function verifyRequest (request: FastifyRequest): AuthenticatedUser | null | typeof UNCONFIRMED | Error {
    const header = request.headers.authorization
    if (header === undefined) return null
    const claims = cache === null ? verifyHeader(header) : verifyCachedHeader(header, cache)
    if (claims === null) return null
    // the proof is checked on every request, cached token or not; an unbound Bearer token skips it all
    const jkt = claims.cnf?.jkt
    if (jkt !== undefined || dpop !== null) {
      const refused = bindingRefusal(request, header, jkt)
      if (refused !== null) return refused
    }
    if (revocations !== null) {
      // the session ended (logout, revocation, reuse): its tokens die with it, cached ones included
      if (revocations.has(claims.sid)) return null
      if (revocations.failing && claims.iat < revocations.unconfirmedBefore) return UNCONFIRMED
    }
    // Each request gets its own object to write on; the claims (nested values frozen) may be shared through the cache.
    const user = { ...claims }
    request.user = user
    return user
  }

  /**
   * RFC 9449 §7.1, SECURITY 34: a bound token (`cnf.jkt`) comes only as `DPoP` with a valid proof from its
   * key; the DPoP scheme carries only bound tokens; with `dpop.required`, no token is accepted as Bearer.
   */
  function bindingRefusal (request: FastifyRequest, header: string, jkt: string | undefined): Error | null {
    const token = dpop === null ? null : dpopToken(header)
    if (jkt === undefined) {
      if (token === null && !(dpop as DpopGate).required) return null
      return (dpop as DpopGate).invalidToken()
    }
    // a bound token as Bearer: on an app without DPoP, refused as any invalid token
    if (dpop === null) return Object.assign(new InvalidTokenError(), { headers: invalidChallenge })
    if (token === null) return dpop.invalidToken()
    return dpop.resourceRefusal(request, token, jkt)
  }

  // Nested values frozen with or without the cache, so `request.user` behaves the same whatever `cacheSize` is.
  function verifyHeader (header: string): AuthenticatedUser | null {
    const token = presentedToken(header)
    const claims = token === null ? null : accessTokens.verify(token) as AuthenticatedUser | null
    return claims === null ? null : freezeNested(claims)
  }

  // Keyed by the whole header as it came: a hit needs no parsing, and no string is cut from it.
  function verifyCachedHeader (header: string, cache: TokenCache<AuthenticatedUser>): AuthenticatedUser | null {
    const now = Date.now()
    const cached = cache.get(header, now)
    if (cached !== undefined) return cached
    const claims = verifyHeader(header)
    // only a success is remembered: a refused token pays the full verification every time
    if (claims !== null) cache.set(header, claims, now)
    return claims
  }

  // The error carries its challenge: Fastify's error handler copies `error.headers` to the reply.
  function refusal (request: FastifyRequest): Error {
    const header = request.headers.authorization
    if (presentedToken(header) === null) return Object.assign(new MissingTokenError(), { headers: missingChallenge })
    if (dpop !== null && dpopToken(header) !== null) return dpop.invalidToken()
    return Object.assign(new InvalidTokenError(), { headers: invalidChallenge })
  }

  // The slow path of a resource server: wait for the keys, then try once more.
  async function verifyAfterRefetch (request: FastifyRequest, source: KeySource, refetch: Promise<void> | null): Promise<AuthenticatedUser> {
    await refetch
    if (!source.ready) throw new KeysUnavailableError()
    const user = verifyRequest(request)
    if (user === UNCONFIRMED) throw new RevocationUnconfirmedError()
    if (user === null) throw refusal(request)
    if (user instanceof Error) throw user
    return user
  }

  /** The user, the refusal, or (resource server, token refused) a promise for either. */
  function authenticateRequest (request: FastifyRequest): AuthenticatedUser | Error | Promise<AuthenticatedUser> {
    const user = verifyRequest(request)
    if (user === UNCONFIRMED) return new RevocationUnconfirmedError()
    if (user !== null) return user
    const token = keySource === undefined ? null : presentedToken(request.headers.authorization)
    if (keySource !== undefined && token !== null) {
      const refetch = keySource.refetchFor(token)
      if (refetch !== null || !keySource.ready) return verifyAfterRefetch(request, keySource, refetch)
    }
    return refusal(request)
  }

  // `telemetry.countAuthentications`: off the hot path unless asked for
  const authenticate = countAuthentication === null ? authenticateRequest : counted(authenticateRequest, countAuthentication)

  function hook (request: FastifyRequest, _reply: FastifyReply, done?: HookHandlerDoneFunction): Promise<void> | undefined {
    const result = authenticate(request)
    if (result instanceof Promise) {
      const settled = result.then(() => {})
      if (done === undefined) return settled
      settled.then(() => done(), done)
      return undefined
    }
    const error = result instanceof Error ? result : undefined
    if (done === undefined) return error === undefined ? Promise.resolve() : Promise.reject(error)
    done(error)
    return undefined
  }

  // Behind `app.authenticate` the user is already verified: hand it back, so handlers get a non-null
  // user without paying the verification twice.
  function requestAuthenticate (this: FastifyRequest): Promise<AuthenticatedUser> {
    if (this.user !== null) return Promise.resolve(this.user)
    const result = authenticate(this)
    return result instanceof Error ? Promise.reject(result) : Promise.resolve(result)
  }

  return { hook, requestAuthenticate }
}

type AuthenticateRequest = (request: FastifyRequest) => AuthenticatedUser | Error | Promise<AuthenticatedUser>

/** `authenticate` with one count per check, by outcome. */
function counted (authenticate: AuthenticateRequest, count: (outcome: AuthenticationOutcome) => void): AuthenticateRequest {
  return request => {
    const result = authenticate(request)
    if (!(result instanceof Promise)) {
      count(result instanceof Error ? 'refused' : 'success')
      return result
    }
    return result.then(user => {
      count('success')
      return user
    }, (err: unknown) => {
      count('refused')
      throw err
    })
  }
}

const SCHEME = /^bearer +/i
const DPOP_SCHEME = /^dpop +/i

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 7235 §2.1), or null. */
function bearerToken (header: string | undefined): string | null {
  if (header === undefined) return null
  // fast path for the usual spelling; the regex handles the rest
  if (header.startsWith('Bearer ') && header.charCodeAt(7) !== 32) return header.length > 7 ? header.slice(7) : null
  const match = SCHEME.exec(header)
  if (match === null || match[0].length === header.length) return null
  return header.slice(match[0].length)
}

/** The token of an `Authorization: DPoP <token>` header (scheme case-insensitive), or null. */
function dpopToken (header: string | undefined): string | null {
  if (header === undefined) return null
  const match = DPOP_SCHEME.exec(header)
  if (match === null || match[0].length === header.length) return null
  return header.slice(match[0].length)
}
