import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { RedisStore, type FastifyRefreshAuthOptions } from '../lib/index.js'
import { USER } from './helpers/app.js'
import { appHost, eventually, type AppProcess, type ProcessAnswer } from './helpers/app-process.js'
import { REDIS_URL, deleteKeys, redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

// real servers and child processes, on a machine shared with other test runs

const INSTANCE = join(__dirname, 'helpers', 'redis-instance.ts')

interface InstanceConfig {
  prefix: string
  redisUrl?: string
  options?: Partial<FastifyRefreshAuthOptions>
  /** The RedisStore's deadline in ms; the store's default when absent. */
  storeTimeout?: number
}

// two processes, A and B, for the whole file: each test starts its own app instance in each, stopped when it ends
const hosts = { A: appHost(t, 'A', INSTANCE), B: appHost(t, 'B', INSTANCE) }

function startInstance (t: Test, name: 'A' | 'B', { prefix, redisUrl = REDIS_URL, options, storeTimeout }: InstanceConfig): Promise<AppProcess> {
  return hosts[name].start(t, { prefix, redisUrl, options, storeTimeout })
}

t.test('two instances in separate processes share sessions through Redis', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const client = redisClient(t, null)
  t.teardown(() => deleteKeys(client, prefix))
  // strict: these tests are about reuse
  const options = { refreshToken: { reuseInterval: 0 } }
  const [a, b] = await Promise.all([startInstance(t, 'A', { prefix, options }), startInstance(t, 'B', { prefix, options })])

  t.test('login on A, refresh on B, replay on A is detected', async (t) => {
    const login = await a.post('/auth/login', undefined, USER)
    t.equal(login.status, 200)
    const refreshed = await b.post('/auth/refresh', login.refreshToken)
    t.equal(refreshed.status, 200)
    t.ok(refreshed.refreshToken)
    const replay = await a.post('/auth/refresh', login.refreshToken)
    t.equal(replay.status, 401, 'the rotated token is refused on A')
    t.equal((await b.post('/auth/refresh', refreshed.refreshToken)).status, 401, 'and its family is revoked everywhere')
    t.equal(await b.private(refreshed.accessToken as string), 401, 'with its access tokens')
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
})

t.test('an ended session\'s access tokens are refused by the other instance too', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename) + 'propagation:'
  const client = redisClient(t, null)
  t.teardown(() => deleteKeys(client, prefix))
  const [a, b] = await Promise.all([startInstance(t, 'A', { prefix }), startInstance(t, 'B', { prefix })])

  const endings: Array<[string, (session: ProcessAnswer) => Promise<unknown>]> = [
    ['logout on A', (session) => a.post('/auth/logout', session.refreshToken)],
    ['logout everywhere on A', (session) => a.post('/auth/logout', session.refreshToken, { all: true })],
    ['revokeUserSessions on A', () => a.post('/admin/revoke-user', undefined, { userId: '42' })],
    ['reuse found on A', async (session) => {
      const rotated = await a.post('/auth/refresh', session.refreshToken)
      // the parent again after its successor was used: reuse, whatever the reuse interval
      await a.post('/auth/refresh', rotated.refreshToken)
      return a.post('/auth/refresh', session.refreshToken)
    }]
  ]
  for (const [how, end] of endings) {
    const session = await a.post('/auth/login', undefined, USER)
    const token = session.accessToken as string
    t.equal(await b.private(token), 200, `${how}: B accepts the token first (and caches it)`)
    await end(session)
    t.ok(await eventually(async () => await b.private(token) === 401), `${how}: B refuses the token within a couple of seconds`)
    t.equal(await a.private(token), 401, `${how}: A refuses it at once`)
  }
})

t.test('an instance whose feed connection was cut catches up from where it was once it reconnects', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename) + 'resume:'
  const client = redisClient(t, null)
  t.teardown(() => deleteKeys(client, prefix))
  const url = new URL(REDIS_URL)
  const proxy = await new TcpProxy(url.hostname, Number(url.port || 6379)).listen()
  t.teardown(() => proxy.close())
  const behindProxy = `redis://${url.username ? `${url.username}:${url.password}@` : ''}127.0.0.1:${proxy.port}${url.pathname}`
  const [a, b] = await Promise.all([startInstance(t, 'A', { prefix }), startInstance(t, 'B', { prefix, redisUrl: behindProxy })])

  const early = await a.post('/auth/login', undefined, USER)
  const session = await a.post('/auth/login', undefined, USER)
  for (const s of [early, session]) t.equal(await b.private(s.accessToken as string), 200, 'B accepts the tokens')
  // a revocation B hears before the cut: the feed moves past it
  await a.post('/auth/logout', early.refreshToken)
  t.ok(await eventually(async () => await b.private(early.accessToken as string) === 401), 'B heard the first logout')

  proxy.cut()
  await a.post('/auth/logout', session.refreshToken)
  await sleep(300)
  t.equal(await b.private(session.accessToken as string), 200, 'cut off, B cannot know yet (and serves: the default)')
  proxy.restore()
  t.ok(await eventually(async () => await b.private(session.accessToken as string) === 401, 10_000),
    'reconnected, B read the revocation it missed')
  t.equal(await b.private(early.accessToken as string), 401, 'and still refuses the first')
})

t.test('maxSessionsPerUser 3: ten logins of one user at once on each of two instances leave exactly 3 live sessions', async (t) => {
  if (!await requireRedis(t)) return
  for (const onSessionLimit of ['revoke-oldest', 'refuse'] as const) {
    t.test(onSessionLimit, async (t) => {
      const prefix = `${uniquePrefix(__filename)}limit-${onSessionLimit}:`
      const client = redisClient(t, null)
      t.teardown(() => deleteKeys(client, prefix))
      const options = { maxSessionsPerUser: 3, onSessionLimit }
      // twenty logins of one user queue for its slot: a busy machine can outlast the default 2 s deadline
      const storeTimeout = 15_000
      const [a, b] = await Promise.all([startInstance(t, 'A', { prefix, options, storeTimeout }), startInstance(t, 'B', { prefix, options, storeTimeout })])
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).post('/auth/login', undefined, USER)))
      const signedIn = answers.filter(answer => answer.status === 200)
      if (onSessionLimit === 'refuse') {
        t.equal(signedIn.length, 3, 'exactly three logins succeed')
        t.equal(answers.filter(answer => answer.status === 403).length, 17, 'the others are refused at the limit')
      } else {
        t.equal(signedIn.length, 20, 'every login succeeds, the least recently used sessions making room')
      }
      const live = (await new RedisStore({ client, prefix }).listUserSessions('42', Date.now())).map(s => s.sessionId).sort()
      t.equal(live.length, 3, 'exactly three live sessions')
      // each signed-in token refreshed once, on the other instance from the one that issued it
      const refreshed = await Promise.all(signedIn.map((answer, i) => (i % 2 === 0 ? b : a).post('/auth/refresh', answer.refreshToken)))
      const refreshing = signedIn.filter((_, i) => refreshed[i].status === 200).map(answer => sidOf(answer.refreshToken as string)).sort()
      t.same(refreshing, live, 'and exactly those refresh')
      t.equal(refreshed.filter(answer => answer.status === 401).length, signedIn.length - 3, 'the ended ones are refused')
    })
  }
})

function sidOf (token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid
}
