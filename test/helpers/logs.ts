import Fastify, { type FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import type { Test } from 'tap'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'

export interface LogLine { level: number, msg: string, [key: string]: unknown }

/** Pino levels. */
export const WARN = 40
export const ERROR = 50

/** A logger option writing JSON lines into `lines`, and the raw text of everything logged. */
export function captureLogs (): { logger: { level: string, stream: Writable }, lines: LogLine[], text: () => string } {
  const lines: LogLine[] = []
  const raw: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) {
        if (line.length === 0) continue
        raw.push(line)
        lines.push(JSON.parse(line) as LogLine)
      }
      done()
    }
  })
  return { logger: { level: 'trace', stream }, lines, text: () => raw.join('\n') }
}

/** `buildApp` with a logger whose lines the test reads. */
export async function buildLoggedApp (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}, setup?: (app: FastifyInstance) => void | Promise<void>) {
  const logs = captureLogs()
  const app = Fastify({ logger: logs.logger })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, ...options } as FastifyRefreshAuthOptions)
  app.get('/private', { preHandler: app.authenticate }, async (request) => ({ user: request.user }))
  if (setup !== undefined) await setup(app)
  await app.ready()
  t.teardown(() => app.close())
  return { app, ...logs }
}
