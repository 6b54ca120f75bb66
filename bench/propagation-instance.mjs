// One app instance of the propagation benchmark, in its own process: `node bench/propagation-instance.mjs
// <JSON { prefix, redisUrl }>`. The plugin on a RedisStore, and GET / behind app.authenticate. Sends
// { port } over IPC once listening; closes on any message.
import Fastify from 'fastify'
import fastifyRefreshAuth, { RedisStore } from '../dist/esm/index.js'

const { prefix, redisUrl } = JSON.parse(process.argv[2])
const { Redis } = await import('ioredis')
const client = new Redis(redisUrl)
const app = Fastify()
await app.register(fastifyRefreshAuth, {
  secret: 'benchmark-secret-that-is-long-enough-0123456789',
  verifyCredentials: () => ({ id: 'bench-user' }),
  store: new RedisStore({ client, prefix })
})
app.get('/', { preHandler: app.authenticate }, async () => ({ hello: 'world' }))
await app.listen({ host: '127.0.0.1', port: 0 })
process.send({ port: app.server.address().port })
process.on('message', async () => {
  await app.close()
  await client.quit()
  process.exit(0)
})
