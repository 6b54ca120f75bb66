// The client for browsers, Node and React Native: `fastify-refresh-auth/client`. One module with no static
// imports, so the ES module build is one file a page can `import` without a bundler (DPoP, its sibling
// `./dpop.js`, is loaded only when asked for). Platform functions only: fetch and
// AbortController, plus navigator.locks and BroadcastChannel where both exist (one refresh for every tab).

import type { DpopSigner } from './dpop-signer.js'

export type { DpopSigner } from './dpop-signer.js'

/**
 * Why a session ended, as `auth.on('end')` hears it.
 *
 * @example
 * auth.on('end', ({ reason }) => { if (reason === 'reuse') alert('Signed out for your safety') })
 */
export type EndReason = 'logout' | 'revoked' | 'expired' | 'reuse' | 'unknown'

/**
 * A new access token: `expiresAt` in milliseconds since the epoch.
 *
 * @example
 * auth.on('session', ({ expiresAt }) => console.log('valid until', new Date(expiresAt)))
 */
export interface SessionEvent { accessToken: string, expiresAt: number }

/**
 * The session is over.
 *
 * @example
 * auth.on('end', (event: EndEvent) => showSignIn(event.reason))
 */
export interface EndEvent { reason: EndReason }

/**
 * Where the body transport keeps the refresh token (React Native: SecureStore, Keychain).
 *
 * @example
 * const storage: TokenStorage = { get: () => SecureStore.getItemAsync('rt'), set: (t) => SecureStore.setItemAsync('rt', t), remove: () => SecureStore.deleteItemAsync('rt') }
 */
export interface TokenStorage {
  get (): Promise<string | null> | string | null
  set (token: string): unknown
  remove (): unknown
}

/**
 * The options of `createAuthClient`, every one optional.
 *
 * @example
 * const options: AuthClientOptions = { prefix: '/auth', refreshAhead: 30 }
 */
export interface AuthClientOptions {
  /** The plugin's routes prefix (default `'/auth'`). */
  prefix?: string
  /** Origin of the auth server (default: same origin). */
  baseUrl?: string
  /** The fetch to use (default: the global one). */
  fetch?: (input: any, init?: any) => Promise<Response>
  /** `'cookie'` (browsers, default) or `'body'` (native apps, CLIs). */
  transport?: 'cookie' | 'body'
  /** Body transport: where the refresh token is kept (default: in memory). */
  storage?: TokenStorage
  /** Seconds before the access token's exp at which to refresh (default 30; 0: at exp; half its life at most). */
  refreshAhead?: number
  /** Follow `GET {prefix}/events`, which tells at once of a session that ended elsewhere (default true). */
  live?: boolean
  /**
   * Binds the session to a key of this client (DPoP, RFC 9449; the server needs its `dpop` option): `true` for
   * `createDpopSigner()` of `fastify-refresh-auth/client/dpop`, loaded on first use, or a signer of your own.
   */
  dpop?: boolean | DpopSigner
}

/**
 * What `createAuthClient` returns.
 *
 * @example
 * const auth: AuthClient = createAuthClient()
 * if (await auth.restore()) render(await (await auth.fetch('/api/me')).json())
 */
export interface AuthClient {
  /** On page load: signs in from the refresh cookie (or the stored token) if a session exists. */
  restore (): Promise<boolean>
  /** `POST {prefix}/login` with `body` as JSON; resolves to the response's JSON, rejects with an `AuthClientError`. */
  login (body?: unknown): Promise<any>
  /** fetch with the access token; on a 401 `invalid_token` refreshes once and retries once. */
  fetch (input: any, init?: any): Promise<Response>
  /** A valid access token, refreshing first if needed; null when signed out. */
  getAccessToken (): Promise<string | null>
  /** One refresh, shared by every caller and every tab. */
  refresh (): Promise<boolean>
  /** `POST {prefix}/logout`; `all`: every session of the user; `others`: every other one, this one kept. */
  logout (options?: { all?: boolean, others?: boolean }): Promise<void>
  readonly state: 'signed-in' | 'signed-out'
  /** Listens; returns the function that stops listening. */
  on (type: 'session', listener: (event: SessionEvent) => void): () => void
  on (type: 'end', listener: (event: EndEvent) => void): () => void
  /** Stops timers, streams and channels. */
  close (): void
}

/**
 * A refused login or logout: the status and the server's error `code`.
 *
 * @example
 * try { await auth.login({ username, password }) } catch (err) { if (err instanceof AuthClientError && err.status === 401) showWrongPassword() }
 */
export class AuthClientError extends Error {
  constructor (readonly status: number, readonly code?: string) {
    super(`fastify-refresh-auth: ${status} ${code ?? ''}`)
  }
}

// A body-transport refresh token past its exp (read, not trusted: it only names the reason of an end).
function expired (token: string): boolean {
  try {
    return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp * 1000 <= Date.now()
  } catch {
    return false
  }
}

interface Answer { status: number, data: any }

const REASONS = ['logout', 'revoked', 'expired', 'reuse']
// A refresh whose answer never came is tried again within the server's reuse interval (10 s by default).
const TIMEOUT = 8000
const TRIES = 8

/**
 * Creates the client.
 *
 * @example
 * import { createAuthClient } from 'fastify-refresh-auth/client'
 * const auth = createAuthClient({ prefix: '/auth' })
 * auth.on('end', ({ reason }) => console.log('signed out:', reason))
 */
export function createAuthClient (options: AuthClientOptions = {}): AuthClient {
  const { prefix = '/auth', baseUrl = '', transport, refreshAhead = 30, live = true } = options
  const url = baseUrl + prefix
  const g = globalThis as any
  const send = options.fetch ?? ((input: any, init: any) => g.fetch(input, init))
  const body = transport === 'body'
  let kept: string | null = null
  const storage = options.storage ?? { get: () => kept, set: (t: string) => { kept = t }, remove: () => { kept = null } }
  const locks = g.navigator?.locks
  const channel = locks !== undefined && g.BroadcastChannel !== undefined ? new g.BroadcastChannel('fastify-refresh-auth ' + url) : null
  const listeners = { session: new Set<(e: any) => void>(), end: new Set<(e: any) => void>() }
  const stop = new AbortController()
  let token: string | null = null
  let expiresAt = 0
  let lifetime = 0
  let timer: any
  let inflight: Promise<boolean> | null = null
  let streaming = false
  let answered: ((ok: boolean) => void) | null = null
  let signer: Promise<DpopSigner | undefined> | undefined

  const sleep = (ms: number): Promise<void> => new Promise(resolve => {
    const t = setTimeout(resolve, ms)
    stop.signal.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true })
  })

  // the lock of `name` where tabs share one, else none: single-flight inside the tab is inflight's job
  const exclusive = <T>(name: string, task: () => Promise<T>): Promise<T> =>
    channel !== null ? locks.request(`fastify-refresh-auth ${name} ${url}`, { signal: stop.signal }, task) : task()

  // ms before exp at which to refresh: 0 means at exp; as long as the token's life or longer, half of it
  const ahead = (): number => refreshAhead * 1000 >= lifetime ? lifetime / 2 : refreshAhead * 1000
  const fresh = (): boolean => token !== null && Date.now() < expiresAt - ahead()

  function emit (type: 'session' | 'end', event: unknown): void {
    for (const listener of listeners[type]) listener(event)
  }

  function accept (accessToken: string, at: number, life: number, share: boolean): void {
    token = accessToken
    expiresAt = at
    lifetime = life
    clearTimeout(timer)
    timer = setTimeout(tick, at - ahead() - Date.now())
    if (share) channel?.postMessage({ t: 'token', a: accessToken, e: at, l: life })
    emit('session', { accessToken, expiresAt: at })
    if (live) follow()
  }

  // a refresh that failed for now (offline, 503) is tried again; a session that ended stops the timer
  async function tick (): Promise<void> {
    if (!await refresh() && token !== null && !stop.signal.aborted) timer = setTimeout(tick, 5000)
  }

  function end (reason: EndReason, share: boolean): void {
    if (share && body) storage.remove()
    if (token === null) return
    // expiresAt stays: a late message with this token (or an older one) must not bring the session back
    token = null
    clearTimeout(timer)
    if (share) channel?.postMessage({ t: 'end', r: reason })
    emit('end', { reason })
  }

  // With DPoP every request carries a proof (and the token as `DPoP`); else the token goes as a bearer token.
  async function authorized (method: string, target: string, accessToken: string | null, go: (headers: Record<string, string>) => Promise<Response>): Promise<Response> {
    const dpop = options.dpop
    // (the CommonJS build, imported, may show its exports on `default` only: module.exports, as some loaders do)
    const signing = await (signer ??= dpop === true ? import('./dpop.js').then((m: any) => ({ ...m.default, ...m }).createDpopSigner()) : Promise.resolve(dpop || undefined))
    return signing !== undefined ? signing.send(method, target, accessToken, go) : go(accessToken !== null ? { authorization: 'Bearer ' + accessToken } : {})
  }

  async function call (path: string, json?: object, headers: Record<string, string> = {}): Promise<Answer> {
    const abort = new AbortController()
    const timeout = setTimeout(() => abort.abort(), TIMEOUT)
    try {
      if (json !== undefined) headers['content-type'] = 'application/json'
      const response = await authorized('POST', url + path, null, more =>
        send(url + path, { method: 'POST', credentials: 'include', headers: { ...headers, ...more }, body: json && JSON.stringify(json), signal: abort.signal }))
      return { status: response.status, data: response.status === 204 ? null : await response.json().catch(() => null) }
    } finally {
      clearTimeout(timeout)
    }
  }

  function issued (data: any): boolean {
    if (typeof data?.access_token !== 'string') return false
    accept(data.access_token, Date.now() + data.expires_in * 1000, data.expires_in * 1000, true)
    return true
  }

  // One POST {prefix}/refresh: a lost answer (network error, timeout, a body cut short) and a 5xx are tried
  // again with backoff and the same token; only a 401 ends the session.
  async function post (): Promise<boolean> {
    const presented = body ? await storage.get() : null
    return !body || presented !== null ? await attempt(presented, 0) : false
  }

  async function attempt (presented: string | null, tries: number): Promise<boolean> {
    let answer: Answer | null = null
    try {
      answer = await call('/refresh', body ? { refresh_token: presented } : undefined)
      if (answer.status === 200) {
        if (body && typeof answer.data?.refresh_token === 'string') await storage.set(answer.data.refresh_token)
        if (issued(answer.data)) return true
      }
    } catch {}
    if (answer?.status === 401) {
      end(presented !== null && expired(presented) ? 'expired' : 'unknown', true)
      return false
    }
    if (stop.signal.aborted || (answer !== null && answer.status < 500 && answer.status !== 200) || tries === TRIES - 1) return false
    await sleep(250 * 2 ** Math.min(tries, 5))
    return await attempt(presented, tries + 1)
  }

  // Another tab may hold a newer token: asks, and waits a moment for one (a newer one ends the wait at once).
  // Not for safety: under the lock a tab always presents the live refresh token (the cookie jar and the storage
  // are shared), so nothing is reused or forked without it. It saves rotations: a tab opened later takes another
  // tab's token, and a tab granted the lock before the last holder's broadcast arrived (locks and messages are
  // not ordered with each other) takes that token instead of rotating again. A lone tab pays the 100 ms.
  function ask (): Promise<boolean> {
    if (channel === null) return Promise.resolve(false)
    return new Promise(resolve => {
      answered = resolve
      channel.postMessage({ t: 'ask', e: expiresAt })
      setTimeout(resolve, 100, false)
    })
  }

  function refresh (): Promise<boolean> {
    const before = token
    inflight ??= exclusive('refresh', async () => (token !== before && token !== null) || await ask() || await post())
      .catch(() => false)
      .finally(() => { inflight = null })
    return inflight
  }

  async function getAccessToken (): Promise<string | null> {
    if (token !== null && !fresh()) await refresh()
    return token !== null && Date.now() < expiresAt ? token : null
  }

  // The events stream: one per origin, held by the tab that holds its lock and relayed to the others.
  function follow (): void {
    if (streaming) return
    streaming = true
    exclusive('events', async () => {
      let fails = 0
      let last = null
      for (;;) {
        if (token === null || stop.signal.aborted) return
        const accessToken = await getAccessToken()
        try {
          const response = await authorized('GET', url + '/events', accessToken, headers => send(url + '/events', { headers, signal: stop.signal }))
          if (response.status === 404 || response.body?.getReader === undefined) return
          if (response.status === 401) await refresh()
          if (response.status === 200) await read(response.body.getReader())
          // a stream that ends at once on the same token, or a refusal (503 over the cap): wait longer each time
          fails = response.status === 200 && accessToken !== last ? 0 : fails + 1
        } catch {
          fails++
        }
        last = accessToken
        if (fails > 0) await sleep(Math.min(500 * 2 ** fails, 30_000))
      }
    }).catch(() => {}).finally(() => { streaming = false })
  }

  async function read (reader: any): Promise<void> {
    const decoder = new TextDecoder()
    let text = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      text += decoder.decode(value, { stream: true })
      const ended = /event: session-ended\ndata: (.*)\n\n/.exec(text)
      if (ended !== null) {
        let reason
        try { reason = JSON.parse(ended[1]).reason } catch {}
        end(REASONS.includes(reason) ? reason : 'unknown', true)
        reader.cancel().catch(() => {})
        return
      }
      text = text.slice(text.lastIndexOf('\n\n') + 1)
    }
  }

  if (channel !== null) {
    channel.onmessage = ({ data: m }: { data: any }) => {
      if (m.t === 'token' && m.e > expiresAt) {
        accept(m.a, m.e, m.l, false)
        answered?.(true)
      } else if (m.t === 'end') {
        end(m.r, false)
      } else if (m.t === 'ask' && fresh() && expiresAt > m.e) {
        channel.postMessage({ t: 'token', a: token, e: expiresAt, l: lifetime })
      }
    }
  }

  return {
    get state () {
      return token === null ? 'signed-out' : 'signed-in'
    },
    restore: () => token !== null ? Promise.resolve(true) : refresh(),
    refresh,
    getAccessToken,
    async login (credentials?: unknown) {
      const answer = await call('/login', credentials ?? {}, body ? { 'refresh-token-transport': 'body' } : {})
      if (answer.status !== 200) throw new AuthClientError(answer.status, answer.data?.code)
      if (body) await storage.set(answer.data.refresh_token)
      issued(answer.data)
      return answer.data
    },
    async fetch (input: any, init: any = {}) {
      const isRequest = typeof input === 'object' && 'clone' in input
      async function attempt (): Promise<[Response, string | null]> {
        const accessToken = await getAccessToken()
        const headers = new Headers(init.headers ?? (isRequest ? input.headers : undefined))
        const response = await authorized(init.method ?? (isRequest ? input.method : 'GET'), isRequest ? input.url : String(input), accessToken, more => {
          for (const name in more) headers.set(name, more[name])
          return send(isRequest ? input.clone() : input, { ...init, headers })
        })
        return [response, accessToken]
      }
      const [response, accessToken] = await attempt()
      if (response.status !== 401 || !/invalid_token/.test(response.headers.get('www-authenticate') ?? '')) return response
      // a token that another call already replaced is not refreshed again
      if (accessToken === token && !await refresh()) return response
      return (await attempt())[0]
    },
    async logout ({ all, others } = {}) {
      await inflight
      // under the refresh lock: a logout must present the live token, not one a refresh is replacing
      const answer = await exclusive('refresh', async () => {
        const presented = body ? await storage.get() : null
        return call('/logout', { all: all === true, others: others === true, ...(presented !== null && { refresh_token: presented }) })
      })
      if (answer.status >= 500) throw new AuthClientError(answer.status, answer.data?.code)
      if (all === true || others !== true) end('logout', true)
    },
    on (type: 'session' | 'end', listener: (event: any) => void) {
      listeners[type].add(listener)
      return () => { listeners[type].delete(listener) }
    },
    close () {
      clearTimeout(timer)
      stop.abort()
      channel?.close()
    }
  }
}
