// The parts of store contract v2 that the exported battery (lib/testing/store-contract.ts) does not test yet:
// create with limits and replacement, present, revokeOtherSessions and the revocation feed. Written like the
// battery (node:assert, any store, ids random so stores may share a backend) so that it can move into it once
// every shipped store implements these methods.
import { strict as assert } from 'node:assert'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type {
  CreateResult, PresentRequest, RevocationFeedStatus, RevocationListener, RotateRequest, SessionRecord, SessionStore
} from '../../lib/index.js'

/** A store with every method of contract v2. */
export type StoreV2 = SessionStore & Required<Pick<SessionStore, 'present' | 'revokeOtherSessions' | 'watchRevocations'>>

export interface StoreContractV2Options<S extends StoreV2> {
  test: (name: string, fn: () => Promise<void>) => unknown
  createStore: () => S | Promise<S>
  /** Another store object on the same backend (another instance of the app), for the feed between instances. */
  createPeer?: () => S | Promise<S>
  destroyStore?: (store: S) => void | Promise<void>
  createFailingStore?: () => S | Promise<S>
  /** How many logins of one user run at once in the limit test. Default 20. */
  concurrency?: number
}

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE
const RETENTION = { retentionMs: 16 * MINUTE }

function newSession (now: number, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    sessionId: randomUUID(),
    userId: `user-${randomUUID()}`,
    tokenId: randomUUID(),
    previousTokenId: null,
    createdAt: now,
    rotatedAt: now,
    expiresAt: now + 7 * DAY,
    absoluteExpiresAt: now + 30 * DAY,
    ...overrides
  }
}

function rotation (session: SessionRecord, presentedTokenId: string, now: number, overrides: Partial<RotateRequest> = {}): RotateRequest {
  return {
    sessionId: session.sessionId,
    userId: session.userId,
    presentedTokenId,
    nextTokenId: randomUUID(),
    now,
    nextExpiresAt: now + 7 * DAY,
    reuseIntervalMs: 0,
    ...overrides
  }
}

function presenting (session: SessionRecord, presentedTokenId: string, now: number, overrides: Partial<PresentRequest> = {}): PresentRequest {
  return { sessionId: session.sessionId, presentedTokenId, now, reuseIntervalMs: 0, end: false, ...overrides }
}

async function rotates (store: StoreV2, session: SessionRecord, tokenId: string, now: number): Promise<boolean> {
  return (await store.rotate(rotation(session, tokenId, now))).outcome === 'rotated'
}

/** Waits until `condition` holds, polling; fails after `ms`. */
export async function until (condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!condition()) {
    if (Date.now() > end) assert.fail(`not within ${ms}ms: ${what}`)
    await sleep(10)
  }
}

/** A listener that records what it hears. */
export function recorder () {
  const revoked = new Set<string>()
  const statuses: RevocationFeedStatus[] = []
  const calls: Array<{ sessionIds: readonly string[], revokedAt: number }> = []
  const listener: RevocationListener = {
    revoked (sessionIds, revokedAt) {
      calls.push({ sessionIds, revokedAt })
      for (const id of sessionIds) revoked.add(id)
    },
    status (status) { statuses.push(status) }
  }
  return { listener, revoked, statuses, calls }
}

function created (result: CreateResult | void): string[] {
  assert.ok(result !== undefined && result.outcome === 'created', `expected created, got ${JSON.stringify(result)}`)
  return result.endedSessionIds
}

export function storeContractV2<S extends StoreV2> (options: StoreContractV2Options<S>): void {
  const { test, createStore, createPeer, destroyStore, createFailingStore, concurrency = 20 } = options

  function withStore (name: string, body: (store: S) => Promise<void>): void {
    test(name, async () => {
      const store = await createStore()
      try {
        await body(store)
      } finally {
        await destroyStore?.(store)
      }
    })
  }

  withStore('create without options saves the session and ends nothing', async (store) => {
    const now = Date.now()
    const session = newSession(now)
    assert.deepEqual(created(await store.create(session)), [])
    assert.deepEqual(created(await store.create(newSession(now, { userId: session.userId }), {})), [])
    assert.ok(await rotates(store, session, session.tokenId, now + 1000))
  })

  withStore('maxSessionsPerUser: the least recently used session makes room (revoke-oldest, the default)', async (store) => {
    const now = Date.now()
    const first = newSession(now)
    const second = newSession(now + 1, { userId: first.userId })
    const third = newSession(now + 2, { userId: first.userId })
    for (const session of [first, second, third]) assert.deepEqual(created(await store.create(session, { maxSessionsPerUser: 3 })), [])
    // refreshing the first makes the second the least recently used
    const refreshed = rotation(first, first.tokenId, now + 10)
    assert.equal((await store.rotate(refreshed)).outcome, 'rotated')
    const fourth = newSession(now + 20, { userId: first.userId })
    assert.deepEqual(created(await store.create(fourth, { maxSessionsPerUser: 3 })), [second.sessionId])
    assert.equal((await store.rotate(rotation(second, second.tokenId, now + 30))).outcome, 'not-found')
    const listed = (await store.listUserSessions(first.userId, now + 30)).map(s => s.sessionId).sort()
    assert.deepEqual(listed, [first.sessionId, third.sessionId, fourth.sessionId].sort())
    // a lower limit than the sessions held ends as many as it takes
    const fifth = newSession(now + 40, { userId: first.userId })
    assert.deepEqual(created(await store.create(fifth, { maxSessionsPerUser: 1, onLimit: 'revoke-oldest' })).sort(),
      [first.sessionId, third.sessionId, fourth.sessionId].sort())
    assert.deepEqual((await store.listUserSessions(first.userId, now + 50)).map(s => s.sessionId), [fifth.sessionId])
  })

  withStore("onLimit 'refuse': at the limit nothing is saved and nothing ended", async (store) => {
    const now = Date.now()
    const first = newSession(now)
    const second = newSession(now, { userId: first.userId })
    await store.create(first, { maxSessionsPerUser: 2, onLimit: 'refuse' })
    await store.create(second, { maxSessionsPerUser: 2, onLimit: 'refuse' })
    const third = newSession(now + 10, { userId: first.userId })
    assert.deepEqual(await store.create(third, { maxSessionsPerUser: 2, onLimit: 'refuse' }), { outcome: 'limit-reached' })
    assert.equal((await store.rotate(rotation(third, third.tokenId, now + 20))).outcome, 'not-found', 'not saved')
    assert.ok(await rotates(store, first, first.tokenId, now + 20), 'the others live on')
    assert.ok(await rotates(store, second, second.tokenId, now + 20))
    // another user is not counted
    assert.deepEqual(created(await store.create(newSession(now + 30), { maxSessionsPerUser: 2, onLimit: 'refuse' })), [])
  })

  withStore('expired sessions do not count toward the limit', async (store) => {
    const now = Date.now()
    const old = newSession(now - 2 * MINUTE, { expiresAt: now - MINUTE })
    await store.create(old)
    const fresh = newSession(now, { userId: old.userId })
    assert.deepEqual(created(await store.create(fresh, { maxSessionsPerUser: 1, onLimit: 'refuse' })), [])
    assert.ok(await rotates(store, fresh, fresh.tokenId, now + 10))
  })

  withStore('replaceSessionId ends the replaced session with the save and leaves it out of the count', async (store) => {
    const now = Date.now()
    const first = newSession(now)
    const second = newSession(now + 1, { userId: first.userId })
    await store.create(first)
    await store.create(second)
    const again = newSession(now + 10, { userId: first.userId })
    assert.deepEqual(created(await store.create(again, { maxSessionsPerUser: 2, replaceSessionId: second.sessionId })), [second.sessionId])
    assert.equal((await store.rotate(rotation(second, second.tokenId, now + 20))).outcome, 'not-found')
    assert.ok(await rotates(store, first, first.tokenId, now + 20), 'nothing else had to make room')
    // a session of another user, or an unknown one, is not replaced
    const stranger = newSession(now)
    await store.create(stranger)
    const next = newSession(now + 30, { userId: first.userId })
    assert.deepEqual(created(await store.create(next, { replaceSessionId: stranger.sessionId })), [])
    assert.deepEqual(created(await store.create(newSession(now + 40, { userId: first.userId }), { replaceSessionId: randomUUID() })), [])
    assert.ok(await rotates(store, stranger, stranger.tokenId, now + 50))
  })

  withStore(`${concurrency} concurrent logins of one user with a limit of 3 leave exactly 3 live sessions`, async (store) => {
    const now = Date.now()
    const userId = `user-${randomUUID()}`
    const sessions = Array.from({ length: concurrency }, (_, i) => newSession(now + i, { userId }))
    const results = await Promise.all(sessions.map(session => store.create(session, { maxSessionsPerUser: 3 })))
    const ended = results.flatMap(created)
    const live = (await store.listUserSessions(userId, now + concurrency)).map(s => s.sessionId)
    assert.equal(live.length, 3, 'exactly three live')
    assert.equal(new Set(ended).size, concurrency - 3, 'every other session was ended once')
    assert.deepEqual([...live, ...ended].sort(), sessions.map(s => s.sessionId).sort())
  })

  withStore('present: the live token is live, and with end the session is over', async (store) => {
    const now = Date.now()
    const session = newSession(now)
    await store.create(session)
    const live = await store.present(presenting(session, session.tokenId, now + 10))
    assert.equal(live.outcome, 'live')
    assert.ok(live.outcome === 'live')
    assert.equal(live.session.userId, session.userId)
    assert.ok(await rotates(store, session, session.tokenId, now + 20), 'presenting changed nothing')
    const other = newSession(now)
    await store.create(other)
    assert.equal((await store.present(presenting(other, other.tokenId, now + 10, { end: true }))).outcome, 'live')
    assert.equal((await store.rotate(rotation(other, other.tokenId, now + 20))).outcome, 'not-found', 'ended')
    assert.equal((await store.present(presenting(other, other.tokenId, now + 30))).outcome, 'not-found')
  })

  withStore('present: the parent within the reuse interval is live; after it, or any other token, is reuse and ends the session', async (store) => {
    const now = Date.now()
    const session = newSession(now)
    await store.create(session)
    const first = rotation(session, session.tokenId, now + 1000)
    await store.rotate(first)
    assert.equal((await store.present(presenting(session, session.tokenId, now + 2000, { reuseIntervalMs: 5000 }))).outcome, 'live')
    assert.equal((await store.present(presenting(session, first.nextTokenId, now + 2000, { reuseIntervalMs: 5000 }))).outcome, 'live')
    const reused = await store.present(presenting(session, session.tokenId, now + 7000, { reuseIntervalMs: 5000, end: true }))
    assert.equal(reused.outcome, 'reused')
    assert.ok(reused.outcome === 'reused')
    assert.equal(reused.session.tokenId, first.nextTokenId)
    assert.equal((await store.rotate(rotation(session, first.nextTokenId, now + 8000))).outcome, 'not-found', 'the whole session ended')

    const another = newSession(now)
    await store.create(another)
    assert.equal((await store.present(presenting(another, randomUUID(), now + 10))).outcome, 'reused')
    assert.equal((await store.present(presenting(another, another.tokenId, now + 20))).outcome, 'not-found')
  })

  withStore('present: an unknown or expired session is not-found', async (store) => {
    const now = Date.now()
    assert.equal((await store.present(presenting(newSession(now), randomUUID(), now))).outcome, 'not-found')
    const session = newSession(now, { expiresAt: now + MINUTE })
    await store.create(session)
    assert.equal((await store.present(presenting(session, session.tokenId, now + MINUTE))).outcome, 'not-found')
    assert.equal((await store.present(presenting(session, session.tokenId, now + 10))).outcome, 'not-found', 'the expired session was deleted')
  })

  withStore('revokeOtherSessions ends every session of the user but the one kept', async (store) => {
    const now = Date.now()
    const kept = newSession(now)
    const others = [newSession(now, { userId: kept.userId }), newSession(now, { userId: kept.userId })]
    const stranger = newSession(now)
    for (const session of [kept, ...others, stranger]) await store.create(session)
    await store.revokeOtherSessions(kept.userId, kept.sessionId)
    await store.revokeOtherSessions(`user-${randomUUID()}`, randomUUID())
    for (const session of others) assert.equal((await store.rotate(rotation(session, session.tokenId, now + 10))).outcome, 'not-found')
    assert.ok(await rotates(store, kept, kept.tokenId, now + 10))
    assert.ok(await rotates(store, stranger, stranger.tokenId, now + 10))
  })

  withStore('the feed: live once loaded; this store object announces what it ends before the call resolves', async (store) => {
    const heard = recorder()
    const watch = store.watchRevocations(heard.listener, RETENTION)
    try {
      await until(() => heard.statuses.includes('live'), 'the feed is live')
      assert.deepEqual(heard.statuses, ['live'])
      const now = Date.now()
      const session = newSession(now)
      await store.create(session)
      const before = Date.now()
      let heardInTime = false
      await store.revoke(session.sessionId).then(() => { heardInTime = heard.revoked.has(session.sessionId) })
      assert.ok(heardInTime, 'heard when revoke resolved')
      const call = heard.calls.find(c => c.sessionIds.includes(session.sessionId))
      assert.ok(call !== undefined && call.revokedAt >= before - MINUTE && call.revokedAt <= Date.now() + MINUTE, 'revokedAt is the time of the revocation')
    } finally {
      await watch.close()
    }
  })

  withStore('the feed: every way a store ends a session is announced', async (store) => {
    const heard = recorder()
    const watch = store.watchRevocations(heard.listener, RETENTION)
    try {
      const now = Date.now()
      const expect = async (what: string, end: (session: SessionRecord) => Promise<unknown>, session = newSession(now)): Promise<void> => {
        await store.create(session)
        await end(session)
        assert.ok(heard.revoked.has(session.sessionId), `${what} is announced`)
      }
      await expect('revoke', (s) => store.revoke(s.sessionId))
      await expect('revokeUser', (s) => store.revokeUser(s.userId))
      const kept = newSession(now)
      await store.create(kept)
      await expect('revokeOtherSessions', (s) => store.revokeOtherSessions(s.userId, kept.sessionId), newSession(now, { userId: kept.userId }))
      assert.ok(!heard.revoked.has(kept.sessionId), 'the kept session is not')
      await expect('reuse found by rotate', async (s) => {
        await store.rotate(rotation(s, s.tokenId, now + 10))
        await store.rotate(rotation(s, s.tokenId, now + 20))
      })
      await expect('reuse found by present', (s) => store.present(presenting(s, randomUUID(), now + 10)))
      await expect('present with end', (s) => store.present(presenting(s, s.tokenId, now + 10, { end: true })))
      await expect('the limit at create', (s) => store.create(newSession(now + 10, { userId: s.userId }), { maxSessionsPerUser: 1 }))
      await expect('the replacement at create', (s) => store.create(newSession(now + 10, { userId: s.userId }), { replaceSessionId: s.sessionId }))
      assert.ok(!heard.revoked.has(kept.sessionId))
    } finally {
      await watch.close()
    }
  })

  withStore('the feed: two listeners on one store; closing one leaves the other', async (store) => {
    const one = recorder()
    const two = recorder()
    const first = store.watchRevocations(one.listener, RETENTION)
    const second = store.watchRevocations(two.listener, RETENTION)
    try {
      const now = Date.now()
      const session = newSession(now)
      await store.create(session)
      await store.revoke(session.sessionId)
      assert.ok(one.revoked.has(session.sessionId) && two.revoked.has(session.sessionId))
      await first.close()
      await first.close()
      const later = newSession(now)
      await store.create(later)
      await store.revoke(later.sessionId)
      assert.ok(two.revoked.has(later.sessionId), 'the open one still hears')
      await sleep(100)
      assert.ok(!one.revoked.has(later.sessionId), 'the closed one does not')
      await until(() => two.statuses.includes('live'), 'the open one is live')
    } finally {
      await second.close()
    }
  })

  if (createPeer !== undefined) {
    withStore('the feed: another instance on the same backend hears what this one ends, and loads what it holds', async (store) => {
      const peer = await createPeer()
      const now = Date.now()
      const early = newSession(now)
      await store.create(early)
      await store.revoke(early.sessionId)
      const heard = recorder()
      const watch = peer.watchRevocations(heard.listener, RETENTION)
      try {
        await until(() => heard.statuses.includes('live'), 'the peer is live')
        assert.ok(heard.revoked.has(early.sessionId), 'the catch-up loaded a revocation made before the watch')
        const sessions = [newSession(now), newSession(now)]
        sessions.push(newSession(now, { userId: sessions[1].userId }))
        for (const session of sessions) await store.create(session)
        await store.revoke(sessions[0].sessionId)
        await store.revokeUser(sessions[1].userId)
        await until(() => sessions.every(s => heard.revoked.has(s.sessionId)), 'the peer heard every revocation')
      } finally {
        await watch.close()
        await destroyStore?.(peer)
      }
    })
  }

  if (createFailingStore !== undefined) {
    test('a store whose backend fails rejects present and revokeOtherSessions too (fail closed)', async () => {
      const store = await createFailingStore()
      const now = Date.now()
      const session = newSession(now)
      await assert.rejects(store.create(session, { maxSessionsPerUser: 1 }))
      await assert.rejects(store.present(presenting(session, session.tokenId, now)))
      await assert.rejects(store.revokeOtherSessions(session.userId, session.sessionId))
    })
  }
}
