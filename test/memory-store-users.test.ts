import t from 'tap'
import { MemoryStore } from '../lib/index.js'
import { newSession } from './helpers/sessions.js'

// every session of this file belongs to alice
const aliceSession = (now: number, overrides: Parameters<typeof newSession>[1] = {}) => newSession(now, { userId: 'alice', ...overrides })

async function listedIds (store: MemoryStore, userId: string, now: number): Promise<string[]> {
  return (await store.listUserSessions(userId, now)).map(s => s.sessionId).sort()
}

t.test('the user index follows every way a session ends', async (t) => {
  const store = new MemoryStore({ maxSessions: 4 })
  t.teardown(() => store.close())
  const now = Date.now()
  const [a, b, c] = [aliceSession(now), aliceSession(now), aliceSession(now, { expiresAt: now + 1000 })]
  for (const session of [a, b, c]) await store.create(session)
  t.same(await listedIds(store, 'alice', now), [a.sessionId, b.sessionId, c.sessionId].sort())

  // revoking one of three leaves two
  await store.revoke(b.sessionId)
  t.same(await listedIds(store, 'alice', now), [a.sessionId, c.sessionId].sort())

  // the sweep drops the expired one, leaving a single session
  store.prune(now + 2000)
  t.equal(store.size, 1)
  t.same(await listedIds(store, 'alice', now), [a.sessionId])

  // saving a session id again replaces it (and its index entry)
  await store.create({ ...a, userId: 'bob' })
  t.same(await listedIds(store, 'alice', now), [])
  t.same(await listedIds(store, 'bob', now), [a.sessionId])

  // full: the user holding the most sessions gives up their least recently refreshed one, not bob
  const more = [aliceSession(now, { userId: 'carol' }), aliceSession(now, { userId: 'carol' }), aliceSession(now, { userId: 'carol' })]
  for (const session of more) await store.create(session)
  await store.create(aliceSession(now, { userId: 'dave' }))
  t.equal(store.size, 4)
  t.same(await listedIds(store, 'bob', now), [a.sessionId], 'bob’s one session stays')
  t.same(await listedIds(store, 'carol', now), [more[1].sessionId, more[2].sessionId].sort(), 'carol’s oldest went')
  await store.revokeUser('carol')
  t.equal(store.size, 2)
  t.same(await listedIds(store, 'carol', now), [])
})

t.test('full, with every user holding one session: a login ends one of them, never more (issue 20 #4)', async (t) => {
  const store = new MemoryStore({ maxSessions: 2 })
  t.teardown(() => store.close())
  const now = Date.now()
  const [ann, bob] = [newSession(now, { userId: 'ann' }), newSession(now, { userId: 'bob' })]
  for (const session of [ann, bob]) await store.create(session)
  await store.create(newSession(now, { userId: 'cy' }))
  t.equal(store.size, 2)
  const left = [...await listedIds(store, 'ann', now), ...await listedIds(store, 'bob', now)]
  t.equal(left.length, 1, 'one of the two made room')
  t.equal((await store.listUserSessions('cy', now)).length, 1)
})

t.test('a flood by one user at the store-wide cap ends only the flooder\'s sessions (issue 20 #4)', async (t) => {
  const store = new MemoryStore({ maxSessions: 50 })
  t.teardown(() => store.close())
  const now = Date.now()
  const bob = newSession(now, { userId: 'bob' })
  await store.create(bob)
  for (let i = 0; i < 200; i++) await store.create(newSession(now + i, { userId: 'mallory' }))
  t.equal(store.size, 50)
  t.same(await listedIds(store, 'bob', now), [bob.sessionId], 'bob is still signed in')
  t.equal((await store.listUserSessions('mallory', now)).length, 49)
})
