// The battery itself: it passes a store that keeps the contract (a feed being optional), and fails stores
// that break it in the ways a store author might.
import t from 'tap'
import { MemoryStore, type PresentRequest, type PresentResult, type RevocationListener, type RevocationWatch, type SessionStore, type WatchOptions } from '../lib/index.js'
import { storeContract } from '../lib/testing/store-contract.js'

/** Runs the battery against stores made by `createStore`; answers each test's failure, or null. */
async function battery (createStore: () => SessionStore): Promise<Map<string, Error | null>> {
  const tests: Array<[string, () => Promise<void>]> = []
  const made: MemoryStore[] = []
  storeContract({
    test: (name, fn) => { tests.push([name, fn]) },
    createStore: () => {
      const store = createStore()
      if (store instanceof MemoryStore) made.push(store)
      return store
    },
    concurrency: 10
  })
  const results = new Map<string, Error | null>()
  for (const [name, fn] of tests) {
    try {
      await fn()
      results.set(name, null)
    } catch (err) {
      results.set(name, err as Error)
    }
  }
  for (const store of made) store.close()
  return results
}

function failed (results: Map<string, Error | null>): string[] {
  return [...results].filter(([, err]) => err !== null).map(([name]) => name)
}

t.test('a store without a revocation feed passes: the feed tests are skipped', async (t) => {
  const results = await battery(() => {
    const inner = new MemoryStore()
    return {
      create: (session, options) => inner.create(session, options),
      rotate: (request) => inner.rotate(request),
      present: (request) => inner.present(request),
      revoke: (sessionId) => inner.revoke(sessionId),
      revokeUser: (userId) => inner.revokeUser(userId),
      revokeOtherSessions: (userId, keepSessionId) => inner.revokeOtherSessions(userId, keepSessionId),
      listUserSessions: (userId, now) => inner.listUserSessions(userId, now),
      close: () => inner.close()
    } as SessionStore
  })
  t.same(failed(results), [])
  t.ok(results.size > 20, `${results.size} tests`)
})

t.test('a feed that never says it is live fails', async (t) => {
  class Silent extends MemoryStore {
    override watchRevocations (listener: RevocationListener, options: WatchOptions): RevocationWatch {
      return super.watchRevocations({ revoked: (ids, at) => listener.revoked(ids, at), status: () => {} }, options)
    }
  }
  const names = failed(await battery(() => new Silent()))
  t.ok(names.some(name => /revocation feed/.test(name)), 'the feed test')
  t.ok(names.some(name => /model-based/.test(name)), 'the model-based test')
})

t.test('a logout that is not announced fails', async (t) => {
  class Quiet extends MemoryStore {
    readonly #silenced = new Set<string>()
    override async present (request: PresentRequest): Promise<PresentResult> {
      if (request.end) this.#silenced.add(request.sessionId)
      return await super.present(request)
    }

    override watchRevocations (listener: RevocationListener, options: WatchOptions): RevocationWatch {
      return super.watchRevocations({
        revoked: (ids, at) => { const told = ids.filter(id => !this.#silenced.has(id)); if (told.length > 0) listener.revoked(told, at) },
        status: (status) => listener.status(status)
      }, options)
    }
  }
  const names = failed(await battery(() => new Quiet()))
  t.ok(names.some(name => /revocation feed/.test(name)), 'the feed test')
  t.ok(names.some(name => /model-based/.test(name)), 'the model-based test')
})

t.test('a present that ignores the reuse interval fails', async (t) => {
  class Strict extends MemoryStore {
    override async present (request: PresentRequest): Promise<PresentResult> {
      return await super.present({ ...request, reuseIntervalMs: 0 })
    }
  }
  const names = failed(await battery(() => new Strict()))
  t.ok(names.some(name => /present: the parent within the reuse interval/.test(name)), 'the present test')
  t.ok(names.some(name => /model-based/.test(name)), 'the model-based test')
})
