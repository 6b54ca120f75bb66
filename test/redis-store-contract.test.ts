import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisStore } from '../lib/index.js'
import { redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'
import { runSessionModel } from './helpers/session-model.js'
import { storeContractV2 } from './helpers/store-contract-v2.js'

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file
t.setTimeout(120_000)

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

t.test('RedisStore keeps store contract v2 (create options, present, revokeOtherSessions, the feed)', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const client = redisClient(t, prefix)
  const deadClients: Redis[] = []
  t.teardown(() => { for (const dead of deadClients) dead.disconnect() })
  const deadPort = await closedPort()
  storeContractV2({
    test: tapTest(t),
    createStore: () => new RedisStore({ client, prefix }),
    // another instance of the app: its own client and store object on the same Redis
    createPeer: () => new RedisStore({ client: redisClient(t, null), prefix }),
    createFailingStore: () => {
      const dead = new Redis({ host: '127.0.0.1', port: deadPort })
      dead.on('error', () => {})
      deadClients.push(dead)
      return new RedisStore({ client: dead, prefix, timeout: 200 })
    },
    concurrency: 50
  })
})

t.test('RedisStore follows the reference model of rotation, reuse, revocation and limits', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename) + 'model:'
  const store = new RedisStore({ client: redisClient(t, prefix), prefix })
  for (const seed of [1, 2, 3, 20261201]) {
    t.test(`seed ${seed}`, async (t) => {
      const tally = await runSessionModel({ store, seed, steps: 250 })
      t.ok(Object.keys(tally).length === 6, `every kind of operation ran: ${JSON.stringify(tally)}`)
    })
  }
})
