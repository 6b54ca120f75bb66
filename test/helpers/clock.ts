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

interface VirtualTimer { at: number, order: number, fn: (...args: unknown[]) => void, args: unknown[] }

/**
 * Runs `setTimeout`, `clearTimeout` and `Date.now()` on a virtual clock until the test ends: whenever the
 * process has nothing left to do but wait (no pending promise callbacks, two event-loop turns in a row),
 * the clock jumps to the earliest timer and fires it. Timers fire in the order and at the (virtual) times
 * they would for real, so backoff schedules and token lifetimes of seconds are checked without waiting
 * them out. For code that does no real I/O while it runs (the browser client with a scripted fetch).
 */
export function virtualTimers (t: Test): void {
  const g = globalThis as unknown as { setTimeout: unknown, clearTimeout: unknown }
  const realSetTimeout = g.setTimeout
  const realClearTimeout = g.clearTimeout
  const realNow = Date.now
  let now = realNow()
  let order = 0
  let ended = false
  let driving = false
  const timers = new Set<VirtualTimer>()

  function drive (): void {
    if (driving || ended) return
    driving = true
    setImmediate(() => setImmediate(() => {
      driving = false
      if (ended || timers.size === 0) return
      let next: VirtualTimer | undefined
      for (const timer of timers) if (next === undefined || timer.at < next.at || (timer.at === next.at && timer.order < next.order)) next = timer
      const due = next as VirtualTimer
      timers.delete(due)
      now = Math.max(now, due.at)
      drive()
      due.fn(...due.args)
    }))
  }

  g.setTimeout = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    // as Node does: a delay below 1 ms (or not a number) is 1 ms
    const delay = typeof ms === 'number' && ms >= 1 ? Math.floor(ms) : 1
    const timer: VirtualTimer = { at: now + delay, order: order++, fn, args }
    timers.add(timer)
    drive()
    const handle = { timer, ref: () => handle, unref: () => handle, hasRef: () => true }
    return handle
  }
  g.clearTimeout = (handle?: { timer?: VirtualTimer }) => {
    if (handle?.timer !== undefined) timers.delete(handle.timer)
  }
  Date.now = () => now
  t.teardown(() => {
    ended = true
    timers.clear()
    g.setTimeout = realSetTimeout
    g.clearTimeout = realClearTimeout
    Date.now = realNow
  })
}
