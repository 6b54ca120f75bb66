import { fastifyCookie, type SerializeOptions } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { DuplicateCookieError, refuseOption } from '../errors.js'
import type { CookieSettings } from '../options/types.js'

const { parse, serialize } = fastifyCookie
// Tokens are read as they are sent: base64url and dots, which a cookie value holds unchanged.
const asIs = (value: string): string => value

/**
 * The refresh cookie, written and read with `@fastify/cookie`'s `serialize` and `parse` given our options
 * only, never through `reply.setCookie` or `request.cookies`: a host's `parseOptions` (a `Domain`,
 * `SameSite=None`, `signed`, an `encode`…) apply to those, and would otherwise reach this cookie too. Every
 * attribute is ours, and clearing uses the same ones, so the cookie cleared is the cookie set.
 */
export class RefreshCookie {
  readonly #name: string
  /** Where the browser sends it. */
  readonly path: string
  readonly #secure: boolean
  readonly #sameSite: SerializeOptions['sameSite']
  readonly #clearing: string
  // each `name=` of the header: at its start or after a `;`, whitespace around the name as `parse` allows
  readonly #occurrences: RegExp
  // the attributes `serialize` wrote for the last Max-Age: nearly every refresh of a deployment has the same one
  #lastMaxAge: number | null | undefined = undefined
  #lastAttributes = ''

  constructor (options: CookieSettings) {
    this.#name = options.name
    this.#occurrences = new RegExp(`(?:^|;)\\s*${options.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*=`, 'g')
    this.path = options.path
    this.#secure = options.secure
    this.#sameSite = options.sameSite
    this.#clearing = serialize(options.name, '', this.#attributes(0, new Date(0)))
  }

  // every attribute, in one object literal: the same for setting and clearing
  #attributes (maxAge: number | undefined, expires?: Date): SerializeOptions {
    return { path: this.path, httpOnly: true, secure: this.#secure, sameSite: this.#sameSite, maxAge, expires }
  }

  /** Stores `token` for `maxAge` seconds, or (null) for the browser session: no `Max-Age`, no `Expires`. */
  set (reply: FastifyReply, token: string, maxAge: number | null): void {
    // `reply.header` adds a Set-Cookie to those already set, @fastify/cookie's included
    reply.header('set-cookie', `${this.#name}=${token}${this.#attributesFor(maxAge)}`)
  }

  /**
   * `; Max-Age=…; Path=…; HttpOnly…` as `serialize` writes (and checks) them for this cookie. The token is
   * joined to them rather than passed through `serialize`: its value check of a ~300-character token took
   * 9% of a refresh's CPU (memory store, 6 interleaved rounds of the refresh referee's shape), and our own
   * signed tokens are base64url and dots, which it would always accept.
   */
  #attributesFor (maxAge: number | null): string {
    if (maxAge !== this.#lastMaxAge) {
      this.#lastAttributes = serialize(this.#name, '', this.#attributes(maxAge ?? undefined)).slice(this.#name.length + 1)
      this.#lastMaxAge = maxAge
    }
    return this.#lastAttributes
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
    const header = request.headers.cookie
    if (header === undefined) return undefined
    const count = this.#count(header)
    if (count > 1) {
      // the names only: the values are tokens
      request.log.warn({ cookie: this.#name, count }, 'fastify-refresh-auth: refused a request carrying the refresh cookie more than once (cookie tossing?)')
      throw new DuplicateCookieError()
    }
    return count === 1 ? this.#value(header) : undefined
  }

  /**
   * The refresh cookie's value if it came exactly once, else undefined: for a login, which only uses it to
   * replace the device's previous session, and must not be blocked by a planted cookie.
   */
  readIfSingle (request: FastifyRequest): string | undefined {
    const header = request.headers.cookie
    return header !== undefined && this.#count(header) === 1 ? this.#value(header) : undefined
  }

  #value (header: string): string | undefined {
    return parse(header, { decode: asIs })[this.#name]
  }

  // `parse` keeps one value of a repeated name silently, so the refusal of duplicates counts on the raw header
  #count (header: string): number {
    return header.match(this.#occurrences)?.length ?? 0
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
