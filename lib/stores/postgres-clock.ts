import { performance } from 'node:perf_hooks'

// Every guarded statement's reply is a sample; with none for this long, an operation reads the clock first.
const RESAMPLE_MS = 10_000
// A tighter sample is kept over a looser one for this long (the clocks' drift in it is a few µs); a sample
// whose reply was slow to arrive is loose, and is replaced as soon as a tighter one comes or this passes.
const KEEP_BEST_MS = 10_000

/**
 * The server's wall clock as this process can bound it: a deadline is sent as a time on the server's clock,
 * so a statement checks it where it runs, in the statement that would take effect, with no extra round trip
 * to learn when the operation began. A sample of the server's clock read between sending a query and
 * receiving its reply gives a lower bound of the offset between it and this process's monotonic clock:
 * the server read its clock before the reply arrived. A deadline converted with that bound falls on the
 * server at or before the moment it falls here, however long the message travels, and whatever the wall
 * clock of this process says (it is never read).
 */
export class ServerClock {
  #offset = 0
  #sampledAt = Number.NEGATIVE_INFINITY
  #bestAt = Number.NEGATIVE_INFINITY

  /** True when the next operation should first read the server's clock: no sample, or none for a while. */
  get stale (): boolean {
    return performance.now() - this.#sampledAt > RESAMPLE_MS
  }

  /** Records the server's clock (`serverNow`, ms since the epoch) read by a query whose reply just arrived. */
  sample (serverNow: number): void {
    const receivedAt = performance.now()
    const offset = serverNow - receivedAt
    if (offset > this.#offset || receivedAt - this.#bestAt > KEEP_BEST_MS) {
      this.#offset = offset
      this.#bestAt = receivedAt
    }
    this.#sampledAt = receivedAt
  }

  /** A monotonic time of this process (`performance.now()`) on the server's clock: never later than the server will show then. */
  toServer (monotonic: number): number {
    return Math.floor(monotonic + this.#offset)
  }
}
