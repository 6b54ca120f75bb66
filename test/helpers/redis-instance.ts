// One app instance for the multi-instance tests: a Fastify app with the plugin on a RedisStore, run as a child
// process. Argument: JSON { prefix, redisUrl, options? } (options: more plugin options). Routes besides the
// plugin's: GET /private behind app.authenticate, POST /admin/revoke-user { userId } (revokeUserSessions).
// Sends { port } over IPC once listening; closes on 'close'.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import fastifyRefreshAuth, { RedisStore, type FastifyRefreshAuthOptions } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'

async function main (): Promise<void> {
  const { prefix, redisUrl, options } = JSON.parse(process.argv[2]) as { prefix: string, redisUrl: string, options?: Partial<FastifyRefreshAuthOptions> }
  const client = new Redis(redisUrl)
  client.on('error', () => {})
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store: new RedisStore({ client, prefix }), ...options })
  app.get('/private', { preHandler: app.authenticate }, async (request) => ({ sub: request.user?.sub }))
  app.post('/admin/revoke-user', async (request, reply) => {
    await app.refreshAuth.revokeUserSessions((request.body as { userId: string }).userId)
    return reply.code(204).send()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  process.on('message', async () => {
    await app.close()
    client.disconnect()
    process.disconnect()
  })
  process.send?.({ port })
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
