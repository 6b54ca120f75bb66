import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto'

/** A key and the one algorithm it may be used with. */
export interface TokenKey {
  algorithm: 'HS256'
  key: KeyObject
}

export interface TokenKeys {
  access: TokenKey
  refresh: TokenKey
}

// Changing these invalidates every token issued before: they are part of the token format.
const SALT = 'fastify-refresh-auth'
const ACCESS_INFO = 'access-token HS256 v1'
const REFRESH_INFO = 'refresh-token HS256 v1'

/**
 * Derives one key per token type from the host's secret (HKDF-SHA256, RFC 5869), so an access token
 * can never verify as a refresh token or the reverse, and the secret itself never signs anything.
 * Keys are KeyObjects made once: jsonwebtoken would otherwise re-parse a string key at every call.
 */
export function deriveKeys (secret: string | Buffer): TokenKeys {
  return {
    access: { algorithm: 'HS256', key: deriveKey(secret, ACCESS_INFO) },
    refresh: { algorithm: 'HS256', key: deriveKey(secret, REFRESH_INFO) }
  }
}

function deriveKey (secret: string | Buffer, info: string): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, SALT, info, 32)))
}
