import { InvalidOptionError, StoreTimeoutError } from '../errors.js'
import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { LocalListeners } from './listeners.js'
import { listenForPoolErrors, type PostgresPool, type PostgresPoolClient } from './postgres-client.js'
import { ServerClock } from './postgres-clock.js'
import { PostgresRevocationFeed, revocationOf } from './postgres-feed.js'
import { decideLogin, decidePresent, decideRotation, isExpired } from '../sessions/decisions.js'
import { buildStatements, tableNames, type Statements, type TableNames } from './postgres-sql.js'
import {
  toSessionInfo,
  type CreateOptions, type CreateResult, type PresentRequest, type PresentResult, type RevocationListener,
  type RevocationWatch, type RotateRequest, type RotateResult, type SessionEndCause, type SessionInfo, type SessionRecord, type SessionStore,
  type WatchOptions
} from './store.js'

/**
 * Options of `PostgresStore`.
 *
 * @example
 * const store = new PostgresStore({ pool, table: 'auth.sessions', timeout: 1000, cleanupInterval: 300 })
 */
export interface PostgresStoreOptions {
  /**
   * Your node-postgres `Pool` (or anything with its `connect()`). Never ended by the store, which listens for
   * its 'error' events and those of every client it opens, so a connection the server ends never ends the process.
   */
  pool: PostgresPool
  /**
   * The sessions table, `name` or `schema.name` (letters, digits and `_`; used as written, quoted). The
   * revocation feed's table is `<table>_revocations` beside it. Default `'refresh_auth_sessions'`.
   */
  table?: string
  /**
   * Milliseconds each store operation may take, the wait for a pool client included; past it the plugin
   * answers 503 and the operation can no longer take effect on the server. Default 2000.
   */
  timeout?: number
  /**
   * Seconds between the batched deletes of expired sessions and old revocations; 0 turns the timer off (call
   * `cleanup()` from your own job then). Default 60.
   */
  cleanupInterval?: number
}

type Row = Record<string, unknown>

/** A store operation's connection, as the operation's body sees it. */
interface Operation {
  /**
   * Runs a guarded statement; rejects with StoreTimeoutError when it started too late to take effect. Before
   * `begin()` the statement is a transaction of its own, committed by the server as it ends.
   */
  run (sql: string, values: unknown[]): Promise<Row[]>
  /** Opens a transaction for the statements that follow; the operation commits it once its body resolves. */
  begin (): Promise<void>
  /** Revocations to tell this process's listeners once the operation's changes have committed. */
  announce (row: Row): void
}

// Cleanup: each batch is one short transaction; a run stops after MAX_BATCHES, the next tick goes on.
const BATCH_SIZE = 1000
const MAX_BATCHES = 10
// SQLSTATEs of a statement the server stopped for its deadline: the guard's final check (a division by zero),
// lock_timeout, and a statement_timeout the host may have set.
const PAST_DEADLINE = new Set(['22012', '55P03', '57014'])
// How long revocations are kept when this store object has no watcher to say (one day).
const DEFAULT_RETENTION_MS = 24 * 3600 * 1000

/**
 * Sessions in PostgreSQL, shared by every instance of the app: one row per session, and a feed of revocations
 * (a table plus `LISTEN`/`NOTIFY`) that every instance hears. A refresh of the live token is one compare-and-set
 * statement, `UPDATE … WHERE token_id = $presented`; any other token is judged on the locked row by the shared
 * session rules; logins of one user are serialised by an advisory lock. Every statement carries deadlines on
 * the server's clock that the server checks where the statement would take effect, so that an operation the
 * caller was told failed never takes effect. Run `migrate()` once (or the SQL in docs/postgres.md). The plugin
 * calls `close()` when the app closes; the pool stays yours to end.
 *
 * @example
 * import pg from 'pg'
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const store = new PostgresStore({ pool })
 * await store.migrate()
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store })
 * // later: await app.close(); await pool.end()
 */
export class PostgresStore implements SessionStore {
  readonly #pool: PostgresPool
  readonly #names: TableNames
  readonly #sql: Statements
  readonly #timeout: number
  // A statement must start within the first three quarters of the timeout, and the COMMIT reach the server
  // within seven eighths: the rest is left for the replies to travel back.
  readonly #startWindow: number
  readonly #commitWindow: number
  readonly #clock = new ServerClock()
  readonly #listeners = new LocalListeners()
  readonly #statementNames = new Map<string, string>()
  readonly #feeds = new Set<PostgresRevocationFeed>()
  readonly #timer: NodeJS.Timeout | null
  #cleaning: Promise<unknown> | null = null

  constructor (options: PostgresStoreOptions) {
    const { pool, table = 'refresh_auth_sessions', timeout = 2000, cleanupInterval = 60 } = options ?? {}
    if (pool === null || typeof pool !== 'object' || typeof pool.connect !== 'function') {
      throw new InvalidOptionError('PostgresStore: pool must be a pg Pool (an object with connect())')
    }
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 10) {
      throw new InvalidOptionError('PostgresStore: timeout must be a number of milliseconds, at least 10')
    }
    if (typeof cleanupInterval !== 'number' || !Number.isFinite(cleanupInterval) || cleanupInterval < 0) {
      throw new InvalidOptionError('PostgresStore: cleanupInterval must be a number of seconds (0: no timer)')
    }
    this.#pool = pool
    listenForPoolErrors(pool)
    this.#names = tableNames(table)
    this.#sql = buildStatements(this.#names)
    this.#timeout = timeout
    this.#startWindow = Math.floor(timeout * 0.75)
    this.#commitWindow = Math.floor(timeout * 0.875)
    // unref'd: a cleanup timer must never keep the process alive
    this.#timer = cleanupInterval === 0 ? null : setInterval(() => { this.#cleanInBackground() }, cleanupInterval * 1000).unref()
  }

  /**
   * Creates the tables and indexes if they are missing. Idempotent; several instances may run it at once
   * (an advisory lock serialises them). The schema of a schema-qualified table must exist.
   */
  async migrate (): Promise<void> {
    const client = await this.#pool.connect()
    const stopHoldingErrors = holdErrors(client)
    try {
      // checked first, so that an app starting against a migrated database takes no lock on its tables
      const { rows } = await client.query(this.#sql.schemaExists)
      if (rows[0].ready !== true) await client.query(this.#sql.migrate)
      stopHoldingErrors()
      client.release()
    } catch (err) {
      stopHoldingErrors()
      client.release(true)
      throw err
    }
  }

  async create (session: SessionRecord, options: CreateOptions = {}): Promise<CreateResult> {
    // a limit that is not a positive integer is refused before anything is sent
    decideLogin([], options)
    return await this.#operation('create', async (op) => {
      await op.begin()
      // logins of one user wait for each other here, so the sessions read below cannot go stale
      await op.run(this.#sql.lockUser, [this.#names.lockNamespace, session.userId])
      const rows = await op.run(this.#sql.userSessionsForUpdate, [session.userId])
      const mine = rows.filter(row => row.session_id !== null && row.session_id !== session.sessionId).map(toRecord)
      const expired = mine.filter(other => isExpired(other, session.createdAt)).map(other => other.sessionId)
      const decision = decideLogin(mine.filter(other => !isExpired(other, session.createdAt)), options)
      if (decision.outcome === 'limit-reached') return decision
      const endedSessionIds = decision.ended.map(other => other.sessionId)
      const [saved] = await op.run(this.#sql.saveSession, [
        this.#names.channel, endedSessionIds, expired,
        session.sessionId, session.userId, session.tokenId, session.previousTokenId, session.generation, session.createdAt,
        session.rotatedAt, session.expiresAt, session.absoluteExpiresAt, session.userAgent ?? null, session.ip ?? null, session.jkt ?? null
      ])
      op.announce(saved)
      return { outcome: 'created', endedSessionIds }
    })
  }

  async rotate (request: RotateRequest): Promise<RotateResult> {
    const { sessionId, presentedTokenId, nextTokenId, now, nextExpiresAt, jkt = null } = request
    return await this.#operation('rotate', async (op) => {
      // the compare-and-set, on its own: a refresh of the live token is this one round trip
      const [rotated] = await op.run(this.#sql.rotate, [sessionId, nextTokenId, now, nextExpiresAt, presentedTokenId, jkt])
      if (rotated.session_id !== null) return { outcome: 'rotated', session: toRecord(rotated) }
      // any other token: the row, locked, and the shared rules say what it is
      await op.begin()
      const session = await this.#lockSession(op, sessionId)
      const decision = decideRotation(session, request)
      switch (decision.outcome) {
        case 'not-found':
          if (decision.expired) await op.run(this.#sql.deleteExpired, [[sessionId]])
          return { outcome: 'not-found' }
        case 'rotated': {
          if (decision.next === null) return { outcome: 'rotated', session: session as SessionRecord }
          const next = decision.next
          const [saved] = await op.run(this.#sql.saveRotation,
            [sessionId, next.tokenId, next.previousTokenId, next.generation, next.rotatedAt, next.expiresAt, next.jkt ?? null])
          return { outcome: 'rotated', session: toRecord(saved) }
        }
        case 'grace':
          return { outcome: 'grace', session: session as SessionRecord }
        case 'reused':
          await this.#end(op, this.#sql.endSessions, [[sessionId]], 'reuse')
          return { outcome: 'reused', session: session as SessionRecord }
      }
    })
  }

  async present (request: PresentRequest): Promise<PresentResult> {
    const { sessionId, end } = request
    return await this.#operation('present', async (op) => {
      await op.begin()
      const session = await this.#lockSession(op, sessionId)
      const decision = decidePresent(session, request)
      if (decision.outcome === 'not-found') {
        if (decision.expired) await op.run(this.#sql.deleteExpired, [[sessionId]])
        return { outcome: 'not-found' }
      }
      if (decision.outcome === 'reused' || end) await this.#end(op, this.#sql.endSessions, [[sessionId]], decision.outcome === 'reused' ? 'reuse' : 'logout')
      return { outcome: decision.outcome, session: session as SessionRecord }
    })
  }

  async revoke (sessionId: string): Promise<void> {
    await this.#operation('revoke', async (op) => this.#end(op, this.#sql.endSessions, [[sessionId]], 'revoke'))
  }

  async revokeUser (userId: string): Promise<void> {
    await this.#operation('revokeUser', async (op) => this.#end(op, this.#sql.endUserSessions, [userId], 'revoke-user'))
  }

  async revokeOtherSessions (userId: string, keepSessionId: string): Promise<void> {
    await this.#operation('revokeOtherSessions', async (op) => this.#end(op, this.#sql.endOtherSessions, [userId, keepSessionId], 'revoke-others'))
  }

  async listUserSessions (userId: string, now: number): Promise<SessionInfo[]> {
    return await this.#operation('listUserSessions', async (op) => {
      const rows = await op.run(this.#sql.listUserSessions, [userId, now])
      return rows.filter(row => row.session_id !== null).map(row => toSessionInfo(toRecord(row)))
    })
  }

  /**
   * Tells `listener` of every session that ends through any PostgresStore on this table: at once for this
   * store object, through `LISTEN`/`NOTIFY` for the others, after a catch-up from the revocations table on
   * every (re)connect. Holds one client of the pool until closed.
   */
  watchRevocations (listener: RevocationListener, options: WatchOptions): RevocationWatch {
    const watcher = this.#listeners.add(listener, options)
    const feed: PostgresRevocationFeed = new PostgresRevocationFeed({
      pool: this.#pool,
      statements: this.#sql,
      channel: this.#names.channel,
      timeout: this.#timeout,
      watcher,
      onClose: () => {
        this.#listeners.remove(watcher)
        this.#feeds.delete(feed)
      }
    })
    this.#feeds.add(feed)
    feed.start()
    return feed
  }

  /**
   * Deletes expired sessions and revocations past their retention, in batches of a thousand rows (ten batches
   * at most per call); the timer calls it every `cleanupInterval` seconds. Resolves to what it deleted.
   */
  async cleanup (now = Date.now()): Promise<{ sessions: number, revocations: number }> {
    const sessions = await this.#inBatches('cleanup', this.#sql.deleteExpiredBatch, now)
    const revocations = await this.#inBatches('cleanup', this.#sql.trimRevocations, this.#listeners.retentionMs(DEFAULT_RETENTION_MS))
    return { sessions, revocations }
  }

  /**
   * Stops the cleanup timer and closes the watches still open, letting go of every client of the pool; the
   * plugin calls it when the app closes. The pool stays yours to end.
   */
  async close (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    await Promise.all([this.#cleaning, ...[...this.#feeds].map(feed => feed.close())])
  }

  /** Locks a session's row and reads it; undefined when there is none. */
  async #lockSession (op: Operation, sessionId: string): Promise<SessionRecord | undefined> {
    const [row] = await op.run(this.#sql.sessionForUpdate, [sessionId])
    return row.session_id === null ? undefined : toRecord(row)
  }

  /** Runs one of the statements that end sessions, and has what it ended announced with its cause. */
  async #end (op: Operation, sql: string, values: unknown[], cause: SessionEndCause): Promise<void> {
    const [row] = await op.run(sql, [this.#names.channel, ...values, cause])
    op.announce(row)
  }

  async #inBatches (operation: string, sql: string, value: number): Promise<number> {
    let total = 0
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const [row] = await this.#operation(operation, async (op) => op.run(sql, [value, BATCH_SIZE]))
      total += row.deleted as number
      if (row.deleted as number < BATCH_SIZE) break
    }
    return total
  }

  #cleanInBackground (): void {
    // a failed run is tried again at the next tick; nothing to report to, and nothing is lost by waiting
    this.#cleaning ??= this.cleanup().catch(() => {}).finally(() => { this.#cleaning = null })
  }

  /**
   * The name a store statement is prepared under: the digest of its text, so one text always has one name on a
   * connection, whichever store object sends it. Prepared, the guarded statements cost the server a bind and an
   * execution instead of a parse and a plan each (the refresh referee, ../shared/perf/refresh-bench.cjs, see
   * bench/README.md).
   */
  #statementName (sql: string): string {
    let name = this.#statementNames.get(sql)
    if (name === undefined) {
      name = `refresh_auth_${createHash('sha256').update(sql).digest('hex').slice(0, 32)}`
      this.#statementNames.set(sql, name)
    }
    return name
  }

  #deliver (row: Row): void {
    const revocation = revocationOf(row)
    if (revocation === null) return
    this.#listeners.announce(revocation.sessionIds, revocation.revokedAt, revocation.notice)
  }

  /**
   * Runs `body` on a pool client, within the store's timeout (the wait for the client included). After the
   * timeout nothing more is sent, the client is closed rather than given back, and the deadlines each
   * statement carries see to it that nothing sent before takes effect late.
   */
  #operation<T> (operation: string, body: (op: Operation) => Promise<T>): Promise<T> {
    const started = performance.now()
    const state = { stopped: false }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        state.stopped = true
        // setImmediate: a reply already read from the socket in this loop turn still wins over the timer
        setImmediate(() => reject(new StoreTimeoutError(`${operation} timed out after ${this.#timeout}ms`)))
      }, this.#timeout)
      this.#runOperation(operation, started, state, body).then(
        value => { clearTimeout(timer); resolve(value) },
        (err: unknown) => { clearTimeout(timer); reject(err) }
      )
    })
  }

  async #runOperation<T> (operation: string, started: number, state: { stopped: boolean }, body: (op: Operation) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect()
    if (state.stopped) {
      // the caller has its answer already: the client goes back unused
      client.release()
      throw new StoreTimeoutError(`${operation} got a pool client too late`)
    }
    const stopHoldingErrors = holdErrors(client)
    const late = (): StoreTimeoutError => new StoreTimeoutError(`${operation} reached PostgreSQL after its deadline and was refused`)
    const startBy = started + this.#startWindow
    const commitBy = started + this.#commitWindow
    // nothing more is sent once the caller has its answer, or once it could only arrive too late to start
    const startsInTime = (): void => { if (state.stopped || performance.now() > startBy) throw late() }
    try {
      if (this.#clock.stale) this.#clock.sample(Number((await client.query(this.#sql.serverNow)).rows[0].now))
      const deadlines = [this.#clock.toServer(startBy), this.#clock.toServer(commitBy)]
      const announced: Row[] = []
      let begun = false
      const result = await body({
        run: async (sql, values) => {
          startsInTime()
          const { rows } = await client.query({ name: this.#statementName(sql), text: sql, values: [...deadlines, ...values] })
          this.#clock.sample(Number(rows[0].server_now))
          if (rows[0].on_time !== true) throw late()
          return rows
        },
        begin: async () => {
          startsInTime()
          await client.query('BEGIN')
          begun = true
        },
        announce: (row) => { announced.push(row) }
      })
      if (begun) {
        if (state.stopped || performance.now() >= commitBy) throw late()
        await client.query('COMMIT')
      }
      stopHoldingErrors()
      client.release()
      for (const row of announced) this.#deliver(row)
      return result
    } catch (err) {
      stopHoldingErrors()
      // closed, not given back: it may be mid-transaction or have a statement in flight
      client.release(true)
      // the server stopped a statement for its deadline, maybe just before our own timer: a timeout to the caller
      if (PAST_DEADLINE.has((err as { code?: string }).code as string)) throw new StoreTimeoutError(`${operation} timed out after ${this.#timeout}ms (stopped by PostgreSQL)`)
      throw err
    }
  }
}

/**
 * Keeps a checked-out client's 'error' events (the server ended the session between two queries) from
 * crashing the process: the next query fails instead. pg-pool listens again once the client is released.
 */
function holdErrors (client: PostgresPoolClient): () => void {
  const ignore = (): void => {}
  client.on('error', ignore)
  return () => { client.removeListener('error', ignore) }
}

/** A row of the sessions table as a SessionRecord (bigint columns may arrive as strings). */
function toRecord (row: Row): SessionRecord {
  const record: SessionRecord = {
    sessionId: row.session_id as string,
    userId: row.user_id as string,
    tokenId: row.token_id as string,
    previousTokenId: row.previous_token_id as string | null,
    generation: Number(row.generation),
    createdAt: Number(row.created_at),
    rotatedAt: Number(row.rotated_at),
    expiresAt: Number(row.expires_at),
    absoluteExpiresAt: Number(row.absolute_expires_at)
  }
  if (row.user_agent !== null) record.userAgent = row.user_agent as string
  if (row.ip !== null) record.ip = row.ip as string
  if (typeof row.jkt === 'string') record.jkt = row.jkt
  return record
}
