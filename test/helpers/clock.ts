import type { Test } from 'tap'

/**
 * Moves `Date.now()` (which the plugin and jsonwebtoken read) forward without waiting;
 * restored when the test ends.
 */
export function fakeClock (t: Test): { advance: (seconds: number) => void } {
  const realNow = Date.now
  let offset = 0
  Date.now = () => realNow() + offset
  t.teardown(() => { Date.now = realNow })
  return { advance (seconds) { offset += seconds * 1000 } }
}
