import { InvalidArgumentError } from '../errors.js'
import type { RevocationFeedStatus, RevocationListener, SessionEndNotice, WatchOptions } from './store.js'

/** One watch of a store object: its listener and how long it wants revocations kept. */
export interface Watcher {
  listener: RevocationListener
  retentionMs: number
}

/**
 * The listeners watching one store object. A store tells them of the sessions it ends itself through
 * `announce`, synchronously, before its method resolves, so a request that follows on the same instance
 * already sees the session as ended.
 */
export class LocalListeners {
  readonly #watchers = new Set<Watcher>()

  get size (): number {
    return this.#watchers.size
  }

  /** The longest retention any watcher asked for, or `fallback` while none watches. */
  retentionMs (fallback: number): number {
    let longest = 0
    for (const watcher of this.#watchers) longest = Math.max(longest, watcher.retentionMs)
    return longest === 0 ? fallback : longest
  }

  add (listener: RevocationListener, options: WatchOptions): Watcher {
    const retentionMs = options?.retentionMs
    if (typeof retentionMs !== 'number' || !Number.isFinite(retentionMs) || retentionMs <= 0) {
      throw new InvalidArgumentError('watchRevocations: retentionMs must be a positive number of milliseconds')
    }
    if (listener === null || typeof listener !== 'object' || typeof listener.revoked !== 'function' || typeof listener.status !== 'function') {
      throw new InvalidArgumentError('watchRevocations: the listener must have revoked() and status() methods')
    }
    const watcher = { listener, retentionMs }
    this.#watchers.add(watcher)
    return watcher
  }

  remove (watcher: Watcher): void {
    this.#watchers.delete(watcher)
  }

  announce (sessionIds: readonly string[], revokedAt: number, notice: SessionEndNotice): void {
    for (const watcher of this.#watchers) deliver(watcher, sessionIds, revokedAt, notice)
  }
}

/** Tells one watcher of ended sessions; a listener that throws never breaks the store's operation. */
export function deliver (watcher: Watcher, sessionIds: readonly string[], revokedAt: number, notice: SessionEndNotice): void {
  callListener(() => watcher.listener.revoked(sessionIds, revokedAt, notice))
}

/** Tells one watcher of the feed's health (`since`: when the backend's history begins, if known), with the same guard. */
export function report (watcher: Watcher, status: RevocationFeedStatus, since?: number): void {
  callListener(() => watcher.listener.status(status, since))
}

/** Calls a listener: one that throws never breaks the feed or the store's operation; its error becomes a warning. */
export function callListener (call: () => void): void {
  try {
    call()
  } catch (err) {
    process.emitWarning(err as Error)
  }
}
