// One app instance for the cluster multi-instance tests: a Fastify app with the plugin on a RedisStore over an
// ioredis Cluster client, run as a child process. Argument: JSON { prefix, nodes }. Sends { port } over IPC once
// listening; closes on any message.
import Fastify from 'fastify'
import { Cluster, type ClusterNode } from 'ioredis'
import fastifyRefreshAuth, { RedisStore } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'

async function main (): Promise<void> {
  const { prefix, nodes } = JSON.parse(process.argv[2]) as { prefix: string, nodes: ClusterNode[] }
  const client = new Cluster(nodes)
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store: new RedisStore({ client, prefix }) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  process.on('message', async () => {
    await app.close()
    await client.quit()
    process.disconnect()
  })
  process.send?.({ port })
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
