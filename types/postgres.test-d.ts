// Type-level tests of PostgresStore: a node-postgres Pool is accepted as it is, nothing of pg leaks into the API.
import pg from 'pg'
import { PostgresStore, type PostgresPool, type PostgresStoreOptions, type SessionStore } from 'fastify-refresh-auth'

function expectType<T> (value: T): T { return value }

const pool = new pg.Pool({ connectionString: 'postgres://localhost/app' })
expectType<PostgresPool>(pool)
expectType<SessionStore>(new PostgresStore({ pool }))
expectType<SessionStore>(new PostgresStore({ pool, table: 'auth.sessions', timeout: 1000, cleanupInterval: 0 }))
// @ts-expect-error a pool is required
expectType<PostgresStore>(new PostgresStore({ table: 'sessions' }))
// @ts-expect-error a pg Client is not a pool: its connect() resolves to nothing
expectType<PostgresStore>(new PostgresStore({ pool: new pg.Client() }))

const options: PostgresStoreOptions = { pool, table: 'sessions' }

export async function setup (): Promise<void> {
  const store = new PostgresStore(options)
  await store.migrate()
  expectType<{ sessions: number, revocations: number }>(await store.cleanup())
  const watch = store.watchRevocations({ revoked: (ids: readonly string[], at: number) => { expectType<number>(at + ids.length) }, status: () => {} }, { retentionMs: 60_000 })
  await watch.close()
  await store.close()
}
