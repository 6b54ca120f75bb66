/**
 * A notification as node-postgres delivers it to a client that `LISTEN`s.
 *
 * @example
 * client.on('notification', (message: PostgresNotification) => console.log(message.channel))
 */
export interface PostgresNotification {
  channel: string
  payload?: string
}

/**
 * A statement run under its name, as node-postgres takes one: the server parses and plans it once per
 * connection instead of at every call.
 *
 * @example
 * await client.query({ name: 'refresh_auth_rotate_1a2b', text: 'UPDATE …', values: [1, 2] })
 */
export interface PreparedStatement {
  name: string
  text: string
  values: unknown[]
}

/**
 * The part of a node-postgres `PoolClient` that PostgresStore uses: a client checked out of the pool.
 *
 * @example
 * const client: PostgresPoolClient = await pool.connect()
 * client.release()
 */
export interface PostgresPoolClient {
  query (text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>
  /** A named statement: prepared once per connection, then only bound and run. */
  query (statement: PreparedStatement): Promise<{ rows: Array<Record<string, unknown>> }>
  /** Gives the client back to the pool; with an error (or true) the pool closes it instead. */
  release (err?: Error | boolean): void
  on (event: 'notification', listener: (message: PostgresNotification) => void): unknown
  on (event: 'error', listener: (err: Error) => void): unknown
  on (event: 'end', listener: () => void): unknown
  removeListener (event: 'notification', listener: (message: PostgresNotification) => void): unknown
  removeListener (event: 'error', listener: (err: Error) => void): unknown
  removeListener (event: 'end', listener: () => void): unknown
}

/**
 * The part of a node-postgres `Pool` that PostgresStore uses. Declared here rather than imported, so that
 * users of other stores never need `pg`, not even its types.
 *
 * @example
 * import pg from 'pg'
 * const pool: PostgresPool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 */
export interface PostgresPool {
  connect (): Promise<PostgresPoolClient>
  /**
   * A pg `Pool` emits 'error' when the server ends one of its idle clients, and 'connect' with each client it
   * opens; the store listens to both (see `listenForPoolErrors`).
   */
  on? (event: 'error', listener: (err: Error) => void): unknown
  on? (event: 'connect', listener: (client: PostgresPoolClient) => void): unknown
}

const guardedPools = new WeakSet<PostgresPool>()
const ignore = (): void => {}

/**
 * Keeps the server ending a connection (a restart, `pg_terminate_backend`, a failover) from ending the
 * process, for as long as the pool lives, once per pool. An 'error' event with no listener throws, and pg
 * emits two that nobody else may hear: the pool's, for an idle client the server ended (the pool has dropped
 * it already; the next checkout opens a new one), and a new client's, when the server's goodbye arrives in
 * the same read as the end of the connection's startup, after the pool has handed the client out but before
 * whoever asked for it has run. So every client the pool opens gets a listener too; its queries still fail.
 */
export function listenForPoolErrors (pool: PostgresPool): void {
  if (typeof pool.on !== 'function' || guardedPools.has(pool)) return
  guardedPools.add(pool)
  pool.on('error', ignore)
  pool.on('connect', (client) => { client.on('error', ignore) })
}
