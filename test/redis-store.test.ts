import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { RedisStore, type RedisClient } from '../lib/index.js'
import { StoreTimeoutError } from '../lib/store.js'
import { isScript, redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'
import { DAY, newSession } from './helpers/sessions.js'
import { redisKeys } from './helpers/redis-keys.js'

async function until (condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300 && !await condition(); i++) await sleep(10)
}

type Reply = Array<string | number | null>

/** What a registered script does, from its name (`refreshAuth_<what>_<digest>`). */
const scriptOf = (name: string): string => name.split('_')[1]

/** A client that runs no Redis: it answers each script call with `answer`, and records the calls. */
function fakeClient (answer: (name: string, args: unknown[]) => Promise<Reply>) {
  const calls: Array<{ name: string, args: unknown[] }> = []
  const client: RedisClient & Record<string, unknown> = {
    defineCommand (name: string) {
      client[name] = (...args: unknown[]) => {
        calls.push({ name, args })
        return answer(name, args)
      }
    },
    duplicate () { throw new Error('no feed without a server') }
  }
  return { client, calls }
}

t.test('the constructor refuses unusable options', async (t) => {
  const { client } = fakeClient(async () => [Date.now(), 'ok'])
  t.throws(() => new RedisStore(undefined as never), /client must be an ioredis client/)
  t.throws(() => new RedisStore({ client: null as never }), /client must be an ioredis client/)
  t.throws(() => new RedisStore({ client: {} as never }), /client must be an ioredis client/)
  t.throws(() => new RedisStore({ client, prefix: 'app:{x}:' }), /prefix must be a string without/)
  t.throws(() => new RedisStore({ client, prefix: 42 as never }), /prefix must be a string without/)
  t.throws(() => new RedisStore({ client, timeout: 5 }), /timeout must be a number of milliseconds/)
  t.throws(() => new RedisStore({ client, timeout: Number.NaN }), /timeout must be a number of milliseconds/)
  t.throws(() => new RedisStore({ client, timeout: '1s' as never }), /timeout must be a number of milliseconds/)
})

t.test('scripts are registered once per client', async (t) => {
  const defined: string[] = []
  const { client } = fakeClient(async () => [Date.now(), 'ok'])
  const define = client.defineCommand.bind(client)
  client.defineCommand = (name, definition) => { defined.push(name); define(name, definition) }
  t.ok(new RedisStore({ client }))
  t.ok(new RedisStore({ client, prefix: 'other:' }))
  t.equal(defined.length, 11)
  t.equal(new Set(defined).size, 11)
  for (const name of defined) t.match(name, /^refreshAuth_[a-zA-Z]+_[0-9a-f]{12}$/, 'named by what it does, and by its digest')
})

t.test('a store error rejects the operation with that error', async (t) => {
  const { client } = fakeClient(async () => { throw new Error('NOSCRIPT or a broken connection') })
  const store = new RedisStore({ client })
  await t.rejects(store.revoke('s'), /broken connection/)
})

t.test('deadlines follow the server clock: the offset is learnt from quick replies only', async (t) => {
  const minute = 60 * 1000
  let skew = 10 * minute
  let delay = 0
  let late = true
  const { client, calls } = fakeClient(async () => {
    // no timer unless asked: a reply within the same turn of the event loop is always "quick"
    if (delay > 0) await sleep(delay)
    // a server whose clock is behind ours, and which finds the first command late
    const reply: Reply = [Date.now() - skew, late ? 'late' : 'ok']
    late = false
    return reply
  })
  const store = new RedisStore({ client, timeout: 1000 })
  const before = Date.now()
  const err = await store.revoke('s').catch((err: unknown) => err)
  t.ok(err instanceof StoreTimeoutError)
  t.equal((err as { code: string }).code, 'FST_REFRESH_AUTH_STORE_TIMEOUT')
  t.equal((err as { statusCode: number }).statusCode, 503)
  // before any reply, clocks are taken as in sync: the deadline is ours, 3/4 of the timeout ahead
  const firstDeadline = JSON.parse(calls[0].args[1] as string).deadline as number
  t.ok(firstDeadline >= before + 750 && firstDeadline <= Date.now() + 750)
  await store.revoke('s')
  const secondDeadline = JSON.parse(calls[1].args[1] as string).deadline as number
  t.ok(Math.abs(secondDeadline - (Date.now() - 10 * minute)) < minute, 'the deadline moved to the server clock')
  // a slow reply (past 100ms) says little about the offset: it is not learnt from
  delay = 150
  skew = 60 * minute
  await store.revoke('s')
  delay = 0
  await store.revoke('s')
  const fourthDeadline = JSON.parse(calls[3].args[1] as string).deadline as number
  t.ok(Math.abs(fourthDeadline - (Date.now() - 10 * minute)) < minute, 'the offset kept from the quick replies')
})

t.test('an operation that outlives its timeout rejects, and its script is refused when it arrives late', async (t) => {
  const { client } = fakeClient(async () => {
    await sleep(300)
    return [Date.now(), 'ok']
  })
  const store = new RedisStore({ client, timeout: 100 })
  const err = await store.rotate({ sessionId: 's', presentedTokenId: 'a', nextTokenId: 'b', now: Date.now(), nextExpiresAt: Date.now() + DAY, reuseIntervalMs: 0 })
    .catch((err: unknown) => err)
  t.ok(err instanceof StoreTimeoutError)
  t.match((err as Error).message, /rotate timed out after 100ms/)
})

t.test('replies are read back into sessions (without a server: canned script replies)', async (t) => {
  const now = Date.now()
  const live = ['u1', 't2', 't1', 3, String(now - 1000), String(now), String(now + DAY), String(now + 2 * DAY), null, null]
  const replies: Record<string, (args: unknown[]) => Reply> = {
    reserveLogin: () => [now, 'reserved'],
    createSession: () => [now, 'created'],
    markSessionEnded: () => [now, 'marked'],
    stripEndedSession: () => [now, 'stripped'],
    announceRevocation: () => [now, 'announced'],
    rotateSession: (args) => args[0] === 'refresh-auth:session:{gone}' ? [now, 'not-found'] : [now, 'rotated', ...live],
    userSessionIds: () => [now, 'listed', 'live', 'revoked', 'idle'],
    readSession: (args) => {
      if (args[0] === 'refresh-auth:session:{revoked}') return [now, 'not-found']
      if (args[0] === 'refresh-auth:session:{idle}') return [now, 'found', 'u1', 't9', null, 0, String(now - DAY), String(now - DAY), String(now - 1), String(now + DAY), 'UA', '::1']
      return [now, 'found', ...live]
    }
  }
  const { client, calls } = fakeClient(async (name, args) => replies[scriptOf(name)](args))
  const store = new RedisStore({ client })
  t.same(await store.create(newSession(now, { sessionId: 's1', userId: 'u1' })), { outcome: 'created', endedSessionIds: [] })
  t.same(calls.map(call => scriptOf(call.name)), ['reserveLogin', 'createSession'], 'the index entry goes first; two scripts without a limit')
  t.notOk('userAgent' in JSON.parse(calls[1].args[1] as string).session, 'no User-Agent')
  const request = { presentedTokenId: 't1', nextTokenId: 't2', now, nextExpiresAt: now + DAY, reuseIntervalMs: 0 }
  t.same(await store.rotate({ ...request, sessionId: 'gone' }), { outcome: 'not-found' })
  t.same(await store.rotate({ ...request, sessionId: 's1' }), {
    outcome: 'rotated',
    session: { sessionId: 's1', userId: 'u1', tokenId: 't2', previousTokenId: 't1', generation: 3, createdAt: now - 1000, rotatedAt: now, expiresAt: now + DAY, absoluteExpiresAt: now + 2 * DAY }
  })
  t.same(await store.listUserSessions('u1', now), [
    { sessionId: 'live', userId: 'u1', createdAt: now - 1000, lastRefreshedAt: now, expiresAt: now + DAY, absoluteExpiresAt: now + 2 * DAY }
  ], 'revoked and idle-expired sessions are left out')
  calls.length = 0
  await store.revokeUser('u1')
  t.same(calls.map(call => [scriptOf(call.name), call.args[0]]), [
    ['userSessionIds', 'refresh-auth:user:{u1}'],
    ['markSessionEnded', 'refresh-auth:session:{live}'],
    ['markSessionEnded', 'refresh-auth:session:{revoked}'],
    ['markSessionEnded', 'refresh-auth:session:{idle}'],
    ['announceRevocation', 'refresh-auth:{revocations}'],
    ['stripEndedSession', 'refresh-auth:session:{live}'],
    ['stripEndedSession', 'refresh-auth:session:{revoked}'],
    ['stripEndedSession', 'refresh-auth:session:{idle}']
  ])
})

t.test('on a real Redis', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const client = redisClient(t, prefix)
  const store = new RedisStore({ client, prefix })
  const keys = redisKeys(prefix)

  t.test('keys are hash-tagged per session and per user, and carry TTLs', async (t) => {
    const now = Date.now()
    const session = newSession(now, { expiresAt: now + 60_000, absoluteExpiresAt: now + 90_000, userAgent: 'UA', ip: '::1' })
    await store.create(session)
    const sessionKey = `${prefix}session:{${session.sessionId}}`
    const userKey = `${prefix}user:{${session.userId}}`
    t.equal(keys.session(session.sessionId), sessionKey)
    t.equal(keys.userIndex(session.userId), userKey)
    t.same(await client.hgetall(sessionKey), {
      u: session.userId,
      t: session.tokenId,
      g: '0',
      c: String(now),
      r: String(now),
      e: String(now + 60_000),
      a: String(now + 90_000),
      ua: 'UA',
      ip: '::1'
    })
    const sessionTtl = await client.pttl(sessionKey)
    t.ok(sessionTtl > 55_000 && sessionTtl <= 60_000, `session TTL ${sessionTtl} is the idle limit`)
    t.same(await client.zrange(userKey, '0', '-1', 'WITHSCORES'), [session.sessionId, String(now + 90_000)])
    const userTtl = await client.pttl(userKey)
    t.ok(userTtl > 85_000 && userTtl <= 90_000, `user index TTL ${userTtl} is the last absolute expiry`)

    // rotation renews the TTL, capped by the absolute limit
    const result = await store.rotate({
      sessionId: session.sessionId,
      presentedTokenId: session.tokenId,
      nextTokenId: randomUUID(),
      now: Date.now(),
      nextExpiresAt: Date.now() + 120_000,
      reuseIntervalMs: 0
    })
    t.equal(result.outcome, 'rotated')
    const rotatedTtl = await client.pttl(sessionKey)
    t.ok(rotatedTtl > 85_000 && rotatedTtl <= 90_000, `rotated TTL ${rotatedTtl} is capped by the absolute limit`)

    // reuse deletes the session but for its mark, which goes by itself a few seconds later
    await store.rotate({
      sessionId: session.sessionId,
      presentedTokenId: session.tokenId,
      nextTokenId: randomUUID(),
      now: Date.now(),
      nextExpiresAt: Date.now() + 120_000,
      reuseIntervalMs: 0
    })
    t.same(await client.hgetall(sessionKey), { x: 'reuse' })
    const markTtl = await client.pttl(sessionKey)
    t.ok(markTtl > 0 && markTtl <= 2 * 2000 + 5000, `the mark's TTL ${markTtl} is a few seconds`)
  })

  t.test('the user index drops entries past their absolute expiry and ends with its last one', async (t) => {
    const now = Date.now()
    const short = newSession(now, { expiresAt: now + 100, absoluteExpiresAt: now + 100 })
    await store.create(short)
    const userKey = keys.userIndex(short.userId)
    await sleep(200)
    t.equal(await client.exists(userKey), 0, 'the index expired with its only session')
    await store.create(newSession(now, { userId: short.userId, expiresAt: now + 150, absoluteExpiresAt: now + 150 }))
    const later = Date.now()
    const live = newSession(later, { userId: short.userId })
    await sleep(200)
    await store.create(live)
    t.same(await client.zrange(userKey, '0', '-1'), [live.sessionId], 'expired entries pruned at the next login')
  })

  t.test('a login saving its session while revokeUser runs: the session is refused, never revived', async (t) => {
    const now = Date.now()
    const session = newSession(now)
    // a login whose second step (saving the session) is held back until revokeUser is done
    let release: () => void = () => {}
    const held = new Promise<void>(resolve => { release = resolve })
    const slowCreate = new Proxy(client, {
      get (target, name, receiver) {
        const value = Reflect.get(target, name, receiver)
        if (!isScript(name, 'createSession')) return typeof value === 'function' ? value.bind(target) : value
        return async (...args: unknown[]) => {
          await held
          return value.apply(target, args)
        }
      }
    })
    const racing = new RedisStore({ client: slowCreate, prefix })
    const login = racing.create(session)
    // the user index already lists the session
    await until(async () => (await client.zrange(keys.userIndex(session.userId), '0', '-1')).includes(session.sessionId))
    await store.revokeUser(session.userId)
    release()
    await t.rejects(login, { code: 'FST_REFRESH_AUTH_STORE_CONFLICT', message: /revoked while it was being created/ }, 'the login fails (503): its user was signed out meanwhile')
    t.equal((await store.rotate({ sessionId: session.sessionId, presentedTokenId: session.tokenId, nextTokenId: randomUUID(), now: Date.now(), nextExpiresAt: Date.now() + DAY, reuseIntervalMs: 0 })).outcome, 'not-found')
    t.same(await store.listUserSessions(session.userId, Date.now()), [])
    const ttl = await client.pttl(keys.session(session.sessionId))
    t.ok(ttl > 0 && ttl <= 2 * 2000 + 5000, `the mark goes by itself (${ttl} ms left)`)
  })

  t.test('a script reaching Redis after its deadline changes nothing', async (t) => {
    const now = Date.now()
    const session = newSession(now)
    await store.create(session)
    // a client that holds every rotation back past the store's timeout, as an offline queue would
    const heldBack = new Proxy(client, {
      get (target, name, receiver) {
        const value = Reflect.get(target, name, receiver)
        if (!isScript(name, 'rotateSession')) return typeof value === 'function' ? value.bind(target) : value
        return async (...args: unknown[]) => {
          await sleep(250)
          return value.apply(target, args)
        }
      }
    })
    const slowStore = new RedisStore({ client: heldBack, prefix, timeout: 100 })
    const next = randomUUID()
    await t.rejects(slowStore.rotate({
      sessionId: session.sessionId,
      presentedTokenId: session.tokenId,
      nextTokenId: next,
      now: Date.now(),
      nextExpiresAt: Date.now() + DAY,
      reuseIntervalMs: 0
    }), { code: 'FST_REFRESH_AUTH_STORE_TIMEOUT' })
    await sleep(300)
    t.equal(await client.hget(keys.session(session.sessionId), 't'), session.tokenId, 'the late rotation was refused')
    const result = await store.rotate({
      sessionId: session.sessionId,
      presentedTokenId: session.tokenId,
      nextTokenId: randomUUID(),
      now: Date.now(),
      nextExpiresAt: Date.now() + DAY,
      reuseIntervalMs: 0
    })
    t.equal(result.outcome, 'rotated', 'the token the client still holds refreshes')
  })
})
