import Fastify, { type FastifyInstance } from 'fastify'
import jwt from 'jsonwebtoken'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { RedisStore, type FastifyRefreshAuthOptions } from '../lib/index.js'
import { SECRET, buildApp, getPrivate, login, refresh, refreshCookie, verifyCredentials } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { sessionIdOf } from './helpers/feed-store.js'
import { REDIS_URL, redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'
import { TcpProxy } from './helpers/tcp-proxy.js'
import { redisKeys } from './helpers/redis-keys.js'

// real servers, on a machine shared with other test runs

function jtiOf (token: string | undefined): unknown {
  return (jwt.decode(token as string) as jwt.JwtPayload).jti
}

t.test('with the default settings, a refresh retried with the same cookie gets the live token again: one chain', async t => {
  const app = await buildApp(t)
  const { refreshToken } = await login(app)
  const first = await refresh(app, refreshToken)
  // the client never saw `first` (a timeout, a dropped connection) and tries again
  const retry = await refresh(app, refreshToken)
  t.equal(first.statusCode, 200)
  t.equal(retry.statusCode, 200, 'the retry is not reuse')
  t.equal(jtiOf(refreshCookie(retry)), jtiOf(refreshCookie(first)), 'the same live refresh token: no second chain')
  t.equal((await getPrivate(app, retry.json().access_token)).statusCode, 200)
  const next = await refresh(app, refreshCookie(retry))
  t.equal(next.statusCode, 200, 'the session goes on')
  // the successor has been used: the first token is now a grandparent, and presenting it is reuse
  t.equal((await refresh(app, refreshToken)).statusCode, 401, 'a token whose successor was used is reuse')
  t.equal((await refresh(app, refreshCookie(next))).statusCode, 401, 'and the session ended')
})

t.test('with the default settings, concurrent refreshes of one token all get the one live token', async t => {
  const app = await buildApp(t)
  const { refreshToken } = await login(app)
  const responses = await Promise.all(Array.from({ length: 20 }, () => refresh(app, refreshToken)))
  t.same(responses.map(r => r.statusCode), Array(20).fill(200))
  t.equal(new Set(responses.map(r => jtiOf(refreshCookie(r)))).size, 1, 'one live token, one chain')
})

t.test('the grace lasts the reuse interval (10 s by default), then the parent is reuse', async t => {
  const clock = fakeClock(t)
  const app = await buildApp(t)
  const { refreshToken } = await login(app)
  t.equal((await refresh(app, refreshToken)).statusCode, 200)
  clock.advance(9)
  t.equal((await refresh(app, refreshToken)).statusCode, 200, 'within 10 s')
  clock.advance(1)
  t.equal((await refresh(app, refreshToken)).statusCode, 401, 'at 10 s it is reuse')
})

t.test('reuseInterval 0 set explicitly stays strict: an immediate replay is reuse', async t => {
  const app = await buildApp(t, { refreshToken: { reuseInterval: 0 } })
  const { refreshToken } = await login(app)
  const first = await refresh(app, refreshToken)
  t.equal(first.statusCode, 200)
  t.equal((await refresh(app, refreshToken)).statusCode, 401)
  t.equal((await refresh(app, refreshCookie(first))).statusCode, 401, 'the session ended')
})

t.test('the real fault on Redis: the rotation applied, its reply lost, the client retries', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const url = new URL(REDIS_URL)
  const direct = redisClient(t, prefix)

  async function setup (t: Test, options: Partial<FastifyRefreshAuthOptions>): Promise<{ app: FastifyInstance, proxy: TcpProxy, store: RedisStore }> {
    const proxy = await new TcpProxy(url.hostname, Number(url.port || 6379)).listen()
    t.teardown(() => proxy.close())
    // ioredis' defaults: offline queue on, reconnect forever, resend unanswered commands after reconnecting
    const client = new Redis(`redis://${url.username ? `${url.username}:${url.password}@` : ''}127.0.0.1:${proxy.port}${url.pathname}`)
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    const store = new RedisStore({ client, prefix, timeout: 500 })
    const app = Fastify()
    await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store, ...options })
    app.get('/private', { preHandler: app.authenticate }, async () => 'ok')
    await app.ready()
    t.teardown(() => app.close())
    return { app, proxy, store }
  }

  /** A refresh whose rotation reaches Redis while its reply is lost: 503 to the client, rotated on the server. */
  async function refreshWithLostReply (t: Test, app: FastifyInstance, proxy: TcpProxy, token: string): Promise<void> {
    const key = redisKeys(prefix).session(sessionIdOf(token))
    proxy.loseReplyTo(request => request.includes(key))
    const lost = await refresh(app, token)
    t.equal(lost.statusCode, 503, 'the client was told it failed')
    t.equal(lost.headers['set-cookie'], undefined, 'and got nothing')
    t.not(await direct.hget(key, 't'), jtiOf(token), 'yet the rotation took effect in Redis')
    proxy.restore()
  }

  /** Refreshes until Redis answers again (bounded), returning the first answer that is not a 503. */
  async function refreshOnceBack (app: FastifyInstance, token: string) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const response = await refresh(app, token)
      if (response.statusCode !== 503) return response
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    throw new Error('Redis did not come back within the bound')
  }

  t.test('with the default settings the retry keeps the session, on the one chain', async (t) => {
    const { app, proxy } = await setup(t, {})
    const { refreshToken, accessToken } = await login(app)
    await refreshWithLostReply(t, app, proxy, refreshToken)
    const retry = await refreshOnceBack(app, refreshToken)
    t.equal(retry.statusCode, 200, 'the retry with the same cookie succeeds')
    const live = await direct.hget(redisKeys(prefix).session(sessionIdOf(refreshToken)), 't')
    t.equal(jtiOf(refreshCookie(retry)), live, 'it got the token the lost rotation made live: no second chain')
    t.equal((await getPrivate(app, accessToken)).statusCode, 200, 'the session was not ended')
    const next = await refresh(app, refreshCookie(retry))
    t.equal(next.statusCode, 200, 'and it goes on')
    t.equal((await refresh(app, refreshToken)).statusCode, 401, 'once the successor was used, the old token is reuse')
    t.equal((await refresh(app, refreshCookie(next))).statusCode, 401, 'which ends the session')
  })

  t.test('with reuseInterval 0 the retry is reuse: strict, as asked', async (t) => {
    const { app, proxy } = await setup(t, { refreshToken: { reuseInterval: 0 } })
    const { refreshToken } = await login(app)
    await refreshWithLostReply(t, app, proxy, refreshToken)
    const retry = await refreshOnceBack(app, refreshToken)
    t.equal(retry.statusCode, 401, 'the session is lost to the fault')
  })
})
