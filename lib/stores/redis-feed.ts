import { StoreTimeoutError } from '../errors.js'
import { deliver, report, type Watcher } from './listeners.js'
import { READ_EPOCH } from './redis-scripts.js'
import { isSessionEndCause, type RevocationFeedStatus, type RevocationWatch, type SessionEndNotice } from './store.js'
import { reconnectDelay, settleWithin } from './timing.js'

/**
 * The part of an ioredis connection (`Redis` or `Cluster`) that the revocation feed uses: the feed's own
 * connection, made with the store client's `duplicate()`.
 *
 * @example
 * const connection: RedisFeedConnection = new Redis().duplicate()
 */
export interface RedisFeedConnection {
  call (command: string, ...args: Array<string | number>): Promise<unknown>
  on (event: string, listener: (...args: any[]) => void): unknown
  disconnect (): void
}

export interface RedisFeedOptions {
  /** Makes the feed's own connection: the store client's `duplicate()`. */
  connect: () => RedisFeedConnection
  /** The stream's key. */
  key: string
  /** The key of the stream's epoch (in the stream's slot): when its history begins. */
  epochKey: string
  watcher: Watcher
  /** Milliseconds a read may take beyond its blocking time before the connection is taken as lost. */
  timeout: number
  /** Called once, when the watch is closed. */
  onClose: () => void
}

// How long one read waits on the server for new entries, and how many it takes at once.
const BLOCK_MS = 2000
const COUNT = 500

type StreamEntry = [id: string, fields: string[]]

/**
 * One watch of a RedisStore's revocation stream, on a connection of its own: a loop of `XREAD BLOCK` from
 * the last id seen. Each (re)connection first reads the stream's epoch, then catches up without blocking
 * (from `0` the first time, or under a new epoch: what the stream holds), then reports `live` with the epoch,
 * or `gap` when revocations may have been lost before this watch read them: it was away longer than the
 * retention, or an entry's number skips one (trimmed unread). A new epoch (the store lost its data, whatever
 * this watch had read) is not a gap of its own: the listener learns from the epoch which tokens predate what
 * anyone can know, the same on every instance. A lost or silent connection is dropped and a new one made,
 * with a growing delay.
 */
export class RedisRevocationFeed implements RevocationWatch {
  readonly #options: RedisFeedOptions
  #connection: RedisFeedConnection | null = null
  #loop: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | null = null
  #closing: Promise<void> | null = null
  #failures = 0
  #reported: RevocationFeedStatus | null = null
  /** The id of the last entry read: reads resume after it. */
  #lastId = '0'
  /** The number (`n`) of the last entry read: the next must be one more, or entries were lost unread. */
  #lastNumber: number | null = null
  /** When the last read that found nothing more to read was sent (ms, our clock); null before the first catch-up. */
  #confirmedAt: number | null = null
  /** The stream's epoch (ms, the server's clock), as last read; null before the first. */
  #epoch: number | null = null

  constructor (options: RedisFeedOptions) {
    this.#options = options
  }

  start (): void {
    this.#connect()
  }

  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    this.#options.onClose()
    if (this.#timer !== null) clearTimeout(this.#timer)
    const connection = this.#connection
    this.#connection = null
    connection?.disconnect()
    // a read in flight is rejected by the disconnect
    await this.#loop
  }

  #connect (): void {
    this.#timer = null
    const connection = this.#options.connect()
    // failures are seen by the loop; without a listener ioredis would print each error event
    connection.on('error', () => {})
    connection.on('close', () => this.#lost(connection))
    this.#connection = connection
    this.#loop = this.#read(connection)
  }

  async #read (connection: RedisFeedConnection): Promise<void> {
    const { key, epochKey, timeout, watcher } = this.#options
    let epoch: number
    try {
      epoch = Number(await bounded(connection.call('EVAL', READ_EPOCH, 2, key, epochKey), timeout))
    } catch {
      this.#lost(connection)
      return
    }
    // A first catch-up cut short starts again from the beginning: only a caught-up read tells what was seen.
    // Under a new epoch what was read before is gone: the new history is read whole.
    const resumed = this.#confirmedAt !== null && epoch === this.#epoch
    if (!resumed) this.#restart(epoch)
    let caughtUp = false
    while (this.#connection === connection) {
      const sent = Date.now()
      let entries: StreamEntry[]
      try {
        const blocking = caughtUp ? ['BLOCK', BLOCK_MS] : []
        const reply = await bounded(connection.call('XREAD', 'COUNT', COUNT, ...blocking, 'STREAMS', key, this.#lastId), (caughtUp ? BLOCK_MS : 0) + timeout)
        entries = streamEntries(reply)
      } catch {
        this.#lost(connection)
        return
      }
      if (this.#connection !== connection) return
      let skipped = false
      let renewed = false
      for (const [id, fields] of entries) {
        this.#lastId = id
        const revocation = parseEntry(fields)
        if (revocation === null) continue
        if (revocation.epoch !== null && revocation.epoch > (this.#epoch as number)) {
          // the store lost its data while this connection stayed up: the new history is read whole
          this.#restart(revocation.epoch)
          renewed = true
          break
        }
        if (revocation.number !== null) {
          if (this.#lastNumber !== null && revocation.number !== this.#lastNumber + 1) skipped = true
          this.#lastNumber = revocation.number
        }
        deliver(watcher, revocation.sessionIds, revocation.revokedAt, revocation.notice)
      }
      if (renewed) {
        caughtUp = false
        continue
      }
      if (!caughtUp && entries.length < COUNT) {
        caughtUp = true
        this.#failures = 0
        // Entries added after a caught-up read stay retentionMs at least: an absence longer than that may have lost some.
        const outlasted = resumed && (this.#confirmedAt as number) < sent - watcher.retentionMs
        this.#report(outlasted || skipped ? 'gap' : 'live')
      } else if (skipped) {
        // entries trimmed before this watch read them (a writer keeping revocations for less time than asked)
        this.#report('gap')
      }
      if (caughtUp) this.#confirmedAt = sent
    }
  }

  /** Reads the stream from its beginning, under `epoch`. */
  #restart (epoch: number): void {
    this.#epoch = epoch
    this.#lastId = '0'
    this.#lastNumber = null
  }

  #lost (connection: RedisFeedConnection): void {
    if (this.#connection !== connection) return
    this.#connection = null
    connection.disconnect()
    if (this.#reported === 'live' || this.#reported === 'gap') this.#report('down')
    // (after close() there is no current connection, so nothing gets here)
    const delay = reconnectDelay(this.#failures)
    this.#failures++
    this.#timer = setTimeout(() => this.#connect(), delay).unref()
  }

  #report (status: RevocationFeedStatus): void {
    this.#reported = status
    report(this.#options.watcher, status, status === 'down' ? undefined : this.#epoch as number)
  }
}

/**
 * The entries of an XREAD reply on one stream, in any of the shapes ioredis gives it: `[[key, entries]]`
 * (RESP2, ioredis 5), `[key, entries]` (RESP3 maps made flat, ioredis 6's default), `{ key: entries }`
 * (ioredis 6 with `replyMapping: 'resp3'`); null when nothing came.
 */
function streamEntries (reply: unknown): StreamEntry[] {
  let entries: unknown
  if (Array.isArray(reply)) entries = Array.isArray(reply[0]) ? reply[0][1] : reply[1]
  else if (reply !== null && typeof reply === 'object') entries = Object.values(reply)[0]
  return Array.isArray(entries) ? entries as StreamEntry[] : []
}

/** Settles as `promise`, or rejects once `ms` have passed. */
function bounded<T> (promise: Promise<T>, ms: number): Promise<T> {
  return settleWithin(promise, ms, () => new StoreTimeoutError(`revocation feed: no answer within ${ms}ms`))
}

interface Revocation {
  sessionIds: string[]
  revokedAt: number
  notice: SessionEndNotice
  number: number | null
  epoch: number | null
}

/**
 * An entry's fields (`ids` a JSON array of session ids, `at` the time, `u` their user, `c` what ended them, `n`
 * its number, `e` the epoch it was written under), or null when it is not one of ours.
 */
function parseEntry (fields: string[]): Revocation | null {
  let ids: unknown
  let at = Number.NaN
  let userId: string | null = null
  let cause: string | undefined
  let number: number | null = null
  let epoch: number | null = null
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1]
    if (fields[i] === 'ids') ids = parseJson(value)
    else if (fields[i] === 'at') at = Number(value)
    else if (fields[i] === 'u') userId = value
    else if (fields[i] === 'c') cause = value
    else if (fields[i] === 'n' && Number.isSafeInteger(Number(value))) number = Number(value)
    else if (fields[i] === 'e' && Number.isSafeInteger(Number(value))) epoch = Number(value)
  }
  if (!Array.isArray(ids) || !ids.every(id => typeof id === 'string') || !Number.isFinite(at) || !isSessionEndCause(cause)) return null
  return { sessionIds: ids, revokedAt: at, notice: { userId, cause }, number, epoch }
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
