// createSessionStore: a store made of storage primitives keeps the whole contract (the exported battery), and
// the plugin closes it with the app.
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import fastifyRefreshAuth from '../lib/index.js'
import { createSessionStore, type SessionPrimitives, type SessionStore } from '../lib/store.js'
import { storeContract } from '../lib/testing/store-contract.js'
import { SECRET, verifyCredentials } from './helpers/app.js'
import { mapPrimitives } from './helpers/map-primitives.js'

function tapTest (parent: Test) {
  return (name: string, fn: () => Promise<void>) => parent.test(name, async (t) => {
    await fn()
    t.pass('the store keeps the contract')
  })
}

t.test('a store made by createSessionStore over Map primitives keeps the store contract', async (t) => {
  const backends = new WeakMap<SessionStore, ReturnType<typeof mapPrimitives>>()
  let current = mapPrimitives()
  storeContract({
    test: tapTest(t),
    createStore: () => {
      current = mapPrimitives()
      const store = createSessionStore(current, { sweepInterval: 0.05 })
      backends.set(store, current)
      return store
    },
    // another instance of the app on the same backend: the primitives of the store made last
    createPeer: () => createSessionStore(current, { sweepInterval: 0.05 }),
    isStored: async (store, session) => backends.get(store)?.sessions.has(session.sessionId) === true,
    createFailingStore: () => createSessionStore(failingPrimitives()),
    concurrency: 100
  })
})

t.test('createSessionStore refuses a sweepInterval that is not a positive number', async (t) => {
  for (const sweepInterval of [0, -1, '60' as never]) {
    t.throws(() => createSessionStore(mapPrimitives(), { sweepInterval }), { code: 'FST_REFRESH_AUTH_INVALID_OPTION' })
  }
})

t.test('a backend that keeps losing the race fails the call with a coded 503 rather than loop', async (t) => {
  const primitives = mapPrimitives()
  primitives.commitLogin = async () => false
  const store = createSessionStore(primitives)
  const now = Date.now()
  await t.rejects(store.create({ sessionId: 's', userId: 'u', tokenId: 't', previousTokenId: null, generation: 0, createdAt: now, rotatedAt: now, expiresAt: now + 60_000, absoluteExpiresAt: now + 60_000 }),
    { code: 'FST_REFRESH_AUTH_STORE_CONFLICT', statusCode: 503 })
})

t.test('a failed sweep is retried at the next one, never an unhandled rejection', async (t) => {
  const primitives = mapPrimitives()
  const sweeps: number[] = []
  primitives.deleteExpired = async (now) => {
    sweeps.push(now)
    throw new Error('database gone')
  }
  const store = createSessionStore(primitives, { sweepInterval: 0.01 })
  for (let i = 0; i < 200 && sweeps.length < 2; i++) await new Promise(resolve => setTimeout(resolve, 10))
  await store.close()
  t.ok(sweeps.length >= 2, 'swept again after a failure')
})

t.test('the plugin closes a store the host gave it, and the store closes what its primitives started, not more', async (t) => {
  const primitives = mapPrimitives()
  let closed = 0
  primitives.close = async () => { closed++ }
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store: createSessionStore(primitives) })
  await app.ready()
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'correct horse' } })
  t.equal(login.statusCode, 200, 'a login on the made store')
  t.equal(closed, 0)
  await app.close()
  t.equal(closed, 1, 'closed once, with the app')
})

/** Primitives whose backend is down: every call rejects. */
function failingPrimitives (): SessionPrimitives {
  const down = async (): Promise<never> => { throw new Error('backend down') }
  return { getSession: down, updateSession: down, deleteSession: down, getUser: down, commitLogin: down }
}

t.test('the battery fails a backend whose update is no compare-and-set: two instances both rotate one token', async (t) => {
  const cases: Array<[string, () => Promise<void>]> = []
  let current = mapPrimitives()
  const blind = (): ReturnType<typeof mapPrimitives> => {
    const primitives = mapPrimitives()
    // writes whatever the stored version: the last writer wins
    primitives.updateSession = async (record, version) => {
      await new Promise(resolve => setImmediate(resolve))
      primitives.sessions.set(record.sessionId, { record, version: version + 1 })
      return true
    }
    return primitives
  }
  storeContract({
    test: (name, fn) => { cases.push([name, fn]) },
    createStore: () => createSessionStore(current = blind()),
    createPeer: () => createSessionStore(current),
    isStored: async () => false,
    concurrency: 20
  })
  const strict = cases.find(([name]) => /strict rotation across two store objects/.test(name))
  t.ok(strict !== undefined, 'the battery has the two-instance case')
  await t.rejects((strict as [string, () => Promise<void>])[1](), /exactly one rotation wins/)
})
