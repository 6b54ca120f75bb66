import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { InvalidTokenError, MissingTokenError } from './errors.js'
import type { RefreshAuthUser } from './index.js'
import type { RegisteredClaims, TokenCodec } from './tokens.js'

/** What `request.user` holds after authentication: the verified access-token claims. */
export type AuthenticatedUser = RegisteredClaims & RefreshAuthUser

/** `app.authenticate`: a preHandler/onRequest hook, or awaitable as `await app.authenticate(request, reply)`. */
export type AuthenticateHook = (request: FastifyRequest, reply: FastifyReply, done?: HookHandlerDoneFunction) => Promise<void> | undefined

export interface Authenticator {
  hook: AuthenticateHook
  requestAuthenticate: (this: FastifyRequest) => Promise<AuthenticatedUser>
}

/**
 * The hot path: runs on every protected request, so it is synchronous inside and allocates
 * nothing on success beyond what jsonwebtoken does.
 */
export function createAuthenticator (accessTokens: TokenCodec<RegisteredClaims>, realm: string): Authenticator {
  // RFC 6750 §3: no `error` when no token came, `invalid_token` when one did.
  const missingChallenge = { 'www-authenticate': `Bearer realm="${realm}"` }
  const invalidChallenge = { 'www-authenticate': `Bearer realm="${realm}", error="invalid_token"` }

  function verifyRequest (request: FastifyRequest): AuthenticatedUser | null {
    const token = bearerToken(request.headers.authorization)
    if (token === null) return null
    const claims = accessTokens.verify(token) as AuthenticatedUser | null
    if (claims !== null) request.user = claims
    return claims
  }

  // The error carries its challenge: Fastify's error handler copies `error.headers` to the reply.
  function refusal (request: FastifyRequest): Error {
    if (bearerToken(request.headers.authorization) === null) {
      return Object.assign(new MissingTokenError(), { headers: missingChallenge })
    }
    return Object.assign(new InvalidTokenError(), { headers: invalidChallenge })
  }

  function hook (request: FastifyRequest, _reply: FastifyReply, done?: HookHandlerDoneFunction): Promise<void> | undefined {
    const error = verifyRequest(request) === null ? refusal(request) : undefined
    if (done === undefined) return error === undefined ? Promise.resolve() : Promise.reject(error)
    done(error)
    return undefined
  }

  function requestAuthenticate (this: FastifyRequest): Promise<AuthenticatedUser> {
    const user = verifyRequest(this)
    return user === null ? Promise.reject(refusal(this)) : Promise.resolve(user)
  }

  return { hook, requestAuthenticate }
}

const SCHEME = /^bearer +/i

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 7235 §2.1), or null. */
function bearerToken (header: string | undefined): string | null {
  if (header === undefined) return null
  // fast path for the usual spelling; the regex handles the rest
  if (header.startsWith('Bearer ') && header.charCodeAt(7) !== 32) return header.length > 7 ? header.slice(7) : null
  const match = SCHEME.exec(header)
  if (match === null || match[0].length === header.length) return null
  return header.slice(match[0].length)
}
