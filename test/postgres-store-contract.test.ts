import { createServer } from 'node:net'
import t, { type Test } from 'tap'
import { PostgresStore } from '../lib/index.js'
import { storeContract } from '../lib/testing/store-contract.js'
import { postgresPool, requirePostgres, testSchema } from './helpers/postgres.js'

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

t.test('PostgresStore keeps the store contract', async (t) => {
  if (!await requirePostgres(t)) return
  const schema = await testSchema(t, __filename)
  const table = `${schema}.refresh_auth_sessions`
  const pool = postgresPool(t)
  await new PostgresStore({ pool, table, cleanupInterval: 0 }).migrate()
  const deadPool = postgresPool(t, { connectionString: `postgres://postgres@127.0.0.1:${await closedPort()}/test` })

  t.test('the store contract battery (with the per-user limit, replacement, revokeOtherSessions and the feed)', async (t) => {
    storeContract({
      test: tapTest(t),
      createStore: () => new PostgresStore({ pool, table }),
      // another instance of the app: its own store object and its own pool on the same database
      createPeer: () => new PostgresStore({ pool: postgresPool(t), table }),
      destroyStore: (store) => store.close(),
      isStored: async (_store, session) => (await pool.query(`SELECT 1 FROM ${table} WHERE session_id = $1`, [session.sessionId])).rowCount === 1,
      sweep: async (store) => await store.cleanup(),
      createFailingStore: () => new PostgresStore({ pool: deadPool, table, timeout: 200, cleanupInterval: 0 }),
      concurrency: 100,
      loginConcurrency: 20
    })
  })
})
