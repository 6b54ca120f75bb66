// Type tests of PostgresStore (tstyche): a node-postgres Pool is accepted as it is, and nothing of pg leaks
// into the package's own declarations.
import pg from 'pg'
import { describe, expect, test } from 'tstyche'
import { PostgresStore, type PostgresPool, type SessionStore } from 'fastify-refresh-auth'
import { type RevocationWatch } from 'fastify-refresh-auth/store'

const pool = new pg.Pool({ connectionString: 'postgres://localhost/app' })

describe('PostgresStore', () => {
  test('takes a pg Pool, and requires a pool', () => {
    expect<PostgresPool>().type.toBeAssignableFrom(pool)
    expect<SessionStore>().type.toBeAssignableFrom(new PostgresStore({ pool }))
    expect<SessionStore>().type.toBeAssignableFrom(new PostgresStore({ pool, table: 'auth.sessions', timeout: 1000, cleanupInterval: 0 }))
    expect(PostgresStore).type.not.toBeConstructableWith({ table: 'sessions' })
  })

  test('a pg Client is not a pool: its connect() resolves to nothing', () => {
    expect(PostgresStore).type.not.toBeConstructableWith({ pool: new pg.Client() })
  })

  test('implements every method of the store contract, the feed included', () => {
    const store = new PostgresStore({ pool })
    expect(store.migrate()).type.toBe<Promise<void>>()
    expect(store.cleanup()).type.toBe<Promise<{ sessions: number, revocations: number }>>()
    expect(store.watchRevocations({ revoked: () => {}, status: () => {} }, { retentionMs: 60_000 })).type.toBe<RevocationWatch>()
    expect(store.close()).type.toBe<Promise<void>>()
  })
})
