import Fastify from 'fastify'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { PostgresStore } from '../lib/index.js'
import type { SessionRecord } from '../lib/store.js'
import { tableNames } from '../lib/stores/postgres-sql.js'
import { storeContract } from '../lib/testing/store-contract.js'
import { SECRET, USER, logout, refresh, refreshCookie, verifyCredentials } from './helpers/app.js'
import { POSTGRES_URL, postgresPool, requirePostgres, testSchema } from './helpers/postgres.js'

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file

/** The battery's tests as tap subtests: the battery throws (node:assert) on failure. */
function tapTest (parent: Test) {
  return (name: string, fn: () => Promise<void>) => parent.test(name, async (t) => {
    await fn()
    t.pass('the store keeps the contract')
  })
}

/** Whether `pool.end()` resolves within a second: nothing of the store holds a client any more. */
async function endsWithinASecond (pool: pg.Pool): Promise<boolean> {
  return await Promise.race([pool.end().then(() => true), sleep(1000).then(() => false)])
}

/** A port nothing listens on. */
const BATTERY_TIMEOUT = 30_000

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
  const { sessions } = tableNames(table)
  const isStored = async (_store: PostgresStore, session: SessionRecord): Promise<boolean> =>
    (await pool.query(`SELECT 1 FROM ${sessions} WHERE session_id = $1`, [session.sessionId])).rows.length === 1
  const deadPool = postgresPool(t, { connectionString: `postgres://postgres@127.0.0.1:${await closedPort()}/test` })

  t.test('the store contract battery (with the per-user limit, replacement, revokeOtherSessions and the feed)', async (t) => {
    storeContract({
      test: tapTest(t),
      // the battery checks behaviour, not deadlines: 100 parallel rotations queue for a pool of 10, which on a
      // busy machine can outlast the default 2 s and answer 503 (tested in postgres-store.test.ts)
      createStore: () => new PostgresStore({ pool, table, timeout: BATTERY_TIMEOUT }),
      // another instance of the app: its own store object and its own pool on the same database
      createPeer: () => new PostgresStore({ pool: postgresPool(t), table, timeout: BATTERY_TIMEOUT }),
      destroyStore: (store) => store.close(),
      isStored,
      sweep: (store) => store.cleanup(),
      createFailingStore: () => new PostgresStore({ pool: deadPool, table, timeout: 200, cleanupInterval: 0 }),
      concurrency: 100,
      loginConcurrency: 20
    })
  })

  // issue 20 #16: the battery, and an app, let go of the host's pool once they are done
  t.test('after the battery run as an outside suite would (no destroyStore), the pool ends within a second', async (t) => {
    const own = new pg.Pool({ connectionString: POSTGRES_URL })
    await new Promise<void>((resolve) => {
      storeContract({
        test: (name, fn) => { t.test(name, async (t) => { await fn(); t.pass('the store keeps the contract') }) },
        createStore: () => new PostgresStore({ pool: own, table }),
        createPeer: () => new PostgresStore({ pool: own, table }),
        isStored,
        sweep: (store) => store.cleanup(),
        concurrency: 20,
        loginConcurrency: 5,
        modelSteps: 30
      })
      t.test('(the battery is done)', async () => { resolve() })
    })
    t.ok(await endsWithinASecond(own), 'pool.end() resolved')
  })

  t.test('after app.close(), the pool ends within a second', async (t) => {
    const own = new pg.Pool({ connectionString: POSTGRES_URL })
    const app = Fastify()
    await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store: new PostgresStore({ pool: own, table }) })
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
    const refreshed = await refresh(app, refreshCookie(login))
    t.equal((await logout(app, refreshCookie(refreshed))).statusCode, 204)
    await app.close()
    t.ok(await endsWithinASecond(own), 'pool.end() resolved')
  })
})
