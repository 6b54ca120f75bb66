import Fastify, { type FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { PostgresStore } from '../lib/index.js'
import { tableNames } from '../lib/stores/postgres-sql.js'
import { SECRET, USER, refresh, refreshCookie, verifyCredentials } from './helpers/app.js'
import { postgresPool, proxiedPostgresPool, requirePostgres, testSchema } from './helpers/postgres.js'
import type { TcpProxy } from './helpers/tcp-proxy.js'

// Issue 20 #2: an operation answered 503 never takes effect later, lock waits included. The app reaches
// PostgreSQL through a TCP proxy the test controls; another connection holds the session's row.

const TIMEOUT = 2000

interface Setup {
  app: FastifyInstance
  proxy: TcpProxy
  admin: pg.Pool
  /** The session's live token id, read directly. */
  liveTokenId: (sessionId: string) => Promise<string | undefined>
  /** Resolves once the app's rotation waits for the row lock. */
  waitingOnLock: () => Promise<void>
}

async function setup (t: Test, table: string): Promise<Setup> {
  const applicationName = `fra-deadline-${process.pid}`
  const { proxy, pool } = await proxiedPostgresPool(t, applicationName)
  const store = new PostgresStore({ pool, table, timeout: TIMEOUT, cleanupInterval: 0 })
  const app = Fastify()
  // strict rotation: a rotation that landed after its 503 makes the retry reuse, and the session ends
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store, refreshToken: { reuseInterval: 0 } })
  await app.ready()
  t.teardown(async () => {
    proxy.restore()
    await app.close()
    await store.close()
    await pool.end()
  })
  const admin = postgresPool(t)
  const { sessions } = tableNames(table)
  return {
    app,
    proxy,
    admin,
    liveTokenId: async (sessionId) => (await admin.query(`SELECT token_id FROM ${sessions} WHERE session_id = $1`, [sessionId])).rows[0]?.token_id,
    waitingOnLock: async () => {
      for (let attempt = 0; attempt < 500; attempt++) {
        const { rows } = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = $1 AND wait_event_type = 'Lock'`, [applicationName])
        if (rows[0].n > 0) return
        await sleep(10)
      }
      throw new Error('the rotation never waited for the lock')
    }
  }
}

function claimsOf (token: string | undefined): { sid?: string, jti?: string } {
  const payload = token?.split('.')[1]
  return payload === undefined ? {} : JSON.parse(Buffer.from(payload, 'base64url').toString())
}

async function loginOnceBack (app: FastifyInstance): Promise<string> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const response = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
    if (response.statusCode === 200) return refreshCookie(response) as string
    await sleep(100)
  }
  throw new Error('no login went through within the bound')
}

/** Holds the session's row in a transaction of another connection; resolves to its release. */
async function holdRow (t: Test, admin: pg.Pool, table: string, sessionId: string): Promise<() => Promise<void>> {
  const holder = await admin.connect()
  t.teardown(() => holder.release())
  await holder.query('BEGIN')
  await holder.query(`SELECT 1 FROM ${tableNames(table).sessions} WHERE session_id = $1 FOR UPDATE`, [sessionId])
  return async () => { await holder.query('COMMIT') }
}

t.test('PostgresStore: a refresh that waited on a row lock never rotates after its 503', async (t) => {
  if (!await requirePostgres(t)) return
  const schema = await testSchema(t, __filename)

  t.test('the issue\'s reproduction: a 1 s lock wait, then the link holds the next message back: the answer is the truth', async (t) => {
    const table = `${schema}.held_commit`
    await new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 }).migrate()
    const { app, proxy, admin, liveTokenId, waitingOnLock } = await setup(t, table)
    const token = await loginOnceBack(app)
    const { sid = '', jti } = claimsOf(token)
    const release = await holdRow(t, admin, table, sid)

    const answer = refresh(app, token)
    await waitingOnLock()
    // what the app sends once the lock is granted (a COMMIT, if it sends one) reaches PostgreSQL only later
    proxy.holdRequestsFrom(() => true)
    await sleep(1000)
    await release()
    const response = await answer
    // the held messages arrive now, after the answer: the app had 2 s, the late ones must change nothing
    proxy.restore()
    await sleep(500)

    if (response.statusCode === 503) {
      t.equal(await liveTokenId(sid), jti, 'answered 503: the token id did not change, then or later')
      const retry = await refresh(app, token)
      t.equal(retry.statusCode, 200, 'the retry rotates normally')
      t.equal(await liveTokenId(sid), claimsOf(refreshCookie(retry)).jti)
    } else {
      t.equal(response.statusCode, 200, 'the rotation committed in time, and was answered')
      t.equal(await liveTokenId(sid), claimsOf(refreshCookie(response)).jti, 'the database holds the token the client got')
    }
  })

  t.test('a lock wait that outlasts the deadline, with the link blackholed: 503, nothing rotates, the retry rotates', async (t) => {
    const table = `${schema}.held_lock`
    await new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 }).migrate()
    const { app, proxy, admin, liveTokenId, waitingOnLock } = await setup(t, table)
    const token = await loginOnceBack(app)
    const { sid = '', jti } = claimsOf(token)
    const release = await holdRow(t, admin, table, sid)

    const started = Date.now()
    const answer = refresh(app, token)
    await waitingOnLock()
    proxy.blackhole()
    const response = await answer
    t.equal(response.statusCode, 503, 'answered 503')
    t.equal(response.json().code, 'FST_REFRESH_AUTH_STORE_UNAVAILABLE')
    t.ok(Date.now() - started < TIMEOUT + 10_000, 'within the store\'s timeout, not a hang (generous for a busy machine)')
    // the lock goes, and what the link held arrives: nothing of it may rotate the session
    await release()
    proxy.restore()
    await sleep(500)
    t.equal(await liveTokenId(sid), jti, 'the token id did not change')
    const retry = await refresh(app, token)
    t.equal(retry.statusCode, 200, 'the retry rotates normally')
    t.equal(await liveTokenId(sid), claimsOf(refreshCookie(retry)).jti)
  })
})
