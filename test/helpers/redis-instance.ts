// App instances for the multi-instance tests: a Fastify app with the plugin on a RedisStore, run in a child
// process (instance-host.ts: one per process from the argument, or many on request). Config: JSON { prefix,
// redisUrl, options?, storeTimeout? } (options: more plugin options). Serves the instance routes besides the plugin's.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import fastifyRefreshAuth, { RedisStore, type FastifyRefreshAuthOptions } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'
import { serveInstances } from './instance-host.js'
import { instanceRoutes } from './instance-routes.js'

interface InstanceConfig { prefix: string, redisUrl: string, options?: Partial<FastifyRefreshAuthOptions>, storeTimeout?: number }

serveInstances<InstanceConfig>(async ({ prefix, redisUrl, options, storeTimeout }) => {
  const client = new Redis(redisUrl)
  // a test may cut this instance off Redis: the store's own timeout answers, the errors need no printing
  client.on('error', () => {})
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store: new RedisStore({ client, prefix, timeout: storeTimeout }), ...options })
  instanceRoutes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return {
    port,
    async close () {
      await app.close()
      client.disconnect()
    }
  }
})
