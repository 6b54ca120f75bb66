import Fastify, { type FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { RedisStore } from '../lib/index.js'
import { SECRET, USER, refresh, refreshCookie, verifyCredentials } from './helpers/app.js'
import { REDIS_URL, redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

const TIMEOUT = 500
// Generous: the point is that the answer comes from the store's timeout, not from ioredis giving up (many seconds).
const ANSWER_BOUND = TIMEOUT + 1500

interface Setup {
  app: FastifyInstance
  proxy: TcpProxy
  /** A store on a direct connection, to look at Redis behind the proxy's back. */
  direct: RedisStore
}

async function setup (t: Test, prefix: string): Promise<Setup> {
  const url = new URL(REDIS_URL)
  const proxy = await new TcpProxy(url.hostname, Number(url.port || 6379)).listen()
  t.teardown(() => proxy.close())
  // ioredis' default settings: offline queue on, reconnect forever, resend unanswered commands after reconnecting
  const client = new Redis(`redis://${url.username ? `${url.username}:${url.password}@` : ''}127.0.0.1:${proxy.port}${url.pathname}`)
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store: new RedisStore({ client, prefix, timeout: TIMEOUT }) })
  await app.ready()
  t.teardown(() => app.close())
  return { app, proxy, direct: new RedisStore({ client: redisClient(t, prefix), prefix }) }
}

function sessionIdOf (token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid
}

async function timed<T> (operation: () => Promise<T>): Promise<[T, number]> {
  const start = Date.now()
  const result = await operation()
  return [result, Date.now() - start]
}

function loginRequest (app: FastifyInstance) {
  return app.inject({ method: 'POST', url: '/auth/login', payload: USER })
}

/** Refreshes until the store answers again (bounded), returning the first answer that is not a 503. */
async function refreshOnceRedisIsBack (app: FastifyInstance, token: string) {
  for (let attempt = 0; attempt < 40; attempt++) {
    const response = await refresh(app, token)
    if (response.statusCode !== 503) return response
    await sleep(100)
  }
  throw new Error('Redis did not come back within the bound')
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

t.test('RedisStore behind a faulty network', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  t.afterEach(async () => {
    // late replies and rejections of abandoned commands settle after the test's last request
    await sleep(200)
    t.same(unhandled, [], 'no unhandled rejection')
  })

  t.test('the connection is cut: 503 in time, nothing issued, nothing applied once Redis is back', async (t) => {
    const { app, proxy, direct } = await setup(t, prefix + 'cut:')
    const before = await loginRequest(app)
    t.equal(before.statusCode, 200)
    const token = refreshCookie(before) as string

    proxy.cut()
    await assertFailsClosed(t, app, token)
    await sleep(TIMEOUT)
    proxy.restore()

    const after = await refreshOnceRedisIsBack(app, token)
    t.equal(after.statusCode, 200, 'the session from before the fault still refreshes: no late rotation consumed it')
    t.same((await direct.listUserSessions('42', Date.now())).map(s => s.sessionId), [sessionIdOf(token)], 'the failed login left no session')
  })

  t.test('the connection is blackholed, then delivers late: 503 in time, nothing applied late', async (t) => {
    const { app, proxy, direct } = await setup(t, prefix + 'blackhole:')
    const before = await loginRequest(app)
    t.equal(before.statusCode, 200)
    const token = refreshCookie(before) as string

    proxy.blackhole()
    await assertFailsClosed(t, app, token)
    // the held commands reach Redis now, after their deadline, and their replies come back late
    proxy.restore()
    await sleep(100)

    const after = await refresh(app, token)
    t.equal(after.statusCode, 200, 'the session from before the fault still refreshes: no late rotation consumed it')
    t.same((await direct.listUserSessions('42', Date.now())).map(s => s.sessionId), [sessionIdOf(token)], 'the failed login left no session')
    t.equal((await refresh(app, refreshCookie(after))).statusCode, 200, 'and keeps rotating')
  })
})
