// The battery itself: it passes a store that keeps the contract (a feed being optional), and fails stores
// that break it in the ways a store author might.
import t from 'tap'
import { MemoryStore, type SessionStore } from '../lib/index.js'
import { type RotateRequest, type RotateResult, type CreateOptions, type CreateResult, type PresentRequest, type PresentResult, type RevocationListener, type RevocationWatch, type SessionRecord, type WatchOptions } from '../lib/store.js'
import { storeContract } from '../lib/testing/store-contract.js'
import { withoutFeed } from './helpers/shipped-stores.js'

// each case runs the whole battery, on a machine that may be busy; the cases share nothing (stores of their own,
// in-process), and most of a battery's time is waiting (the deadlines a broken store runs into, expiry), so four
// run at once
t.jobs = 4

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
    // listed at the epoch: every session the store holds, expired or not
    isStored: async (store, session) => (await store.listUserSessions(session.userId, 0)).some(s => s.sessionId === session.sessionId),
    sweep: async (store) => { (store as Partial<Pick<MemoryStore, 'prune'>>).prune?.() },
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
    return { ...withoutFeed(inner), close: () => inner.close(), prune: () => inner.prune() }
  })
  t.same(failed(results), [])
  t.ok(results.size > 20, `${results.size} tests`)
})

t.test('a feed that never says it is live fails', async (t) => {
  class Silent extends MemoryStore {
    override watchRevocations (listener: RevocationListener, options: WatchOptions): RevocationWatch {
      return super.watchRevocations({ revoked: (ids, at, notice) => listener.revoked(ids, at, notice), status: () => {} }, options)
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
        revoked: (ids, at, notice) => { const told = ids.filter(id => !this.#silenced.has(id)); if (told.length > 0) listener.revoked(told, at, notice) },
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

t.test('a create that resolves to nothing fails', async (t) => {
  class NoCreateResult extends MemoryStore {
    override async create (session: SessionRecord, options?: CreateOptions): Promise<CreateResult> {
      await super.create(session, options)
      return undefined as unknown as CreateResult
    }
  }
  const results = await battery(() => new NoCreateResult())
  const names = failed(results)
  t.ok(names.some(name => /create resolves to a CreateResult/.test(name)), 'the create test')
  t.ok(names.some(name => /model-based/.test(name)), 'the model-based test')
  t.match(results.get(names[0])?.message, /create to resolve to \{ outcome: 'created', endedSessionIds \}, got undefined/, 'saying what create must answer')
})

t.test('a store that ignores maxSessionsPerUser fails', async (t) => {
  class Unlimited extends MemoryStore {
    override async create (session: SessionRecord, options: CreateOptions = {}): Promise<CreateResult> {
      return await super.create(session, { replaceSessionId: options.replaceSessionId })
    }
  }
  const names = failed(await battery(() => new Unlimited()))
  t.ok(names.some(name => /maxSessionsPerUser: the least recently used/.test(name)), 'the eviction test')
  t.ok(names.some(name => /onLimit 'refuse'/.test(name)), 'the refusal test')
  t.ok(names.some(name => /concurrent logins of one user/.test(name)), 'the concurrent logins test')
  t.ok(names.some(name => /model-based/.test(name)), 'the model-based test')
})

t.test('a create that does not report the sessions it ended fails', async (t) => {
  class Unreported extends MemoryStore {
    override async create (session: SessionRecord, options?: CreateOptions): Promise<CreateResult> {
      const result = await super.create(session, options)
      return result.outcome === 'created' ? { outcome: 'created', endedSessionIds: [] } : result
    }
  }
  const names = failed(await battery(() => new Unreported()))
  t.ok(names.some(name => /maxSessionsPerUser: the least recently used/.test(name)), 'the eviction test')
  t.ok(names.some(name => /replaceSessionId/.test(name)), 'the replacement test')
  t.ok(names.some(name => /model-based/.test(name)), 'the model-based test')
})

t.test('a create whose ends are not announced fails', async (t) => {
  class Unannounced extends MemoryStore {
    #creating = false
    override async create (session: SessionRecord, options?: CreateOptions): Promise<CreateResult> {
      // MemoryStore announces synchronously, inside the call: mute what it tells meanwhile
      this.#creating = true
      try {
        return super.create(session, options)
      } finally {
        this.#creating = false
      }
    }

    override watchRevocations (listener: RevocationListener, options: WatchOptions): RevocationWatch {
      return super.watchRevocations({
        revoked: (ids, at, notice) => { if (!this.#creating) listener.revoked(ids, at, notice) },
        status: (status) => listener.status(status)
      }, options)
    }
  }
  const names = failed(await battery(() => new Unannounced()))
  t.ok(names.some(name => /revocation feed/.test(name)), 'the feed test')
  t.ok(names.some(name => /model-based/.test(name)), 'the model-based test')
})

t.test('a revokeOtherSessions that ends the kept session too fails', async (t) => {
  class EndsAll extends MemoryStore {
    override async revokeOtherSessions (userId: string): Promise<void> {
      await this.revokeUser(userId)
    }
  }
  const names = failed(await battery(() => new EndsAll()))
  t.ok(names.some(name => /^revokeOtherSessions ends every session/.test(name)), 'the revokeOtherSessions test')
  t.ok(names.some(name => /revocation feed/.test(name)), 'the feed test')
  t.ok(names.some(name => /model-based/.test(name)), 'the model-based test')
})

t.test('a store that breaks ties of recency by locale rather than by code unit fails', async (t) => {
  // evicts by hand, as a store might with an ORDER BY under a locale's collation
  class LocaleOrder extends MemoryStore {
    override async create (session: SessionRecord, options: CreateOptions = {}): Promise<CreateResult> {
      const { maxSessionsPerUser: limit, onLimit, replaceSessionId } = options
      if (limit === undefined || onLimit === 'refuse') return await super.create(session, options)
      const counted = (await this.listUserSessions(session.userId, session.createdAt)).filter(s => s.sessionId !== replaceSessionId)
      counted.sort((a, b) => a.lastRefreshedAt - b.lastRefreshedAt || a.sessionId.localeCompare(b.sessionId))
      const evicted = counted.slice(0, Math.max(0, counted.length - limit + 1)).map(s => s.sessionId)
      for (const sessionId of evicted) await this.revoke(sessionId)
      const result = await super.create(session, { replaceSessionId })
      return { outcome: 'created', endedSessionIds: [...evicted, ...(result as Extract<CreateResult, { outcome: 'created' }>).endedSessionIds] }
    }
  }
  const names = failed(await battery(() => new LocaleOrder()))
  t.ok(names.some(name => /in the order of their ids, by code unit/.test(name)), 'the tie test')
  t.notOk(names.some(name => /maxSessionsPerUser: the least recently used/.test(name)), 'while the order by recency itself passes')
})

t.test('a store that never deletes expired sessions fails (answering them as gone is not enough)', async (t) => {
  class NoPrune extends MemoryStore {
    override prune (): void {}
  }
  const names = failed(await battery(() => new NoPrune()))
  t.same(names, ['expired sessions are deleted from the backend, not only answered as gone'])
})

t.test('a store that ignores the presented generation fails: a rotation it lost ends the session as reuse', async (t) => {
  class NoGeneration extends MemoryStore {
    override async rotate (request: RotateRequest): Promise<RotateResult> {
      return await super.rotate({ ...request, presentedGeneration: undefined })
    }
  }
  const names = failed(await battery(() => new NoGeneration()))
  t.ok(names.some(name => /a rotation the store lost/.test(name)), 'the lost-rotation test')
  t.ok(names.some(name => /model-based/.test(name)), 'the model-based test')
})

t.test('a store whose close() never resolves fails', async (t) => {
  // the first store made hangs in close(): the first test fails, and no other
  let made = 0
  class Hangs extends MemoryStore {
    readonly #hangs = made++ === 0
    override async close (): Promise<void> {
      await super.close()
      if (this.#hangs) await new Promise(() => {})
    }
  }
  const results = await battery(() => new Hangs())
  const names = failed(results)
  t.equal(names.length, 1)
  t.match(results.get(names[0])?.message, /store\.close\(\) did not resolve within 5000ms/)
})
