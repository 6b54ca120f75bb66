import { report, type Watcher } from './listeners.js'
import type { RevocationFeedStatus, RevocationWatch } from './store.js'
import { reconnectDelay } from './timing.js'

/**
 * What every store's revocation feed does the same way: one watcher told of the feed's health, a lost
 * connection reported `down` (once it had been up) and made again after a growing delay, and a close that
 * runs once. A feed says how to connect and how to let go of its connection.
 */
export abstract class ReconnectingFeed implements RevocationWatch {
  protected readonly watcher: Watcher
  #retryTimer: NodeJS.Timeout | null = null
  #failures = 0
  #reported: RevocationFeedStatus | null = null
  #closing: Promise<void> | null = null
  #closed = false

  constructor (watcher: Watcher) {
    this.watcher = watcher
  }

  /** True once `close()` was called: nothing is delivered, reported or reconnected any more. */
  protected get closed (): boolean {
    return this.#closed
  }

  start (): void {
    this.connect()
  }

  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    this.#closed = true
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
    await this.shutdown()
  }

  /** Opens a connection and catches up; failures end in `reconnect()`. */
  protected abstract connect (): void

  /** Lets go of the connection, if any, when the watch is closed. */
  protected abstract shutdown (): Promise<void>

  /** The feed caught up on a new connection: failures are forgotten and its health reported. */
  protected caughtUp (status: 'live' | 'gap', since?: number): void {
    this.#failures = 0
    this.report(status, since)
  }

  protected report (status: RevocationFeedStatus, since?: number): void {
    this.#reported = status
    report(this.watcher, status, since)
  }

  /** The connection is gone (or could not be made): `down` if it was up, then another attempt after a delay. */
  protected reconnect (): void {
    if (this.#closed) return
    if (this.#reported === 'live' || this.#reported === 'gap') this.report('down')
    const delay = reconnectDelay(this.#failures)
    this.#failures++
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null
      this.connect()
    }, delay).unref()
  }
}
