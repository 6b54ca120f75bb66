import { Writable } from 'node:stream'
import { MemoryStore } from '../../lib/index.js'
import { type RevocationFeedStatus, type RevocationListener, type RevocationWatch, type SessionEndNotice, type WatchOptions } from '../../lib/store.js'

/**
 * A MemoryStore whose revocation feed a test drives: `status()` reports down, gap or live to the plugin as a
 * backend would, `announce()` delivers sessions ended "on another instance". With `holdLive`, the store's own
 * first `live` is held back, as a feed still loading what its backend holds.
 */
export class ControlledFeedStore extends MemoryStore {
  readonly #listeners = new Set<RevocationListener>()
  readonly #holdLive: boolean
  watched: WatchOptions | null = null

  constructor (options: { holdLive?: boolean } = {}) {
    super()
    this.#holdLive = options.holdLive ?? false
  }

  override watchRevocations (listener: RevocationListener, options: WatchOptions): RevocationWatch {
    this.#listeners.add(listener)
    this.watched = options
    const relay: RevocationListener = {
      revoked: (sessionIds, revokedAt, notice) => listener.revoked(sessionIds, revokedAt, notice),
      status: (status) => { if (!this.#holdLive) listener.status(status) }
    }
    const watch = super.watchRevocations(relay, options)
    return { close: async () => { this.#listeners.delete(listener); await watch.close() } }
  }

  /** Tells every watch of this store. */
  status (status: RevocationFeedStatus): void {
    for (const listener of this.#listeners) listener.status(status)
  }

  announce (sessionIds: string[], revokedAt = Date.now(), notice: SessionEndNotice = { userId: null, cause: 'revoke' }): void {
    for (const listener of this.#listeners) listener.revoked(sessionIds, revokedAt, notice)
  }
}

/** A log stream that keeps every line, parsed. */
export function logLines (): { stream: Writable, lines: Array<{ level: number, msg: string, [key: string]: unknown }> } {
  const lines: Array<{ level: number, msg: string }> = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.length > 0) lines.push(JSON.parse(line))
      done()
    }
  })
  return { stream, lines }
}

/** The messages logged at warn (40) or above that mention `text`. */
export function warnings (lines: Array<{ level: number, msg: string }>, text: string): string[] {
  return lines.filter(line => line.level >= 40 && line.msg.includes(text)).map(line => line.msg)
}

/** The session id of a token (unverified: for tests). */
export function sessionIdOf (token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid
}
