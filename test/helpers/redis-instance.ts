// One app instance for the multi-instance tests: a Fastify app with the plugin on a RedisStore, run as a child
// process. Argument: JSON { prefix, redisUrl }. Sends { port } over IPC once listening; closes on 'close'.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import fastifyRefreshAuth, { RedisStore } from '../../lib/index.js'
import { SECRET, verifyCredentials } from './app.js'

async function main (): Promise<void> {
  const { prefix, redisUrl } = JSON.parse(process.argv[2]) as { prefix: string, redisUrl: string }
  const client = new Redis(redisUrl)
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
