import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { PostgresStore, type PostgresPool } from '../lib/index.js'
import { StoreTimeoutError } from '../lib/store.js'
import { type RotateRequest, type SessionRecord } from '../lib/store.js'
import { buildStatements, schemaSql, tableNames } from '../lib/stores/postgres-sql.js'
import { ControlledPool } from './helpers/controlled-pool.js'
import { POSTGRES_URL, postgresPool, requirePostgres, testSchema } from './helpers/postgres.js'
import { DAY, newSession } from './helpers/sessions.js'
import { recorder, until } from '../lib/testing/feed-recorder.js'

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file

const RETENTION = { retentionMs: 10 * 60_000 }
const fakePool: PostgresPool = { connect: async () => { throw new Error('no database here') } }

function rotation (session: SessionRecord, presentedTokenId: string, overrides: Partial<RotateRequest> = {}): RotateRequest {
  const now = Date.now()
  return { sessionId: session.sessionId, presentedTokenId, nextTokenId: randomUUID(), now, nextExpiresAt: now + DAY, reuseIntervalMs: 0, ...overrides }
}

t.test('the constructor refuses unusable options', async (t) => {
  t.throws(() => new PostgresStore(undefined as never), /pool must be a pg Pool/)
  t.throws(() => new PostgresStore({ pool: null as never }), /pool must be a pg Pool/)
  t.throws(() => new PostgresStore({ pool: {} as never }), /pool must be a pg Pool/)
  for (const table of [42, '', 'a.b.c', '1sessions', 'sessions; DROP TABLE users', 'my"table', 'my table', 's.', '.t', 'x'.repeat(52), `${'s'.repeat(64)}.t`]) {
    t.throws(() => new PostgresStore({ pool: fakePool, table: table as string }), /table must be/, `table ${String(table).slice(0, 30)}`)
  }
  t.throws(() => new PostgresStore({ pool: fakePool, timeout: 5 }), /timeout must be a number of milliseconds/)
  t.throws(() => new PostgresStore({ pool: fakePool, timeout: Number.NaN }), /timeout must be a number of milliseconds/)
  t.throws(() => new PostgresStore({ pool: fakePool, timeout: '1s' as never }), /timeout must be a number of milliseconds/)
  t.throws(() => new PostgresStore({ pool: fakePool, cleanupInterval: -1 }), /cleanupInterval must be/)
  t.throws(() => new PostgresStore({ pool: fakePool, cleanupInterval: Infinity }), /cleanupInterval must be/)
  t.throws(() => new PostgresStore({ pool: fakePool, cleanupInterval: '60' as never }), /cleanupInterval must be/)
  const store = new PostgresStore({ pool: fakePool, table: 'x'.repeat(51), cleanupInterval: 0 })
  for (const retentionMs of [0, -1, Number.NaN, Infinity, '1m']) {
    t.throws(() => store.watchRevocations({ revoked () {}, status () {} }, { retentionMs: retentionMs as number }), /retentionMs must be a positive number/)
  }
  t.throws(() => store.watchRevocations({ revoked () {}, status () {} }, undefined as never), /retentionMs must be/)
  for (const maxSessionsPerUser of [0, 1.5, -1, Number.NaN]) {
    await t.rejects(store.create(newSession(Date.now()), { maxSessionsPerUser }), /maxSessionsPerUser must be a positive integer/)
  }
  await t.rejects(store.rotate(rotation(newSession(Date.now()), 'a')), /no database here/, 'a pool that fails rejects the operation with its error')
  await store.close()
})

t.test('names: quoted identifiers derived from the table option, a channel that fits', async (t) => {
  const plain = tableNames('refresh_auth_sessions')
  t.equal(plain.sessions, '"refresh_auth_sessions"')
  t.equal(plain.revocations, '"refresh_auth_sessions_revocations"')
  t.equal(plain.channel, 'refresh_auth_sessions_revocations')
  t.equal(plain.listenChannel, '"refresh_auth_sessions_revocations"')
  const qualified = tableNames('Auth.Sessions')
  t.equal(qualified.sessions, '"Auth"."Sessions"', 'used as written: quoted, so case is kept')
  t.equal(qualified.revocations, '"Auth"."Sessions_revocations"')
  t.same(qualified.relations, ['"Auth"."Sessions"', '"Auth"."Sessions_revocations"', '"Auth"."Sessions_user_idx"', '"Auth"."Sessions_expiry_idx"', '"Auth"."Sessions_rev_at_idx"'])
  t.equal(qualified.channel, 'Auth.Sessions_revocations')
  const long = tableNames(`${'s'.repeat(40)}.${'t'.repeat(40)}`)
  t.match(long.channel, /^refresh_auth_[0-9a-f]{32}$/, 'a channel past 63 bytes is a digest of the name')
  t.equal(tableNames(`${'s'.repeat(40)}.${'t'.repeat(40)}`).channel, long.channel, 'the same on every instance')
  t.not(tableNames(`${'s'.repeat(40)}.${'u'.repeat(40)}`).channel, long.channel)
  t.not(plain.lockNamespace, qualified.lockNamespace)
  t.ok(Number.isInteger(plain.lockNamespace) && Math.abs(plain.lockNamespace) < 2 ** 31)
  t.match(plain.migrationLockKey, /^-?\d+$/)
})

t.test('docs/postgres.md prints the SQL that migrate() runs for the default table', async (t) => {
  const doc = readFileSync(join(__dirname, '..', 'docs', 'postgres.md'), 'utf8')
  const blocks = [...doc.matchAll(/```sql\n([\s\S]*?)\n```/g)].map(match => match[1])
  t.same(blocks, [schemaSql(tableNames('refresh_auth_sessions'))])
  t.match(buildStatements(tableNames('refresh_auth_sessions')).migrate, blocks[0], 'inside the migration transaction')
})

t.test('on a real PostgreSQL', async (t) => {
  if (!await requirePostgres(t)) return
  const schema = await testSchema(t, __filename)
  const table = `${schema}.refresh_auth_sessions`
  const pool = postgresPool(t)
  const store = new PostgresStore({ pool, table, cleanupInterval: 0 })
  await store.migrate()
  t.teardown(() => store.close())
  const sql = buildStatements(tableNames(table))

  t.test('migrate: idempotent, several instances at once, nothing locked once migrated', async (t) => {
    const fresh = `${schema}.concurrent`
    const controlled = new ControlledPool(pool)
    const stores = Array.from({ length: 5 }, () => new PostgresStore({ pool: controlled, table: fresh, cleanupInterval: 0 }))
    await Promise.all(stores.map(s => s.migrate()))
    const { rows } = await pool.query(`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname LIKE 'concurrent%' ORDER BY c.relname`, [schema])
    t.same(rows.map(row => row.relname), ['concurrent', 'concurrent_expiry_idx', 'concurrent_pkey', 'concurrent_rev_at_idx', 'concurrent_revocations',
      'concurrent_revocations_id_seq', 'concurrent_revocations_pkey', 'concurrent_user_idx'], 'two tables, their keys and indexes, once')
    controlled.queries.length = 0
    await stores[0].migrate()
    t.same(controlled.queries, [sql.schemaExists.replaceAll('refresh_auth_sessions', 'concurrent')], 'a migrated database is only looked at')
    await t.resolves(stores[0].create(newSession(Date.now())))
  })

  t.test('migrate: a table made before DPoP gets its jkt column, and a bound session keeps its key', async (t) => {
    const older = `${schema}.before_dpop`
    await new PostgresStore({ pool, table: older, cleanupInterval: 0 }).migrate()
    await pool.query(`ALTER TABLE ${older} DROP COLUMN jkt`)
    const store = new PostgresStore({ pool, table: older, cleanupInterval: 0 })
    t.teardown(() => store.close())
    await store.migrate()
    const session = newSession(Date.now(), { jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' })
    await store.create(session)
    const rotated = await store.rotate({ sessionId: session.sessionId, presentedTokenId: session.tokenId, nextTokenId: 'next', now: Date.now(), nextExpiresAt: Date.now() + 60_000, reuseIntervalMs: 0 })
    t.match(rotated, { outcome: 'rotated', session: { jkt: session.jkt } })
  })

  t.test('migrate: a schema that does not exist rejects, and the client is closed rather than given back', async (t) => {
    const controlled = new ControlledPool(pool)
    const missing = new PostgresStore({ pool: controlled, table: `no_such_schema_${process.pid}.sessions`, cleanupInterval: 0 })
    await t.rejects(missing.migrate(), /schema .* does not exist/)
    t.same(controlled.releases, [true])
  })

  t.test('an unqualified table follows the search_path', async (t) => {
    const scoped = postgresPool(t, { options: `-c search_path=${schema}` })
    const plain = new PostgresStore({ pool: scoped, cleanupInterval: 0 })
    await plain.migrate()
    const heard = recorder()
    const watch = plain.watchRevocations(heard.listener, RETENTION)
    const session = newSession(Date.now())
    await plain.create(session)
    const { rows } = await pool.query(`SELECT user_id FROM "${schema}".refresh_auth_sessions WHERE session_id = $1`, [session.sessionId])
    t.same(rows, [{ user_id: session.userId }], 'in the schema of the search_path')
    await until(() => heard.statuses.includes('live'), 'live')
    await plain.revoke(session.sessionId)
    t.ok(heard.revoked.has(session.sessionId))
    await watch.close()
    await plain.close()
  })

  t.test('the least recently used goes first; between equals, the smaller session id', async (t) => {
    const now = Date.now()
    const userId = `user-${randomUUID()}`
    const sessions = ['b', 'a', 'c'].map(id => newSession(now, { userId, sessionId: `${id}-${randomUUID()}` }))
    for (const session of sessions) await store.create(session)
    const result = await store.create(newSession(now + 1, { userId }), { maxSessionsPerUser: 2 })
    t.same(result, { outcome: 'created', endedSessionIds: [sessions[1].sessionId, sessions[0].sessionId] })
  })

  t.test('values travel as parameters: quotes and SQL in ids and user agents are data', async (t) => {
    const now = Date.now()
    const session = newSession(now, { userId: "o'brien\"; DROP TABLE x; --", userAgent: "Mozilla/5.0 ('); DELETE FROM sessions; --) 😀", ip: '::1' })
    await store.create(session)
    const [listed] = await store.listUserSessions(session.userId, now)
    t.equal(listed.userAgent, session.userAgent)
    t.equal(listed.userId, session.userId)
    t.equal(listed.ip, '::1')
    await store.revokeUser(session.userId)
    t.same(await store.listUserSessions(session.userId, now), [])
  })

  t.test('a guarded statement checks both deadlines on the server: late to start, it changes nothing; late to end, it fails', async (t) => {
    const session = newSession(Date.now())
    await store.create(session)
    const client = await pool.connect()
    t.teardown(() => client.release())
    const serverNow = Number((await client.query(sql.serverNow)).rows[0].now)
    const now = Date.now()
    await client.query('BEGIN')
    const { rows } = await client.query(sql.rotate, [serverNow - 1000, serverNow + 60_000, session.sessionId, randomUUID(), now, now + DAY, session.tokenId, null])
    t.same(rows.map(row => [row.on_time, row.session_id]), [[false, null]], 'refused, and said so')
    const ended = await client.query(sql.endSessions, [serverNow - 1000, serverNow + 60_000, 'no-channel', [session.sessionId], 'revoke'])
    t.equal(ended.rows[0].on_time, false)
    const after = await client.query(`SELECT token_id FROM ${tableNames(table).sessions} WHERE session_id = $1`, [session.sessionId])
    t.same(after.rows, [{ token_id: session.tokenId }], 'not even within its own transaction')
    await client.query('ROLLBACK')
    // started in time, but its commit deadline has passed by the time it ends: on its own it never commits
    await t.rejects(client.query(sql.rotate, [serverNow + 60_000, serverNow - 1000, session.sessionId, randomUUID(), now, now + DAY, session.tokenId, null]), { code: '22012' })
    t.equal((await store.rotate(rotation(session, session.tokenId))).outcome, 'rotated', 'the session never rotated')
  })

  t.test('a statement held back past the timeout is refused when it arrives; the session still rotates', async (t) => {
    const session = newSession(Date.now())
    await store.create(session)
    const controlled = new ControlledPool(pool)
    controlled.beforeQuery = async (text) => { if (text === sql.rotate) await sleep(300) }
    const slow = new PostgresStore({ pool: controlled, table, timeout: 200, cleanupInterval: 0 })
    const err = await slow.rotate(rotation(session, session.tokenId)).catch((err: unknown) => err)
    t.ok(err instanceof StoreTimeoutError)
    t.equal((err as { code: string }).code, 'FST_REFRESH_AUTH_STORE_TIMEOUT')
    t.match((err as Error).message, /rotate timed out after 200ms/)
    await sleep(300)
    t.equal((await store.rotate(rotation(session, session.tokenId))).outcome, 'rotated', 'the late rotation took no effect')
  })

  t.test('past the deadline nothing more is sent, and a late statement is refused by the server', async (t) => {
    const session = newSession(Date.now())
    await store.create(session)
    const controlled = new ControlledPool(pool)
    const slow = new PostgresStore({ pool: controlled, table, timeout: 2000, cleanupInterval: 0 })
    let started = 0
    const attempt = async (operation: () => Promise<unknown>) => {
      controlled.queries.length = 0
      started = Date.now()
      return await operation().catch((err: unknown) => err)
    }
    const until = (ms: number) => sleep(Math.max(0, started + ms - Date.now()))
    const rotating = () => slow.rotate(rotation(session, session.tokenId))
    const ending = () => slow.present({ sessionId: session.sessionId, presentedTokenId: session.tokenId, now: Date.now(), reuseIntervalMs: 0, end: true })

    // the first reply (the server's clock) after the statements' start window (1500 ms): the rotation is never sent
    controlled.afterQuery = async (text) => { if (text === sql.serverNow) await until(1600) }
    t.match(await attempt(rotating), { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT', message: /after its deadline/ })
    t.notOk(controlled.queries.includes(sql.rotate), 'the rotation was not sent')
    controlled.afterQuery = null

    // the rotation sent after its start window: the server's guard refuses it (the slow sample of its clock
    // above may even have it past the commit deadline: refused all the same)
    controlled.beforeQuery = async (text) => { if (text === sql.rotate) await until(1600) }
    t.match(await attempt(rotating), { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT', message: /after its deadline|stopped by PostgreSQL/ })

    // a token that is not the live one: its compare-and-set answered after the start window (or after the
    // timeout), no transaction is opened to judge it
    const stranger = () => slow.rotate(rotation(session, randomUUID()))
    controlled.beforeQuery = null
    controlled.afterQuery = async (text) => { if (text === sql.rotate) await until(1600) }
    t.match(await attempt(stranger), { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT', message: /after its deadline/ })
    t.notOk(controlled.queries.includes('BEGIN'), 'no transaction opened')
    controlled.afterQuery = async (text) => { if (text === sql.rotate) await until(2100) }
    t.match(await attempt(stranger), { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT', message: /rotate timed out after 2000ms/ })
    await until(2200)
    t.notOk(controlled.queries.includes('BEGIN'), 'none once the caller was told')

    // BEGIN answered after the start window: the session is not even looked at
    controlled.beforeQuery = null
    controlled.afterQuery = async (text) => { if (text === 'BEGIN') await until(1600) }
    t.match(await attempt(ending), { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT', message: /after its deadline/ })
    t.notOk(controlled.queries.includes(sql.sessionForUpdate), 'the session was not read')

    // the reply of the last statement comes after the commit window (1750 ms): no COMMIT
    controlled.afterQuery = async (text) => { if (text === sql.endSessions) await until(1850) }
    t.match(await attempt(ending), { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT', message: /after its deadline/ })
    t.notOk(controlled.queries.includes('COMMIT'))

    // a reply after the timeout itself: the caller has its answer, the next statement is never sent
    controlled.afterQuery = async (text) => { if (text === sql.sessionForUpdate) await until(2100) }
    t.match(await attempt(ending), { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT', message: /present timed out after 2000ms/ })
    await until(2200)
    t.notOk(controlled.queries.includes(sql.endSessions), 'the session was not ended')
    controlled.afterQuery = async (text) => { if (text === sql.endSessions) await until(2100) }
    t.match(await attempt(ending), { message: /present timed out/ })
    await until(2200)
    t.notOk(controlled.queries.includes('COMMIT'), 'no COMMIT once the caller was told')

    controlled.afterQuery = null
    t.equal((await slow.rotate(rotation(session, session.tokenId))).outcome, 'rotated', 'none of it took effect')
  })

  t.test('a COMMIT held back past the deadline finds its session ended: nothing commits late', async (t) => {
    const session = newSession(Date.now())
    await store.create(session)
    const controlled = new ControlledPool(pool)
    const held: Array<() => void> = []
    controlled.beforeQuery = async (text) => { if (text === 'COMMIT') await new Promise<void>(resolve => held.push(resolve)) }
    const slow = new PostgresStore({ pool: controlled, table, timeout: 200, cleanupInterval: 0 })
    const ended = slow.present({ sessionId: session.sessionId, presentedTokenId: session.tokenId, now: Date.now(), reuseIntervalMs: 0, end: true })
    await t.rejects(ended, { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT' })
    // the server has had its idle-in-transaction timeout by now; the COMMIT goes out late
    await sleep(100)
    for (const release of held) release()
    await sleep(100)
    t.equal((await store.rotate(rotation(session, session.tokenId))).outcome, 'rotated', 'the logout never committed')
  })

  t.test('a statement still running at the timeout is cancelled on the server', async (t) => {
    const session = newSession(Date.now())
    await store.create(session)
    // another transaction holds the session's row, so the rotation waits for its lock
    const holder = await pool.connect()
    t.teardown(() => holder.release())
    await holder.query('BEGIN')
    await holder.query(`SELECT 1 FROM ${tableNames(table).sessions} WHERE session_id = $1 FOR UPDATE`, [session.sessionId])
    const watcher = new pg.Client({ connectionString: POSTGRES_URL })
    await watcher.connect()
    t.teardown(() => watcher.end())
    const blocked = async () => (await watcher.query(`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%rotated AS (%'`)).rows[0].n as number
    // long enough that even a busy machine sends the statement before the deadline; the lock then outlasts it
    const quick = new PostgresStore({ pool, table, timeout: 2000, cleanupInterval: 0 })
    const rotating = quick.rotate(rotation(session, session.tokenId))
    let waiting = 0
    for (let i = 0; i < 100 && waiting === 0; i++) {
      waiting = await blocked()
      if (waiting === 0) await sleep(5)
    }
    t.equal(waiting, 1, 'the rotation waits for the lock')
    await t.rejects(rotating, { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT' })
    for (let i = 0; i < 100 && waiting > 0; i++) {
      waiting = await blocked()
      if (waiting > 0) await sleep(20)
    }
    t.equal(waiting, 0, 'the server no longer runs it')
    await holder.query('COMMIT')
    t.equal((await store.rotate(rotation(session, session.tokenId))).outcome, 'rotated', 'and it changed nothing')
  })

  t.test('pool exhaustion answers within the timeout; the client that comes late goes back to the pool', async (t) => {
    const small = postgresPool(t, { max: 1 })
    const narrow = new PostgresStore({ pool: small, table, timeout: 200, cleanupInterval: 0 })
    const session = newSession(Date.now())
    await narrow.create(session)
    const taken = await small.connect()
    const started = Date.now()
    const err = await narrow.rotate(rotation(session, session.tokenId)).catch((err: unknown) => err)
    t.ok(err instanceof StoreTimeoutError, 'a timeout, not a hang')
    // a generous bound: it tells a deadline from a hang, and holds on a busy machine
    t.ok(Date.now() - started < 10_000, 'answered in bounded time')
    taken.release()
    await until(() => small.idleCount === 1, 'the late client is given back unused')
    t.equal((await narrow.rotate(rotation(session, session.tokenId))).outcome, 'rotated', 'nothing was done with it')
  })

  t.test('cleanup deletes expired sessions and old revocations in batches, without touching live ones', async (t) => {
    const names = tableNames(`${schema}.cleanup`)
    const cleaner = new PostgresStore({ pool, table: `${schema}.cleanup`, cleanupInterval: 0 })
    await cleaner.migrate()
    const now = Date.now()
    await pool.query(`INSERT INTO ${names.sessions} (session_id, user_id, token_id, created_at, rotated_at, expires_at, absolute_expires_at)
      SELECT 'old-' || i, 'u', 't', $1::bigint, $1::bigint, CASE WHEN i % 2 = 0 THEN $1::bigint ELSE $2::bigint END, CASE WHEN i % 2 = 0 THEN $2::bigint ELSE $1::bigint END
      FROM generate_series(1, 10500) AS i`, [now - DAY, now + DAY])
    const live = newSession(now)
    await cleaner.create(live)
    const dayAgo = Date.now() - DAY - 60_000
    await pool.query(`INSERT INTO ${names.revocations} (session_ids, cause, revoked_at) VALUES (ARRAY['a'], 'revoke', $1), (ARRAY['b'], 'revoke', $2), (ARRAY['c'], 'revoke', $3)`,
      [dayAgo, Date.now() - 120_000, Date.now()])
    t.same(await cleaner.cleanup(now), { sessions: 10_000, revocations: 1 }, 'at most ten batches a run; revocations kept a day by default')
    t.same(await cleaner.cleanup(now), { sessions: 500, revocations: 0 }, 'the next run goes on')
    t.same(await cleaner.cleanup(now), { sessions: 0, revocations: 0 })
    // a watcher's retention sets how long revocations are kept
    const watch = cleaner.watchRevocations({ revoked () {}, status () {} }, { retentionMs: 60_000 })
    t.same(await cleaner.cleanup(now), { sessions: 0, revocations: 1 })
    await watch.close()
    t.equal((await cleaner.rotate(rotation(live, live.tokenId))).outcome, 'rotated', 'the live session is untouched')
    await cleaner.close()
  })

  t.test('the cleanup timer runs on its own, unref\'d, and close() stops it', async (t) => {
    const names = tableNames(`${schema}.timer`)
    const timed = new PostgresStore({ pool, table: `${schema}.timer`, cleanupInterval: 0.05 })
    await timed.migrate()
    const insertExpired = (id: string) => pool.query(`INSERT INTO ${names.sessions} (session_id, user_id, token_id, created_at, rotated_at, expires_at, absolute_expires_at)
      VALUES ($1, 'u', 't', 0, 0, 1, 1)`, [id])
    const count = async () => (await pool.query(`SELECT count(*)::int AS n FROM ${names.sessions}`)).rows[0].n as number
    await insertExpired('first')
    let left = 1
    for (let i = 0; i < 100 && left > 0; i++) {
      await sleep(20)
      left = await count()
    }
    t.equal(left, 0, 'deleted by the timer')
    await timed.close()
    await insertExpired('second')
    await sleep(200)
    t.equal(await count(), 1, 'no cleanup after close()')
    // a failing run is quietly tried again at the next tick
    const failing = new PostgresStore({ pool: fakePool, cleanupInterval: 0.01 })
    await sleep(50)
    await failing.close()
  })

  t.test('the feed: a revocation too long for a notification is read from the table', async (t) => {
    const peer = new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 })
    const heard = recorder()
    const watch = peer.watchRevocations(heard.listener, RETENTION)
    t.teardown(() => watch.close())
    await until(() => heard.statuses.includes('live'), 'live')
    const userId = `user-${randomUUID()}`
    const sessions = Array.from({ length: 250 }, () => newSession(Date.now(), { userId }))
    for (const session of sessions) await store.create(session)
    await store.revokeUser(userId)
    await until(() => sessions.every(s => heard.revoked.has(s.sessionId)), 'all 250 ids heard')
    t.ok(heard.calls.some(call => call.sessionIds.length === 250), 'in one revocation')
    t.same(heard.revoked.get(sessions[0].sessionId), { userId, cause: 'revoke-user' }, 'with its user and cause, read from the table')
  })

  t.test('the feed: notifications that are not ours are ignored', async (t) => {
    const controlled = new ControlledPool(pool)
    const watching = new PostgresStore({ pool: controlled, table, cleanupInterval: 0 })
    const heard = recorder()
    const watch = watching.watchRevocations(heard.listener, RETENTION)
    t.teardown(() => watch.close())
    await until(() => heard.statuses.includes('live'), 'live')
    // what the catch-up delivered (revocations of the tests before) is not the point here
    heard.calls.length = 0
    const { channel } = tableNames(table)
    for (const payload of ['not json', 'null', '{"id":"1"}', '{"id":1,"at":1,"ids":["x"]}', '{"id":"1","at":1,"ids":[1]}', '{"id":"1","at":1,"ids":"x"}',
      '{"id":"1","at":1,"ids":["x"]}', '{"id":"1","at":1,"ids":["x"],"c":"stolen","u":null}', '{"id":"1","at":1,"ids":["x"],"c":"revoke","u":5}',
      '{"id":"1","at":1,"ids":["x"],"c":"revoke"}']) {
      await pool.query('SELECT pg_notify($1, $2)', [channel, payload])
    }
    // a revocation id the table no longer holds (trimmed), and notifications on another channel
    await pool.query('SELECT pg_notify($1, $2)', [channel, '{"id":"999999999","at":1}'])
    controlled.notify({ channel: 'someone-else', payload: '{"id":"1","at":1,"ids":["intruder"]}' })
    controlled.notify({ channel })
    const session = newSession(Date.now())
    await pool.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ id: '1', at: 5, ids: [session.sessionId], u: session.userId, c: 'logout' })])
    await until(() => heard.revoked.has(session.sessionId), 'a well-formed notification is heard')
    t.same(heard.calls, [{ sessionIds: [session.sessionId], revokedAt: 5, notice: { userId: session.userId, cause: 'logout' } }], 'nothing else was')
  })

  t.test('the feed: a listener that throws does not break the store', async (t) => {
    const warnings: Error[] = []
    const onWarning = (warning: Error) => { warnings.push(warning) }
    process.on('warning', onWarning)
    t.teardown(() => { process.off('warning', onWarning) })
    const watch = store.watchRevocations({
      revoked () { throw new Error('listener bug') },
      status () { throw new Error('listener bug in status') }
    }, RETENTION)
    const session = newSession(Date.now())
    await store.create(session)
    await t.resolves(store.revoke(session.sessionId), 'the revocation resolves')
    await until(() => warnings.length >= 2, 'both errors became warnings')
    t.match(warnings.map(w => w.message), ['listener bug'])
    t.ok(warnings.some(w => w.message === 'listener bug in status'))
    await watch.close()
  })

  t.test('the feed: down when its connection is terminated, live again after a catch-up of what it missed', async (t) => {
    const feedPool = postgresPool(t, { application_name: `fra-feed-${process.pid}` })
    const controlled = new ControlledPool(feedPool)
    const watching = new PostgresStore({ pool: controlled, table, timeout: 500, cleanupInterval: 0 })
    const heard = recorder()
    const watch = watching.watchRevocations(heard.listener, RETENTION)
    t.teardown(() => watch.close())
    await until(() => heard.statuses.includes('live'), 'live')
    // no client for the feed for a while: what is revoked meanwhile must come from the table
    let reconnect = (): void => {}
    controlled.beforeConnect = () => new Promise<void>(resolve => { reconnect = resolve })
    await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`fra-feed-${process.pid}`])
    await until(() => heard.statuses.includes('down'), 'down')
    const missed = newSession(Date.now())
    await store.create(missed)
    await store.revoke(missed.sessionId)
    await sleep(50)
    t.notOk(heard.revoked.has(missed.sessionId), 'not heard while down')
    controlled.beforeConnect = null
    reconnect()
    await until(() => heard.statuses.length === 3, 'live again')
    t.same(heard.statuses, ['live', 'down', 'live'], 'no gap: the outage was shorter than the retention')
    t.ok(heard.revoked.has(missed.sessionId), 'the catch-up delivered what it missed')
  })

  t.test('the feed: gap after an outage that outlasted the retention', async (t) => {
    const feedPool = postgresPool(t, { application_name: `fra-gap-${process.pid}` })
    const controlled = new ControlledPool(feedPool)
    const watching = new PostgresStore({ pool: controlled, table, timeout: 300, cleanupInterval: 0 })
    const heard = recorder()
    // just past the catch-up overlap (30 s): an outage of a second outlasts it
    const watch = watching.watchRevocations(heard.listener, { retentionMs: 30_500 })
    t.teardown(() => watch.close())
    await until(() => heard.statuses.includes('live'), 'live')
    let failures = 0
    controlled.beforeConnect = async () => {
      failures++
      throw new Error('the database is away')
    }
    await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`fra-gap-${process.pid}`])
    await until(() => heard.statuses.includes('down'), 'down')
    await sleep(1500)
    t.ok(failures >= 2, `retried (${failures} attempts)`)
    t.same(heard.statuses, ['live', 'down'], 'down once for the whole outage')
    controlled.beforeConnect = null
    await until(() => heard.statuses.length === 3, 'back', 5000)
    t.same(heard.statuses, ['live', 'down', 'gap'])
  })

  t.test('the feed: a failed LISTEN, catch-up, heartbeat or table read loses the connection and reconnects', async (t) => {
    const controlled = new ControlledPool(postgresPool(t, { application_name: `fra-fail-${process.pid}` }))
    const watching = new PostgresStore({ pool: controlled, table, timeout: 200, cleanupInterval: 0 })
    let failOn: string | null = sql.listen
    controlled.beforeQuery = (text) => {
      if (text === failOn) {
        failOn = null
        throw new Error(`refused: ${text.slice(0, 20)}`)
      }
    }
    const heard = recorder()
    const watch = watching.watchRevocations(heard.listener, RETENTION)
    t.teardown(() => watch.close())
    await until(() => heard.statuses.includes('live'), 'live after a failed first LISTEN')
    t.same(heard.statuses, ['live'], 'nothing to report before the first live')
    failOn = sql.serverNow
    await until(() => heard.statuses.length === 3, 'a failed heartbeat: down, then live')
    t.same(heard.statuses, ['live', 'down', 'live'])
    failOn = sql.revocationById
    await pool.query('SELECT pg_notify($1, $2)', [tableNames(table).channel, '{"id":"1","at":1}'])
    await until(() => heard.statuses.length === 5, 'a failed table read: down, then live')
    failOn = sql.catchUp
    await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`fra-fail-${process.pid}`])
    await until(() => heard.statuses.length === 7, 'a failed catch-up is retried')
    t.same(heard.statuses.slice(5), ['down', 'live'])
    t.equal(failOn, null, 'the catch-up did fail once')
  })

  t.test('the feed: a heartbeat that finds a silent connection, or one answered after close, ends it', async (t) => {
    const controlled = new ControlledPool(pool)
    const watching = new PostgresStore({ pool: controlled, table, timeout: 100, cleanupInterval: 0 })
    const heard = recorder()
    let hold = false
    const held: Array<() => void> = []
    controlled.beforeQuery = async (text) => {
      if (hold && text === sql.serverNow) await new Promise<void>(resolve => held.push(resolve))
    }
    const watch = watching.watchRevocations(heard.listener, RETENTION)
    await until(() => heard.statuses.includes('live'), 'live')
    await until(() => controlled.queries.filter(text => text === sql.serverNow).length >= 2, 'a heartbeat answered, and the next one sent')
    hold = true
    await until(() => heard.statuses.includes('down'), 'a heartbeat with no answer within the timeout')
    await until(() => heard.statuses.length === 3, 'live again')
    // the next heartbeat is held until the watch is closed
    await until(() => held.length === 2, 'the next heartbeat is under way')
    const closed = watch.close()
    hold = false
    await closed
    for (const release of held) release()
    await sleep(50)
    t.same(heard.statuses, ['live', 'down', 'live'], 'nothing after close')
  })

  t.test('the feed: close() while connecting gives the client back; close() on a dead connection resolves', async (t) => {
    const small = postgresPool(t, { max: 2 })
    const controlled = new ControlledPool(small)
    let connect = (): void => {}
    controlled.beforeConnect = () => new Promise<void>(resolve => { connect = resolve })
    const watching = new PostgresStore({ pool: controlled, table, timeout: 1000, cleanupInterval: 0 })
    const heard = recorder()
    const watch = watching.watchRevocations(heard.listener, RETENTION)
    const closed = watch.close()
    connect()
    await closed
    t.equal(small.idleCount, small.totalCount, 'every client is back in the pool')
    t.same(heard.statuses, [], 'never live')

    controlled.beforeConnect = null
    const second = watching.watchRevocations(heard.listener, RETENTION)
    await until(() => heard.statuses.includes('live'), 'live')
    controlled.beforeQuery = (text) => { if (text === sql.unlisten) throw new Error('gone') }
    await second.close()
    await until(() => small.totalCount === 0, 'the client that could not UNLISTEN is closed, not reused')

    // the pool never answers: the feed gives up the attempt at its timeout and retries
    const exhausted = postgresPool(t, { max: 1 })
    const blocker = await exhausted.connect()
    const starved = new PostgresStore({ pool: exhausted, table, timeout: 100, cleanupInterval: 0 })
    const third = starved.watchRevocations(heard.listener, RETENTION)
    await sleep(250)
    blocker.release()
    await until(() => heard.statuses.length === 2, 'live once a client is free')
    await third.close()
    await until(() => exhausted.idleCount === 1, 'one client, back in the pool')
  })

  t.test('the feed: losses and close() in the middle of a catch-up or a connection attempt', async (t) => {
    const controlled = new ControlledPool(pool)
    const watching = new PostgresStore({ pool: controlled, table, timeout: 1000, cleanupInterval: 0 })
    const heard = recorder()
    let holdCatchUp: Promise<void> | null = null
    let releaseCatchUp = (): void => {}
    const hold = () => { holdCatchUp = new Promise<void>(resolve => { releaseCatchUp = resolve }) }
    controlled.afterQuery = async (text) => { if (text === sql.catchUp && holdCatchUp !== null) await holdCatchUp }
    const latest = () => controlled.clients[controlled.clients.length - 1].raw

    // the connection ends while its catch-up's answer is on its way: the answer is dropped
    hold()
    const first = watching.watchRevocations(heard.listener, RETENTION)
    await until(() => controlled.queries.includes(sql.catchUp), 'catching up')
    latest().emit('end')
    holdCatchUp = null
    releaseCatchUp()
    await until(() => heard.statuses.includes('live'), 'live on the next connection')
    t.equal(controlled.clients.length, 2, 'a second connection')
    await first.close()

    // the connection errors before its catch-up is sent: the catch-up then fails on the closed client
    let sendCatchUp = (): void => {}
    controlled.beforeQuery = async (text) => {
      if (text === sql.catchUp) await new Promise<void>(resolve => { sendCatchUp = resolve })
    }
    controlled.queries.length = 0
    const early = watching.watchRevocations(heard.listener, RETENTION)
    await until(() => controlled.queries.includes(sql.catchUp), 'about to catch up')
    controlled.beforeQuery = null
    latest().emit('error', new Error('connection reset'))
    sendCatchUp()
    await until(() => heard.statuses.length === 2, 'live on the next connection')
    await early.close()

    // closed while catching up: nothing is reported, the client goes back
    hold()
    controlled.queries.length = 0
    const second = watching.watchRevocations(heard.listener, RETENTION)
    await until(() => controlled.queries.includes(sql.catchUp), 'catching up')
    const closing = second.close()
    releaseCatchUp()
    await closing
    t.same(heard.statuses, ['live', 'live'], 'no status after close')

    // closed while catching up, and the catch-up then fails
    hold()
    controlled.queries.length = 0
    controlled.afterQuery = async (text) => {
      if (text !== sql.catchUp) return
      await holdCatchUp
      throw new Error('catch-up failed')
    }
    const third = watching.watchRevocations(heard.listener, RETENTION)
    await until(() => controlled.queries.includes(sql.catchUp), 'catching up')
    const closingThird = third.close()
    releaseCatchUp()
    await closingThird

    // closed while the pool is failing to give a client: no retry after close
    let failConnect = (): void => {}
    controlled.beforeConnect = () => new Promise<void>((_resolve, reject) => { failConnect = () => reject(new Error('no client')) })
    const fourth = watching.watchRevocations(heard.listener, RETENTION)
    const closingFourth = fourth.close()
    failConnect()
    await closingFourth
    const attempts = controlled.clients.length
    await sleep(300)
    t.equal(controlled.clients.length, attempts, 'no attempt after close')
    t.same(heard.statuses, ['live', 'live'])
  })

  t.test('close() of the store closes its watches', async (t) => {
    const own = new PostgresStore({ pool, table })
    const heard = recorder()
    own.watchRevocations(heard.listener, RETENTION)
    await until(() => heard.statuses.includes('live'), 'live')
    const idle = pool.idleCount
    await own.close()
    t.ok(pool.idleCount > idle, 'the feed\'s client is back in the pool')
    const session = newSession(Date.now())
    await store.create(session)
    await store.revoke(session.sessionId)
    await sleep(50)
    t.notOk(heard.revoked.has(session.sessionId), 'the closed watch hears nothing')
  })

  t.test('an error on a checked-out client between two statements fails the operation, not the process', async (t) => {
    const session = newSession(Date.now())
    await store.create(session)
    const controlled = new ControlledPool(pool)
    controlled.beforeQuery = async (text) => {
      if (text !== sql.rotate) return
      const client = controlled.clients[controlled.clients.length - 1].raw
      const errored = once(client, 'error')
      await pool.query('SELECT pg_terminate_backend($1)', [(client as unknown as { processID: number }).processID])
      await errored
    }
    const victim = new PostgresStore({ pool: controlled, table, cleanupInterval: 0 })
    await t.rejects(victim.rotate(rotation(session, session.tokenId)))
    t.equal((await store.rotate(rotation(session, session.tokenId))).outcome, 'rotated')
  })
})
