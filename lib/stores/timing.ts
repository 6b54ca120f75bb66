// Time bounds shared by the stores and their feeds: one way to give up on a backend, one way to come back.

/**
 * Settles like `promise`, or rejects with `onTimeout()` after `ms`. A value that arrives too late is handed to
 * `onLate` (to give back a pool client nobody waits for any more); a late rejection is ignored.
 *
 * @example
 * const client = await settleWithin(pool.connect(), 2000, () => new StoreTimeoutError('no pool client in time'), late => late.release())
 */
export function settleWithin<T> (promise: Promise<T>, ms: number, onTimeout: () => Error, onLate?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let late = false
    const timer = setTimeout(() => {
      late = true
      reject(onTimeout())
    }, ms)
    promise.then(value => {
      clearTimeout(timer)
      if (late) onLate?.(value)
      else resolve(value)
    }, (err: unknown) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

// A feed that lost its backend tries again soon, then every 2 s at most: quick to recover from a blip,
// never hammering a backend that is down.
const FIRST_RETRY_MS = 100
const MAX_RETRY_MS = 2000

/** Milliseconds before reconnect attempt `failures` (0 for the first): doubling from 100 ms up to 2 s. */
export function reconnectDelay (failures: number): number {
  return Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** failures)
}
