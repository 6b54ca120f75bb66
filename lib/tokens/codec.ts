import jwt from 'jsonwebtoken'
import { InvalidOptionError } from '../errors.js'
import { Hs256 } from './hs256.js'
import type { AccessTokenAlgorithm, KeySet, SigningKey } from './keys.js'

/** Claims of every token this plugin issues: `request.user` has them, with your `RefreshAuthUser` claims. */
export interface RegisteredClaims {
  /** The user's id. */
  sub: string
  /** The session (refresh-token family) the token belongs to. */
  sid: string
  /** The token's own id. */
  jti: string
  /** Issued at, seconds since the epoch. */
  iat: number
  /** Expires at, seconds since the epoch. */
  exp: number
  /**
   * Access tokens: when the user signed in to start this session, seconds since the epoch (RFC 9068
   * §2.2.1, OpenID Connect); a refresh keeps it. `requireFreshAuth` reads it. Absent in refresh tokens,
   * and in access tokens from other issuers or older versions of this plugin.
   */
  auth_time?: number
  /**
   * The key the token is bound to (RFC 9449 §6.1): its RFC 7638 SHA-256 thumbprint. Present only in tokens
   * of a DPoP-bound session, which are used only with a proof from that key.
   */
  cnf?: { jkt: string }
  iss: string
  aud: string
}

/** Names a host's own claims can never take: they carry the token's meaning. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'typ', 'sid', 'ext', 'cnf', 'auth_time'
])

export interface TokenCodecOptions {
  /** The keys that verify this token type, and the one that signs it (none on a resource server). */
  keys: KeySet
  /** The JOSE `typ` header that tells this token type apart (RFC 8725 §3.11). */
  type: string
  issuer: string
  audience: string
  /** Seconds of clock skew accepted on `exp`, `nbf` and `iat`. */
  clockTolerance: number
}

// Tokens are short: anything longer is refused before it is parsed (RFC 8725 §3 resource limits).
export const MAX_TOKEN_LENGTH = 8192
const COMPACT_JWS = /^[\w-]+\.[\w-]+\.[\w-]+$/

type VerifyOptions = jwt.VerifyOptions & { complete: true }

/** Signs and verifies one type of token; each key has its one algorithm. */
export class TokenCodec<Claims extends RegisteredClaims> {
  readonly #keys: KeySet
  readonly #signing: { key: SigningKey['key'], options: jwt.SignOptions } | null
  // Secret-derived HS256 (no `kid`): one-pass sign and verify of our own tokens, no jsonwebtoken.
  readonly #hs256: Hs256 | null
  readonly #type: string
  readonly #clockTolerance: number
  readonly #verifyOptions: Record<AccessTokenAlgorithm, VerifyOptions>
  readonly #issuer: string
  readonly #audience: string
  // `"iss":…,"aud":…`, the same in every token of this type
  readonly #issuerAndAudience: string

  constructor (options: TokenCodecOptions) {
    this.#keys = options.keys
    this.#type = options.type
    this.#issuer = options.issuer
    this.#audience = options.audience
    this.#issuerAndAudience = `"iss":${JSON.stringify(options.issuer)},"aud":${JSON.stringify(options.audience)}`
    this.#clockTolerance = options.clockTolerance
    // Built once: the algorithm comes from the key, never from a token or a caller.
    const signing = options.keys.signingKey
    this.#hs256 = signing?.algorithm === 'HS256' ? new Hs256(signing.key, options.type) : null
    this.#signing = signing === null
      ? null
      : {
          key: signing.key,
          options: {
            algorithm: signing.algorithm,
            header: signing.kid === undefined
              ? { alg: signing.algorithm, typ: options.type }
              : { alg: signing.algorithm, typ: options.type, kid: signing.kid }
          }
        }
    const verifyOptions = (algorithm: AccessTokenAlgorithm): VerifyOptions => ({
      algorithms: [algorithm],
      issuer: options.issuer,
      audience: options.audience,
      clockTolerance: options.clockTolerance,
      complete: true
    })
    this.#verifyOptions = {
      HS256: verifyOptions('HS256'),
      RS256: verifyOptions('RS256'),
      PS256: verifyOptions('PS256'),
      ES256: verifyOptions('ES256')
    }
  }

  /**
   * Signs `claims` (the host's extras, already free of reserved names) with the registered claims,
   * which are written last so nothing can override them.
   */
  sign (registered: Omit<RegisteredClaims, 'iss' | 'aud'>, extra?: Record<string, unknown>): string {
    if (this.#hs256 !== null) return this.#hs256.signJson(this.#payloadJson(registered, extra))
    const payload: Record<string, unknown> = {
      ...extra,
      iss: this.#issuer,
      aud: this.#audience,
      sub: registered.sub,
      sid: registered.sid,
      jti: registered.jti,
      iat: registered.iat,
      exp: registered.exp
    }
    if (registered.auth_time !== undefined) payload.auth_time = registered.auth_time
    if (registered.cnf !== undefined) payload.cnf = { jkt: registered.cnf.jkt }
    if (this.#signing === null) throw new InvalidOptionError('no key to sign with: this app only verifies tokens')
    return jwt.sign(payload, this.#signing.key, this.#signing.options)
  }

  /**
   * The payload's JSON, written as JSON.stringify writes `{ ...extra, iss, aud, sub, sid, jti, iat, exp, auth_time }`
   * (extras never take a registered name) but without building and spreading that object: a third of the cost of a
   * signature (measured in-process against the object, 100,000 signatures; the refresh referee is
   * ../shared/perf/refresh-bench.cjs).
   */
  #payloadJson (registered: Omit<RegisteredClaims, 'iss' | 'aud'>, extra: Record<string, unknown> | undefined): string {
    const extras = extra === undefined ? '{}' : JSON.stringify(extra)
    const open = extras === '{}' ? '{' : `${extras.slice(0, -1)},`
    const authTime = registered.auth_time === undefined ? '' : `,"auth_time":${registered.auth_time}`
    const cnf = registered.cnf === undefined ? '' : `,"cnf":{"jkt":${JSON.stringify(registered.cnf.jkt)}}`
    return `${open}${this.#issuerAndAudience},"sub":${JSON.stringify(registered.sub)},"sid":${JSON.stringify(registered.sid)},` +
      `"jti":${JSON.stringify(registered.jti)},"iat":${registered.iat},"exp":${registered.exp}${authTime}${cnf}}`
  }

  /** Returns the verified claims, or null for any token that is not a valid one of this type. */
  verify (token: string): Claims | null {
    if (token.length > MAX_TOKEN_LENGTH) return null
    return this.#checkClaims(this.#hs256 !== null ? this.#hs256.verify(token) : this.#verifySigned(token))
  }

  /** Asymmetric keys (or a JWKS): jsonwebtoken with the key's one algorithm, then the `typ` header. */
  #verifySigned (token: string): unknown {
    if (!COMPACT_JWS.test(token)) return null
    // `kid` picks one of the configured keys, whose own algorithm is the only one accepted
    const key = this.#keys.select(token)
    if (key === undefined) return null
    let decoded: jwt.Jwt
    try {
      decoded = jwt.verify(token, key.key, this.#verifyOptions[key.algorithm])
    } catch {
      return null
    }
    return decoded.header.typ === this.#type ? decoded.payload : null
  }

  /**
   * The claims every token of ours carries, checked whatever verified the signature: issuer, audience,
   * `exp` (required: jsonwebtoken accepts tokens without one), `nbf`, `iat` not in the future, and
   * non-empty `sub`, `jti` and `sid`.
   */
  #checkClaims (payload: unknown): Claims | null {
    if (typeof payload !== 'object' || payload === null) return null
    const claims = payload as Claims & { nbf?: unknown }
    if (claims.iss !== this.#issuer || claims.aud !== this.#audience) return null
    if (typeof claims.exp !== 'number' || typeof claims.iat !== 'number' ||
        !isId(claims.sub) || !isId(claims.jti) || !isId(claims.sid)) return null
    // optional, but never of another type than `request.user` says
    if (claims.auth_time !== undefined && typeof claims.auth_time !== 'number') return null
    // a confirmation we cannot read binds to no key we could check: refused, never taken as unbound
    if (claims.cnf !== undefined && (typeof claims.cnf !== 'object' || claims.cnf === null || !isId(claims.cnf.jkt))) return null
    const now = Math.floor(Date.now() / 1000)
    const tolerance = this.#clockTolerance
    if (now >= claims.exp + tolerance || claims.iat > now + tolerance) return null
    if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || now < claims.nbf - tolerance)) return null
    return claims
  }
}

function isId (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}
