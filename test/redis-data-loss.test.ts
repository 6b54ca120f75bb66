// Issue 20 #1 and #11: Redis loses its data (a restart without persistence). Every instance, started before the
// loss or after it, treats the access tokens issued before the store's new epoch as a gap: 503 with failClosed,
// served and logged in the default mode; and one loss is one gap, never two. A throwaway redis-server of the
// test's own is killed and started again empty; a TCP proxy cuts one instance off it while sessions end.
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisStore, type FastifyRefreshAuthOptions } from '../lib/index.js'
import { getPrivate, login, logout } from './helpers/app.js'
import { buildLoggedApp, WARN } from './helpers/logs.js'
import { redisKeys } from './helpers/redis-keys.js'
import { redisUnavailable } from './helpers/redis.js'
import { throwawayRedis, type ThrowawayRedis } from './helpers/redis-server.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

const PREFIX = 'fra-test:data-loss:'
const failClosed = { accessToken: { revocation: { failClosed: true, feedTolerance: '60s' } } } satisfies Partial<FastifyRefreshAuthOptions>

/** An app on `url` (its own client), with a logger the test reads. */
async function instance (t: Test, url: string, options: Partial<FastifyRefreshAuthOptions> = {}) {
  const client = new Redis(url)
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return await buildLoggedApp(t, { store: new RedisStore({ client, prefix: PREFIX }), ...options })
}

/** An instance behind a proxy the test controls. */
async function proxiedInstance (t: Test, server: ThrowawayRedis, options: Partial<FastifyRefreshAuthOptions> = {}) {
  const proxy = await new TcpProxy('127.0.0.1', server.port).listen()
  t.teardown(() => proxy.close())
  return { proxy, ...await instance(t, `redis://127.0.0.1:${proxy.port}`, options) }
}

/** Resolves once `app` refuses an access token whose session just ended: its feed is live and has heard it. */
async function hearsEnds (app: FastifyInstance, other: FastifyInstance): Promise<void> {
  const session = await login(other)
  await logout(other, session.refreshToken)
  // bounded: 15 s, on a busy machine
  for (let i = 0; i < 1500; i++) {
    if ((await getPrivate(app, session.accessToken)).statusCode === 401) return
    await sleep(10)
  }
  throw new Error('the instance never heard a logout made on the other')
}

/** Waits until tokens issued now are past the epoch's second (tokens carry `iat` in whole seconds). */
async function pastEpochSecond (server: ThrowawayRedis): Promise<void> {
  const direct = new Redis(server.url)
  const epoch = Number(await direct.get(redisKeys(PREFIX).epoch))
  direct.disconnect()
  const wait = Math.ceil(epoch / 1000) * 1000 - Date.now()
  if (wait > 0) await sleep(wait + 5)
}

t.test('Redis loses its data', async (t) => {
  const reason = await redisUnavailable()
  if (reason !== null) {
    t.comment(`SKIPPED: ${reason}`)
    return
  }

  t.test('an instance that never read an entry, cut off while a session ended: 503 for the tokens from before the loss (#1)', async (t) => {
    const server = await throwawayRedis(t)
    const { app: other } = await instance(t, server.url)
    const { app, proxy } = await proxiedInstance(t, server, failClosed)
    // a new store is a gap for what came before it: these sessions come after
    await pastEpochSecond(server)
    const ended = await login(other)
    const kept = await login(other)
    t.equal((await getPrivate(app, ended.accessToken)).statusCode, 200)

    proxy.cut()
    t.equal((await logout(other, ended.refreshToken)).statusCode, 204, 'logged out while the instance is cut off')
    await server.restartEmpty()
    proxy.restore()
    await hearsEnds(app, other)

    const refused = await getPrivate(app, ended.accessToken)
    t.equal(refused.statusCode, 503, 'the ended session\'s token is not served')
    t.equal(refused.json().code, 'FST_REFRESH_AUTH_REVOCATION_UNCONFIRMED')
    t.equal((await getPrivate(app, kept.accessToken)).statusCode, 503, 'nor any token from before the loss: its ends are unknown')
    await pastEpochSecond(server)
    const after = await login(other)
    t.equal((await getPrivate(app, after.accessToken)).statusCode, 200, 'a token issued after the loss is served')
  })

  t.test('one loss is one gap: a revocation written after it opens none, on an instance that had read entries (#11)', async (t) => {
    const server = await throwawayRedis(t)
    const { app: other } = await instance(t, server.url)
    const { app, proxy, lines } = await proxiedInstance(t, server, failClosed)
    // this instance has read entries: the stream's numbers start again after the loss
    await hearsEnds(app, other)
    await hearsEnds(app, other)
    await pastEpochSecond(server)
    const before = await login(other)
    t.equal((await getPrivate(app, before.accessToken)).statusCode, 200)
    const logged = lines.length

    proxy.cut()
    await logout(other, (await login(other)).refreshToken)
    await server.restartEmpty()
    proxy.restore()
    await hearsEnds(app, other)
    await pastEpochSecond(server)
    const after = await login(app)
    t.equal((await getPrivate(app, after.accessToken)).statusCode, 200)

    // the first revocations of the new history
    await hearsEnds(app, other)
    await hearsEnds(app, other)
    t.equal((await getPrivate(app, after.accessToken)).statusCode, 200, 'a token issued after the loss is still served: no second gap')
    t.equal((await getPrivate(app, before.accessToken)).statusCode, 503, 'one issued before it is not')
    const gaps = lines.slice(logged).filter(line => line.level === WARN && /history of ended sessions begins|missed revocations/.test(line.msg))
    t.equal(gaps.length, 1, 'one gap logged since the loss', { logged: gaps.map(line => line.msg) })
  })

  t.test('an instance started after the loss: 503 for tokens from before it, with failClosed; served and logged without (#11)', async (t) => {
    const server = await throwawayRedis(t)
    const { app: other } = await instance(t, server.url)
    const ended = await login(other)
    await logout(other, ended.refreshToken)
    await server.restartEmpty()

    const { app: late } = await instance(t, server.url, failClosed)
    const refused = await getPrivate(late, ended.accessToken)
    t.equal(refused.statusCode, 503, 'the ended session\'s token is not served')
    t.equal(refused.json().code, 'FST_REFRESH_AUTH_REVOCATION_UNCONFIRMED')
    await pastEpochSecond(server)
    const after = await login(late)
    t.equal((await getPrivate(late, after.accessToken)).statusCode, 200, 'a token issued after the loss is served')

    const { app: lenient, lines } = await instance(t, server.url)
    t.equal((await getPrivate(lenient, ended.accessToken)).statusCode, 200, 'the default mode serves it until it expires')
    const warned = lines.filter(line => line.level === WARN && /history of ended sessions begins/.test(line.msg))
    t.equal(warned.length, 1, 'and says so once')
    t.match(warned[0].msg, /are served until they expire/)
  })
})
