import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { PostgresStore } from '../lib/index.js'
import { USER } from './helpers/app.js'
import { startAppProcess, type AppProcess } from './helpers/app-process.js'
import { POSTGRES_URL, requirePostgres } from './helpers/postgres.js'

// Issue 20 #8: the server terminating the store's connections (a restart, a failover, an administrator) must
// never crash the app. The app runs in a process of its own, its pool made exactly as docs/postgres.md shows
// (no 'error' listener of its own), on a database of the test's own, so that terminating every backend of
// that database touches no other test's connections.

const INSTANCE = join(__dirname, 'helpers', 'postgres-instance.ts')

async function answer (instance: AppProcess, path: string, token?: string, body?: unknown): Promise<{ status: number, refreshToken?: string }> {
  try {
    return await instance.post(path, token, body)
  } catch {
    // the process is gone (or not listening): what a crash looks like from outside
    return { status: 0 }
  }
}

t.test('terminating every backend of the store\'s database under load leaves the app running', async (t) => {
  if (!await requirePostgres(t)) return
  const database = `fra_crash_${process.pid}`
  const admin = new pg.Client({ connectionString: POSTGRES_URL })
  admin.on('error', () => {})
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  await admin.query(`CREATE DATABASE ${database}`)
  t.teardown(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    await admin.end()
  })
  const url = new URL(POSTGRES_URL)
  url.pathname = `/${database}`
  const migrating = new pg.Pool({ connectionString: url.toString() })
  await new PostgresStore({ pool: migrating, table: 'refresh_auth_sessions', cleanupInterval: 0 }).migrate()
  await migrating.end()

  const app = await startAppProcess(t, 'app', INSTANCE, { table: 'refresh_auth_sessions', url: url.toString() })
  const chains: string[] = []
  for (let attempt = 0; attempt < 100 && chains.length < 6; attempt++) {
    const login = await answer(app, '/auth/login', undefined, USER)
    if (login.status === 200) chains.push(login.refreshToken as string)
  }
  t.equal(chains.length, 6, 'logged in')

  const statuses = new Map<number, number>()
  const load = { running: true }
  const run = async (index: number): Promise<void> => {
    for (let i = 0; i < 2000 && load.running; i++) {
      const response = await answer(app, '/auth/refresh', chains[index])
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
      if (response.status === 200) chains[index] = response.refreshToken as string
      if (response.status === 0) return
    }
  }
  const runs = chains.map((_, index) => run(index))
  let terminated = 0
  for (let round = 0; round < 6; round++) {
    // the pool's idle clients, the ones in use and the revocation feed's LISTEN client alike
    const { rows } = await admin.query('SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1', [database])
    terminated += rows[0].n
    await sleep(200)
  }
  load.running = false
  await Promise.all(runs)

  t.ok(terminated >= 6, `${terminated} backends terminated`)
  t.notOk(statuses.has(0), `the app never stopped answering (${JSON.stringify([...statuses])})`)
  t.same([...statuses.keys()].filter(status => status !== 200 && status !== 503), [], 'only 200 and 503')
  let after = 0
  for (let attempt = 0; attempt < 40 && after !== 200; attempt++) {
    after = (await answer(app, '/auth/login', undefined, USER)).status
    if (after !== 200) await sleep(100)
  }
  t.equal(after, 200, 'and it serves logins once PostgreSQL answers again')
})
