import { randomUUID } from 'node:crypto'
import t from 'tap'
import { PostgresStore } from '../lib/index.js'
import type { RotateRequest, SessionRecord } from '../lib/store.js'
import { postgresPool, requirePostgres, testSchema } from './helpers/postgres.js'
import { DAY, newSession } from './helpers/sessions.js'

// Issue 20 #15: at reuseInterval 0, of N concurrent refreshes of one token exactly one succeeds, across
// instances with pools of their own. The extra winners came from the grace rule: a request whose `now` was
// taken before the rotation it lost to saw a negative age, "within" an interval of 0, and got the live token.

function rotation (session: SessionRecord, presentedTokenId: string, now: number): RotateRequest {
  return { sessionId: session.sessionId, presentedTokenId, nextTokenId: randomUUID(), now, nextExpiresAt: now + DAY, reuseIntervalMs: 0 }
}

t.test('PostgresStore at reuse interval 0', async (t) => {
  if (!await requirePostgres(t)) return
  const schema = await testSchema(t, __filename)
  const table = `${schema}.refresh_auth_sessions`
  // two instances of the app: a store object and a pool each
  const stores = [new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 }), new PostgresStore({ pool: postgresPool(t), table, cleanupInterval: 0 })]
  await stores[0].migrate()
  t.teardown(() => Promise.all(stores.map(store => store.close())))

  t.test('the parent presented by a request older than the rotation it lost to is reuse, not grace', async (t) => {
    const now = Date.now()
    const session = newSession(now)
    await stores[0].create(session)
    t.equal((await stores[0].rotate(rotation(session, session.tokenId, now + 10))).outcome, 'rotated')
    const late = await stores[1].rotate(rotation(session, session.tokenId, now + 5))
    t.equal(late.outcome, 'reused', 'its clock read 5 ms before the rotation: still reuse')
    t.equal((await stores[0].listUserSessions(session.userId, now)).length, 0, 'and the session ended')
  })

  t.test('present: the same rule for logout', async (t) => {
    const now = Date.now()
    const session = newSession(now)
    await stores[0].create(session)
    t.equal((await stores[0].rotate(rotation(session, session.tokenId, now + 10))).outcome, 'rotated')
    const late = await stores[1].present({ sessionId: session.sessionId, presentedTokenId: session.tokenId, now: now + 5, reuseIntervalMs: 0, end: false })
    t.equal(late.outcome, 'reused')
  })

  t.test('50 concurrent refreshes of one token over two instances: exactly one wins, 20 rounds', async (t) => {
    const winners: number[] = []
    for (let round = 0; round < 20; round++) {
      const session = newSession(Date.now())
      await stores[0].create(session)
      // each request took its `now` before its store call, as the plugin does: a few ms apart, in any order
      const base = Date.now()
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) =>
        stores[i % 2].rotate(rotation(session, session.tokenId, base + 49 - i))))
      winners.push(results.filter(result => result.outcome === 'rotated' || result.outcome === 'grace').length)
    }
    t.same(winners, winners.map(() => 1), 'one winner in every round')
  })
})
