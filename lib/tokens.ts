import jwt from 'jsonwebtoken'
import type { TokenKey } from './keys.js'

/** Claims of every token this plugin issues. */
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
  iss: string
  aud: string
}

/** Names a host's own claims can never take: they carry the token's meaning. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'typ', 'sid', 'ext', 'cnf'
])

export interface TokenCodecOptions {
  key: TokenKey
  /** The JOSE `typ` header that tells this token type apart (RFC 8725 §3.11). */
  type: string
  issuer: string
  audience: string
  /** Seconds of clock skew accepted on `exp`, `nbf` and `iat`. */
  clockTolerance: number
}

// Tokens are short: anything longer is refused before it is parsed (RFC 8725 §3 resource limits).
const MAX_TOKEN_LENGTH = 8192
const COMPACT_JWS = /^[\w-]+\.[\w-]+\.[\w-]+$/

/** Signs and verifies one type of token with one key and one algorithm. */
export class TokenCodec<Claims extends RegisteredClaims> {
  readonly #key: TokenKey
  readonly #type: string
  readonly #clockTolerance: number
  readonly #signOptions: jwt.SignOptions
  readonly #verifyOptions: jwt.VerifyOptions & { complete: true }
  readonly #issuer: string
  readonly #audience: string

  constructor (options: TokenCodecOptions) {
    this.#key = options.key
    this.#type = options.type
    this.#issuer = options.issuer
    this.#audience = options.audience
    this.#clockTolerance = options.clockTolerance
    // Built once: the algorithm comes from the key, never from a token or a caller.
    this.#signOptions = {
      algorithm: options.key.algorithm,
      header: { alg: options.key.algorithm, typ: options.type }
    }
    this.#verifyOptions = {
      algorithms: [options.key.algorithm],
      issuer: options.issuer,
      audience: options.audience,
      clockTolerance: options.clockTolerance,
      complete: true
    }
  }

  /**
   * Signs `claims` (the host's extras, already free of reserved names) with the registered claims,
   * which are written last so nothing can override them.
   */
  sign (registered: Omit<RegisteredClaims, 'iss' | 'aud'>, extra?: Record<string, unknown>): string {
    const payload = {
      ...extra,
      iss: this.#issuer,
      aud: this.#audience,
      sub: registered.sub,
      sid: registered.sid,
      jti: registered.jti,
      iat: registered.iat,
      exp: registered.exp
    }
    return jwt.sign(payload, this.#key.key, this.#signOptions)
  }

  /** Returns the verified claims, or null for any token that is not a valid one of this type. */
  verify (token: string): Claims | null {
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) return null
    let decoded: jwt.Jwt
    try {
      decoded = jwt.verify(token, this.#key.key, this.#verifyOptions)
    } catch {
      return null
    }
    if (decoded.header.typ !== this.#type) return null
    const claims = decoded.payload as Claims
    // jsonwebtoken accepts tokens without exp, jti or sub: this plugin never issues such tokens.
    if (typeof claims.exp !== 'number' || typeof claims.iat !== 'number' ||
        !isId(claims.sub) || !isId(claims.jti) || !isId(claims.sid)) return null
    if (claims.iat > Date.now() / 1000 + this.#clockTolerance) return null
    return claims
  }
}

function isId (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}
