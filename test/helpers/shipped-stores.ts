import type { Test } from 'tap'
import { MemoryStore, PostgresStore, RedisStore, type SessionStore } from '../../lib/index.js'
import { postgresPool, requirePostgres, testSchema } from './postgres.js'
import { redisClient, requireRedis, uniquePrefix } from './redis.js'

/** Makes a store for one test on its real server, or null (the test then skips) when the server is missing. */
export type StoreFactory = (t: Test) => Promise<SessionStore | null>

// These stores serve behaviour tests, some with 20 concurrent logins of one user that queue for the user's
// slot: on a busy machine that can outlast the default 2 s deadline. Deadlines have tests of their own.
const BEHAVIOUR_TIMEOUT = 15_000

/**
 * The shared stores the project ships, each on its real server; `file` (the test's `__filename`) names the
 * Redis prefix and the PostgreSQL schema, so test files never share keys or tables.
 */
export function sharedStores (file: string): Array<[string, StoreFactory]> {
  return [
    ['RedisStore', async t => {
      if (!await requireRedis(t)) return null
      const prefix = uniquePrefix(file)
      return new RedisStore({ client: redisClient(t, prefix), prefix, timeout: BEHAVIOUR_TIMEOUT })
    }],
    ['PostgresStore', async t => {
      if (!await requirePostgres(t)) return null
      const schema = await testSchema(t, file)
      const store = new PostgresStore({ pool: postgresPool(t), table: `${schema}.refresh_auth_sessions`, cleanupInterval: 0, timeout: BEHAVIOUR_TIMEOUT })
      await store.migrate()
      t.teardown(() => store.close())
      return store
    }]
  ]
}

/** Every store the project ships: MemoryStore, then the shared ones. */
export function shippedStores (file: string): Array<[string, StoreFactory]> {
  return [
    ['MemoryStore', async t => {
      const store = new MemoryStore()
      t.teardown(() => store.close())
      return store
    }],
    ...sharedStores(file)
  ]
}

/** A custom store that never heard of `watchRevocations`, over a MemoryStore: revocation stays local. */
export function withoutFeed (inner: MemoryStore): SessionStore {
  return {
    create: (session, options) => inner.create(session, options),
    rotate: (request) => inner.rotate(request),
    present: (request) => inner.present(request),
    revoke: (sessionId) => inner.revoke(sessionId),
    revokeUser: (userId) => inner.revokeUser(userId),
    revokeOtherSessions: (userId, keepSessionId) => inner.revokeOtherSessions(userId, keepSessionId),
    listUserSessions: (userId, now) => inner.listUserSessions(userId, now)
  }
}
