import { StoreTimeoutError } from '../errors.js'
import { deliver, type Watcher } from './listeners.js'
import type { PostgresNotification, PostgresPool, PostgresPoolClient } from './postgres-client.js'
import type { Statements } from './postgres-sql.js'
import { ReconnectingFeed } from './reconnecting-feed.js'
import { isSessionEndCause, type SessionEndCause, type SessionEndNotice } from './store.js'
import { settleWithin } from './timing.js'

export interface RevocationFeedOptions {
  pool: PostgresPool
  statements: Pick<Statements, 'catchUp' | 'revocationById' | 'serverNow' | 'listen' | 'unlisten'>
  /** The NOTIFY channel, as notifications name it. */
  channel: string
  /** Milliseconds each query of the feed may take before its connection is given up. */
  timeout: number
  watcher: Watcher
  /** Called once, when the watch is closed. */
  onClose: () => void
}

// How far back a catch-up reaches before the last confirmed time: a revocation row is stamped when it is
// inserted and becomes visible when its transaction commits, at most a store timeout later (statement and
// idle timeouts see to that), so rows committed after the last confirmation are never older than this.
const MIN_OVERLAP_MS = 30_000
const MAX_HEARTBEAT_MS = 2000

interface Connection {
  client: PostgresPoolClient
  /** False once lost or closed: its handlers do nothing any more and it has been (or is being) released. */
  alive: boolean
  onNotification: (message: PostgresNotification) => void
  onError: (err: Error) => void
  onEnd: () => void
}

/**
 * One watch of a PostgresStore's revocation feed: a client checked out of the pool that `LISTEN`s on the
 * store's channel and applies each notification at once; on every (re)connect it first catches up from the
 * revocations table. A heartbeat query on the same client finds a connection that went silent.
 */
export class PostgresRevocationFeed extends ReconnectingFeed {
  readonly #options: RevocationFeedOptions
  readonly #overlap: number
  readonly #heartbeat: number
  #connection: Connection | null = null
  #attempt: Promise<void> | null = null
  #heartbeatTimer: NodeJS.Timeout | null = null
  /** Server time up to which every revocation is known to have been delivered; null before the first catch-up. */
  #lastConfirmed: number | null = null

  constructor (options: RevocationFeedOptions) {
    super(options.watcher)
    this.#options = options
    this.#overlap = Math.max(MIN_OVERLAP_MS, 2 * options.timeout)
    this.#heartbeat = Math.min(MAX_HEARTBEAT_MS, options.timeout)
  }

  protected connect (): void {
    this.#attempt = this.#connect()
  }

  protected async shutdown (): Promise<void> {
    this.#options.onClose()
    this.#stopHeartbeat()
    // a connection attempt under way sees the feed closed and gives its client back
    await this.#attempt
    const connection = this.#connection
    this.#connection = null
    if (connection === null || !connection.alive) return
    connection.alive = false
    try {
      // the client goes back to the pool clean, listening to nothing
      await this.#bounded(connection.client.query(this.#options.statements.unlisten))
      this.#release(connection, false)
    } catch {
      this.#release(connection, true)
    }
  }

  async #connect (): Promise<void> {
    const { pool, statements, watcher: { retentionMs } } = this.#options
    let client: PostgresPoolClient
    try {
      client = await settleWithin(pool.connect(), this.#options.timeout, () => new StoreTimeoutError('revocation feed: no pool client in time'), late => late.release())
    } catch {
      this.reconnect()
      return
    }
    if (this.closed) {
      client.release()
      return
    }
    const connection: Connection = {
      client,
      alive: true,
      onNotification: (message) => this.#onNotification(connection, message),
      onError: () => this.#lost(connection),
      onEnd: () => this.#lost(connection)
    }
    client.on('notification', connection.onNotification)
    client.on('error', connection.onError)
    client.on('end', connection.onEnd)
    this.#connection = connection
    try {
      // LISTEN before reading the table: a revocation committed in between is both notified and read (harmless)
      await this.#bounded(client.query(statements.listen))
      const since = this.#lastConfirmed === null ? null : this.#lastConfirmed - this.#overlap
      const { rows } = await this.#bounded(client.query(statements.catchUp, [since, retentionMs]))
      if (!connection.alive || this.closed) return
      for (const row of rows) {
        const revocation = revocationOf(row)
        if (revocation !== null) this.#deliver(revocation)
      }
      const now = Number(rows[0].now)
      // entries older than the retention may have been trimmed before this instance read them
      const status = since !== null && since < now - retentionMs ? 'gap' : 'live'
      this.#lastConfirmed = now
      this.caughtUp(status)
      this.#scheduleHeartbeat(connection)
    } catch {
      this.#lost(connection)
    }
  }

  #onNotification (connection: Connection, message: PostgresNotification): void {
    if (!connection.alive || message.channel !== this.#options.channel) return
    const notification = parsePayload(message.payload)
    if (notification === null) return
    if (notification.ids !== undefined) {
      this.#deliver({ sessionIds: notification.ids, revokedAt: notification.at, notice: { userId: notification.u as string | null, cause: notification.c as SessionEndCause } })
      return
    }
    // too many ids for a notification: read them from the table
    this.#bounded(connection.client.query(this.#options.statements.revocationById, [notification.id])).then(({ rows }) => {
      const revocation = rows.length === 1 ? revocationOf(rows[0]) : null
      if (revocation !== null && !this.closed) this.#deliver(revocation)
    }, () => this.#lost(connection))
  }

  #scheduleHeartbeat (connection: Connection): void {
    this.#heartbeatTimer = setTimeout(() => {
      this.#heartbeatTimer = null
      this.#bounded(connection.client.query(this.#options.statements.serverNow)).then(({ rows }) => {
        if (!connection.alive) return
        this.#lastConfirmed = Number(rows[0].now)
        this.#scheduleHeartbeat(connection)
      }, () => this.#lost(connection))
    }, this.#heartbeat).unref()
  }

  #lost (connection: Connection): void {
    if (!connection.alive) return
    connection.alive = false
    this.#connection = null
    this.#stopHeartbeat()
    this.#release(connection, true)
    this.reconnect()
  }

  #release (connection: Connection, destroy: boolean): void {
    const { client } = connection
    client.removeListener('notification', connection.onNotification)
    client.removeListener('end', connection.onEnd)
    // the pool takes over error handling once the client is back; until then a late error is ours to swallow
    client.removeListener('error', connection.onError)
    // with an error the pool closes the client instead of keeping it
    client.release(destroy)
  }

  #deliver ({ sessionIds, revokedAt, notice }: Revocation): void {
    deliver(this.watcher, sessionIds, revokedAt, notice)
  }

  #stopHeartbeat (): void {
    if (this.#heartbeatTimer !== null) clearTimeout(this.#heartbeatTimer)
    this.#heartbeatTimer = null
  }

  #bounded<T> (promise: Promise<T>): Promise<T> {
    return settleWithin(promise, this.#options.timeout, () => new StoreTimeoutError('revocation feed: query timed out'))
  }
}

/** Sessions ended at one time, with their user and what ended them. */
export interface Revocation {
  sessionIds: readonly string[]
  revokedAt: number
  notice: SessionEndNotice
}

/**
 * A revocation as a statement returns it (`session_ids` JSON text, `revoked_at`, `ended_user_id`, `cause`), or
 * null for a row without one (a statement that ended nothing).
 */
export function revocationOf (row: Record<string, unknown>): Revocation | null {
  if (row.session_ids === null || row.session_ids === undefined || !isSessionEndCause(row.cause)) return null
  return {
    sessionIds: JSON.parse(row.session_ids as string) as string[],
    revokedAt: Number(row.revoked_at),
    // every statement that reads a revocation selects `ended_user_id`, and SQL NULL arrives as null
    notice: { userId: row.ended_user_id as string | null, cause: row.cause }
  }
}

/** A notification: the revocation's row id and time, and its ids, user and cause unless too long to carry them. */
interface Notification {
  id: string
  at: number
  ids?: string[]
  u?: string | null
  c?: string
}

/** A notification's payload, or null when it is not one of ours. */
function parsePayload (payload: string | undefined): Notification | null {
  let value: Partial<Notification> | null
  try {
    value = JSON.parse(payload ?? '') as Partial<Notification> | null
  } catch {
    return null
  }
  if (typeof value?.id !== 'string' || typeof value.at !== 'number') return null
  if (value.ids === undefined) return value as Notification
  if (!Array.isArray(value.ids) || !value.ids.every(id => typeof id === 'string')) return null
  if ((value.u !== null && typeof value.u !== 'string') || !isSessionEndCause(value.c)) return null
  return value as Notification
}
