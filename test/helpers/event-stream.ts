import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../../lib/index.js'
import { COOKIE, SECRET, USER, verifyCredentials } from './app.js'

// The events stream (GET {prefix}/events) spoken to over real HTTP: an app listening on a port, a login, and a
// stream read while it is open. Waits are on what the stream says, bounded by WAIT.

const WAIT = 15_000

export async function listen (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}, setup?: (app: FastifyInstance) => void): Promise<{ app: FastifyInstance, url: string }> {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, ...options } as FastifyRefreshAuthOptions)
  setup?.(app)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, url }
}

export async function signIn (url: string, body: object = USER): Promise<{ accessToken: string, cookie: string }> {
  const response = await fetch(url + '/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const cookie = /__Secure-refresh_token=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')?.[1] as string
  return { accessToken: (await response.json() as { access_token: string }).access_token, cookie }
}

export function post (url: string, path: string, cookie: string, body?: object): Promise<Response> {
  return fetch(url + path, {
    method: 'POST',
    headers: { cookie: `${COOKIE}=${cookie}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
}

export interface Stream {
  response: Response
  /** Resolves with everything read once `pattern` matches it, or once the stream ends (then `ended` is true). */
  until (pattern: RegExp): Promise<{ text: string, ended: boolean }>
  cancel (): void
}

/** `headers` replace the default `Authorization: Bearer` (a DPoP-bound token sends its own, and a proof). */
export async function openStream (t: Test, url: string, accessToken: string, headers?: Record<string, string>): Promise<Stream> {
  const abort = new AbortController()
  t.teardown(() => abort.abort())
  const response = await fetch(url + '/auth/events', { headers: headers ?? { authorization: `Bearer ${accessToken}` }, signal: abort.signal })
  let text = ''
  let ended = false
  const waiters = new Set<() => void>()
  if (response.status === 200) {
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder();
    (async () => {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        text += decoder.decode(value, { stream: true })
        for (const waiter of [...waiters]) waiter()
      }
    })().catch(() => {}).finally(() => {
      ended = true
      for (const waiter of [...waiters]) waiter()
    })
  }
  return {
    response,
    until: (pattern) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the stream did not show ${pattern} within ${WAIT} ms: ${JSON.stringify(text)}`)), WAIT)
      const check = (): void => {
        if (pattern.test(text) || ended) {
          clearTimeout(timer)
          waiters.delete(check)
          resolve({ text, ended })
        }
      }
      waiters.add(check)
      check()
    }),
    cancel: () => abort.abort()
  }
}

export const ENDED = /event: session-ended\ndata: (.*)\n\n/

export function reasonOf (text: string): string | undefined {
  const match = ENDED.exec(text)
  return match === null ? undefined : JSON.parse(match[1]).reason
}
