import type { RouteOptions } from 'fastify'
import { MAX_TOKEN_LENGTH } from '../tokens/codec.js'

// The JSON schemas of the auth routes (validation and OpenAPI), built once per plugin.

/** A route schema with the OpenAPI keys that @fastify/swagger reads. */
export type RouteSchema = NonNullable<RouteOptions['schema']> & {
  response?: unknown
  tags?: readonly string[]
  summary?: string
  description?: string
  security?: ReadonlyArray<Record<string, readonly string[]>>
}

/** RFC 6749 §5.1 access token response; `refresh_token` only for clients on the body transport. */
function tokenResponseSchema (withRefreshToken: boolean): object {
  return {
    type: 'object',
    required: ['access_token', 'token_type', 'expires_in'],
    properties: {
      access_token: { type: 'string' },
      token_type: { type: 'string', enum: ['Bearer', 'DPoP'] },
      expires_in: { type: 'integer', description: 'Seconds the access token lives' },
      ...(withRefreshToken ? { refresh_token: { type: 'string', description: 'Only for clients on the body transport' } } : {})
    },
    additionalProperties: false
  }
}

/**
 * The body of every error this plugin answers with (Fastify's error shape). Open to more fields:
 * a host's error handler or another plugin (a rate limiter) may add its own, and they must not be dropped.
 */
export const errorResponseSchema = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' }
  },
  additionalProperties: true
} as const

const refreshTokenProperties = { refresh_token: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH } } as const

/**
 * The refresh body of non-browser clients. Keyed by content type so that Fastify validates JSON bodies
 * only: a browser's cookie request has no body at all.
 */
const refreshTokenBodySchema = {
  content: { 'application/json': { schema: { type: 'object', properties: refreshTokenProperties } } }
} as const

/**
 * The logout body: what to sign out, and the refresh token of non-browser clients. Optional, as for
 * refresh: a browser's plain logout has no body.
 */
function logoutBodySchema (withRefreshToken: boolean): object {
  return {
    content: {
      'application/json': {
        schema: {
          type: 'object',
          properties: {
            // untyped: anything but `true` means no, as it always has, rather than a 400
            all: { description: '`true`: sign out every session of the user' },
            others: { description: '`true`: sign out every other session of the user; this one stays' },
            ...(withRefreshToken ? refreshTokenProperties : {})
          }
        }
      }
    }
  }
}

/**
 * The host's login body is its own: by default any JSON object (replace it through the overrides).
 * Keyed by content type: a login may carry no body at all (credentials in a header, say).
 */
const loginBodySchema = {
  content: {
    'application/json': { schema: { type: 'object', description: 'The credentials verifyCredentials reads' } }
  }
} as const

/** The schemas of the login, refresh and logout routes. */
export interface AuthRouteSchemas {
  login: RouteSchema
  refresh: RouteSchema
  logout: RouteSchema
}

/**
 * The three routes' schemas. `bodyTokens`: refresh tokens may travel in JSON bodies; `refreshSecurity`: the
 * OpenAPI requirement of the routes a refresh token authenticates (the cookie, the body token, or either);
 * `loginBody`: the host's schema of the login body (`routes.loginBody`), or null for any JSON object; `dpop`:
 * the routes take a `DPoP` proof header.
 */
export function authRouteSchemas (
  bodyTokens: boolean, refreshSecurity: RouteSchema['security'], loginBody: object | null = null, dpop = false
): AuthRouteSchemas {
  const tokenResponses = { 200: tokenResponseSchema(bodyTokens), '4xx': errorResponseSchema, '5xx': errorResponseSchema }
  const schemas = {
    login: {
      tags: ['auth'],
      summary: 'Sign in',
      description: 'Checks the credentials; answers an access token and starts a refresh-token session.',
      security: [],
      body: loginBody === null ? loginBodySchema : { content: { 'application/json': { schema: loginBody } } },
      response: tokenResponses
    },
    refresh: {
      tags: ['auth'],
      summary: 'Refresh the access token',
      description: 'Trades the refresh token for a new access token and a new refresh token (rotation).',
      security: refreshSecurity,
      ...(bodyTokens ? { body: refreshTokenBodySchema } : {}),
      response: tokenResponses
    },
    logout: {
      tags: ['auth'],
      summary: 'Sign out',
      description: 'Revokes the session of the refresh token and clears the refresh cookie. `{ "all": true }` revokes every ' +
        'session of its user; `{ "others": true }` every other session of its user, keeping this one and its cookie.',
      security: refreshSecurity,
      body: logoutBodySchema(bodyTokens),
      response: { 204: { type: 'null', description: 'Signed out' }, '4xx': errorResponseSchema, '5xx': errorResponseSchema }
    }
  }
  if (!dpop) return schemas
  return {
    login: { ...schemas.login, headers: dpopProofHeader },
    refresh: { ...schemas.refresh, headers: dpopProofHeader },
    logout: { ...schemas.logout, headers: dpopProofHeader }
  }
}

/** The optional `DPoP` header of the auth routes: documents it; the proof itself is checked by the DPoP gate. */
const dpopProofHeader = {
  type: 'object',
  properties: {
    dpop: {
      type: 'string',
      description: 'A DPoP proof (RFC 9449) for this request: binds the session to its key, and is required for a bound session.'
    }
  }
} as const
