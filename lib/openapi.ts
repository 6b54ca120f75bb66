import type { RouteOptions } from 'fastify'
import { DEFAULT_COOKIE_NAME } from './options.js'

/**
 * Name of the OpenAPI security scheme of access tokens (`Authorization: Bearer`).
 *
 * @example
 * app.get('/me', { preHandler: myOwnCheck, schema: { security: [{ [BEARER_SCHEME]: [] }] } }, handler)
 */
export const BEARER_SCHEME = 'bearerAuth'
/**
 * Name of the OpenAPI security scheme of the refresh cookie.
 *
 * @example
 * app.post('/auth/sessions', { schema: { security: [{ [REFRESH_COOKIE_SCHEME]: [] }] } }, listSessions)
 */
export const REFRESH_COOKIE_SCHEME = 'refreshCookie'

/**
 * Marks a hook as one that requires a valid access token (the scope and role guards carry it),
 * so routes that use it are documented as Bearer-protected. `Symbol.for`: shared by every copy of the package.
 */
export const REQUIRES_BEARER: unique symbol = Symbol.for('fastify-refresh-auth.requiresBearer') as never

/**
 * The OpenAPI security requirement of a route protected by an access token, for routes whose
 * protection the plugin cannot see (a hook built by `@fastify/auth`, say).
 *
 * @example
 * app.get('/orders', {
 *   preHandler: app.auth([app.authenticate, apiKeyCheck]),
 *   schema: { security: openApiBearerSecurity }
 * }, handler)
 */
export const openApiBearerSecurity: Array<Record<string, string[]>> = [{ [BEARER_SCHEME]: [] }]

/**
 * Options of {@link openApiSecuritySchemes}.
 *
 * @example
 * openApiSecuritySchemes({ cookieName: 'rt' }) // when the plugin has `cookie: { name: 'rt' }`
 */
export interface OpenApiSecuritySchemesOptions {
  /** The plugin's `cookie.name`, if you changed it. Default `'__Secure-refresh_token'`. */
  cookieName?: string
}

/** The security schemes {@link openApiSecuritySchemes} returns, typed to fit `@fastify/swagger`'s options. */
export type OpenApiSecuritySchemes = {
  bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: string, description: string }
  refreshCookie: { type: 'apiKey', in: 'cookie', name: string, description: string }
}

/**
 * The OpenAPI 3 `components.securitySchemes` the plugin's routes refer to: `bearerAuth` (the access
 * token) and `refreshCookie` (the refresh cookie). Give them to `@fastify/swagger`, registered before this plugin.
 *
 * @example
 * await app.register(fastifySwagger, {
 *   openapi: { components: { securitySchemes: openApiSecuritySchemes() } }
 * })
 * await app.register(fastifyRefreshAuth, options)
 */
export function openApiSecuritySchemes (options: OpenApiSecuritySchemesOptions = {}): OpenApiSecuritySchemes {
  return {
    bearerAuth: {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description: 'Access token from the login or refresh route'
    },
    refreshCookie: {
      type: 'apiKey',
      in: 'cookie',
      name: options.cookieName ?? DEFAULT_COOKIE_NAME,
      description: 'HTTP-only refresh cookie set by the login and refresh routes'
    }
  }
}

const PROTECTING_HOOKS = ['onRequest', 'preParsing', 'preValidation', 'preHandler'] as const

/**
 * An `onRoute` hook: a route protected by `app.authenticate` (or a scope or role guard) and without
 * a `security` of its own is documented as requiring the Bearer scheme. Only the schema's OpenAPI
 * metadata changes; nothing that runs.
 */
export function bearerSecurityMarker (authenticate: unknown): (route: RouteOptions) => void {
  function protects (hook: unknown): boolean {
    return hook === authenticate || (typeof hook === 'function' && (hook as { [REQUIRES_BEARER]?: boolean })[REQUIRES_BEARER] === true)
  }
  return function markBearerRoute (route) {
    const protectedRoute = PROTECTING_HOOKS.some(name => {
      const hooks: unknown = route[name]
      return Array.isArray(hooks) ? hooks.some(protects) : protects(hooks)
    })
    if (!protectedRoute) return
    const schema = route.schema as { security?: unknown } | undefined
    if (schema?.security !== undefined) return
    // a copy: hosts may share one schema object between routes
    route.schema = { ...schema, security: [{ [BEARER_SCHEME]: [] }] } as RouteOptions['schema']
  }
}
