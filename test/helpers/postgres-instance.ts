// One app instance for the multi-instance tests: a Fastify app with the plugin on a PostgresStore, run as a child
// process. Argument: JSON { table, url, options? } (options: more plugin options). Serves the instance routes
// besides the plugin's. Sends { port } over IPC once listening; closes on any message.
import Fastify from 'fastify'
import pg from 'pg'
import fastifyRefreshAuth, { PostgresStore, type FastifyRefreshAuthOptions } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'
import { instanceRoutes } from './instance-routes.js'

async function main (): Promise<void> {
  const { table, url, options } = JSON.parse(process.argv[2]) as { table: string, url: string, options?: Partial<FastifyRefreshAuthOptions> }
  // as docs/postgres.md makes it: no 'error' listener of the app's, the store's must do
  const pool = new pg.Pool({ connectionString: url })
  const store = new PostgresStore({ pool, table })
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store, ...options })
  instanceRoutes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  process.on('message', async () => {
    await app.close()
    await store.close()
    await pool.end()
    process.disconnect()
  })
  process.send?.({ port })
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
