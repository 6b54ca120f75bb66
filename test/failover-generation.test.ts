import t from 'tap'
import { MemoryStore, type SessionStore } from '../lib/index.js'
import { type RotateRequest, type RotateResult } from '../lib/store.js'
import { buildApp, login, refresh, refreshCookie } from './helpers/app.js'

// issue 20 #10: a rotation the store acknowledged and then lost (a failover with replication lag) must not
// turn the client's newer token into a theft verdict. The store below answers one rotation as the primary
// did, then "fails over" to the state from before it: the rotation never happened.
function storeThatLosesOneRotation (inner: MemoryStore): SessionStore & { loseNext: () => void } {
  let lose = false
  return {
    create: (session, options) => inner.create(session, options),
    async rotate (request: RotateRequest): Promise<RotateResult> {
      if (!lose) return await inner.rotate(request)
      lose = false
      const answered = await inner.present({ ...request, end: false })
      if (answered.outcome !== 'live') throw new Error('the lost rotation needs a live token')
      const { session } = answered
      return {
        outcome: 'rotated',
        session: { ...session, tokenId: request.nextTokenId, previousTokenId: session.tokenId, generation: session.generation + 1, rotatedAt: request.now, expiresAt: request.nextExpiresAt }
      }
    },
    present: (request) => inner.present(request),
    revoke: (sessionId) => inner.revoke(sessionId),
    revokeUser: (userId) => inner.revokeUser(userId),
    revokeOtherSessions: (userId, keep) => inner.revokeOtherSessions(userId, keep),
    listUserSessions: (userId, now) => inner.listUserSessions(userId, now),
    loseNext: () => { lose = true }
  }
}

t.test('a rotation lost by the store: the newer token refreshes, no reuse verdict, the session goes on', async (t) => {
  const inner = new MemoryStore()
  t.teardown(() => inner.close())
  const store = storeThatLosesOneRotation(inner)
  const reused: unknown[] = []
  const app = await buildApp(t, { store, onReuseDetected: (event) => { reused.push(event) } })
  const { refreshToken } = await login(app)
  const second = refreshCookie(await refresh(app, refreshToken)) as string
  store.loseNext()
  const answered = await refresh(app, second)
  t.equal(answered.statusCode, 200, 'the rotation was answered')
  const fromLostRotation = refreshCookie(answered) as string
  const next = await refresh(app, fromLostRotation)
  t.equal(next.statusCode, 200, 'the token from ahead of the store refreshes')
  t.same(reused, [], 'onReuseDetected did not fire')
  const after = await refresh(app, refreshCookie(next))
  t.equal(after.statusCode, 200, 'and the session goes on')
  // the token the store still held as live is behind the session now: reuse, as for any rotated token
  t.equal((await refresh(app, second)).statusCode, 401)
  t.equal(reused.length, 1, 'a token from behind is still reuse')
})

t.test('after a lost rotation, the old live token presented first wins, and the newer token is then a fork: the session ends', async (t) => {
  const inner = new MemoryStore()
  t.teardown(() => inner.close())
  const store = storeThatLosesOneRotation(inner)
  const reused: unknown[] = []
  const app = await buildApp(t, { store, refreshToken: { reuseInterval: 0 }, onReuseDetected: (event) => { reused.push(event) } })
  const { refreshToken } = await login(app)
  store.loseNext()
  const fromLostRotation = refreshCookie(await refresh(app, refreshToken)) as string
  // someone else holding the token the store still has as live refreshes first
  const thief = await refresh(app, refreshToken)
  t.equal(thief.statusCode, 200)
  // the client's token has the same generation as the thief's: not ahead, so a fork, and the session ends
  t.equal((await refresh(app, fromLostRotation)).statusCode, 401)
  t.equal(reused.length, 1)
  t.equal((await refresh(app, refreshCookie(thief))).statusCode, 401, 'the thief’s chain ended with it')
})
