import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { MemoryStore, PostgresStore, RedisStore, type FastifyRefreshAuthOptions, type SessionEndEvent, type SessionStore } from '../lib/index.js'
import { COOKIE } from './helpers/app.js'
import { ENDED, listen, openStream, post, reasonOf, signIn } from './helpers/event-stream.js'
import { clusterClient, requireCluster } from './helpers/redis-cluster.js'
import { redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'
import { postgresPool, requirePostgres, testSchema } from './helpers/postgres.js'

// Issue 21: a session that ends on instance A is told on instance B, by onSessionEnd and by the events stream,
// with its user and its true reason, for every way a session ends and on every shared store. The feed carries
// both; B never saw the request. Waits are bounded by what B says.

const WAIT_MS = 10_000

// real sockets and stores on a busy machine: more than the default 30 s

interface Instance {
  app: Awaited<ReturnType<typeof listen>>['app']
  url: string
  heard: SessionEndEvent[]
}

/** Each login names its own user, so the cases never end each other's sessions. */
async function verifyCredentials (request: { body: unknown }): Promise<{ id: string }> {
  return { id: (request.body as { username: string }).username }
}

const sidOf = (accessToken: string): string => JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid

async function heardOn (instance: Instance, sessionId: string): Promise<SessionEndEvent> {
  const end = Date.now() + WAIT_MS
  for (;;) {
    const event = instance.heard.find(e => e.sessionId === sessionId)
    if (event !== undefined) return event
    if (Date.now() > end) throw new Error(`B's onSessionEnd did not hear of ${sessionId} within ${WAIT_MS} ms`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

async function acrossInstances (t: Test, stores: [SessionStore, SessionStore]): Promise<void> {
  let refusedUser: string | null = null
  const options: Partial<FastifyRefreshAuthOptions> = {
    verifyCredentials,
    maxSessionsPerUser: 2,
    refreshToken: { reuseInterval: 0 },
    loadUser: async (id) => id === refusedUser ? null : { id }
  }
  const [a, b] = await Promise.all(stores.map(async (store) => {
    const { app, url } = await listen(t, { ...options, store })
    const heard: SessionEndEvent[] = []
    app.refreshAuth.onSessionEnd(event => heard.push(event))
    return { app, url, heard }
  })) as [Instance, Instance]

  /**
   * `sessions` sessions of a fresh user signed in on A, with an events stream open on B for each; `act` ends
   * some on A; each session of `expected` (by index) must end on B with that reason, the others stay open.
   */
  async function endsOnB (what: string, count: number, act: (user: string, sessions: Array<{ accessToken: string, cookie: string }>) => Promise<unknown>, expected: Record<number, string>): Promise<void> {
    const user = `user-${randomUUID()}`
    const sessions: Array<{ accessToken: string, cookie: string }> = []
    for (let i = 0; i < count; i++) sessions.push(await signIn(a.url, { username: user, password: 'x' }))
    const streams = await Promise.all(sessions.map(async session => await openStream(t, b.url, session.accessToken)))
    for (const stream of streams) t.equal(stream.response.status, 200)
    await act(user, sessions)
    for (const [index, reason] of Object.entries(expected)) {
      const sessionId = sidOf(sessions[Number(index)].accessToken)
      const { text } = await streams[Number(index)].until(ENDED)
      t.equal(reasonOf(text), reason, `${what}: B's stream of session ${index} says ${reason}`)
      t.same(await heardOn(b, sessionId), { sessionId, userId: user, reason }, `${what}: B's onSessionEnd hears the user and ${reason}`)
    }
    for (const index of sessions.keys()) {
      if (!(index in expected)) t.notOk(b.heard.some(e => e.sessionId === sidOf(sessions[index].accessToken)), `${what}: session ${index} lives on`)
    }
    for (const stream of streams) stream.cancel()
  }

  await endsOnB('logout', 1, async (_user, [s]) => {
    t.equal((await post(a.url, '/auth/logout', s.cookie)).status, 204)
  }, { 0: 'logout' })
  await endsOnB('logout with all', 2, async (_user, [own]) => {
    t.equal((await post(a.url, '/auth/logout', own.cookie, { all: true })).status, 204)
  }, { 0: 'logout', 1: 'revoked' })
  await endsOnB('logout with others', 2, async (_user, [own]) => {
    t.equal((await post(a.url, '/auth/logout', own.cookie, { others: true })).status, 204)
  }, { 1: 'revoked' })
  await endsOnB('revokeUserSessions', 2, (user) => a.app.refreshAuth.revokeUserSessions(user), { 0: 'revoked', 1: 'revoked' })
  await endsOnB('revokeSession', 1, (_user, [s]) => a.app.refreshAuth.revokeSession(sidOf(s.accessToken)), { 0: 'revoked' })
  await endsOnB('revokeOtherSessions', 2, (user, [own]) => a.app.refreshAuth.revokeOtherSessions(user, sidOf(own.accessToken)), { 1: 'revoked' })
  await endsOnB('reuse', 1, async (_user, [s]) => {
    t.equal((await post(a.url, '/auth/refresh', s.cookie)).status, 200)
    t.equal((await post(a.url, '/auth/refresh', s.cookie)).status, 401)
  }, { 0: 'reuse' })
  await endsOnB('a loadUser refusal', 1, async (user, [s]) => {
    refusedUser = user
    t.equal((await post(a.url, '/auth/refresh', s.cookie)).status, 401)
    refusedUser = null
  }, { 0: 'revoked' })
  await endsOnB('a login at maxSessionsPerUser', 2, (user) => signIn(a.url, { username: user, password: 'x' }), { 0: 'revoked' })
  await endsOnB('a login that replaces the session', 1, (user, [s]) => fetch(a.url + '/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: `${COOKIE}=${s.cookie}` },
    body: JSON.stringify({ username: user, password: 'x' })
  }), { 0: 'revoked' })
}

t.test('MemoryStore shared by two apps', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await acrossInstances(t, [store, store])
})

t.test('RedisStore: two store objects on one Redis', async t => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const clients = [redisClient(t, prefix), redisClient(t, null)]
  await acrossInstances(t, [new RedisStore({ client: clients[0], prefix }), new RedisStore({ client: clients[1], prefix })])
})

t.test('RedisStore on a Redis Cluster', async t => {
  if (!await requireCluster(t)) return
  const prefix = uniquePrefix(__filename)
  const clients = [clusterClient(t, prefix), clusterClient(t, null)]
  await acrossInstances(t, [new RedisStore({ client: clients[0], prefix }), new RedisStore({ client: clients[1], prefix })])
})

t.test('PostgresStore: two store objects on one database', async t => {
  if (!await requirePostgres(t)) return
  const table = `${await testSchema(t, __filename)}.sessions`
  await new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 }).migrate()
  await acrossInstances(t, [
    new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 }),
    new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 })
  ])
})
