// One app instance for the multi-instance tests: a Fastify app with the plugin on a RedisStore, run as a child
// process. Argument: JSON { prefix, redisUrl, options? } (options: more plugin options). Serves the instance
// routes besides the plugin's. Sends { port } over IPC once listening; closes on any message.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import fastifyRefreshAuth, { RedisStore, type FastifyRefreshAuthOptions } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'
import { instanceRoutes } from './instance-routes.js'

async function main (): Promise<void> {
  const { prefix, redisUrl, options, storeTimeout } = JSON.parse(process.argv[2]) as { prefix: string, redisUrl: string, options?: Partial<FastifyRefreshAuthOptions>, storeTimeout?: number }
  const client = new Redis(redisUrl)
  // a test may cut this instance off Redis: the store's own timeout answers, the errors need no printing
  client.on('error', () => {})
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store: new RedisStore({ client, prefix, timeout: storeTimeout }), ...options })
  instanceRoutes(app)
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
