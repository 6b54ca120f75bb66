import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { MemoryStore, RedisStore } from '../lib/index.js'
import { storeContract } from '../lib/testing/store-contract.js'
import { redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'
import { redisKeys } from './helpers/redis-keys.js'

// the battery on real servers, on a machine that may be busy

/** The battery's tests as tap subtests: the battery throws (node:assert) on failure. */
function tapTest (parent: Test) {
  return (name: string, fn: () => Promise<void>) => parent.test(name, async (t) => {
    await fn()
    t.pass('the store keeps the contract')
  })
}

/** A port nothing listens on. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

t.test('MemoryStore keeps the store contract', async (t) => {
  storeContract({
    test: tapTest(t),
    createStore: () => new MemoryStore(),
    // listed at the epoch: every session the store holds, expired or not
    isStored: async (store, session) => (await store.listUserSessions(session.userId, 0)).some(s => s.sessionId === session.sessionId),
    sweep: async (store) => { store.prune() },
    concurrency: 100
  })
})

t.test('RedisStore keeps the store contract', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const client = redisClient(t, prefix)
  const deadClients: Redis[] = []
  t.teardown(() => { for (const dead of deadClients) dead.disconnect() })
  const deadPort = await closedPort()
  storeContract({
    test: tapTest(t),
    createStore: () => new RedisStore({ client, prefix }),
    isStored: async (_store, session) => await client.exists(redisKeys(prefix).session(session.sessionId)) === 1,
    // another instance of the app: its own client and store object on the same Redis
    createPeer: () => new RedisStore({ client: redisClient(t, null), prefix }),
    // ioredis' defaults: offline queue on, reconnecting forever; the store's own timeout must answer
    createFailingStore: () => {
      const dead = new Redis({ host: '127.0.0.1', port: deadPort })
      dead.on('error', () => {})
      deadClients.push(dead)
      return new RedisStore({ client: dead, prefix, timeout: 200 })
    }
  })
})
