// Test doubles for the browser client in Node: a scripted fetch, navigator.locks, storage.

export interface Call { url: string, init: any }
export type Handler = (url: string, init: any, call: number) => Response | Promise<Response>

/** A fetch that records its calls and answers with `handler`. */
export function scriptedFetch (handler: Handler): ((input: any, init?: any) => Promise<Response>) & { calls: Call[], to: (path: string) => Call[] } {
  const calls: Call[] = []
  const fetch = async (input: any, init: any = {}): Promise<Response> => {
    const url = typeof input === 'string' ? input : input.url
    calls.push({ url, init })
    return await handler(url, init, calls.length)
  }
  return Object.assign(fetch, { calls, to: (path: string) => calls.filter(call => call.url.endsWith(path)) })
}

export function json (status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
}

let issued = 0
/** A token response: a distinct access token each time, living `expiresIn` seconds. */
export function tokens (expiresIn = 900, refreshToken?: string): Response {
  issued++
  return json(200, { access_token: `access-${issued}`, token_type: 'Bearer', expires_in: expiresIn, ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }) })
}

export const refused = (): Response => json(401, { statusCode: 401, code: 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN' })

/** A compact JWT-looking token (unsigned: the client only reads `exp` to name an end). */
export function jwt (payload: object): string {
  return `x.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.y`
}

/**
 * navigator.locks as browsers give it, within one process: `request(name, { signal }, task)` runs the tasks of
 * one name one at a time, in order; a request whose signal aborted before its turn rejects with AbortError.
 */
export class FakeLocks {
  readonly #tails = new Map<string, Promise<unknown>>()
  held = new Map<string, number>()

  request<T> (name: string, options: { signal?: AbortSignal }, task: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(name) ?? Promise.resolve()
    const turn = before.then(async () => {
      if (options.signal?.aborted === true) throw new DOMException('aborted', 'AbortError')
      this.held.set(name, (this.held.get(name) ?? 0) + 1)
      try {
        return await task()
      } finally {
        this.held.set(name, (this.held.get(name) as number) - 1)
      }
    })
    this.#tails.set(name, turn.catch(() => {}))
    return turn
  }
}

/** Puts a navigator with `locks` on globalThis for the test, and takes it away after. */
export function withLocks (t: { teardown: (fn: () => void) => void }, locks: object = new FakeLocks()): void {
  const g = globalThis as any
  const had = Object.getOwnPropertyDescriptor(g, 'navigator')
  Object.defineProperty(g, 'navigator', { value: { locks }, configurable: true, writable: true })
  t.teardown(() => {
    if (had === undefined) delete g.navigator
    else Object.defineProperty(g, 'navigator', had)
  })
}

/** A stream body that sends `chunks` (strings), then stays open until aborted, or ends when `end` is true. */
export function sse (chunks: string[], end = false, signal?: AbortSignal): Response {
  const encoder = new TextEncoder()
  return new Response(new ReadableStream({
    start (controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk))
      if (end) controller.close()
      else signal?.addEventListener('abort', () => controller.error(new DOMException('aborted', 'AbortError')))
    }
  }), { status: 200, headers: { 'content-type': 'text/event-stream' } })
}

/** Resolves once `check()` is true, checked every 10 ms, for at most `ms`. */
export async function until (check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
