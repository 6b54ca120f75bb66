// App instances for the cluster multi-instance tests: a Fastify app with the plugin on a RedisStore over an ioredis
// Cluster client, run in a child process (instance-host.ts: one per process from the argument, or many on
// request). Config: JSON { prefix, nodes, options? } (options: more plugin options). Serves the instance routes
// besides the plugin's.
import Fastify from 'fastify'
import { Cluster, type ClusterNode } from 'ioredis'
import fastifyRefreshAuth, { RedisStore, type FastifyRefreshAuthOptions } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'
import { serveInstances } from './instance-host.js'
import { instanceRoutes } from './instance-routes.js'

interface InstanceConfig { prefix: string, nodes: ClusterNode[], options?: Partial<FastifyRefreshAuthOptions> }

serveInstances<InstanceConfig>(async ({ prefix, nodes, options }) => {
  const client = new Cluster(nodes)
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store: new RedisStore({ client, prefix }), ...options })
  instanceRoutes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return {
    port,
    async close () {
      await app.close()
      await client.quit()
    }
  }
})
