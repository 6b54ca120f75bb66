import { basename } from 'node:path'
import pg from 'pg'
import type { Test } from 'tap'
import { TcpProxy } from './tcp-proxy.js'

export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/**
 * Null when PostgreSQL answers at POSTGRES_URL, else why not. Never null-and-skip in CI: when the CI
 * environment variable is set, a missing PostgreSQL is an error, not a skip.
 */
export async function postgresUnavailable (): Promise<string | null> {
  const probe = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 1000 })
  probe.on('error', () => {})
  try {
    await probe.connect()
    await probe.query('SELECT 1')
    return null
  } catch (err) {
    const reason = `no PostgreSQL answers at ${POSTGRES_URL} (${(err as Error).message}); start it (scripts/postgres.sh) or set POSTGRES_URL`
    if (process.env.CI) throw new Error(`PostgreSQL is required in CI: ${reason}`)
    return reason
  } finally {
    await probe.end().catch(() => {})
  }
}

/** Skips the whole file (saying why) when no PostgreSQL answers; returns true when the tests can run. */
export async function requirePostgres (t: Test): Promise<boolean> {
  const reason = await postgresUnavailable()
  if (reason === null) return true
  t.comment(`SKIPPED: the PostgreSQL tests of ${basename(t.name)} did not run: ${reason}`)
  t.plan(0, `PostgreSQL tests skipped: ${reason}`)
  return false
}

/** A pool on POSTGRES_URL (or `url`), ended when the test ends. */
export function postgresPool (t: Test, options: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, ...options })
  // a client the server terminated is dropped by the pool, which then emits this
  pool.on('error', () => {})
  t.teardown(() => pool.end())
  return pool
}

/**
 * A schema of its own for a test file (and process), so files running at once never meet; dropped with
 * everything in it when the test ends. Short, so that derived names stay within PostgreSQL's 63 bytes.
 */
export async function testSchema (t: Test, file: string): Promise<string> {
  const tag = basename(file).replace(/\.test\.ts$/, '').replace(/\W/g, '_').slice(0, 12)
  const schema = `fra_${tag}_${process.pid}`
  const admin = new pg.Client({ connectionString: POSTGRES_URL })
  admin.on('error', () => {})
  await admin.connect()
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await admin.query(`CREATE SCHEMA "${schema}"`)
  await admin.end()
  t.teardown(async () => {
    const cleaner = new pg.Client({ connectionString: POSTGRES_URL })
    cleaner.on('error', () => {})
    await cleaner.connect()
    await cleaner.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await cleaner.end()
  })
  return schema
}

/**
 * A pg Pool that reaches PostgreSQL through a TCP proxy the test controls (cut, blackholed, held), with pg's
 * defaults otherwise and no 'error' listener of the test's own; the proxy closes with the test.
 */
export async function proxiedPostgresPool (t: Test, applicationName?: string): Promise<{ proxy: TcpProxy, pool: pg.Pool }> {
  const url = new URL(POSTGRES_URL)
  const proxy = await new TcpProxy(url.hostname, Number(url.port || 5432)).listen()
  t.teardown(() => proxy.close())
  const proxied = new URL(POSTGRES_URL)
  proxied.hostname = '127.0.0.1'
  proxied.port = String(proxy.port)
  return { proxy, pool: new pg.Pool({ connectionString: proxied.toString(), application_name: applicationName }) }
}
