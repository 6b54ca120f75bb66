import Fastify, { type FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { PostgresStore } from '../lib/index.js'
import { SECRET, USER, refresh, refreshCookie, verifyCredentials } from './helpers/app.js'
import { postgresPool, proxiedPostgresPool, requirePostgres, testSchema } from './helpers/postgres.js'
import type { TcpProxy } from './helpers/tcp-proxy.js'

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file

const TIMEOUT = 500
// Generous: the point is that the answer comes from the store's timeout, not from TCP or pg giving up.
const ANSWER_BOUND = TIMEOUT + 1500

interface Setup {
  app: FastifyInstance
  proxy: TcpProxy
  /** A store on a direct connection, to look at the database behind the proxy's back. */
  direct: PostgresStore
}

async function setup (t: Test, table: string, options: { applicationName?: string, reuseInterval?: number } = {}): Promise<Setup> {
  // pg's defaults: no connection or query timeout of its own; the store's timeout must answer. As
  // docs/postgres.md makes it, with no 'error' listener of ours: the store's must do
  const { proxy, pool } = await proxiedPostgresPool(t, options.applicationName)
  const store = new PostgresStore({ pool, table, timeout: TIMEOUT, cleanupInterval: 0 })
  const app = Fastify()
  await app.register(fastifyRefreshAuth, {
    secret: SECRET,
    verifyCredentials,
    store,
    refreshToken: { reuseInterval: options.reuseInterval ?? 0 }
  })
  await app.ready()
  t.teardown(async () => {
    await app.close()
    await store.close()
    await pool.end()
  })
  return { app, proxy, direct: new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 }) }
}

function sessionIdOf (token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid
}

async function sessionIds (store: PostgresStore): Promise<string[]> {
  return (await store.listUserSessions('42', Date.now())).map(session => session.sessionId).sort()
}

async function timed<T> (operation: () => Promise<T>): Promise<[T, number]> {
  const start = Date.now()
  const result = await operation()
  return [result, Date.now() - start]
}

function loginRequest (app: FastifyInstance) {
  return app.inject({ method: 'POST', url: '/auth/login', payload: USER })
}

/** Logs in until the store answers (bounded): on a busy machine a first login may outlast the short timeout. */
async function loginOnceBack (app: FastifyInstance): Promise<string> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const response = await loginRequest(app)
    if (response.statusCode === 200) return refreshCookie(response) as string
    await sleep(100)
  }
  throw new Error('no login went through within the bound')
}

/** Refreshes until the store answers again (bounded), returning the first answer that is not a 503. */
async function refreshOnceBack (app: FastifyInstance, token: string) {
  for (let attempt = 0; attempt < 40; attempt++) {
    const response = await refresh(app, token)
    if (response.statusCode !== 503) return response
    await sleep(100)
  }
  throw new Error('PostgreSQL did not come back within the bound')
}

async function assertFailsClosed (t: Test, app: FastifyInstance, token: string): Promise<void> {
  const [login, loginTime] = await timed(() => loginRequest(app))
  t.equal(login.statusCode, 503, 'login answers 503')
  t.equal(login.json().code, 'FST_REFRESH_AUTH_STORE_UNAVAILABLE')
  t.equal(login.headers['set-cookie'], undefined, 'login issues no cookie')
  t.notOk('access_token' in login.json(), 'login issues no access token')
  t.ok(loginTime < ANSWER_BOUND, `login answered in ${loginTime}ms`)

  const [refreshed, refreshTime] = await timed(() => refresh(app, token))
  t.equal(refreshed.statusCode, 503, 'refresh answers 503')
  t.equal(refreshed.headers['set-cookie'], undefined, 'refresh issues nothing (and clears nothing)')
  t.ok(refreshTime < ANSWER_BOUND, `refresh answered in ${refreshTime}ms`)
}

t.test('PostgresStore behind a faulty network', async (t) => {
  if (!await requirePostgres(t)) return
  const schema = await testSchema(t, __filename)
  const admin = postgresPool(t)
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  t.afterEach(async () => {
    // late replies and rejections of abandoned queries settle after the test's last request
    await sleep(200)
    t.same(unhandled, [], 'no unhandled rejection')
  })

  t.test('the connection is cut: 503 in time, nothing issued, nothing applied once PostgreSQL is back', async (t) => {
    const table = `${schema}.cut`
    await new PostgresStore({ pool: admin, table, cleanupInterval: 0 }).migrate()
    const { app, proxy, direct } = await setup(t, table)
    const token = await loginOnceBack(app)
    // a login answered 503 on the way, its COMMIT's reply late, may have left one: the fault's must add none
    const sessionsBefore = await sessionIds(direct)

    proxy.cut()
    await assertFailsClosed(t, app, token)
    await sleep(TIMEOUT)
    proxy.restore()

    const after = await refreshOnceBack(app, token)
    t.equal(after.statusCode, 200, 'the session from before the fault still refreshes: no late rotation consumed it')
    t.same(await sessionIds(direct), sessionsBefore, 'the failed login left no session')
    t.ok(sessionsBefore.includes(sessionIdOf(token)))
  })

  t.test('the connection is blackholed, then delivers late: 503 in time, nothing applied late', async (t) => {
    const table = `${schema}.blackhole`
    await new PostgresStore({ pool: admin, table, cleanupInterval: 0 }).migrate()
    const { app, proxy, direct } = await setup(t, table)
    const token = await loginOnceBack(app)
    const sessionsBefore = await sessionIds(direct)

    proxy.blackhole()
    await assertFailsClosed(t, app, token)
    // the held messages reach PostgreSQL now, after their deadlines, and their replies come back late
    proxy.restore()
    await sleep(100)

    const after = await refreshOnceBack(app, token)
    t.equal(after.statusCode, 200, 'the session from before the fault still refreshes: no late rotation consumed it')
    t.same(await sessionIds(direct), sessionsBefore, 'the failed login left no session')
    t.ok(sessionsBefore.includes(sessionIdOf(token)))
    t.equal((await refresh(app, refreshCookie(after))).statusCode, 200, 'and keeps rotating')
  })

  t.test('the server terminates the pool\'s connections in the middle of a run', async (t) => {
    const table = `${schema}.terminate`
    await new PostgresStore({ pool: admin, table, cleanupInterval: 0 }).migrate()
    const applicationName = `fra-terminate-${process.pid}`
    // a client that lost a reply retries with the same token: the reuse interval answers it with the live one
    const { app, direct } = await setup(t, table, { applicationName, reuseInterval: 10 })
    const chains = await Promise.all(Array.from({ length: 8 }, async () => loginOnceBack(app)))
    const sessionsBefore = await sessionIds(direct)
    const statuses = new Map<number, number>()
    const load = { running: true }
    const run = async (index: number): Promise<void> => {
      for (let i = 0; i < 400 && load.running; i++) {
        const response = await refresh(app, chains[index])
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
        if (response.statusCode === 200) chains[index] = refreshCookie(response) as string
      }
    }
    const runs = chains.map((_, index) => run(index))
    let terminated = 0
    for (let round = 0; round < 5; round++) {
      await sleep(150)
      const { rows } = await admin.query('SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName])
      terminated += rows[0].n
    }
    load.running = false
    await Promise.all(runs)
    t.ok(terminated > 0, `${terminated} connections terminated`)
    t.same([...statuses.keys()].filter(status => status !== 200 && status !== 503), [], `only 200 and 503 (${JSON.stringify([...statuses])})`)
    t.ok((statuses.get(200) ?? 0) > 0, 'refreshes went through between the terminations')
    for (const [index, token] of chains.entries()) {
      t.equal((await refreshOnceBack(app, token)).statusCode, 200, `chain ${index} still refreshes`)
    }
    t.same(await sessionIds(direct), sessionsBefore, 'one session per chain: none forked, none lost')
  })
})
