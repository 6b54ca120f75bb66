import t from 'tap'
import { SessionEnds, type SessionEndEvent } from '../lib/sessions/ends.js'

// SessionEnds, the one place every session end passes on its way to onSessionEnd and the events streams:
// told once, with this instance's reason when it has one, and remembered for a minute only.

t.test('an end heard from the feed waits for this instance\'s account; told once; forgotten after a minute', async t => {
  const ends = new SessionEnds()
  t.teardown(() => ends.stop())
  const told: SessionEndEvent[] = []
  ends.on(event => told.push(event))
  ends.heard(['a', 'b'])
  ends.heard(['a'])
  ends.ended(['a'], 'alice', 'logout')
  t.same(told, [{ sessionId: 'a', userId: 'alice', reason: 'logout' }], 'this instance\'s reason, at once')
  const forget = ends.know('b', 'bob')
  await new Promise(resolve => setTimeout(resolve, 400))
  t.same(told[1], { sessionId: 'b', userId: 'bob', reason: 'revoked' }, 'no account: revoked, the user from an open stream')
  forget()
  ends.heard(['a', 'b'])
  ends.ended(['b'], null, 'reuse')
  t.equal(told.length, 2, 'told once')

  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  Date.now = () => realNow() + 61_000
  ends.ended(['c'], null, 'revoked')
  t.same(told[2], { sessionId: 'c', userId: null, reason: 'revoked' })
  ends.ended(['a'], 'alice', 'logout')
  t.equal(told.length, 4, 'a minute later, the first ones are forgotten')
})

t.test('stop clears the waits: nothing is told after', async t => {
  const ends = new SessionEnds()
  const told: SessionEndEvent[] = []
  ends.on(event => told.push(event))
  t.equal(ends.listening, true)
  ends.heard(['a'])
  ends.stop()
  await new Promise(resolve => setTimeout(resolve, 400))
  t.same(told, [])
})
