import t from 'tap'
import { reasonOf, SessionEnds, type SessionEndEvent } from '../lib/sessions/ends.js'

// SessionEnds, the one place every session end passes on its way to onSessionEnd and the events streams:
// told once, with the reason its cause gives, and remembered for a minute only.

t.test('the reason of each cause a store announces', async t => {
  t.same(Object.fromEntries((['logout', 'reuse', 'revoke', 'revoke-user', 'revoke-others', 'create'] as const).map(cause => [cause, reasonOf(cause)])), {
    logout: 'logout', reuse: 'reuse', revoke: 'revoked', 'revoke-user': 'revoked', 'revoke-others': 'revoked', create: 'revoked'
  })
})

t.test('an end is told at once, once, with its user; forgotten after a minute', async t => {
  const ends = new SessionEnds()
  const told: SessionEndEvent[] = []
  t.equal(ends.listening, false)
  ends.on(event => told.push(event))
  t.equal(ends.listening, true)
  ends.ended(['a'], { userId: 'alice', cause: 'logout' })
  ends.ended(['a'], { userId: 'alice', cause: 'revoke' })
  t.same(told, [{ sessionId: 'a', userId: 'alice', reason: 'logout' }], 'the first account, told once')
  const forget = ends.know('b', 'bob')
  ends.ended(['b'], { userId: null, cause: 'revoke' })
  t.same(told[1], { sessionId: 'b', userId: 'bob', reason: 'revoked' }, 'a user the store could not name: the one of an open stream')
  forget()

  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  Date.now = () => realNow() + 61_000
  ends.ended(['c'], { userId: null, cause: 'revoke' })
  t.same(told[2], { sessionId: 'c', userId: null, reason: 'revoked' })
  ends.ended(['a'], { userId: 'alice', cause: 'reuse' })
  t.equal(told.length, 4, 'a minute later, the first ones are forgotten')
})
