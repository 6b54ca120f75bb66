import { join } from 'node:path'
import t from 'tap'
import { PostgresStore } from '../lib/index.js'
import { USER } from './helpers/app.js'
import { eventually, startAppProcess } from './helpers/app-process.js'
import { POSTGRES_URL, postgresPool, requirePostgres, testSchema } from './helpers/postgres.js'

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file

const INSTANCE = join(__dirname, 'helpers', 'postgres-instance.ts')

t.test('two instances in separate processes share sessions through PostgreSQL', async (t) => {
  if (!await requirePostgres(t)) return
  const schema = await testSchema(t, __filename)
  const table = `${schema}.refresh_auth_sessions`
  const pool = postgresPool(t)
  await new PostgresStore({ pool, table, cleanupInterval: 0 }).migrate()
  const [a, b] = await Promise.all([
    // strict: these tests are about reuse
    startAppProcess(t, 'A', INSTANCE, { table, url: POSTGRES_URL, options: { refreshToken: { reuseInterval: 0 } } }),
    startAppProcess(t, 'B', INSTANCE, { table, url: POSTGRES_URL, options: { refreshToken: { reuseInterval: 0 } } })
  ])

  t.test('login on A, refresh on B, replay on A is detected', async (t) => {
    const login = await a.post('/auth/login', undefined, USER)
    t.equal(login.status, 200)
    const refreshed = await b.post('/auth/refresh', login.refreshToken)
    t.equal(refreshed.status, 200)
    t.ok(refreshed.refreshToken)
    const replay = await a.post('/auth/refresh', login.refreshToken)
    t.equal(replay.status, 401, 'the rotated token is refused on A')
    t.equal((await b.post('/auth/refresh', refreshed.refreshToken)).status, 401, 'and its family is revoked everywhere')
  })

  t.test('50 concurrent refreshes of one token over A and B: exactly one succeeds', async (t) => {
    const login = await a.post('/auth/login', undefined, USER)
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).post('/auth/refresh', login.refreshToken)))
    const statuses = results.map(result => result.status)
    t.equal(statuses.filter(status => status === 200).length, 1, 'one success')
    t.equal(statuses.filter(status => status === 401).length, 49, 'the others are refused')
  })

  t.test('logout on B ends the session for A; logout everywhere on B ends the sessions started on A', async (t) => {
    const first = await a.post('/auth/login', undefined, USER)
    t.equal((await b.post('/auth/logout', first.refreshToken)).status, 204)
    t.equal((await a.post('/auth/refresh', first.refreshToken)).status, 401)

    const second = await a.post('/auth/login', undefined, USER)
    const third = await a.post('/auth/login', undefined, USER)
    t.equal((await b.post('/auth/logout', second.refreshToken, { all: true })).status, 204)
    t.equal((await a.post('/auth/refresh', third.refreshToken)).status, 401)
  })

  t.test('a logout on B makes A refuse the session\'s access token within a couple of seconds', async (t) => {
    const session = await a.post('/auth/login', undefined, USER)
    t.equal(await a.private(session.accessToken as string), 200)
    t.equal((await b.post('/auth/logout', session.refreshToken)).status, 204)
    t.ok(await eventually(async () => await a.private(session.accessToken as string) === 401), 'refused on A')
  })

  t.test('the sessions are rows of the table, and none is left once they ended', async (t) => {
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".refresh_auth_sessions`)
    t.equal(rows[0].n, 0, 'every session of these tests ended')
    const revocations = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".refresh_auth_sessions_revocations`)
    t.ok(revocations.rows[0].n >= 4, 'each ending was announced on the feed')
  })
})
