import t from 'tap'
import { MemoryStore } from '../lib/index.js'
import { type SessionRecord } from '../lib/store.js'
import { buildApp, login, refresh, refreshCookie } from './helpers/app.js'

function session (id: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now()
  return { sessionId: id, userId: 'u', tokenId: `${id}-t0`, previousTokenId: null, generation: 0, createdAt: now, rotatedAt: now, expiresAt: now + 60_000, absoluteExpiresAt: now + 120_000, ...overrides }
}

function rotation (id: string, presented: string, next: string, now = Date.now()) {
  return { sessionId: id, presentedTokenId: presented, nextTokenId: next, now, nextExpiresAt: now + 60_000, reuseIntervalMs: 0 }
}

t.test('refuses bad options', async t => {
  t.throws(() => new MemoryStore({ maxSessions: 0 }), /maxSessions must be a positive integer/)
  t.throws(() => new MemoryStore({ maxSessions: 1.5 }), /maxSessions/)
  t.throws(() => new MemoryStore({ pruneInterval: 0 }), /pruneInterval must be a positive number/)
  t.throws(() => new MemoryStore({ pruneInterval: '60' as never }), /pruneInterval/)
})

t.test('refuses a maxSessionsPerUser that is not a positive integer, and saves nothing', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  for (const maxSessionsPerUser of [0, -1, 1.5, Number.NaN]) {
    await t.rejects(store.create(session('s'), { maxSessionsPerUser }), { code: 'FST_REFRESH_AUTH_INVALID_ARGUMENT', message: /maxSessionsPerUser must be a positive integer/ })
  }
  t.equal(store.size, 0)
})

t.test('rotation is a compare-and-set on the live token id', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await store.create(session('s'))
  const rotated = await store.rotate(rotation('s', 's-t0', 's-t1'))
  t.equal(rotated.outcome, 'rotated')
  t.match(rotated, { session: { tokenId: 's-t1', previousTokenId: 's-t0' } })
  t.equal((await store.rotate(rotation('s', 's-t0', 's-t1'))).outcome, 'rotated', 'the same request retried is not reuse')
  t.equal((await store.rotate(rotation('s', 's-t0', 's-t2'))).outcome, 'reused', 'another request with the parent is')
  t.equal((await store.rotate(rotation('s', 's-t1', 's-t2'))).outcome, 'not-found', 'reuse revoked the session')
  t.equal((await store.rotate(rotation('nope', 'x', 'y'))).outcome, 'not-found')
})

t.test('returned records are copies', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const record = session('s')
  await store.create(record)
  record.tokenId = 'changed-by-caller'
  const rotated = await store.rotate(rotation('s', 's-t0', 's-t1'))
  t.equal(rotated.outcome, 'rotated', 'the caller mutating its record changed nothing')
  if (rotated.outcome === 'rotated') rotated.session.tokenId = 'changed-again'
  t.equal((await store.rotate(rotation('s', 's-t1', 's-t2'))).outcome, 'rotated')
})

t.test('expired sessions are refused and pruned', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const now = Date.now()
  await store.create(session('idle', { expiresAt: now + 1000 }))
  await store.create(session('absolute', { expiresAt: now + 60_000, absoluteExpiresAt: now + 2000 }))
  await store.create(session('live'))
  t.equal((await store.rotate(rotation('idle', 'idle-t0', 'x', now + 1000))).outcome, 'not-found', 'at the idle limit')
  t.equal(store.size, 2, 'dropped on sight')
  store.prune(now + 2000)
  t.equal(store.size, 1, 'the absolute limit prunes too')
  t.equal((await store.rotate(rotation('live', 'live-t0', 'live-t1', now + 2000))).outcome, 'rotated')
})

t.test('the sweep timer prunes on its own', async t => {
  const store = new MemoryStore({ pruneInterval: 0.02 })
  t.teardown(() => store.close())
  await store.create(session('old', { expiresAt: Date.now() - 1 }))
  for (let i = 0; i < 200 && store.size > 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(store.size, 0)
})

t.test('size is bounded: the least recently refreshed session goes first', async t => {
  const store = new MemoryStore({ maxSessions: 2 })
  t.teardown(() => store.close())
  await store.create(session('a'))
  await store.create(session('b'))
  await store.rotate(rotation('a', 'a-t0', 'a-t1'))
  await store.create(session('c'))
  t.equal(store.size, 2)
  t.equal((await store.rotate(rotation('b', 'b-t0', 'b-t1'))).outcome, 'not-found', 'b was the least recently refreshed')
  t.equal((await store.rotate(rotation('a', 'a-t1', 'a-t2'))).outcome, 'rotated')
  t.equal((await store.rotate(rotation('c', 'c-t0', 'c-t1'))).outcome, 'rotated')
})

t.test('revoking an unknown session is not an error', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await t.resolves(store.revoke('nothing'))
})

t.test('a host-supplied MemoryStore is used by the plugin', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const app = await buildApp(t, { store })
  const { refreshToken } = await login(app)
  t.equal(store.size, 1)
  t.equal(refreshCookie(await refresh(app, refreshToken)) === undefined, false)
  t.equal(store.size, 1, 'rotation keeps one session')
})

function recorder () {
  const heard: Array<[readonly string[], number]> = []
  const statuses: string[] = []
  return { heard, statuses, listener: { revoked: (ids: readonly string[], at: number) => { heard.push([ids, at]) }, status: (s: string) => { statuses.push(s) } } }
}

t.test('the capacity eviction is announced: the dropped session\'s access tokens die with it', async t => {
  const store = new MemoryStore({ maxSessions: 2 })
  t.teardown(() => store.close())
  const { heard, listener } = recorder()
  const watch = store.watchRevocations(listener, { retentionMs: 60_000 })
  t.teardown(() => watch.close())
  await store.create(session('a'))
  await store.create(session('b'))
  await store.create(session('c'))
  t.same(heard.map(([ids]) => ids), [['a']])
})

t.test('the in-process feed: live at once, and a later watch hears what ended within its retention while watched', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await store.create(session('unwatched'))
  await store.revoke('unwatched')
  const first = recorder()
  const watch = store.watchRevocations(first.listener, { retentionMs: 60_000 })
  t.same(first.statuses, ['live'], 'live before watchRevocations returns')
  t.same(first.heard, [], 'nothing was kept while nobody watched')
  await store.create(session('s1'))
  await store.revoke('s1')
  const second = recorder()
  const later = store.watchRevocations(second.listener, { retentionMs: 60_000 })
  t.same(second.heard.map(([ids]) => ids), [['s1']], 'loaded before live')
  t.same(second.statuses, ['live'])
  const short = recorder()
  const shortWatch = store.watchRevocations(short.listener, { retentionMs: 1 })
  await new Promise(resolve => setTimeout(resolve, 5))
  const third = recorder()
  const thirdWatch = store.watchRevocations(third.listener, { retentionMs: 1 })
  t.same(third.heard, [], 'older than its retention: not told')
  for (const w of [watch, later, shortWatch, thirdWatch]) await w.close()
  const fourth = recorder()
  const last = store.watchRevocations(fourth.listener, { retentionMs: 60_000 })
  t.same(fourth.heard, [], 'the log went with the last watch')
  await last.close()
})

t.test('the kept revocations are trimmed to the longest retention watched', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const first = recorder()
  const watch = store.watchRevocations(first.listener, { retentionMs: 20 })
  await store.create(session('old'))
  await store.revoke('old')
  await new Promise(resolve => setTimeout(resolve, 40))
  await store.create(session('new'))
  await store.revoke('new')
  const later = recorder()
  const second = store.watchRevocations(later.listener, { retentionMs: 60_000 })
  t.same(later.heard.map(([ids]) => ids), [['new']], 'the old one was trimmed')
  await watch.close()
  await second.close()
})

t.test('the kept revocations are dropped on time while the store is idle, not at the next revocation (issue 20 #13)', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const first = recorder()
  const watch = store.watchRevocations(first.listener, { retentionMs: 30 })
  await store.create(session('old'))
  await store.revoke('old')
  // nothing is written from here on: only the store's own timer can drop it
  await new Promise(resolve => setTimeout(resolve, 200))
  const later = recorder()
  const second = store.watchRevocations(later.listener, { retentionMs: 60_000 })
  t.same(later.heard, [], 'gone, though no revocation came after it')
  await watch.close()
  await second.close()
})

t.test('a listener that throws never breaks the store; the throw becomes a process warning', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const warnings: Error[] = []
  const onWarning = (warning: Error) => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const watch = store.watchRevocations({ revoked: () => { throw new Error('listener bug') }, status: () => { throw new Error('status bug') } }, { retentionMs: 1000 })
  await store.create(session('s'))
  await t.resolves(store.revoke('s'))
  await new Promise(resolve => setImmediate(resolve))
  t.same(warnings.map(w => w.message).sort(), ['listener bug', 'status bug'])
  await watch.close()
  await t.resolves(store.revoke('s'))
})

t.test('watchRevocations refuses a listener without its methods and a retention that is not a positive number', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  t.throws(() => store.watchRevocations(null as never, { retentionMs: 1000 }), /listener must have revoked\(\) and status\(\)/)
  t.throws(() => store.watchRevocations(recorder().listener as never, undefined as never), /retentionMs must be a positive number/)
  t.throws(() => store.watchRevocations(recorder().listener as never, { retentionMs: Number.NaN }), /retentionMs/)
})
