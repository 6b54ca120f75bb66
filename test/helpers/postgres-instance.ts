// App instances for the multi-instance tests: a Fastify app with the plugin on a PostgresStore, run in a child
// process (instance-host.ts: one per process from the argument, or many on request). Config: JSON { table, url,
// options? } (options: more plugin options). Serves the instance routes besides the plugin's.
import Fastify from 'fastify'
import pg from 'pg'
import fastifyRefreshAuth, { PostgresStore, type FastifyRefreshAuthOptions } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'
import { serveInstances } from './instance-host.js'
import { instanceRoutes } from './instance-routes.js'

interface InstanceConfig { table: string, url: string, options?: Partial<FastifyRefreshAuthOptions> }

serveInstances<InstanceConfig>(async ({ table, url, options }) => {
  // as docs/postgres.md makes it: no 'error' listener of the app's, the store's must do
  const pool = new pg.Pool({ connectionString: url })
  const store = new PostgresStore({ pool, table })
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store, ...options })
  instanceRoutes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return {
    port,
    async close () {
      await app.close()
      await store.close()
      await pool.end()
    }
  }
})
