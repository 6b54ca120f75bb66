import { strict as assert } from 'node:assert'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { RotateRequest, RotateResult, SessionRecord, SessionStore } from '../stores/store.js'

export interface StoreContractOptions<S extends SessionStore = SessionStore> {
  /**
   * Registers one test with your runner: `(name, fn) => t.test(name, async () => { await fn() })` for tap,
   * `test` itself for `node:test`. The battery asserts with `node:assert` and throws on failure.
   */
  test: (name: string, fn: () => Promise<void>) => unknown
  /** A store for one test. Ids are random, so stores may share a database. */
  createStore: () => S | Promise<S>
  /** Releases what `createStore` made (connections, timers), after each test (not called for failing stores). */
  destroyStore?: (store: S) => void | Promise<void>
  /**
   * A store whose backend is down (unreachable database, closed connection): every method must reject.
   * Omit it only for a store that cannot fail, such as the in-process MemoryStore. Clean it up yourself.
   */
  createFailingStore?: () => S | Promise<S>
  /** How many rotations of one token run at once in the concurrency tests. Default 100. */
  concurrency?: number
}

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE

/** A session as the plugin saves it at login, `now` being the login time. */
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
    userAgent: 'contract-test/1.0',
    ip: '192.0.2.1',
    ...overrides
  }
}

/** A session saved in the store as the plugin does at login, `now` being the login time. */
async function saveSession (store: SessionStore, now: number, overrides: Partial<SessionRecord> = {}): Promise<SessionRecord> {
  const session = newSession(now, overrides)
  await store.create(session)
  return session
}

function rotation (session: SessionRecord, presentedTokenId: string, now: number, overrides: Partial<RotateRequest> = {}): RotateRequest {
  return {
    sessionId: session.sessionId,
    presentedTokenId,
    nextTokenId: randomUUID(),
    now,
    nextExpiresAt: now + 7 * DAY,
    reuseIntervalMs: 0,
    ...overrides
  }
}

/** Asserts the outcome of a rotation, and answers the result narrowed to it. */
function assertOutcome<O extends RotateResult['outcome']> (result: RotateResult, outcome: O): Extract<RotateResult, { outcome: O }> {
  assert.equal(result.outcome, outcome, `expected the rotation to be ${outcome}, got ${result.outcome}`)
  return result as Extract<RotateResult, { outcome: O }>
}

/**
 * The contract every `SessionStore` must keep, as one battery of tests: save and rotate, replay detection, the
 * reuse interval, concurrent rotation of one token, revocation of one session and of all a user's sessions,
 * expiry and the absolute lifetime, and failures that reject. Run it against your own store:
 *
 * @example
 * import { test } from 'node:test'
 * import { storeContract } from 'fastify-refresh-auth/store-contract'
 * storeContract({ test, createStore: () => new SqlStore(pool), createFailingStore: () => new SqlStore(deadPool) })
 */
export function storeContract<S extends SessionStore> (options: StoreContractOptions<S>): void {
  const { test, createStore, destroyStore, createFailingStore, concurrency = 100 } = options

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

  withStore('save and rotate: the live token rotates once, its successor becomes live', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    const first = rotation(session, session.tokenId, now + 1000)
    const result = assertOutcome(await store.rotate(first), 'rotated')
    assert.deepEqual(result.session, {
      ...session,
      tokenId: first.nextTokenId,
      previousTokenId: session.tokenId,
      rotatedAt: first.now,
      expiresAt: first.nextExpiresAt
    })
    assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 2000)), 'rotated')
  })

  withStore('a retried rotation (same presented and next ids) answers rotated again, not reuse', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    const request = rotation(session, session.tokenId, now + 1000)
    assertOutcome(await store.rotate(request), 'rotated')
    const again = assertOutcome(await store.rotate({ ...request, now: now + 1500 }), 'rotated')
    assert.equal(again.session.tokenId, request.nextTokenId)
    assertOutcome(await store.rotate(rotation(session, request.nextTokenId, now + 2000)), 'rotated')
  })

  withStore('an unknown session, or a token of another session, is not-found', async (store) => {
    const now = Date.now()
    const session = newSession(now)
    assertOutcome(await store.rotate(rotation(session, session.tokenId, now)), 'not-found')
    await store.create(session)
    assertOutcome(await store.rotate(rotation(newSession(now), session.tokenId, now)), 'not-found')
  })

  withStore('replaying a rotated token is reuse and revokes the whole session', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    const first = rotation(session, session.tokenId, now + 1000)
    assertOutcome(await store.rotate(first), 'rotated')
    const replay = assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 2000)), 'reused')
    assert.equal(replay.session.userId, session.userId)
    // the successor died with its family
    assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 3000)), 'not-found')
  })

  withStore('a token id never issued in the session is reuse too', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    assertOutcome(await store.rotate(rotation(session, randomUUID(), now + 1000)), 'reused')
    assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 2000)), 'not-found')
  })

  withStore('reuse interval: the immediate parent is accepted within it, changing nothing', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    const first = rotation(session, session.tokenId, now + 1000, { reuseIntervalMs: 5000 })
    assertOutcome(await store.rotate(first), 'rotated')
    const grace = assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 3000, { reuseIntervalMs: 5000 })), 'grace')
    assert.equal(grace.session.tokenId, first.nextTokenId)
    assert.equal(grace.session.rotatedAt, first.now)
    // the live token is still the successor
    assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 4000, { reuseIntervalMs: 5000 })), 'rotated')
  })

  withStore('reuse interval: the parent after the interval is reuse', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 1000, { reuseIntervalMs: 5000 })), 'rotated')
    assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 6000, { reuseIntervalMs: 5000 })), 'reused')
  })

  withStore('reuse interval: a grandparent replayed within it is reuse', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    const first = rotation(session, session.tokenId, now + 1000, { reuseIntervalMs: 60_000 })
    assertOutcome(await store.rotate(first), 'rotated')
    assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 2000, { reuseIntervalMs: 60_000 })), 'rotated')
    assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 3000, { reuseIntervalMs: 60_000 })), 'reused')
  })

  withStore(`${concurrency} parallel rotations of one token never make two live successors`, async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    const requests = Array.from({ length: concurrency }, () => rotation(session, session.tokenId, now + 1000))
    const results = await Promise.all(requests.map(request => store.rotate(request)))
    const rotated = results.flatMap((result, i) => result.outcome === 'rotated' ? [requests[i].nextTokenId] : [])
    assert.equal(rotated.length, 1, 'exactly one rotation wins')
    assert.ok(results.some(result => result.outcome === 'reused'), 'the losers are reuse')
    for (const result of results) assert.ok(result.outcome !== 'grace', 'no grace without a reuse interval')
    // reuse revoked the family: the winner's successor is dead as well
    assertOutcome(await store.rotate(rotation(session, rotated[0], now + 2000)), 'not-found')
  })

  withStore(`${concurrency} parallel rotations within a reuse interval: one successor, the others re-issue it`, async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    const requests = Array.from({ length: concurrency }, () => rotation(session, session.tokenId, now + 1000, { reuseIntervalMs: 10_000 }))
    const results = await Promise.all(requests.map(request => store.rotate(request)))
    const rotated = results.filter(result => result.outcome === 'rotated')
    assert.equal(rotated.length, 1, 'exactly one rotation wins')
    const winner = requests[results.indexOf(rotated[0])].nextTokenId
    for (const result of results) {
      assert.ok(result.outcome === 'rotated' || result.outcome === 'grace', `unexpected ${result.outcome}`)
      assert.equal(result.session.tokenId, winner, 'every answer names the one live successor')
    }
    assertOutcome(await store.rotate(rotation(session, winner, now + 2000)), 'rotated')
  })

  withStore('revoke ends one session and no other; revoking twice or an unknown id is fine', async (store) => {
    const now = Date.now()
    const session = newSession(now)
    const sibling = newSession(now, { userId: session.userId })
    await store.create(session)
    await store.create(sibling)
    await store.revoke(session.sessionId)
    await store.revoke(session.sessionId)
    await store.revoke(randomUUID())
    assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 1000)), 'not-found')
    assertOutcome(await store.rotate(rotation(sibling, sibling.tokenId, now + 1000)), 'rotated')
    const listed = await store.listUserSessions(session.userId, now + 2000)
    assert.deepEqual(listed.map(s => s.sessionId), [sibling.sessionId])
  })

  withStore('revokeUser ends every session of that user and none of another', async (store) => {
    const now = Date.now()
    const sessions = [newSession(now)]
    for (let i = 0; i < 4; i++) sessions.push(newSession(now, { userId: sessions[0].userId }))
    const other = newSession(now)
    for (const session of [...sessions, other]) await store.create(session)
    // rotated and idle sessions alike
    assertOutcome(await store.rotate(rotation(sessions[1], sessions[1].tokenId, now + 1000)), 'rotated')
    await store.revokeUser(sessions[0].userId)
    for (const session of sessions) {
      assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 2000)), 'not-found')
    }
    assert.deepEqual(await store.listUserSessions(sessions[0].userId, now + 2000), [])
    assertOutcome(await store.rotate(rotation(other, other.tokenId, now + 2000)), 'rotated')
    await store.revokeUser(`user-${randomUUID()}`)
    // a new login after revokeUser works
    const later = newSession(now + 3000, { userId: sessions[0].userId })
    await store.create(later)
    assertOutcome(await store.rotate(rotation(later, later.tokenId, now + 4000)), 'rotated')
  })

  withStore('listUserSessions shows live sessions without token ids', async (store) => {
    const now = Date.now()
    const session = newSession(now)
    const bare = newSession(now + 10, { userId: session.userId, userAgent: undefined, ip: undefined })
    await store.create(session)
    await store.create(bare)
    await store.create(newSession(now))
    const first = rotation(session, session.tokenId, now + 1000)
    assertOutcome(await store.rotate(first), 'rotated')
    const listed = await store.listUserSessions(session.userId, now + 2000)
    listed.sort((a, b) => a.createdAt - b.createdAt)
    assert.deepEqual(listed, [{
      sessionId: session.sessionId,
      userId: session.userId,
      createdAt: session.createdAt,
      lastRefreshedAt: first.now,
      expiresAt: first.nextExpiresAt,
      absoluteExpiresAt: session.absoluteExpiresAt,
      userAgent: session.userAgent,
      ip: session.ip
    }, {
      sessionId: bare.sessionId,
      userId: session.userId,
      createdAt: bare.createdAt,
      lastRefreshedAt: bare.rotatedAt,
      expiresAt: bare.expiresAt,
      absoluteExpiresAt: bare.absoluteExpiresAt
    }])
    assert.deepEqual(await store.listUserSessions(`user-${randomUUID()}`, now), [])
  })

  withStore('idle expiry: a token past its expiresAt is not-found, and so is its session', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now, { expiresAt: now + MINUTE })
    assert.equal((await store.listUserSessions(session.userId, now + MINUTE - 1)).length, 1)
    assert.deepEqual(await store.listUserSessions(session.userId, now + MINUTE), [])
    assertOutcome(await store.rotate(rotation(session, session.tokenId, now + MINUTE)), 'not-found')
    assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 1000)), 'not-found')
  })

  withStore('expiry renews with each rotation', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now, { expiresAt: now + MINUTE })
    const first = rotation(session, session.tokenId, now + 50_000, { nextExpiresAt: now + 50_000 + MINUTE })
    assertOutcome(await store.rotate(first), 'rotated')
    assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 100_000)), 'rotated')
  })

  withStore('absolute lifetime: rotation never extends it', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now, { expiresAt: now + MINUTE, absoluteExpiresAt: now + 2 * MINUTE })
    const first = rotation(session, session.tokenId, now + 50_000, { nextExpiresAt: now + 50_000 + MINUTE })
    const result = assertOutcome(await store.rotate(first), 'rotated')
    assert.equal(result.session.absoluteExpiresAt, session.absoluteExpiresAt)
    assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 2 * MINUTE, { nextExpiresAt: now + 3 * MINUTE })), 'not-found')
    assert.deepEqual(await store.listUserSessions(session.userId, now + 2 * MINUTE), [])
  })

  withStore('expired sessions go away on their own (real time)', async (store) => {
    const now = Date.now()
    const session = newSession(now, { expiresAt: now + 150 })
    const absolute = newSession(now, { userId: session.userId, expiresAt: now + 150, absoluteExpiresAt: now + 150 })
    await store.create(session)
    await store.create(absolute)
    await sleep(300)
    const later = Date.now()
    assert.deepEqual(await store.listUserSessions(session.userId, later), [])
    assertOutcome(await store.rotate(rotation(session, session.tokenId, later)), 'not-found')
    assertOutcome(await store.rotate(rotation(absolute, absolute.tokenId, later)), 'not-found')
  })

  if (createFailingStore !== undefined) {
    test('a store whose backend fails rejects every operation (fail closed)', async () => {
      const store = await createFailingStore()
      const now = Date.now()
      const session = newSession(now)
      await assert.rejects(store.create(session))
      await assert.rejects(store.rotate(rotation(session, session.tokenId, now)))
      await assert.rejects(store.revoke(session.sessionId))
      await assert.rejects(store.revokeUser(session.userId))
      await assert.rejects(store.listUserSessions(session.userId, now))
    })
  }
}
