import type { FastifyBaseLogger, RouteOptions } from 'fastify'
import { readBoundedBody } from './bounded-body.js'
import { InvalidOptionError, JwksFetchError } from '../errors.js'
import { keysFromJwks, tokenKid, type AsymmetricAlgorithm, type KeySet } from '../tokens/keys.js'
import type { RouteOverrides } from './routes.js'

/**
 * The JWKS route factory behind `app.refreshAuth.jwksRoute`.
 *
 * @example
 * app.route(app.refreshAuth.jwksRoute({ url: '/keys.json' }))
 */
export interface JwksRouteFactory {
  /** `GET /.well-known/jwks.json` (or `jwks.url`): the public access-token keys as a JWK Set. */
  jwksRoute (overrides?: RouteOverrides): RouteOptions
}

/**
 * The JWKS route factory. Only an auth server with asymmetric keys has keys to publish: elsewhere
 * (HS256, resource server) `keys` is null and the factory refuses.
 */
export function createJwksRouteFactory (keys: KeySet | null, route: { url: string, maxAge: number }): JwksRouteFactory {
  return {
    jwksRoute (overrides = {}) {
      if (keys === null) throw new InvalidOptionError('this app has no public keys of its own to publish as a JWKS (HS256 keys are secret; a resource server only verifies)')
      // Serialised once: the key set of an auth server never changes while it runs.
      const body = JSON.stringify(keys.toJwks())
      const cacheControl = `public, max-age=${route.maxAge}`
      return {
        method: 'GET',
        url: route.url,
        ...overrides,
        handler (_request, reply) {
          reply.header('cache-control', cacheControl)
          reply.type('application/jwk-set+json; charset=utf-8')
          return reply.send(body)
        }
      }
    }
  }
}

export interface JwksClientOptions {
  url: string
  /** The set the fetched keys go into; the token codec reads it. */
  keySet: KeySet
  /** When set, keys of any other algorithm are skipped. */
  algorithm?: AsymmetricAlgorithm
  /** Seconds. */
  timeout: number
  /** Seconds between two refetches for unknown `kid`s. */
  cooldown: number
  /** Seconds between scheduled refetches. */
  refreshInterval: number
  log: FastifyBaseLogger
}

// A JWK Set is a few kilobytes: a huge answer is an error, not something to parse.
const MAX_JWKS_BYTES = 256 * 1024

function parseJson (body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    throw new JwksFetchError('the answer is not JSON')
  }
}

// Ours rather than get-jwks (the fetcher @fastify/jwt uses): get-jwks builds the URL from the token's
// `iss` unless issuers are allow-listed, follows redirects, reads bodies whole (error bodies too) with no
// byte cap, fetches again for every unknown `kid` with no cooldown, and answers each lookup with a
// promise of a PEM; this client fetches one configured URL under those bounds and keeps KeyObjects
// built once, so a known `kid` is verified synchronously.
/**
 * Keeps a resource server's key set in step with the auth server's JWKS. A token whose `kid` is known
 * never waits on the network; an unknown `kid` may trigger one refetch per cooldown. A failed fetch
 * keeps the last good key set.
 */
export class JwksClient {
  readonly #options: JwksClientOptions
  #loaded = false
  #lastAttempt = -Infinity
  #inflight: Promise<void> | null = null
  #timer: NodeJS.Timeout | undefined

  constructor (options: JwksClientOptions) {
    this.#options = options
  }

  /** False until a key set was loaded once: until then no token can be checked. */
  get ready (): boolean {
    return this.#loaded
  }

  /** Fetches the JWKS now (or joins the fetch under way); never rejects. */
  refresh (): Promise<void> {
    if (this.#inflight === null) {
      this.#lastAttempt = Date.now()
      this.#inflight = this.#load().finally(() => { this.#inflight = null })
    }
    return this.#inflight
  }

  /**
   * For a token that failed to verify: a refetch to wait for when its `kid` is unknown (or no key set
   * was ever loaded) and the cooldown allows one, else null.
   */
  refetchFor (token: string): Promise<void> | null {
    if (this.#loaded) {
      const kid = tokenKid(token)
      if (kid === undefined || this.#options.keySet.has(kid)) return null
    }
    if (this.#inflight !== null) return this.#inflight
    if (Date.now() - this.#lastAttempt < this.#options.cooldown * 1000) return null
    return this.refresh()
  }

  /** Scheduled refetches, so retired keys go; the timer does not keep the process alive. */
  start (): void {
    this.#timer = setInterval(() => { this.refresh() }, this.#options.refreshInterval * 1000)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  async #load (): Promise<void> {
    const { url, keySet, algorithm, timeout, log } = this.#options
    try {
      const response = await fetch(url, {
        signal: AbortSignal.timeout(timeout * 1000),
        redirect: 'error',
        headers: { accept: 'application/jwk-set+json, application/json' }
      })
      if (!response.ok) {
        // an error answer is never read: cancelling it closes the download
        await response.body?.cancel()
        throw new JwksFetchError(`HTTP status ${response.status}`)
      }
      const body = await readBoundedBody(response, MAX_JWKS_BYTES)
      if (body === null) throw new JwksFetchError(`the answer is larger than ${MAX_JWKS_BYTES} bytes`)
      keySet.replace(keysFromJwks(parseJson(body), algorithm))
      this.#loaded = true
    } catch (err) {
      log.warn({ err, url }, `fastify-refresh-auth: JWKS fetch failed${this.#loaded ? ', keeping the last key set' : ''}`)
    }
  }
}
