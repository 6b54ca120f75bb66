import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto'
import type { Test } from 'tap'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../../lib/index.js'

export const SECRET = 'test-secret-that-is-long-enough-0123456789'
export const USER = { username: 'alice', password: 'correct horse' }

/** The derivation the plugin uses, so tests can forge tokens with the right or wrong key. */
export function derivedKey (info: 'access-token HS256 v1' | 'refresh-token HS256 v1', secret: string = SECRET): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', secret, 'fastify-refresh-auth', info, 32)))
}

export async function verifyCredentials (request: { body: unknown }) {
  const body = request.body as { username?: unknown, password?: unknown } | undefined
  if (body?.username === USER.username && body?.password === USER.password) return { id: 42, email: 'alice@example.com' }
  return null
}

/** An app with the plugin and two protected routes, closed when the test ends. */
export async function buildApp (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}, setup?: (app: FastifyInstance) => void | Promise<void>): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, ...options } as FastifyRefreshAuthOptions)
  app.get('/private', { preHandler: app.authenticate }, async (request) => ({ user: request.user }))
  app.get('/me', async (request) => ({ user: await request.authenticate() }))
  if (setup !== undefined) await setup(app)
  await app.ready()
  t.teardown(() => app.close())
  return app
}

export interface ParsedCookie {
  name: string
  value: string
  attributes: Record<string, string | true>
}

/** The Set-Cookie headers of a response, parsed. */
export function setCookies (response: LightMyRequestResponse): ParsedCookie[] {
  const header = response.headers['set-cookie']
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [header]
  return lines.map(line => {
    const [pair, ...rest] = line.split(';').map(part => part.trim())
    const eq = pair.indexOf('=')
    const attributes: Record<string, string | true> = {}
    for (const attribute of rest) {
      const at = attribute.indexOf('=')
      if (at === -1) attributes[attribute.toLowerCase()] = true
      else attributes[attribute.slice(0, at).toLowerCase()] = attribute.slice(at + 1)
    }
    return { name: pair.slice(0, eq), value: decodeURIComponent(pair.slice(eq + 1)), attributes }
  })
}

export const COOKIE = '__Secure-refresh_token'

/** The refresh token a response set, or undefined. */
export function refreshCookie (response: LightMyRequestResponse, name = COOKIE): string | undefined {
  const cookie = setCookies(response).find(c => c.name === name)
  return cookie === undefined || cookie.value === '' ? undefined : cookie.value
}

export async function login (app: FastifyInstance, prefix = '/auth') {
  const response = await app.inject({ method: 'POST', url: `${prefix}/login`, payload: USER })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return { response, accessToken: response.json().access_token as string, refreshToken: refreshCookie(response) as string }
}

export function refresh (app: FastifyInstance, refreshToken: string | undefined, headers: Record<string, string> = {}, prefix = '/auth') {
  return app.inject({
    method: 'POST',
    url: `${prefix}/refresh`,
    headers: refreshToken === undefined ? headers : { ...headers, cookie: `${COOKIE}=${refreshToken}` }
  })
}

export function logout (app: FastifyInstance, refreshToken: string | undefined, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/auth/logout',
    headers: refreshToken === undefined ? headers : { ...headers, cookie: `${COOKIE}=${refreshToken}` }
  })
}

export function getPrivate (app: FastifyInstance, accessToken: string, url = '/private') {
  return app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${accessToken}` } })
}
