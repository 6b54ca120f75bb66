import type { RouteOptions } from 'fastify'
import { DEFAULT_COOKIE_NAME } from '../options/resolve.js'

/**
 * Name of the OpenAPI security scheme of access tokens (`Authorization: Bearer`).
 *
 * @example
 * app.get('/me', { preHandler: myOwnCheck, schema: { security: [{ [BEARER_SCHEME]: [] }] } }, handler)
 */
export const BEARER_SCHEME = 'bearerAuth'
/**
 * Name of the OpenAPI security scheme of DPoP-bound access tokens (`Authorization: DPoP` with a `DPoP` proof, RFC 9449).
 *
 * @example
 * app.get('/me', { preHandler: myOwnCheck, schema: { security: [{ [BEARER_SCHEME]: [] }, { [DPOP_SCHEME]: [] }] } }, handler)
 */
export const DPOP_SCHEME = 'dpopAuth'
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
  /** Declare `dpopAuth` too: give `true` when the plugin has `dpop` on. Default `false`. */
  dpop?: boolean
}

/** The security schemes {@link openApiSecuritySchemes} returns, typed to fit `@fastify/swagger`'s options. */
export type OpenApiSecuritySchemes = {
  bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: string, description: string }
  refreshCookie: { type: 'apiKey', in: 'cookie', name: string, description: string }
  dpopAuth?: { type: 'http', scheme: 'dpop', bearerFormat: string, description: string }
}

/**
 * The OpenAPI 3 `components.securitySchemes` the plugin's routes refer to: `bearerAuth` (the access
 * token), `refreshCookie` (the refresh cookie) and, with `dpop: true`, `dpopAuth` (a DPoP-bound access
 * token). Give them to `@fastify/swagger`, registered before this plugin.
 *
 * @example
 * await app.register(fastifySwagger, {
 *   openapi: { components: { securitySchemes: openApiSecuritySchemes({ dpop: true }) } }
 * })
 * await app.register(fastifyRefreshAuth, { ...options, dpop: true })
 */
export function openApiSecuritySchemes (options: OpenApiSecuritySchemesOptions = {}): OpenApiSecuritySchemes {
  const schemes = openApiBaseSchemes(options)
  if (options.dpop !== true) return schemes
  return {
    ...schemes,
    dpopAuth: {
      type: 'http',
      // the HTTP authentication scheme RFC 9449 §7.1 registers
      scheme: 'dpop',
      bearerFormat: 'JWT',
      description: 'DPoP-bound access token: `Authorization: DPoP <token>` with a `DPoP` proof header from its key (RFC 9449)'
    }
  }
}

function openApiBaseSchemes (options: OpenApiSecuritySchemesOptions): OpenApiSecuritySchemes {
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

/** The `security` of the refresh and logout routes: the cookie, the body token, or either. */
export function refreshRouteSecurity (transport: 'cookie' | 'body' | 'both'): Array<Record<string, string[]>> {
  const security: Array<Record<string, string[]>> = transport === 'cookie'
    ? [{ [REFRESH_COOKIE_SCHEME]: [] }]
    : transport === 'body' ? [] : [{ [REFRESH_COOKIE_SCHEME]: [] }, {}]
  ownSecurity.add(security)
  return security
}

// The `security` arrays of this plugin's own routes, told apart from any a host wrote.
const ownSecurity = new WeakSet<object>()

const PROTECTING_HOOKS = ['onRequest', 'preParsing', 'preValidation', 'preHandler'] as const

/** What @fastify/swagger hands a route's `config.swaggerTransform` (`openapiObject` in OpenAPI mode, `swaggerObject` in Swagger 2). */
interface SwaggerTransformInput {
  schema?: { security?: unknown }
  url: string
  openapiObject?: { components?: { securitySchemes?: object } }
  swaggerObject?: { securityDefinitions?: object }
}
type SwaggerTransform = (input: SwaggerTransformInput) => { schema?: { security?: unknown }, url?: string }

/**
 * The security schemes the document being generated declares. @fastify/swagger throws a TypeError when
 * a route's `security` names a scheme its document lacks, and only a route's own `swaggerTransform`
 * sees the document: the refresh and logout routes carry one, which records what it declares while the
 * document is built (synchronously). Forgotten once that build is over, so another document never
 * inherits what this one declared.
 */
class DeclaredSchemes {
  #names: ReadonlySet<string> | null = null

  learn (input: SwaggerTransformInput): ReadonlySet<string> {
    const declared = input.openapiObject?.components?.securitySchemes ?? input.swaggerObject?.securityDefinitions ?? {}
    const names = new Set(Object.keys(declared))
    this.#names = names
    queueMicrotask(() => { this.#names = null })
    return names
  }

  has (name: string): boolean {
    return this.#names?.has(name) === true
  }
}

/** Either access-token scheme the document declares (Bearer, DPoP), as alternatives; undefined if neither. */
function accessTokenSecurity (declared: DeclaredSchemes): Array<Record<string, string[]>> | undefined {
  const security = [BEARER_SCHEME, DPOP_SCHEME].filter(name => declared.has(name)).map(name => ({ [name]: [] }))
  return security.length === 0 ? undefined : security
}

/**
 * An `onRoute` hook for the OpenAPI document; only the schema's metadata and the route's
 * `swaggerTransform` change, nothing that runs. Registering the plugin never makes `app.swagger()`
 * throw: every route refers only to schemes the document declares.
 * - The refresh and logout routes get a `config.swaggerTransform` (after the host's own, if the
 *   factories were given one) that keeps only the security requirements the document declares.
 * - A route protected by `app.authenticate` (or a scope or role guard) and without a `security` of its
 *   own is documented as requiring the Bearer scheme or the DPoP one, those the document declares. The plugin learns
 *   that from its refresh and logout routes, which come first when it registers them; where the document
 *   has neither, the route's `security` is left out (say it with `openApiBearerSecurity`).
 */
export function bearerSecurityMarker (authenticate: unknown): (route: RouteOptions) => void {
  const declared = new DeclaredSchemes()

  function protects (hook: unknown): boolean {
    return hook === authenticate || (typeof hook === 'function' && (hook as { [REQUIRES_BEARER]?: boolean })[REQUIRES_BEARER] === true)
  }

  function keepDeclared (hostTransform: unknown): SwaggerTransform {
    return function keepDeclaredSecurity (input) {
      const result = typeof hostTransform === 'function' ? (hostTransform as SwaggerTransform)(input) : {}
      const schema = result.schema ?? input.schema
      const names = declared.learn(input)
      const security = schema?.security as Array<Record<string, string[]>> | undefined
      // a security the host's transform put there is the host's
      if (!ownSecurity.has(security as object)) return result
      // a requirement needs all its schemes: one naming an undeclared scheme goes whole
      const kept = (security as Array<Record<string, string[]>>).filter(requirement => Object.keys(requirement).every(name => names.has(name)))
      return { ...result, schema: { ...schema, security: kept } }
    }
  }

  return function markRoute (route) {
    const schema = route.schema as { security?: unknown } | undefined
    if (schema !== undefined && ownSecurity.has(schema.security as object)) {
      // typed by @fastify/swagger's own augmentation, which this package does not load
      const config = route.config as Record<string, unknown> | undefined
      route.config = { ...config, swaggerTransform: keepDeclared(config?.swaggerTransform) } as RouteOptions['config']
      return
    }
    const protectedRoute = PROTECTING_HOOKS.some(name => {
      const hooks: unknown = route[name]
      return Array.isArray(hooks) ? hooks.some(protects) : protects(hooks)
    })
    if (!protectedRoute || schema?.security !== undefined) return
    // a copy: hosts may share one schema object between routes. Read while the document is built.
    route.schema = Object.defineProperty({ ...schema }, 'security', {
      enumerable: true,
      configurable: true,
      get: () => accessTokenSecurity(declared)
    }) as RouteOptions['schema']
  }
}
