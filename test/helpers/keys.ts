import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'

export interface KeyPair { privateKey: KeyObject, publicKey: KeyObject }

// Made once per test file: RSA generation is slow.
export const ec = (): KeyPair => generateKeyPairSync('ec', { namedCurve: 'P-256' })
export const rsa = (modulusLength = 2048): KeyPair => generateKeyPairSync('rsa', { modulusLength })

/** PEM strings of a key pair. */
export function pem (pair: KeyPair): { privateKey: string, publicKey: string } {
  return {
    privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }) as string
  }
}

/** An app with the plugin and a protected route; not started. */
export async function protectedApp (t: Test, options: Partial<FastifyRefreshAuthOptions>): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, options as FastifyRefreshAuthOptions)
  app.get('/private', { preHandler: app.authenticate }, async (request) => ({ user: request.user }))
  app.get('/me', async (request) => ({ user: await request.authenticate() }))
  t.teardown(() => app.close())
  return app
}

/** An auth server (login, refresh, logout) whose access tokens are signed with `keys`. */
export function authServer (t: Test, accessToken: FastifyRefreshAuthOptions['accessToken'], extra: Partial<FastifyRefreshAuthOptions> = {}) {
  return protectedApp(t, { secret: SECRET, verifyCredentials, accessToken, ...extra })
}

/** Decodes the protected header of a compact JWS. */
export function header (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString())
}
