import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis, type RedisOptions } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisStore, type RedisClient } from '../lib/index.js'
import { type RevocationListener } from '../lib/store.js'
import { recorder, until as waitUntil } from '../lib/testing/feed-recorder.js'
import { isScript, REDIS_URL, redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'
import { DAY, newSession } from './helpers/sessions.js'
import { TcpProxy } from './helpers/tcp-proxy.js'
import { redisKeys } from './helpers/redis-keys.js'

// real servers, on a machine shared with other test runs

// bounded waits of 5 s here: these tests reconnect through a proxy
const until = (condition: () => boolean, what: string, ms = 5000): Promise<void> => waitUntil(condition, what, ms)

function rotation (sessionId: string, presentedTokenId: string, now = Date.now()) {
  return { sessionId, presentedTokenId, nextTokenId: randomUUID(), now, nextExpiresAt: now + DAY, reuseIntervalMs: 0 }
}

/** A Redis client reaching the server through a TCP proxy the test controls. */
async function proxiedClient (t: Test, options: RedisOptions = {}): Promise<{ client: Redis, proxy: TcpProxy }> {
  const url = new URL(REDIS_URL)
  const proxy = await new TcpProxy(url.hostname, Number(url.port || 6379)).listen()
  t.teardown(() => proxy.close())
  const client = new Redis(`redis://${url.username ? `${url.username}:${url.password}@` : ''}127.0.0.1:${proxy.port}${url.pathname}`, options)
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return { client, proxy }
}

/** A feed connection the test answers by hand: `reads` holds each XREAD waiting for its reply. */
function scriptedConnection () {
  const handlers = new Map<string, Array<() => void>>()
  const reads: Array<{ resolve: (reply: unknown) => void, reject: (err: Error) => void }> = []
  const connection = {
    call: (command: string) => command === 'XREAD'
      ? new Promise((resolve, reject) => { reads.push({ resolve, reject }) })
      : Promise.resolve(1),
    on: (event: string, listener: () => void) => { handlers.set(event, [...handlers.get(event) ?? [], listener]) },
    disconnect: () => { for (const read of reads.splice(0)) read.reject(new Error('Connection is closed.')) },
    emit: (event: string) => { for (const listener of handlers.get(event) ?? []) listener() }
  }
  return { connection, reads }
}

t.test('a read answered after its connection was given up is ignored', async (t) => {
  const made: Array<ReturnType<typeof scriptedConnection>> = []
  const client = {
    defineCommand () {},
    duplicate () {
      const scripted = scriptedConnection()
      made.push(scripted)
      return scripted.connection
    }
  }
  const store = new RedisStore({ client: client as unknown as RedisClient })
  const heard = recorder()
  const watch = store.watchRevocations(heard.listener, { retentionMs: 60_000 })
  t.teardown(() => watch.close())
  await until(() => made[0]?.reads.length === 1, 'the first read')
  const [read] = made[0].reads
  made[0].reads.length = 0
  made[0].connection.emit('close')
  read.resolve(['k', [['1-0', ['ids', '["late"]', 'at', '1']]]])
  await sleep(20)
  t.notOk(heard.revoked.has('late'), 'not delivered: the connection had been given up')
  t.same(heard.statuses, [], 'and no status from it')
  await until(() => made.length === 2 && made[1].reads.length === 1, 'a new connection reads')
  made[1].reads[0].resolve(null)
  await until(() => heard.statuses.includes('live'), 'live on the new one')
})

t.test('a trim that fails waits for the next turn of the timer', async (t) => {
  let trims = 0
  const client = {
    defineCommand (name: string) {
      if (!isScript(name, 'trimRevocations')) return
      (client as unknown as Record<string, unknown>)[name] = async () => {
        trims++
        throw new Error('connection lost')
      }
    },
    duplicate: () => scriptedConnection().connection
  }
  const store = new RedisStore({ client: client as unknown as RedisClient })
  const first = store.watchRevocations(recorder().listener, { retentionMs: 20 })
  const second = store.watchRevocations(recorder().listener, { retentionMs: 20 })
  await until(() => trims >= 2, 'tried again after a failure')
  await first.close()
  const count = trims
  await until(() => trims > count, 'one watch left: still trimming')
  await second.close()
  const after = trims
  await sleep(100)
  t.equal(trims, after, 'no watch left: no timer')
})

t.test('the RedisStore revocation feed', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const direct = redisClient(t, prefix)

  /**
   * A store whose client reaches Redis through a proxy the test controls, watched, and another store on a
   * direct connection to the same keys (another instance); `name` keeps each test's keys apart.
   */
  async function watchedBehindProxy (t: Test, name: string) {
    const { client, proxy } = await proxiedClient(t)
    const store = new RedisStore({ client, prefix: `${prefix}${name}:` })
    const other = new RedisStore({ client: direct, prefix: `${prefix}${name}:` })
    const heard = recorder()
    const watch = store.watchRevocations(heard.listener, { retentionMs: 60_000 })
    t.teardown(() => watch.close())
    return { store, other, heard, proxy }
  }

  t.test('a watch reads on a connection of its own, which close() releases', async (t) => {
    const opened: Redis[] = []
    const client = redisClient(t, null)
    const counting = new Proxy(client, {
      get (target, name, receiver) {
        if (name === 'duplicate') return () => { const connection = target.duplicate(); opened.push(connection); return connection }
        const value = Reflect.get(target, name, receiver)
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
    const store = new RedisStore({ client: counting, prefix: `${prefix}own:` })
    const heard = recorder()
    const watch = store.watchRevocations(heard.listener, { retentionMs: 60_000 })
    await until(() => heard.statuses.includes('live'), 'live')
    t.equal(opened.length, 1, 'one duplicate()d connection')
    t.equal(opened[0].status, 'ready')
    await watch.close()
    await until(() => opened[0].status === 'end', 'the connection closed')
    t.equal(client.status, 'ready', 'the user\'s own client is left open')
    t.equal(heard.statuses.length, 1, 'no down on close')
  })

  t.test('a client without duplicate() cannot be watched', async (t) => {
    const client = { defineCommand () {} } as unknown as RedisClient
    const store = new RedisStore({ client })
    t.throws(() => store.watchRevocations(recorder().listener, { retentionMs: 1000 }), /duplicate/)
    const usable = new RedisStore({ client: direct, prefix: `${prefix}refused:` })
    t.throws(() => usable.watchRevocations({} as RevocationListener, { retentionMs: 1000 }), /listener must have revoked\(\) and status\(\)/)
    t.throws(() => usable.watchRevocations(recorder().listener, { retentionMs: 0 }), /retentionMs must be a positive number/)
  })

  t.test('the connection cut: down, then live again after catching up, and nothing missed', async (t) => {
    const { other, heard, proxy } = await watchedBehindProxy(t, 'cut')
    await until(() => heard.statuses.includes('live'), 'live')
    proxy.cut()
    await until(() => heard.statuses.includes('down'), 'down once cut')
    const missed = Array.from({ length: 700 }, () => randomUUID())
    for (let i = 0; i < missed.length; i += 100) await other.revokeUser(`nobody-${i}`)
    // a hundred at a time: each must reach Redis within its deadline on a busy machine
    for (let i = 0; i < missed.length; i += 100) await Promise.all(missed.slice(i, i + 100).map(id => other.revoke(id)))
    await sleep(200)
    t.notOk(heard.revoked.has(missed[0]), 'not heard while cut off')
    proxy.restore()
    await until(() => heard.statuses.length === 3, 'caught up')
    t.same(heard.statuses, ['live', 'down', 'live'], 'no gap: the stream still held them')
    t.ok(missed.every(id => heard.revoked.has(id)), 'every revocation made meanwhile arrived, over several pages')
  })

  t.test('a connection gone silent (blackholed) is dropped and made again', async (t) => {
    const { client, proxy } = await proxiedClient(t)
    const store = new RedisStore({ client, prefix: `${prefix}silent:`, timeout: 200 })
    const heard = recorder()
    const watch = store.watchRevocations(heard.listener, { retentionMs: 60_000 })
    t.teardown(() => watch.close())
    await until(() => heard.statuses.includes('live'), 'live')
    proxy.blackhole()
    await until(() => heard.statuses.includes('down'), 'down once no read answers in time')
    proxy.restore()
    const later = randomUUID()
    await new RedisStore({ client: direct, prefix: `${prefix}silent:` }).revoke(later)
    await until(() => heard.revoked.has(later), 'heard again after a new connection')
    t.equal(heard.statuses.at(-1), 'live')
  })

  t.test('away longer than the retention: gap, not live', async (t) => {
    const { client, proxy } = await proxiedClient(t)
    const store = new RedisStore({ client, prefix: `${prefix}away:` })
    const heard = recorder()
    const watch = store.watchRevocations(heard.listener, { retentionMs: 300 })
    t.teardown(() => watch.close())
    await until(() => heard.statuses.includes('live'), 'live')
    proxy.cut()
    await until(() => heard.statuses.includes('down'), 'down')
    await sleep(400)
    proxy.restore()
    await until(() => heard.statuses.length === 3, 'caught up')
    t.same(heard.statuses, ['live', 'down', 'gap'])
  })

  t.test('entries trimmed before this watch read them: gap, as their numbers tell', async (t) => {
    const { other, heard, proxy } = await watchedBehindProxy(t, 'trimmed')
    await other.revoke(randomUUID())
    await until(() => heard.revoked.size === 1, 'one heard')
    proxy.cut()
    await until(() => heard.statuses.includes('down'), 'down')
    const lost = randomUUID()
    await other.revoke(lost)
    await other.revoke(randomUUID())
    // someone trims harder than this watch asked (an instance with shorter tokens): the entry after the last seen goes
    const [, [lostId]] = await direct.xrange(redisKeys(`${prefix}trimmed:`).revocations, '-', '+')
    await direct.xtrim(redisKeys(`${prefix}trimmed:`).revocations, 'MINID', `${Number(lostId.split('-')[0])}-${Number(lostId.split('-')[1]) + 1}`)
    proxy.restore()
    await until(() => heard.statuses.length === 3, 'caught up')
    t.same(heard.statuses, ['live', 'down', 'gap'])
    t.notOk(heard.revoked.has(lost), 'the trimmed revocation was never heard: hence the gap')
  })

  t.test('a number skipped while live: gap at once', async (t) => {
    const store = new RedisStore({ client: direct, prefix: `${prefix}skipped:` })
    await store.revoke(randomUUID())
    const heard = recorder()
    const watch = store.watchRevocations(heard.listener, { retentionMs: 60_000 })
    t.teardown(() => watch.close())
    await until(() => heard.statuses.includes('live'), 'live')
    await direct.xadd(redisKeys(`${prefix}skipped:`).revocations, '*', 'ids', '["late"]', 'at', String(Date.now()), 'c', 'revoke', 'n', '99')
    await until(() => heard.statuses.length === 2, 'reported')
    t.same(heard.statuses, ['live', 'gap'])
    t.ok(heard.revoked.has('late'), 'and the entry is delivered')
  })

  /** A recorder that also keeps the epoch (`since`) each status came with. */
  function epochRecorder () {
    const heard = recorder()
    const epochs: Array<number | undefined> = []
    const listener: RevocationListener = {
      revoked: heard.listener.revoked,
      status (status, since) {
        heard.listener.status(status)
        epochs.push(since)
      }
    }
    return { ...heard, listener, epochs }
  }

  t.test('the store\'s data lost while the watch was away: a new epoch, its history read whole, no gap of its own', async (t) => {
    const { client, proxy } = await proxiedClient(t)
    const keys = redisKeys(`${prefix}flushed:`)
    const store = new RedisStore({ client, prefix: `${prefix}flushed:` })
    const other = new RedisStore({ client: direct, prefix: `${prefix}flushed:` })
    const heard = epochRecorder()
    const watch = store.watchRevocations(heard.listener, { retentionMs: 60_000 })
    t.teardown(() => watch.close())
    await other.revoke(randomUUID())
    await until(() => heard.revoked.size === 1, 'one heard')
    const epoch = Number(await direct.get(keys.epoch))
    proxy.cut()
    await until(() => heard.statuses.includes('down'), 'down')
    await direct.del(keys.revocations, keys.epoch)
    const after = randomUUID()
    await other.revoke(after)
    proxy.restore()
    await until(() => heard.statuses.length === 3, 'caught up')
    t.same(heard.statuses, ['live', 'down', 'live'])
    t.same(heard.epochs.slice(0, 2), [epoch, undefined], 'live with the epoch; down without')
    t.ok((heard.epochs[2] as number) > epoch, 'then live with the new one')
    t.equal(Number(await direct.get(keys.epoch)), heard.epochs[2])
    t.ok(heard.revoked.has(after), 'the new history was read from its start')
  })

  t.test('the store\'s data lost while the watch stayed connected: the next entry tells of the new epoch', async (t) => {
    const keys = redisKeys(`${prefix}flushed-live:`)
    const store = new RedisStore({ client: direct, prefix: `${prefix}flushed-live:` })
    const heard = epochRecorder()
    const watch = store.watchRevocations(heard.listener, { retentionMs: 60_000 })
    t.teardown(() => watch.close())
    await until(() => heard.statuses.includes('live'), 'live')
    await store.revoke(randomUUID())
    await store.revoke(randomUUID())
    const epoch = Number(await direct.get(keys.epoch))
    await direct.del(keys.revocations, keys.epoch)
    const after = randomUUID()
    await new RedisStore({ client: direct, prefix: `${prefix}flushed-live:` }).revoke(after)
    await until(() => heard.statuses.length === 2, 'the new epoch reported')
    t.same(heard.statuses, ['live', 'live'], 'no gap: its numbers start again under the new epoch')
    t.ok((heard.epochs[1] as number) > epoch)
    t.ok(heard.revoked.has(after))
    await direct.xadd(keys.revocations, '*', 'ids', '["older"]', 'at', String(Date.now()), 'c', 'revoke', 'n', '2', 'e', String(epoch))
    await store.revoke(randomUUID())
    await sleep(100)
    t.same(heard.statuses, ['live', 'live'], 'an entry of an older epoch restarts nothing')
  })

  t.test('the stream is trimmed by age to the longest retention a watch asked for', async (t) => {
    const store = new RedisStore({ client: direct, prefix: `${prefix}trim:` })
    const heard = recorder()
    const watch = store.watchRevocations(heard.listener, { retentionMs: 200 })
    t.teardown(() => watch.close())
    await Promise.all(Array.from({ length: 300 }, () => store.revoke(randomUUID())))
    await sleep(300)
    await store.revoke(randomUUID())
    const length = await direct.xlen(redisKeys(`${prefix}trim:`).revocations)
    t.ok(length < 301, `${length} entries left of 301`)
  })

  t.test('the stream shrinks by age while nothing is written (issue 20 #13)', async (t) => {
    const store = new RedisStore({ client: direct, prefix: `${prefix}idle-trim:` })
    const key = redisKeys(`${prefix}idle-trim:`).revocations
    const heard = recorder()
    const watch = store.watchRevocations(heard.listener, { retentionMs: 300 })
    t.teardown(() => watch.close())
    await Promise.all(Array.from({ length: 50 }, () => store.revoke(randomUUID())))
    t.equal(await direct.xlen(key), 50)
    // no writes from now on: only the store's timer trims (bounded wait: 10 s)
    let length = 50
    for (let i = 0; i < 100 && length > 0; i++) {
      await sleep(100)
      length = await direct.xlen(key)
    }
    t.equal(length, 0, 'every entry older than the retention is gone')
  })

  t.test('entries that are not revocations are skipped', async (t) => {
    const store = new RedisStore({ client: direct, prefix: `${prefix}foreign:` })
    await direct.xadd(redisKeys(`${prefix}foreign:`).revocations, '*', 'ids', 'not json', 'at', '1')
    await direct.xadd(redisKeys(`${prefix}foreign:`).revocations, '*', 'ids', '[1, 2]', 'at', '1')
    await direct.xadd(redisKeys(`${prefix}foreign:`).revocations, '*', 'ids', '["a"]', 'at', 'never')
    await direct.xadd(redisKeys(`${prefix}foreign:`).revocations, '*', 'odd', 'entry')
    await direct.xadd(redisKeys(`${prefix}foreign:`).revocations, '*', 'ids', '["b"]', 'at', '1', 'c', 'stolen')
    await store.revoke('real')
    const heard = recorder()
    const watch = store.watchRevocations(heard.listener, { retentionMs: 60_000 })
    t.teardown(() => watch.close())
    await until(() => heard.statuses.includes('live'), 'live')
    t.same([...heard.revoked.keys()], ['real'])
  })

  t.test('ioredis with RESP2 or with RESP3 maps as objects reads the same feed', async (t) => {
    for (const options of [{ protocol: 2 }, { replyMapping: 'resp3' }] as RedisOptions[]) {
      const client = redisClient(t, null, options)
      const store = new RedisStore({ client, prefix: `${prefix}resp:` })
      await store.revoke(`before-${JSON.stringify(options)}`)
      const heard = recorder()
      const watch = store.watchRevocations(heard.listener, { retentionMs: 60_000 })
      await until(() => heard.statuses.includes('live'), 'live')
      t.ok(heard.revoked.has(`before-${JSON.stringify(options)}`), `${JSON.stringify(options)}: loaded`)
      await new RedisStore({ client: direct, prefix: `${prefix}resp:` }).revoke('after')
      await until(() => heard.revoked.has('after'), 'heard')
      await watch.close()
    }
  })

  t.test('an end whose announcement failed stays an end, and is announced when next met', async (t) => {
    let failAnnouncements = true
    const flaky = new Proxy(direct, {
      get (target, name, receiver) {
        const value = Reflect.get(target, name, receiver)
        if (!isScript(name, 'announceRevocation')) return typeof value === 'function' ? value.bind(target) : value
        return async (...args: unknown[]) => {
          if (failAnnouncements) throw new Error('connection lost')
          return value.apply(target, args)
        }
      }
    })
    const store = new RedisStore({ client: flaky, prefix: `${prefix}pending:` })
    const watcher = new RedisStore({ client: direct, prefix: `${prefix}pending:` })
    const heard = recorder()
    const watch = watcher.watchRevocations(heard.listener, { retentionMs: 60_000 })
    t.teardown(() => watch.close())

    const stolen = newSession(Date.now())
    await store.create(stolen)
    const first = rotation(stolen.sessionId, stolen.tokenId)
    await store.rotate(first)
    await t.rejects(store.rotate(rotation(stolen.sessionId, stolen.tokenId)), { message: 'connection lost' }, 'reuse found, its announcement failed')
    await t.rejects(store.rotate(rotation(stolen.sessionId, first.nextTokenId)), { message: 'connection lost' },
      'the live token no longer rotates: met again, the end is announced again (and fails again)')

    const loggedOut = newSession(Date.now())
    await store.create(loggedOut)
    await t.rejects(store.present({ sessionId: loggedOut.sessionId, presentedTokenId: loggedOut.tokenId, now: Date.now(), reuseIntervalMs: 0, end: true }), { message: 'connection lost' })
    t.same(await store.listUserSessions(loggedOut.userId, Date.now()), [], 'a logout whose announcement failed ended the session')

    failAnnouncements = false
    t.equal((await store.rotate(rotation(stolen.sessionId, first.nextTokenId))).outcome, 'not-found', 'met again: ended, and its end announced again')
    t.equal((await store.present({ sessionId: loggedOut.sessionId, presentedTokenId: loggedOut.tokenId, now: Date.now(), reuseIntervalMs: 0, end: true })).outcome, 'not-found')
    await until(() => heard.revoked.has(stolen.sessionId) && heard.revoked.has(loggedOut.sessionId), 'and now announced')
    t.same(await direct.hgetall(redisKeys(`${prefix}pending:`).session(stolen.sessionId)), { x: 'reuse' }, 'then deleted, but for its mark')
    t.same(await direct.hgetall(redisKeys(`${prefix}pending:`).session(loggedOut.sessionId)), { x: 'logout' })
    t.same(heard.calls.slice(-2).map(call => call.notice), [{ userId: stolen.userId, cause: 'reuse' }, { userId: loggedOut.userId, cause: 'logout' }],
      'announced again with the user and the cause its mark kept')
  })
})
