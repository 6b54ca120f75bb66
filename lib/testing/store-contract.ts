import { strict as assert } from 'node:assert'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type {
  CreateResult, PresentRequest, PresentResult, RotateRequest, RotateResult, SessionEndCause, SessionRecord, SessionStore
} from '../stores/store.js'
import { loginRecord } from '../sessions/decisions.js'
import { recorder, until } from './feed-recorder.js'
import { runSessionModel } from './session-model.js'

export interface StoreContractOptions<S extends SessionStore = SessionStore> {
  /**
   * Registers one test with your runner: `(name, fn) => t.test(name, async () => { await fn() })` for tap,
   * `test` itself for `node:test`. The battery asserts with `node:assert` and throws on failure.
   */
  test: (name: string, fn: () => Promise<void>) => unknown
  /** A store for one test. Ids are random, so stores may share a database. */
  createStore: () => S | Promise<S>
  /**
   * Releases what `createStore` made for the test (a client or pool of its own), after each test. The battery
   * itself first calls each store's `close()`, which stops what the store started and leaves the host's client.
   */
  destroyStore?: (store: S) => void | Promise<void>
  /**
   * Whether the backend still holds a session, read from the backend itself, not through the store's methods
   * (`SELECT 1 … WHERE id = ?`, `EXISTS key`): the battery checks with it that expired sessions really go
   * away, not merely that they are answered as gone.
   */
  isStored: (store: S, session: SessionRecord) => Promise<boolean>
  /**
   * Runs the store's own deletion of expired sessions now, as its timer would (`store.cleanup()`), for a store
   * whose timer is off or slow in the tests. Without it the battery waits up to 5 seconds for them to go.
   */
  sweep?: (store: S) => Promise<unknown>
  /**
   * A store whose backend is down (unreachable database, closed connection): every method must reject.
   * Omit it only for a store that cannot fail, such as the in-process MemoryStore. Clean it up yourself.
   */
  createFailingStore?: () => S | Promise<S>
  /**
   * Another store object on the same backend, as another instance of the app would make: the feed tests then
   * check that it hears what `createStore`'s store ends. Omit it for an in-process store. Released with
   * `destroyStore`.
   */
  createPeer?: () => S | Promise<S>
  /** How many rotations of one token run at once in the concurrency tests. Default 100. */
  concurrency?: number
  /** How many logins of one user run at once in the test of the per-user limit. Default 20. */
  loginConcurrency?: number
  /** How many operations each seeded run of the model-based test makes (five runs). Default 150. */
  modelSteps?: number
}

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE

/** A session as the plugin saves it at login, `now` being the login time. */
function newSession (now: number, overrides: Partial<SessionRecord> = {}): SessionRecord {
  const session = loginRecord({
    sessionId: randomUUID(),
    userId: `user-${randomUUID()}`,
    tokenId: randomUUID(),
    now,
    expiresAt: now + 7 * DAY,
    absoluteExpiresAt: now + 30 * DAY,
    userAgent: 'contract-test/1.0',
    ip: '192.0.2.1'
  })
  return { ...session, ...overrides }
}

/** Asserts that `create` saved the session, and answers the sessions it reports ended. */
function assertCreated (result: CreateResult | undefined): string[] {
  assert.equal(result?.outcome, 'created', `expected create to resolve to { outcome: 'created', endedSessionIds }, got ${JSON.stringify(result)}`)
  const { endedSessionIds } = result as Extract<CreateResult, { outcome: 'created' }>
  assert.ok(Array.isArray(endedSessionIds), 'endedSessionIds is an array')
  return endedSessionIds
}

/** A saved session rotated once, a second after `now`, with a reuse interval of 5 seconds. */
async function rotatedOnce (store: SessionStore, now: number): Promise<{ session: SessionRecord, first: RotateRequest }> {
  const session = await saveSession(store, now)
  const first = rotation(session, session.tokenId, now + 1000, { reuseIntervalMs: 5000 })
  assertOutcome(await store.rotate(first), 'rotated')
  return { session, first }
}

/** A session saved in the store as the plugin does at login, `now` being the login time. */
async function saveSession (store: SessionStore, now: number, overrides: Partial<SessionRecord> = {}): Promise<SessionRecord> {
  const session = newSession(now, overrides)
  assert.deepEqual(assertCreated(await store.create(session)), [], 'a login without options ends nothing')
  return session
}

/** The ids of the user's live sessions at `now`, sorted. */
async function liveIds (store: SessionStore, userId: string, now: number): Promise<string[]> {
  return (await store.listUserSessions(userId, now)).map(s => s.sessionId).sort()
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

/** Asserts the outcome of a `present`, and answers the result narrowed to it. */
function assertPresent<O extends PresentResult['outcome']> (result: PresentResult, outcome: O): Extract<PresentResult, { outcome: O }> {
  assert.equal(result.outcome, outcome, `expected present to answer ${outcome}, got ${result.outcome}`)
  return result as Extract<PresentResult, { outcome: O }>
}

const RETENTION = { retentionMs: 16 * MINUTE }

/** Asserts the outcome of a rotation, and answers the result narrowed to it. */
function assertOutcome<O extends RotateResult['outcome']> (result: RotateResult, outcome: O): Extract<RotateResult, { outcome: O }> {
  assert.equal(result.outcome, outcome, `expected the rotation to be ${outcome}, got ${result.outcome}`)
  return result as Extract<RotateResult, { outcome: O }>
}

/**
 * The contract every `SessionStore` must keep, as one battery of tests: save and rotate, replay detection, the
 * reuse interval, concurrent rotation of one token, `present` (logout only with the live token), revocation of
 * one session, of all a user's sessions and of all but one, `create` with a per-user limit (both policies,
 * concurrent logins included) and with a replaced session, expiry and the absolute lifetime, failures that
 * reject, and a seeded model-based test of random operation sequences. With `watchRevocations`, the
 * revocation feed too: every way the store ends a session is announced, before the method resolves, to every
 * watch, and (with `createPeer`) to other store objects on the same backend. Run it against your own store:
 *
 * @example
 * import { test } from 'node:test'
 * import { storeContract } from 'fastify-refresh-auth/store-contract'
 * storeContract({ test, createStore: () => new SqlStore(pool), createFailingStore: () => new SqlStore(deadPool) })
 */
export function storeContract<S extends SessionStore> (options: StoreContractOptions<S>): void {
  const { test, createStore, destroyStore, createFailingStore, createPeer, isStored, sweep, concurrency = 100, loginConcurrency = 20, modelSteps = 150 } = options

  /** Ends a store the battery made: its own `close()` (bounded: a close that hangs fails the test), then the caller's release. */
  async function release (store: S): Promise<void> {
    try {
      await closeWithin(store, 5000)
    } finally {
      await destroyStore?.(store)
    }
  }

  function withStore (name: string, body: (store: S) => Promise<void>): void {
    test(name, async () => {
      const store = await createStore()
      try {
        await body(store)
      } finally {
        await release(store)
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
      generation: session.generation + 1,
      rotatedAt: first.now,
      expiresAt: first.nextExpiresAt
    })
    assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 2000)), 'rotated')
  })

  withStore('a DPoP-bound session keeps its key (jkt) through rotation, grace and present; an unbound one has none', async (store) => {
    const now = Date.now()
    const jkt = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs'
    const bound = await saveSession(store, now, { jkt })
    const first = rotation(bound, bound.tokenId, now + 1000, { reuseIntervalMs: 60_000 })
    assert.equal(assertOutcome(await store.rotate(first), 'rotated').session.jkt, jkt, 'rotated: the key stays')
    assert.equal(assertOutcome(await store.rotate(rotation(bound, bound.tokenId, now + 2000, { reuseIntervalMs: 60_000 })), 'grace').session.jkt, jkt,
      'grace: the key stays')
    assert.equal(assertOutcome(await store.rotate(rotation(bound, first.nextTokenId, now + 3000)), 'rotated').session.jkt, jkt, 'a second rotation too')
    const unbound = await saveSession(store, now)
    const rotated = assertOutcome(await store.rotate(rotation(unbound, unbound.tokenId, now + 1000)), 'rotated')
    assert.equal(rotated.session.jkt, undefined, 'a session saved without a key has none')
    const live = assertPresent(await store.present(presenting(unbound, rotated.session.tokenId, now + 2000)), 'live')
    assert.equal(live.session.jkt, undefined)
    const other = await saveSession(store, now, { jkt })
    assert.equal(assertPresent(await store.present(presenting(other, other.tokenId, now + 1000)), 'live').session.jkt, jkt, 'present: the key is read back')
  })

  withStore('a rotation with a key binds an unbound session for good; grace writes no key; a bound one never changes key', async (store) => {
    const now = Date.now()
    const jkt = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs'
    const otherKey = '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I'
    const session = await saveSession(store, now)
    const binding = rotation(session, session.tokenId, now + 1000, { reuseIntervalMs: 60_000, jkt })
    assert.equal(assertOutcome(await store.rotate(binding), 'rotated').session.jkt, jkt, 'the rotation answers the bound record')
    assert.equal(assertOutcome(await store.rotate(binding), 'rotated').session.jkt, jkt, 'a retry answers it bound too')
    assert.equal(assertPresent(await store.present(presenting(session, binding.nextTokenId, now + 1500)), 'live').session.jkt, jkt,
      'the key is in the store')
    const grace = assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 2000, { reuseIntervalMs: 60_000 })), 'grace')
    assert.equal(grace.session.jkt, jkt, 'the unbound parent in grace is shown the bound record')
    const rival = rotation(session, binding.nextTokenId, now + 3000, { jkt: otherKey })
    assert.equal(assertOutcome(await store.rotate(rival), 'rotated').session.jkt, jkt, 'another key does not replace it')
    assert.equal(assertOutcome(await store.rotate(rotation(session, rival.nextTokenId, now + 4000)), 'rotated').session.jkt, jkt,
      'nor does a rotation without one unbind it')

    const unbound = await saveSession(store, now)
    const first = rotation(unbound, unbound.tokenId, now + 1000, { reuseIntervalMs: 60_000 })
    assertOutcome(await store.rotate(first), 'rotated')
    const inGrace = assertOutcome(await store.rotate(rotation(unbound, unbound.tokenId, now + 2000, { reuseIntervalMs: 60_000, jkt })), 'grace')
    assert.equal(inGrace.session.jkt, undefined, 'grace binds nothing')
    assert.equal(assertPresent(await store.present(presenting(unbound, first.nextTokenId, now + 2500)), 'live').session.jkt, undefined)

    // a token from ahead of the store (a lost rotation) binds as a rotation of the live token does
    const behind = await saveSession(store, now, { generation: 1 })
    const ahead = rotation(behind, randomUUID(), now + 1000, { presentedGeneration: 3, jkt })
    assert.equal(assertOutcome(await store.rotate(ahead), 'rotated').session.jkt, jkt, 'from ahead: bound')
    assert.equal(assertPresent(await store.present(presenting(behind, ahead.nextTokenId, now + 2000)), 'live').session.jkt, jkt)
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

  withStore('a rotation the store lost (a failover): the token from ahead rotates, and the session goes on', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    // the client holds a token of generation 1 that the store never saw: its rotation was acknowledged, then lost
    const lost = randomUUID()
    const adopt = rotation(session, lost, now + 1000, { presentedGeneration: 1, reuseIntervalMs: 5000 })
    const adopted = assertOutcome(await store.rotate(adopt), 'rotated')
    assert.equal(adopted.session.tokenId, adopt.nextTokenId, 'the successor is live')
    assert.equal(adopted.session.previousTokenId, lost, 'the lost token is its parent')
    assert.equal(adopted.session.generation, 2, 'one generation above the presented token')
    assertOutcome(await store.rotate({ ...adopt, now: now + 1500 }), 'rotated')
    assertOutcome(await store.rotate(rotation(session, lost, now + 2000, { presentedGeneration: 1, reuseIntervalMs: 5000 })), 'grace')
    assertOutcome(await store.rotate(rotation(session, adopt.nextTokenId, now + 3000, { presentedGeneration: 2 })), 'rotated')
    // the token the store still had as live is behind now: reuse
    assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 4000, { presentedGeneration: 0 })), 'reused')
    // a logout with a token from ahead speaks for its session
    const other = await saveSession(store, now)
    assertPresent(await store.present(presenting(other, randomUUID(), now + 10, { presentedGeneration: 3 })), 'live')
    assertPresent(await store.present(presenting(other, randomUUID(), now + 20, { presentedGeneration: 1, end: true })), 'live')
    assertOutcome(await store.rotate(rotation(other, other.tokenId, now + 30)), 'not-found')
  })

  withStore('a token of the live generation or behind it that is not the live one is reuse, whatever generation it claims', async (store) => {
    const now = Date.now()
    for (const presentedGeneration of [0, 1]) {
      const session = await saveSession(store, now)
      const first = rotation(session, session.tokenId, now + 1000, { presentedGeneration: 0 })
      assertOutcome(await store.rotate(first), 'rotated')
      // a fork at generation 1, or a stranger claiming an old generation
      assertOutcome(await store.rotate(rotation(session, randomUUID(), now + 2000, { presentedGeneration })), 'reused')
      assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 3000, { presentedGeneration: 1 })), 'not-found')
    }
    const parent = await saveSession(store, now)
    assertOutcome(await store.rotate(rotation(parent, parent.tokenId, now + 1000, { presentedGeneration: 0 })), 'rotated')
    assertPresent(await store.present(presenting(parent, parent.tokenId, now + 2000, { presentedGeneration: 0 })), 'reused')
  })

  withStore('reuse interval: the immediate parent is accepted within it, changing nothing', async (store) => {
    const now = Date.now()
    const { session, first } = await rotatedOnce(store, now)
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
    // the interval is open at its start and closed at its end
    const edge = await saveSession(store, now)
    assertOutcome(await store.rotate(rotation(edge, edge.tokenId, now + 1000, { reuseIntervalMs: 5000 })), 'rotated')
    assertOutcome(await store.rotate(rotation(edge, edge.tokenId, now + 5999, { reuseIntervalMs: 5000 })), 'grace')
    assertOutcome(await store.rotate(rotation(edge, edge.tokenId, now + 6000, { reuseIntervalMs: 5000 })), 'reused')
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

  withStore('revokeOtherSessions ends every session of the user but the one kept, and none of another', async (store) => {
    const now = Date.now()
    const kept = await saveSession(store, now)
    const others = [await saveSession(store, now, { userId: kept.userId }), await saveSession(store, now, { userId: kept.userId })]
    const stranger = await saveSession(store, now)
    // rotated and idle sessions alike, the kept one rotated too
    const keptNext = rotation(kept, kept.tokenId, now + 10)
    assertOutcome(await store.rotate(keptNext), 'rotated')
    assertOutcome(await store.rotate(rotation(others[0], others[0].tokenId, now + 10)), 'rotated')
    await store.revokeOtherSessions(kept.userId, kept.sessionId)
    await store.revokeOtherSessions(kept.userId, kept.sessionId)
    await store.revokeOtherSessions(`user-${randomUUID()}`, randomUUID())
    for (const session of others) assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 20)), 'not-found')
    assert.deepEqual(await liveIds(store, kept.userId, now + 20), [kept.sessionId])
    assertOutcome(await store.rotate(rotation(kept, keptNext.nextTokenId, now + 20)), 'rotated')
    assertOutcome(await store.rotate(rotation(stranger, stranger.tokenId, now + 20)), 'rotated')
    // a kept id that is not one of the user's sessions keeps none of them, and leaves its owner's alone
    const next = await saveSession(store, now + 30, { userId: kept.userId })
    await store.revokeOtherSessions(kept.userId, stranger.sessionId)
    assert.deepEqual(await liveIds(store, kept.userId, now + 40), [])
    assertOutcome(await store.rotate(rotation(next, next.tokenId, now + 40)), 'not-found')
    assert.deepEqual(await liveIds(store, stranger.userId, now + 40), [stranger.sessionId])
  })

  withStore('create resolves to a CreateResult; without a limit reached it saves the session and ends nothing', async (store) => {
    const now = Date.now()
    const first = newSession(now)
    assert.deepEqual(assertCreated(await store.create(first)), [])
    const sessions = [first, newSession(now + 1, { userId: first.userId }), newSession(now + 2, { userId: first.userId }), newSession(now + 3, { userId: first.userId })]
    assert.deepEqual(assertCreated(await store.create(sessions[1], {})), [])
    assert.deepEqual(assertCreated(await store.create(sessions[2], { maxSessionsPerUser: 3 })), [], 'below the limit')
    assert.deepEqual(assertCreated(await store.create(sessions[3], { onLimit: 'refuse' })), [], 'a policy without a limit')
    for (const session of sessions) assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 1000)), 'rotated')
  })

  withStore('maxSessionsPerUser: the least recently used sessions (oldest rotatedAt) end to make room, revoke-oldest being the default', async (store) => {
    const now = Date.now()
    const first = newSession(now)
    const second = newSession(now + 1, { userId: first.userId })
    const third = newSession(now + 2, { userId: first.userId })
    for (const session of [first, second, third]) assert.deepEqual(assertCreated(await store.create(session, { maxSessionsPerUser: 3 })), [])
    // refreshing the first makes the second the least recently used
    assertOutcome(await store.rotate(rotation(first, first.tokenId, now + 10)), 'rotated')
    const fourth = newSession(now + 20, { userId: first.userId })
    assert.deepEqual(assertCreated(await store.create(fourth, { maxSessionsPerUser: 3 })), [second.sessionId])
    // the evicted session ended like a logout
    assertOutcome(await store.rotate(rotation(second, second.tokenId, now + 30)), 'not-found')
    assertPresent(await store.present(presenting(second, second.tokenId, now + 30)), 'not-found')
    assert.deepEqual(await liveIds(store, first.userId, now + 30), [first.sessionId, third.sessionId, fourth.sessionId].sort())
    // a lower limit than the sessions held ends as many as it takes
    const fifth = newSession(now + 40, { userId: first.userId })
    assert.deepEqual(assertCreated(await store.create(fifth, { maxSessionsPerUser: 1, onLimit: 'revoke-oldest' })).sort(),
      [first.sessionId, third.sessionId, fourth.sessionId].sort())
    assert.deepEqual(await liveIds(store, first.userId, now + 50), [fifth.sessionId])
    assertOutcome(await store.rotate(rotation(fifth, fifth.tokenId, now + 50)), 'rotated')
    // another user's sessions are neither counted nor ended
    const other = newSession(now + 60)
    assert.deepEqual(assertCreated(await store.create(other, { maxSessionsPerUser: 1 })), [])
    assert.deepEqual(await liveIds(store, first.userId, now + 60), [fifth.sessionId])
  })

  withStore('maxSessionsPerUser: sessions used at the same time make room in the order of their ids, by code unit', async (store) => {
    const now = Date.now()
    const userId = `user-${randomUUID()}`
    // by code unit 'B…' < 'a…' < 'b…'; a comparison by locale would put 'a…' first
    const [upper, lower, later] = [`B-${randomUUID()}`, `a-${randomUUID()}`, `b-${randomUUID()}`]
    for (const sessionId of [later, lower, upper]) await saveSession(store, now, { sessionId, userId })
    assert.deepEqual(assertCreated(await store.create(newSession(now + 10, { userId }), { maxSessionsPerUser: 3 })), [upper])
    assert.deepEqual(assertCreated(await store.create(newSession(now + 20, { userId }), { maxSessionsPerUser: 3 })), [lower])
    assert.deepEqual(assertCreated(await store.create(newSession(now + 30, { userId }), { maxSessionsPerUser: 3 })), [later])
  })

  withStore("onLimit 'refuse': at the limit nothing is saved and nothing ends", async (store) => {
    const now = Date.now()
    const first = newSession(now)
    const second = newSession(now + 1, { userId: first.userId })
    assert.deepEqual(assertCreated(await store.create(first, { maxSessionsPerUser: 2, onLimit: 'refuse' })), [])
    assert.deepEqual(assertCreated(await store.create(second, { maxSessionsPerUser: 2, onLimit: 'refuse' })), [])
    const third = newSession(now + 10, { userId: first.userId })
    assert.deepEqual(await store.create(third, { maxSessionsPerUser: 2, onLimit: 'refuse' }), { outcome: 'limit-reached' })
    assert.deepEqual(await store.create(third, { maxSessionsPerUser: 1, onLimit: 'refuse' }), { outcome: 'limit-reached' }, 'also past the limit')
    assertOutcome(await store.rotate(rotation(third, third.tokenId, now + 20)), 'not-found')
    assert.deepEqual(await liveIds(store, first.userId, now + 20), [first.sessionId, second.sessionId].sort(), 'nothing saved, nothing ended')
    assertOutcome(await store.rotate(rotation(first, first.tokenId, now + 20)), 'rotated')
    assertOutcome(await store.rotate(rotation(second, second.tokenId, now + 20)), 'rotated')
    // another user is not counted
    assert.deepEqual(assertCreated(await store.create(newSession(now + 30), { maxSessionsPerUser: 2, onLimit: 'refuse' })), [])
  })

  withStore('expired sessions neither count toward the limit nor are reported ended', async (store) => {
    const now = Date.now()
    const old = await saveSession(store, now - 2 * MINUTE, { expiresAt: now - MINUTE })
    const fresh = newSession(now, { userId: old.userId })
    assert.deepEqual(assertCreated(await store.create(fresh, { maxSessionsPerUser: 1, onLimit: 'refuse' })), [])
    const next = newSession(now + 10, { userId: old.userId })
    assert.deepEqual(assertCreated(await store.create(next, { maxSessionsPerUser: 1 })), [fresh.sessionId])
    assertOutcome(await store.rotate(rotation(next, next.tokenId, now + 20)), 'rotated')
  })

  withStore('replaceSessionId ends the replaced session with the save and leaves it out of the count', async (store) => {
    const now = Date.now()
    const first = await saveSession(store, now)
    const second = await saveSession(store, now + 1, { userId: first.userId })
    const again = newSession(now + 10, { userId: first.userId })
    assert.deepEqual(assertCreated(await store.create(again, { maxSessionsPerUser: 2, replaceSessionId: second.sessionId })), [second.sessionId])
    assertOutcome(await store.rotate(rotation(second, second.tokenId, now + 20)), 'not-found')
    assertOutcome(await store.rotate(rotation(first, first.tokenId, now + 20)), 'rotated')
    assert.deepEqual(await liveIds(store, first.userId, now + 20), [first.sessionId, again.sessionId].sort(), 'nothing else made room')
    // at the limit with 'refuse', a login that replaces one of the sessions is not refused
    const third = newSession(now + 30, { userId: first.userId })
    assert.deepEqual(assertCreated(await store.create(third, { maxSessionsPerUser: 2, onLimit: 'refuse', replaceSessionId: again.sessionId })), [again.sessionId])
    // with room still to make, the replaced session and the least recently used both end
    const fourth = newSession(now + 40, { userId: first.userId })
    assert.deepEqual(assertCreated(await store.create(fourth, { maxSessionsPerUser: 1, replaceSessionId: third.sessionId })).sort(), [first.sessionId, third.sessionId].sort())
    assert.deepEqual(await liveIds(store, first.userId, now + 40), [fourth.sessionId])
    // a session of another user, an unknown one or an expired one is not replaced, and counts as ever
    const stranger = await saveSession(store, now)
    const expired = await saveSession(store, now, { userId: first.userId, expiresAt: now + 45 })
    const cases = [stranger.sessionId, randomUUID(), second.sessionId, expired.sessionId]
    for (const [i, replaceSessionId] of cases.entries()) {
      assert.deepEqual(assertCreated(await store.create(newSession(now + 50 + i, { userId: first.userId }), { replaceSessionId })), [], replaceSessionId)
    }
    assert.deepEqual(await store.create(newSession(now + 60, { userId: first.userId }), { maxSessionsPerUser: 5, onLimit: 'refuse', replaceSessionId: stranger.sessionId }), { outcome: 'limit-reached' })
    assertOutcome(await store.rotate(rotation(stranger, stranger.tokenId, now + 70)), 'rotated')
  })

  withStore(`${loginConcurrency} concurrent logins of one user with a limit of 3 leave exactly 3 live sessions, under both policies`, async (store) => {
    for (const onLimit of ['revoke-oldest', 'refuse'] as const) {
      const now = Date.now()
      const userId = `user-${randomUUID()}`
      const sessions = Array.from({ length: loginConcurrency }, (_, i) => newSession(now + i, { userId }))
      const results = await Promise.all(sessions.map(session => store.create(session, { maxSessionsPerUser: 3, onLimit })))
      const live = await liveIds(store, userId, now + loginConcurrency)
      assert.equal(live.length, Math.min(3, loginConcurrency), `exactly three live (${onLimit})`)
      const saved = sessions.filter((_, i) => results[i].outcome === 'created').map(s => s.sessionId)
      if (onLimit === 'refuse') {
        assert.deepEqual(saved.sort(), live, 'the saved ones are the live ones, the others refused')
        for (const result of results) if (result.outcome === 'created') assert.deepEqual(result.endedSessionIds, [], 'nothing ended')
      } else {
        const ended = results.flatMap(assertCreated)
        assert.equal(new Set(ended).size, ended.length, 'every session ended once')
        assert.deepEqual([...live, ...ended].sort(), saved.sort(), 'every login saved, and all but three ended')
      }
    }
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

  withStore('expired sessions are deleted from the backend, not only answered as gone', async (store) => {
    const now = Date.now()
    const idle = newSession(now, { expiresAt: now + 150 })
    const absolute = newSession(now, { expiresAt: now + 60_000, absoluteExpiresAt: now + 150 })
    const live = newSession(now)
    for (const session of [idle, absolute, live]) await store.create(session)
    assert.ok(await isStored(store, idle), 'isStored finds a session just saved')
    await sleep(300)
    // nothing reads the expired sessions: they must go on their own (a TTL, or the store's sweep)
    await sweep?.(store)
    const gone = async (): Promise<boolean> => !await isStored(store, idle) && !await isStored(store, absolute)
    for (let i = 0; i < 50 && !await gone(); i++) await sleep(100)
    assert.ok(await gone(), 'the expired sessions were deleted from the backend')
    assert.ok(await isStored(store, live), 'the live one was kept')
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

  withStore('present: the live token is live and changes nothing; with end the session is over', async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    const live = assertPresent(await store.present(presenting(session, session.tokenId, now + 10)), 'live')
    assert.equal(live.session.userId, session.userId)
    assert.equal(live.session.tokenId, session.tokenId)
    const first = rotation(session, session.tokenId, now + 20)
    assertOutcome(await store.rotate(first), 'rotated')
    assertPresent(await store.present(presenting(session, first.nextTokenId, now + 30, { end: true })), 'live')
    assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 40)), 'not-found')
    assertPresent(await store.present(presenting(session, first.nextTokenId, now + 50)), 'not-found')
    assert.deepEqual(await store.listUserSessions(session.userId, now + 60), [])
  })

  withStore('present: the parent within the reuse interval is live, and with end ends the session', async (store) => {
    const now = Date.now()
    const { session, first } = await rotatedOnce(store, now)
    const parent = assertPresent(await store.present(presenting(session, session.tokenId, now + 5999, { reuseIntervalMs: 5000 })), 'live')
    assert.equal(parent.session.tokenId, first.nextTokenId, 'the answer names the live token')
    assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 2500, { reuseIntervalMs: 5000 })), 'rotated')
    const other = await saveSession(store, now)
    const next = rotation(other, other.tokenId, now + 1000, { reuseIntervalMs: 5000 })
    assertOutcome(await store.rotate(next), 'rotated')
    assertPresent(await store.present(presenting(other, other.tokenId, now + 2000, { reuseIntervalMs: 5000, end: true })), 'live')
    assertOutcome(await store.rotate(rotation(other, next.nextTokenId, now + 3000)), 'not-found')
  })

  withStore('present: a rotated token outside the interval, a grandparent or a stranger is reuse and ends the session', async (store) => {
    const now = Date.now()
    const cases: Array<[string, (session: SessionRecord, live: string) => PresentRequest]> = [
      ['the parent at the end of the interval', (s) => presenting(s, s.tokenId, now + 6000, { reuseIntervalMs: 5000 })],
      ['the parent with no interval', (s) => presenting(s, s.tokenId, now + 2000)],
      ['a token never issued', (s) => presenting(s, randomUUID(), now + 2000, { reuseIntervalMs: 5000 })]
    ]
    for (const [what, request] of cases) {
      for (const end of [false, true]) {
        const session = await saveSession(store, now)
        const first = rotation(session, session.tokenId, now + 1000)
        assertOutcome(await store.rotate(first), 'rotated')
        const reused = assertPresent(await store.present({ ...request(session, first.nextTokenId), end }), 'reused')
        assert.equal(reused.session.userId, session.userId, what)
        assert.equal(reused.session.tokenId, first.nextTokenId, `${what}: the answer names the live token`)
        assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 8000)), 'not-found')
      }
    }
    const session = await saveSession(store, now)
    const first = rotation(session, session.tokenId, now + 1000, { reuseIntervalMs: 60_000 })
    assertOutcome(await store.rotate(first), 'rotated')
    assertOutcome(await store.rotate(rotation(session, first.nextTokenId, now + 2000, { reuseIntervalMs: 60_000 })), 'rotated')
    assertPresent(await store.present(presenting(session, session.tokenId, now + 3000, { reuseIntervalMs: 60_000 })), 'reused')
  })

  withStore('present: an unknown, revoked or expired session is not-found; the expired one is gone', async (store) => {
    const now = Date.now()
    assertPresent(await store.present(presenting(newSession(now), randomUUID(), now)), 'not-found')
    const revoked = await saveSession(store, now)
    await store.revoke(revoked.sessionId)
    assertPresent(await store.present(presenting(revoked, revoked.tokenId, now + 10, { end: true })), 'not-found')
    const session = await saveSession(store, now, { expiresAt: now + MINUTE })
    assertPresent(await store.present(presenting(session, session.tokenId, now + MINUTE)), 'not-found')
    assertPresent(await store.present(presenting(session, session.tokenId, now + 10)), 'not-found')
    assertOutcome(await store.rotate(rotation(session, session.tokenId, now + 20)), 'not-found')
  })

  withStore(`${concurrency} parallel logouts of one token: exactly one finds it live`, async (store) => {
    const now = Date.now()
    const session = await saveSession(store, now)
    const results = await Promise.all(Array.from({ length: concurrency }, () =>
      store.present(presenting(session, session.tokenId, now + 10, { end: true }))))
    assert.equal(results.filter(result => result.outcome === 'live').length, 1, 'one live')
    for (const result of results) assert.ok(result.outcome === 'live' || result.outcome === 'not-found', `unexpected ${result.outcome}`)
  })

  withStore('a logout racing refreshes of the same token always ends the session', async (store) => {
    for (const reuseIntervalMs of [0, 10_000]) {
      const now = Date.now()
      const session = await saveSession(store, now)
      const rotations = Array.from({ length: 10 }, () => rotation(session, session.tokenId, now + 10, { reuseIntervalMs }))
      const [ended, ...rotated] = await Promise.all([
        store.present(presenting(session, session.tokenId, now + 10, { reuseIntervalMs, end: true })),
        ...rotations.map(request => store.rotate(request))
      ])
      // without an interval the losing refreshes are reuse, which may end the session before the logout sees it
      if (reuseIntervalMs > 0) assert.equal(ended.outcome, 'live', 'the logout found the session live')
      // no branch on the race's outcome: which side wins varies from run to run
      const live = rotations.filter((_, i) => rotated[i].outcome === 'rotated').map(request => request.nextTokenId)
      assert.ok(live.length <= 1, 'one successor at most')
      for (const token of [session.tokenId, ...live]) {
        assertOutcome(await store.rotate(rotation(session, token, now + 20)), 'not-found')
      }
    }
  })

  withStore('model-based: seeded random sequences of logins (with limits and replacement), refreshes, presents, revocations and time agree with the contract', async (store) => {
    for (const seed of [1, 2, 3, 4, 5]) await runSessionModel({ store, seed, steps: modelSteps })
  })

  if (createPeer !== undefined) {
    withStore(`strict rotation across two store objects on one backend: of ${concurrency} refreshes of one token exactly one rotates`, async (store) => {
      const peer = await createPeer()
      try {
        const now = Date.now()
        const session = await saveSession(store, now)
        const requests = Array.from({ length: concurrency }, () => rotation(session, session.tokenId, now + 1000))
        const results = await Promise.all(requests.map((request, i) => (i % 2 === 0 ? store : peer).rotate(request)))
        assert.equal(results.filter(result => result.outcome === 'rotated').length, 1, 'exactly one rotation wins')
        for (const result of results) assert.ok(result.outcome === 'rotated' || result.outcome === 'reused' || result.outcome === 'not-found', `unexpected ${result.outcome}`)
      } finally {
        await release(peer)
      }
    })
  }

  const hasFeed = async (): Promise<boolean> => {
    const probe = await createStore()
    try {
      return typeof probe.watchRevocations === 'function'
    } finally {
      await release(probe)
    }
  }

  test('the revocation feed (skipped for a store without watchRevocations)', async () => {
    if (!await hasFeed()) return
    await feedContract()
  })

  // The feed's tests, run one after the other inside the test above: a store without a feed skips them all.
  async function feedContract (): Promise<void> {
    const withFeed = async (body: (store: S & Required<Pick<SessionStore, 'watchRevocations'>>) => Promise<void>): Promise<void> => {
      const store = await createStore()
      try {
        await body(store as S & Required<Pick<SessionStore, 'watchRevocations'>>)
      } finally {
        await release(store)
      }
    }

    // live once loaded; what this store object ends is heard before the call resolves, with its time
    await withFeed(async (store) => {
      const heard = recorder()
      const watch = store.watchRevocations(heard.listener, RETENTION)
      try {
        await until(() => heard.statuses.includes('live'), 'the feed reports live')
        assert.deepEqual(heard.statuses, ['live'], 'live, and nothing else')
        const session = await saveSession(store, Date.now())
        const before = Date.now()
        let heardInTime = false
        await store.revoke(session.sessionId).then(() => { heardInTime = heard.revoked.has(session.sessionId) })
        assert.ok(heardInTime, 'heard by the time revoke resolved')
        const call = heard.calls.find(c => c.sessionIds.includes(session.sessionId))
        assert.ok(call !== undefined && call.revokedAt >= before - MINUTE && call.revokedAt <= Date.now() + MINUTE, 'revokedAt is the time it ended')
      } finally {
        await watch.close()
      }
    })

    // every way the store ends a session is announced, at once; live sessions never are
    await withFeed(async (store) => {
      const heard = recorder()
      const watch = store.watchRevocations(heard.listener, RETENTION)
      try {
        await until(() => heard.statuses.includes('live'), 'the feed reports live')
        const now = Date.now()
        const kept: SessionRecord[] = []
        const ends = async (what: string, cause: SessionEndCause, end: (session: SessionRecord) => Promise<unknown>, userId?: string): Promise<void> => {
          const session = await saveSession(store, now, userId === undefined ? {} : { userId })
          await end(session)
          assert.ok(heard.revoked.has(session.sessionId), `${what} is announced before it resolves`)
          assert.deepEqual(heard.revoked.get(session.sessionId), { userId: session.userId, cause }, `${what} is announced with its user and cause '${cause}'`)
        }
        const keeps = async (what: string, use: (session: SessionRecord) => Promise<unknown>): Promise<void> => {
          const session = await saveSession(store, now)
          await use(session)
          kept.push(session)
          assert.ok(!heard.revoked.has(session.sessionId), `${what} is not announced`)
        }
        await ends('revoke', 'revoke', (s) => store.revoke(s.sessionId))
        await ends('revokeUser', 'revoke-user', (s) => store.revokeUser(s.userId))
        await ends('reuse found by rotate', 'reuse', async (s) => {
          await store.rotate(rotation(s, s.tokenId, now + 10))
          await store.rotate(rotation(s, s.tokenId, now + 20))
        })
        await ends('reuse found by present', 'reuse', (s) => store.present(presenting(s, randomUUID(), now + 10)))
        await ends('present with end', 'logout', (s) => store.present(presenting(s, s.tokenId, now + 10, { end: true })))
        await ends('the limit at create', 'create', (s) => store.create(newSession(now + 10, { userId: s.userId }), { maxSessionsPerUser: 1 }))
        await ends('the replacement at create', 'create', (s) => store.create(newSession(now + 10, { userId: s.userId }), { replaceSessionId: s.sessionId }))
        const keep = await saveSession(store, now)
        kept.push(keep)
        await ends('revokeOtherSessions', 'revoke-others', (s) => store.revokeOtherSessions(s.userId, keep.sessionId), keep.userId)
        assert.ok(!heard.revoked.has(keep.sessionId), 'the session revokeOtherSessions keeps is not announced')
        await keeps('a rotation', (s) => store.rotate(rotation(s, s.tokenId, now + 10)))
        await keeps('a grace answer', async (s) => {
          await store.rotate(rotation(s, s.tokenId, now + 10, { reuseIntervalMs: 5000 }))
          await store.rotate(rotation(s, s.tokenId, now + 20, { reuseIntervalMs: 5000 }))
        })
        await keeps('present without end', (s) => store.present(presenting(s, s.tokenId, now + 10)))
        await keeps('a listing', (s) => store.listUserSessions(s.userId, now + 10))
        await keeps('revoking another user', () => store.revokeUser(`user-${randomUUID()}`))
        await keeps('a login refused at the limit', (s) => store.create(newSession(now + 10, { userId: s.userId }), { maxSessionsPerUser: 1, onLimit: 'refuse' }))
        await keeps('a login replacing a session of another user', (s) => store.create(newSession(now + 10), { replaceSessionId: s.sessionId }))
        await keeps('a login below the limit', (s) => store.create(newSession(now + 10, { userId: s.userId }), { maxSessionsPerUser: 2 }))
        await sleep(100)
        for (const session of kept) assert.ok(!heard.revoked.has(session.sessionId), 'no live session was announced later either')
      } finally {
        await watch.close()
      }
    })

    // several watches on one store object; closing one (twice) leaves the others; a later one loads what ended
    await withFeed(async (store) => {
      const one = recorder()
      const two = recorder()
      const first = store.watchRevocations(one.listener, RETENTION)
      const second = store.watchRevocations(two.listener, RETENTION)
      let third: { close: () => Promise<void> } | undefined
      try {
        await until(() => one.statuses.includes('live') && two.statuses.includes('live'), 'both watches are live')
        const session = await saveSession(store, Date.now())
        await store.revoke(session.sessionId)
        assert.ok(one.revoked.has(session.sessionId) && two.revoked.has(session.sessionId), 'both heard it')
        await first.close()
        await first.close()
        const later = await saveSession(store, Date.now())
        await store.revoke(later.sessionId)
        assert.ok(two.revoked.has(later.sessionId), 'the open watch still hears')
        await sleep(100)
        assert.ok(!one.revoked.has(later.sessionId), 'the closed one does not')
        const late = recorder()
        third = store.watchRevocations(late.listener, RETENTION)
        await until(() => late.statuses.includes('live'), 'the late watch is live')
        assert.ok(late.revoked.has(session.sessionId) && late.revoked.has(later.sessionId), 'and heard, by then, what ended before it started')
      } finally {
        await second.close()
        await third?.close()
      }
    })

    if (createPeer !== undefined) {
      // another store object on the same backend hears what this one ends, and loads what ended before
      await withFeed(async (store) => {
        const peer = await createPeer()
        const early = await saveSession(store, Date.now())
        await store.revoke(early.sessionId)
        const heard = recorder()
        const watch = (peer as S & Required<Pick<SessionStore, 'watchRevocations'>>).watchRevocations(heard.listener, RETENTION)
        try {
          await until(() => heard.statuses.includes('live'), 'the peer is live')
          assert.ok(heard.revoked.has(early.sessionId), 'the catch-up loaded a revocation made before the watch')
          const now = Date.now()
          const sessions = [await saveSession(store, now), await saveSession(store, now), await saveSession(store, now)]
          const sibling = await saveSession(store, now, { userId: sessions[1].userId })
          await store.revoke(sessions[0].sessionId)
          await store.revokeUser(sessions[1].userId)
          await store.rotate(rotation(sessions[2], sessions[2].tokenId, now + 10))
          await store.rotate(rotation(sessions[2], sessions[2].tokenId, now + 20))
          const evicted = await saveSession(store, now)
          await store.create(newSession(now + 10, { userId: evicted.userId }), { maxSessionsPerUser: 1 })
          const kept = await saveSession(store, now)
          const other = await saveSession(store, now, { userId: kept.userId })
          await store.revokeOtherSessions(kept.userId, kept.sessionId)
          const loggedOut = await saveSession(store, now)
          await store.present(presenting(loggedOut, loggedOut.tokenId, now + 10, { end: true }))
          await until(() => [...sessions, sibling, evicted, other, loggedOut].every(s => heard.revoked.has(s.sessionId)), 'the peer heard every end')
          const causes: Array<[SessionRecord, SessionEndCause]> = [
            [sessions[0], 'revoke'], [sessions[1], 'revoke-user'], [sibling, 'revoke-user'], [sessions[2], 'reuse'], [evicted, 'create'],
            [other, 'revoke-others'], [loggedOut, 'logout']
          ]
          for (const [session, cause] of causes) {
            assert.deepEqual(heard.revoked.get(session.sessionId), { userId: session.userId, cause }, `the peer heard the user and the cause '${cause}'`)
          }
          assert.deepEqual(heard.revoked.get(early.sessionId), { userId: early.userId, cause: 'revoke' }, 'the catch-up carries the user and the cause too')
        } finally {
          await watch.close()
          await release(peer)
        }
      })
    }
  }

  if (createFailingStore !== undefined) {
    test('a store whose backend fails rejects every operation (fail closed), and still closes', async () => {
      const store = await createFailingStore()
      try {
        await failsClosed(store)
      } finally {
        await closeWithin(store, 5000)
      }
    })
  }

  async function failsClosed (store: S): Promise<void> {
    const now = Date.now()
    const session = newSession(now)
    await assert.rejects(store.create(session))
    await assert.rejects(store.create(session, { maxSessionsPerUser: 1, replaceSessionId: randomUUID() }))
    await assert.rejects(store.rotate(rotation(session, session.tokenId, now)))
    await assert.rejects(store.present(presenting(session, session.tokenId, now)))
    await assert.rejects(store.present(presenting(session, session.tokenId, now, { end: true })))
    await assert.rejects(store.revoke(session.sessionId))
    await assert.rejects(store.revokeUser(session.userId))
    await assert.rejects(store.revokeOtherSessions(session.userId, session.sessionId))
    await assert.rejects(store.listUserSessions(session.userId, now))
    if (typeof store.watchRevocations === 'function') {
      // a feed that cannot reach its backend never claims to be live, and still closes
      const heard = recorder()
      const watch = store.watchRevocations(heard.listener, RETENTION)
      await sleep(300)
      await watch.close()
      assert.ok(!heard.statuses.includes('live'), 'no live from a dead backend')
    }
  }
}

/** Calls a store's `close()`, if it has one; one that does not resolve within `ms` fails the test. */
async function closeWithin (store: SessionStore, ms: number): Promise<void> {
  if (typeof store.close !== 'function') return
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `store.close() did not resolve within ${ms}ms` })), ms)
  })
  try {
    await Promise.race([store.close(), late])
  } finally {
    clearTimeout(timer)
  }
}
