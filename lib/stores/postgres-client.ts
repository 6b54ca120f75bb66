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
 * The part of a node-postgres `PoolClient` that PostgresStore uses: a client checked out of the pool.
 *
 * @example
 * const client: PostgresPoolClient = await pool.connect()
 * client.release()
 */
export interface PostgresPoolClient {
  query (text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>
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
}
