// One app instance for the multi-instance tests: a Fastify app with the plugin on a PostgresStore, run as a child
// process. Argument: JSON { table, url }. Sends { port } over IPC once listening; closes on any message.
import Fastify from 'fastify'
import pg from 'pg'
import fastifyRefreshAuth, { PostgresStore } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'

async function main (): Promise<void> {
  const { table, url } = JSON.parse(process.argv[2]) as { table: string, url: string }
  const pool = new pg.Pool({ connectionString: url })
  pool.on('error', () => {})
  const store = new PostgresStore({ pool, table })
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store })
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
