// RedisStore's maxSessionsPerUser and replacement across slots: what a login leaves behind when a script fails
// between its reservation and its save, a login waiting for another still in flight, a reservation whose reply
// is lost and resent, and the bounds. The contract itself runs in redis-store-contract.test.ts.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisStore, type RedisClient } from '../lib/index.js'
import { type SessionRecord } from '../lib/store.js'
import { REDIS_URL, redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'
import { DAY, newSession } from './helpers/sessions.js'
import { TcpProxy } from './helpers/tcp-proxy.js'
import { redisKeys } from './helpers/redis-keys.js'

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file

type Script = (...args: unknown[]) => Promise<unknown>

/** The client, with some of its scripts replaced (by what they do; each given the real one). */
function withScripts (client: Redis, replaced: Record<string, (real: Script, args: unknown[]) => Promise<unknown>>): RedisClient {
  return new Proxy(client, {
    get (target, name, receiver) {
      const value = Reflect.get(target, name, receiver)
      const replacement = typeof name === 'string' ? replaced[name.split('_')[1]] : undefined
      if (replacement === undefined) return typeof value === 'function' ? value.bind(target) : value
      return async (...args: unknown[]) => await replacement(value.bind(target), args)
    }
  })
}

async function rotates (store: RedisStore, session: SessionRecord): Promise<boolean> {
  const now = Date.now()
  const result = await store.rotate({ sessionId: session.sessionId, presentedTokenId: session.tokenId, nextTokenId: randomUUID(), now, nextExpiresAt: now + DAY, reuseIntervalMs: 0 })
  return result.outcome === 'rotated'
}

async function liveIds (store: RedisStore, userId: string): Promise<string[]> {
  return (await store.listUserSessions(userId, Date.now())).map(s => s.sessionId).sort()
}

t.test('the options are checked like every store checks them', async (t) => {
  const client = { defineCommand () {}, duplicate () { throw new Error('unused') } } as unknown as RedisClient
  const store = new RedisStore({ client })
  for (const maxSessionsPerUser of [0, -1, 1.5, Number.NaN, '3' as never]) {
    await t.rejects(store.create(newSession(Date.now()), { maxSessionsPerUser }), { code: 'FST_REFRESH_AUTH_INVALID_ARGUMENT', message: /maxSessionsPerUser must be a positive integer/ })
  }
})

t.test('a login told to read again and again gives up at its deadline', async (t) => {
  const calls: string[] = []
  const client = {
    defineCommand (name: string) {
      (client as unknown as Record<string, unknown>)[name] = async () => {
        calls.push(name)
        // a reservation that always wants one more session read, and that session always ended; a server that
        // never finds the script late (only our own clock bounds the loop)
        return name.includes('reserveLogin') ? [Date.now(), 'read', 'other'] : [Date.now(), 'ended']
      }
    },
    duplicate () { throw new Error('unused') }
  } as unknown as RedisClient
  const store = new RedisStore({ client, timeout: 100 })
  await t.rejects(store.create(newSession(Date.now()), { maxSessionsPerUser: 1 }), { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT' })
  const reservations = calls.filter(name => name.includes('reserveLogin')).length
  await sleep(100)
  t.equal(calls.filter(name => name.includes('reserveLogin')).length, reservations, 'and tries no more after it')
})

t.test('on a real Redis', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const client = redisClient(t, prefix)
  // short timeouts: what a failed login leaves expires a timeout after its deadline
  const TIMEOUT = 200
  const store = new RedisStore({ client, prefix, timeout: TIMEOUT })
  const keys = redisKeys(prefix)
  const pastFailedLogins = async (): Promise<void> => { await sleep(3 * TIMEOUT) }

  t.test('the new session replacing itself replaces nothing', async (t) => {
    const session = newSession(Date.now())
    t.same(await store.create(session, { replaceSessionId: session.sessionId }), { outcome: 'created', endedSessionIds: [] })
    t.ok(await rotates(store, session))
  })

  t.test('ending the evicted session fails: the login fails, nothing is saved, and the count stays right', async (t) => {
    const now = Date.now()
    const userId = `user-${randomUUID()}`
    const [first, second] = [newSession(now, { userId }), newSession(now + 1, { userId })]
    for (const session of [first, second]) await store.create(session, { maxSessionsPerUser: 2 })
    const failing = new RedisStore({
      client: withScripts(client, { markSessionEnded: async () => { throw new Error('connection lost') } }),
      prefix,
      timeout: TIMEOUT
    })
    const failed = newSession(now + 10, { userId })
    await t.rejects(failing.create(failed, { maxSessionsPerUser: 2 }), { message: 'connection lost' })
    t.same(await liveIds(store, userId), [first.sessionId, second.sessionId].sort(), 'the session to evict lives on; the failed login saved nothing')

    // at once: the failed login still counts as in flight, its pick as being ended
    const next = newSession(now + 20, { userId })
    t.same(await store.create(next, { maxSessionsPerUser: 2 }), { outcome: 'created', endedSessionIds: [second.sessionId] })
    t.same(await liveIds(store, userId), [first.sessionId, next.sessionId].sort(), 'two live: never more than the limit')

    // later: the failed login is over, its pick counts again and its session never will
    await pastFailedLogins()
    const last = newSession(now + 30, { userId })
    t.same(await store.create(last, { maxSessionsPerUser: 2 }), { outcome: 'created', endedSessionIds: [first.sessionId] })
    t.same(await liveIds(store, userId), [next.sessionId, last.sessionId].sort())
    t.notOk(await rotates(store, first))
    t.notOk((await client.zrange(keys.userIndex(userId), '0', '-1')).includes(failed.sessionId), 'the failed login left the index')
  })

  t.test('saving the session fails after the reservation: its entry does not outlive the login', async (t) => {
    const now = Date.now()
    const userId = `user-${randomUUID()}`
    const first = newSession(now, { userId })
    await store.create(first, { maxSessionsPerUser: 2 })
    const failing = new RedisStore({
      client: withScripts(client, { createSession: async () => { throw new Error('connection lost') } }),
      prefix,
      timeout: TIMEOUT
    })
    const failed = newSession(now + 10, { userId })
    await t.rejects(failing.create(failed, { maxSessionsPerUser: 2 }), { message: 'connection lost' })
    t.ok((await client.zrange(keys.userIndex(userId), '0', '-1')).includes(failed.sessionId), 'reserved in the index, so revokeUser would reach it')
    await pastFailedLogins()
    const next = newSession(now + 20, { userId })
    t.same(await store.create(next, { maxSessionsPerUser: 2 }), { outcome: 'created', endedSessionIds: [] }, 'the failed login is not counted once over')
    t.same((await client.zrange(keys.userIndex(userId), '0', '-1')).sort(), [first.sessionId, next.sessionId].sort(), 'and leaves the index')
    t.same(await client.hkeys(keys.logins(userId)), [next.sessionId], 'the logins in flight: the last one only, until it expires')
    t.ok(await client.pttl(keys.logins(userId)) <= 2 * TIMEOUT, 'which is soon')
  })

  /** A store whose session saves wait until `release()`: a login held between its reservation and its save. */
  function slowSaving (): { slowSave: RedisStore, release: () => void } {
    let release: () => void = () => {}
    const held = new Promise<void>(resolve => { release = resolve })
    const slowSave = new RedisStore({
      client: withScripts(client, { createSession: async (real, args) => { await held; return await real(...args) } }),
      prefix
    })
    return { slowSave, release }
  }

  /** Waits (bounded: 3 s) until a login has reserved its place in the user's index. */
  async function reserved (userId: string, sessionId: string): Promise<void> {
    for (let i = 0; i < 300 && !(await client.zrange(keys.userIndex(userId), '0', '-1')).includes(sessionId); i++) await sleep(10)
  }

  t.test('a login that must evict another still being saved waits for it, then ends it', async (t) => {
    const now = Date.now()
    const userId = `user-${randomUUID()}`
    const { slowSave, release } = slowSaving()
    const patient = new RedisStore({ client, prefix })
    const inFlight = newSession(now, { userId })
    const first = slowSave.create(inFlight, { maxSessionsPerUser: 1 })
    await reserved(userId, inFlight.sessionId)
    const later = newSession(now + 10, { userId })
    const second = patient.create(later, { maxSessionsPerUser: 1 })
    await sleep(50)
    t.same(await client.hkeys(keys.logins(userId)), [inFlight.sessionId], 'the second login has reserved nothing yet')
    release()
    t.same(await first, { outcome: 'created', endedSessionIds: [] }, 'the first login is saved, not failed')
    t.same(await second, { outcome: 'created', endedSessionIds: [inFlight.sessionId] }, 'and the second ends it')
    t.same(await liveIds(store, userId), [later.sessionId])
  })

  t.test('a revocation while a login with a limit saves its session: the login fails, the session never lives', async (t) => {
    const now = Date.now()
    const userId = `user-${randomUUID()}`
    const { slowSave, release } = slowSaving()
    const session = newSession(now, { userId })
    const login = slowSave.create(session, { maxSessionsPerUser: 3 })
    await reserved(userId, session.sessionId)
    await store.revokeOtherSessions(userId, 'another device')
    release()
    await t.rejects(login, { code: 'FST_REFRESH_AUTH_STORE_CONFLICT' })
    t.same(await liveIds(store, userId), [])
  })

  t.test('a reservation whose reply is lost, resent by ioredis, answers what it decided the first time', async (t) => {
    const url = new URL(REDIS_URL)
    const proxy = await new TcpProxy(url.hostname, Number(url.port || 6379)).listen()
    t.teardown(() => proxy.close())
    const behind = new Redis(`redis://${url.username ? `${url.username}:${url.password}@` : ''}127.0.0.1:${proxy.port}${url.pathname}`)
    behind.on('error', () => {})
    t.teardown(() => behind.disconnect())
    const proxied = new RedisStore({ client: behind, prefix })
    const now = Date.now()
    const userId = `user-${randomUUID()}`
    const old = newSession(now, { userId })
    await proxied.create(old, { maxSessionsPerUser: 1 })
    const session = newSession(now + 10, { userId })
    // the reservation that decides: the second one, carrying what the login read of the old session
    proxy.loseReplyTo(request => request.includes(keys.userIndex(userId)) && request.includes(old.sessionId))
    const login = proxied.create(session, { maxSessionsPerUser: 1 })
    await reserved(userId, session.sessionId)
    proxy.restore()
    t.same(await login, { outcome: 'created', endedSessionIds: [old.sessionId] }, 'the resent reservation names the session it picked')
    t.same(await liveIds(store, userId), [session.sessionId])
    t.notOk(await rotates(store, old))
  })
})
