import type pg from 'pg'
import type { PostgresNotification, PostgresPool, PostgresPoolClient } from '../../lib/index.js'
import type { PreparedStatement } from '../../lib/stores/postgres-client.js'

/** A client handed out by ControlledPool: the real one underneath, every query seen first by the pool's hook. */
export interface ControlledClient extends PostgresPoolClient {
  raw: pg.PoolClient
}

/**
 * A real pg Pool that a test can hold up: `beforeConnect` runs before each checkout (delay it, or throw),
 * `beforeQuery` before each query is sent (delay it, or throw), `afterQuery` before its result is handed on
 * (a reply that travels slowly). Queries are recorded in `queries`.
 */
export class ControlledPool implements PostgresPool {
  beforeConnect: (() => Promise<void>) | null = null
  beforeQuery: ((text: string, values: unknown[] | undefined) => Promise<void> | void) | null = null
  afterQuery: ((text: string) => Promise<void> | void) | null = null
  readonly queries: string[] = []
  readonly clients: ControlledClient[] = []
  /** What each release was called with: true or an error closes the client, nothing gives it back. */
  readonly releases: Array<Error | boolean | undefined> = []

  constructor (readonly pool: pg.Pool) {}

  async connect (): Promise<ControlledClient> {
    await this.beforeConnect?.()
    const raw = await this.pool.connect()
    const client: ControlledClient = {
      raw,
      query: async (statement: string | PreparedStatement, maybeValues?: unknown[]) => {
        const { text, values } = typeof statement === 'string' ? { text: statement, values: maybeValues } : statement
        this.queries.push(text)
        await this.beforeQuery?.(text, values)
        const result = await raw.query(statement as string, maybeValues)
        await this.afterQuery?.(text)
        return result
      },
      release: (err?: Error | boolean) => {
        this.releases.push(err)
        raw.release(err)
      },
      on: (event: string, listener: (...args: never[]) => void) => raw.on(event as 'error', listener as (err: Error) => void),
      removeListener: (event: string, listener: (...args: never[]) => void) => raw.removeListener(event, listener as () => void)
    }
    this.clients.push(client)
    return client
  }

  /** Sends a notification to the listeners of the clients handed out, as if the server had. */
  notify (message: PostgresNotification): void {
    for (const client of this.clients) client.raw.emit('notification', message)
  }
}
