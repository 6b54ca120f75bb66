import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { DuplicateCookieError, refuseOption } from '../errors.js'
import type { CookieSettings } from '../options/types.js'

/**
 * The refresh cookie, written and read by the plugin itself rather than through `@fastify/cookie`: a
 * host's `parseOptions` (a `Domain`, `SameSite=None`, `signed`, an `encode`…) apply to every
 * `reply.setCookie` and `parseCookie` of the app, and would otherwise reach this cookie too. Every
 * attribute is ours, and clearing uses the same ones, so the cookie cleared is the cookie set.
 */
export class RefreshCookie {
  readonly #name: string
  /** Where the browser sends it. */
  readonly path: string
  // `name=` is followed by the token; the attributes after it never change
  readonly #attributes: string
  readonly #clearing: string

  constructor (options: CookieSettings) {
    this.#name = options.name
    this.path = options.path
    this.#attributes = `; Path=${options.path}; HttpOnly${options.secure ? '; Secure' : ''}; SameSite=${options.sameSite === 'strict' ? 'Strict' : 'Lax'}`
    this.#clearing = `${options.name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT${this.#attributes}`
  }

  /** Stores `token` for `maxAge` seconds, or (null) for the browser session: no `Max-Age`, no `Expires`. */
  set (reply: FastifyReply, token: string, maxAge: number | null): void {
    // `reply.header` adds a Set-Cookie to those already set, @fastify/cookie's included
    reply.header('set-cookie', maxAge === null
      ? `${this.#name}=${token}${this.#attributes}`
      : `${this.#name}=${token}; Max-Age=${maxAge}${this.#attributes}`)
  }

  clear (reply: FastifyReply): void {
    reply.header('set-cookie', this.#clearing)
  }

  /**
   * The refresh cookie's value, or undefined. Two or more cookies of its name are refused with a 400
   * before anything is read: a sibling subdomain can plant one with `Domain` and a longer `Path`, which
   * the browser sends first (cookie tossing), and picking either could sign the user in as someone else.
   */
  read (request: FastifyRequest): string | undefined {
    const { value, count } = this.#find(request)
    if (count > 1) {
      // the names only: the values are tokens
      request.log.warn({ cookie: this.#name, count }, 'fastify-refresh-auth: refused a request carrying the refresh cookie more than once (cookie tossing?)')
      throw new DuplicateCookieError()
    }
    return value
  }

  /**
   * The refresh cookie's value if it came exactly once, else undefined: for a login, which only uses it to
   * replace the device's previous session, and must not be blocked by a planted cookie.
   */
  readIfSingle (request: FastifyRequest): string | undefined {
    const { value, count } = this.#find(request)
    return count === 1 ? value : undefined
  }

  #find (request: FastifyRequest): { value: string | undefined, count: number } {
    const header = request.headers.cookie
    let value: string | undefined
    let count = 0
    if (header === undefined) return { value, count }
    // RFC 6265 §5.4: `name=value` pairs joined by `; `. Values are taken as sent: a token needs no decoding.
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=')
      if (eq === -1 || pair.slice(0, eq).trim() !== this.#name) continue
      count++
      value = pair.slice(eq + 1).trim()
    }
    return { value, count }
  }
}

/**
 * Whether a browser sends a cookie of path `cookiePath` to `url` (RFC 6265 §5.1.4 path-match). For a
 * route URL with parameters only its fixed start counts: the cookie must not depend on a parameter.
 */
export function pathCovers (cookiePath: string, url: string): boolean {
  const parameter = url.search(/[:*]/)
  const path = parameter === -1 ? url : url.slice(0, parameter)
  if (!path.startsWith(cookiePath)) return false
  return path.length === cookiePath.length || cookiePath.endsWith('/') || path[cookiePath.length] === '/'
}

// Handlers of the routes that read the refresh cookie (refresh, logout), with their plugin's cookie path.
const cookieRoutes = new WeakMap<object, string>()

/** Marks a handler as reading the refresh cookie of `path`: the route it serves must be under that path. */
export function readsRefreshCookie<H extends RouteOptions['handler']> (handler: H, path: string): H {
  cookieRoutes.set(handler, path)
  return handler
}

/**
 * An `onRoute` hook that refuses a refresh or logout route mounted where its cookie is never sent (a
 * `cookie.path` of `/auth` and a route at `/api/auth/refresh`, through a prefix or the factories' `url`).
 * Here the full URL is known, prefixes included.
 */
export function checkRefreshCookiePath (route: RouteOptions): void {
  const path = cookieRoutes.get(route.handler)
  if (path !== undefined && !pathCovers(path, route.url)) {
    refuseOption(`cookie.path '${path}' does not cover ${String(route.method)} ${route.url}: the browser would never send the refresh cookie there; set cookie.path to a path above it`)
  }
}
