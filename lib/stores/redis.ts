import { InvalidOptionError, StoreTimeoutError } from '../errors.js'
import {
  CREATE_SESSION, INDEX_SESSION, READ_SESSION, REVOKE_SESSION, ROTATE_SESSION, USER_SESSION_IDS
} from './redis-scripts.js'
import { toSessionInfo, type CreateOptions, type RotateRequest, type RotateResult, type SessionInfo, type SessionRecord, type SessionStore } from './store.js'

/**
 * The part of an ioredis client (`Redis` or `Cluster`, ioredis 5 or 6) that RedisStore uses. Declared here
 * rather than imported, so that users of other stores never need ioredis, not even its types.
 *
 * @example
 * import { Cluster } from 'ioredis'
 * const store = new RedisStore({ client: new Cluster([{ host: 'redis-1', port: 6379 }]) }) // a Cluster is one too
 */
export interface RedisClient {
  defineCommand (name: string, definition: { lua: string, numberOfKeys?: number, readOnly?: boolean }): void
}

/**
 * Options of `RedisStore`.
 *
 * @example
 * const store = new RedisStore({ client: new Redis(), prefix: 'myapp:sessions:', timeout: 1000 })
 */
export interface RedisStoreOptions {
  /** Your ioredis client (`new Redis()`, `new Cluster()`, or `fastify.redis` from @fastify/redis). Never closed by the store. */
  client: RedisClient
  /** Prepended to every key. Default `'refresh-auth:'`. Must not contain `{` or `}`. */
  prefix?: string
  /**
   * Milliseconds each store operation may take; past it the plugin answers 503 and the operation can no
   * longer take effect on the server. Default 2000.
   */
  timeout?: number
}

type ScriptReply = Array<string | number | null>
type ScriptCall = (key: string, ...args: Array<string | number>) => Promise<ScriptReply>

// Registered once per client under these names (ioredis sends EVALSHA, falling back to EVAL). Only the listing
// read may go to a replica (ioredis `scaleReads`): revokeUser reads the user index on the primary, so a
// replica lagging behind never hides a session from it.
const SCRIPTS = {
  refreshAuthCreateSessionV1: { lua: CREATE_SESSION, readOnly: false },
  refreshAuthRotateSessionV1: { lua: ROTATE_SESSION, readOnly: false },
  refreshAuthRevokeSessionV1: { lua: REVOKE_SESSION, readOnly: false },
  refreshAuthReadSessionV1: { lua: READ_SESSION, readOnly: true },
  refreshAuthIndexSessionV1: { lua: INDEX_SESSION, readOnly: false },
  refreshAuthUserSessionIdsV1: { lua: USER_SESSION_IDS, readOnly: false }
} as const
type ScriptName = keyof typeof SCRIPTS

/**
 * Sessions in Redis, shared by every instance of the app. One Lua script per operation, so each
 * rotation, reuse check and revocation is atomic on the server and a refresh is one round trip.
 *
 * Keys (`prefix` default `refresh-auth:`):
 * - `{prefix}session:{<sessionId>}`: a hash per session, expiring at its idle limit capped by its absolute limit;
 * - `{prefix}user:{<userId>}`: a sorted set of the user's session ids scored by absolute expiry, for
 *   `revokeUser` and `listUserSessions`; pruned on every login and expiring with its last entry.
 * The braces are Redis Cluster hash tags: each key lives in one slot and every script touches one key.
 *
 * @example
 * import Redis from 'ioredis'
 * const store = new RedisStore({ client: new Redis(process.env.REDIS_URL) })
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store })
 */
export class RedisStore implements SessionStore {
  readonly #client: Record<ScriptName, ScriptCall>
  readonly #prefix: string
  readonly #timeout: number
  // How long a script may wait before it starts; the rest of the timeout is left for its reply to travel.
  readonly #startWindow: number
  // Replies slower than this do not update the clock offset: their delay would make it less precise.
  readonly #sampleLimit: number
  // Estimate of (server clock − our clock), in ms; 0 (clocks in sync) until the first reply.
  #clockOffset = 0

  constructor (options: RedisStoreOptions) {
    const { client, prefix = 'refresh-auth:', timeout = 2000 } = options ?? {}
    if (client === null || typeof client !== 'object' || typeof client.defineCommand !== 'function') {
      throw new InvalidOptionError('RedisStore: client must be an ioredis client')
    }
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
      throw new InvalidOptionError('RedisStore: prefix must be a string without { or }')
    }
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 10) {
      throw new InvalidOptionError('RedisStore: timeout must be a number of milliseconds, at least 10')
    }
    const commands = client as unknown as Record<string, unknown>
    for (const [name, { lua, readOnly }] of Object.entries(SCRIPTS)) {
      if (typeof commands[name] !== 'function') client.defineCommand(name, { lua, numberOfKeys: 1, readOnly })
    }
    this.#client = client as unknown as Record<ScriptName, ScriptCall>
    this.#prefix = prefix
    this.#timeout = timeout
    this.#startWindow = Math.floor(timeout * 0.75)
    this.#sampleLimit = Math.min(100, timeout / 10)
  }

  /** The key of a session's hash. */
  sessionKey (sessionId: string): string {
    return `${this.#prefix}session:{${sessionId}}`
  }

  /** The key of a user's index of sessions. */
  userKey (userId: string): string {
    return `${this.#prefix}user:{${userId}}`
  }

  // `options` (limits, replacement) are applied once issue 11 lands on this store
  async create (session: SessionRecord, _options?: CreateOptions): Promise<void> {
    await this.#withTimeout('create', async (deadline) => {
      const now = Date.now()
      // The index entry goes first: a session that exists is always reachable by revokeUser.
      await this.#run('refreshAuthIndexSessionV1', this.userKey(session.userId), deadline,
        session.sessionId, session.absoluteExpiresAt, now)
      await this.#run('refreshAuthCreateSessionV1', this.sessionKey(session.sessionId), deadline,
        session.userId, session.tokenId, session.createdAt, session.rotatedAt, session.expiresAt,
        session.absoluteExpiresAt, Math.min(session.expiresAt, session.absoluteExpiresAt) - now,
        session.userAgent ?? '', session.ip ?? '')
    })
  }

  async rotate (request: RotateRequest): Promise<RotateResult> {
    return await this.#withTimeout('rotate', async (deadline) => {
      const reply = await this.#run('refreshAuthRotateSessionV1', this.sessionKey(request.sessionId), deadline,
        request.presentedTokenId, request.nextTokenId, request.now, request.nextExpiresAt, request.reuseIntervalMs)
      const outcome = reply[1] as RotateResult['outcome']
      if (outcome === 'not-found') return { outcome }
      return { outcome, session: toRecord(request.sessionId, reply) }
    })
  }

  async revoke (sessionId: string): Promise<void> {
    await this.#withTimeout('revoke', async (deadline) => {
      await this.#run('refreshAuthRevokeSessionV1', this.sessionKey(sessionId), deadline)
    })
  }

  /**
   * Revokes each session in the user's index, one script per session (they live in different slots).
   * A session whose login is still in flight when this runs may survive it; see the README.
   */
  async revokeUser (userId: string): Promise<void> {
    await this.#withTimeout('revokeUser', async (deadline) => {
      const ids = await this.#userSessionIds(userId, deadline)
      await Promise.all(ids.map(id => this.#run('refreshAuthRevokeSessionV1', this.sessionKey(id), deadline)))
    })
  }

  async listUserSessions (userId: string, now: number): Promise<SessionInfo[]> {
    return await this.#withTimeout('listUserSessions', async (deadline) => {
      const ids = await this.#userSessionIds(userId, deadline, now)
      const replies = await Promise.all(ids.map(id => this.#run('refreshAuthReadSessionV1', this.sessionKey(id), deadline)))
      const list: SessionInfo[] = []
      for (let i = 0; i < ids.length; i++) {
        // revoked or expired sessions stay in the index until their absolute expiry: skip them
        if (replies[i][2] === null) continue
        const session = toRecord(ids[i], replies[i])
        if (now < session.expiresAt && now < session.absoluteExpiresAt) list.push(toSessionInfo(session))
      }
      return list
    })
  }

  async #userSessionIds (userId: string, deadline: number, now = Date.now()): Promise<string[]> {
    const reply = await this.#run('refreshAuthUserSessionIdsV1', this.userKey(userId), deadline, now)
    return reply.slice(2) as string[]
  }

  /** Runs one script with the operation's deadline translated to the server's clock. */
  async #run (name: ScriptName, key: string, deadline: number, ...args: Array<string | number>): Promise<ScriptReply> {
    const sent = Date.now()
    const reply = await this.#client[name](key, deadline + this.#clockOffset, ...args)
    const received = Date.now()
    // The server ran the script somewhere between `sent` and `received`: serverNow − received is a lower bound of
    // the offset, so the deadline errs early (refusing a command) rather than late (letting a stale one through).
    if (received - sent <= this.#sampleLimit) this.#clockOffset = Number(reply[0]) - received
    if (reply[1] === 'late') throw new StoreTimeoutError('the operation reached Redis after its deadline and was refused')
    return reply
  }

  /**
   * Runs an operation with the store's timeout. The deadline handed to the scripts is earlier than the
   * timeout by a quarter, the time left for a reply to come back, so that what the caller was told failed
   * does not happen.
   */
  #withTimeout<T> (operation: string, body: (deadline: number) => Promise<T>): Promise<T> {
    const started = Date.now()
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        // setImmediate: a reply already read from the socket in this loop turn still wins over the timer
        setImmediate(() => reject(new StoreTimeoutError(`${operation} timed out after ${this.#timeout}ms`)))
      }, this.#timeout)
      body(started + this.#startWindow).then(
        value => { clearTimeout(timer); resolve(value) },
        (err: unknown) => { clearTimeout(timer); reject(err) }
      )
    })
  }
}

function toRecord (sessionId: string, reply: ScriptReply): SessionRecord {
  const [, , u, t, p, c, r, e, a, ua, ip] = reply
  const record: SessionRecord = {
    sessionId,
    userId: String(u),
    tokenId: String(t),
    previousTokenId: p === null ? null : String(p),
    createdAt: Number(c),
    rotatedAt: Number(r),
    expiresAt: Number(e),
    absoluteExpiresAt: Number(a)
  }
  if (ua !== null) record.userAgent = String(ua)
  if (ip !== null) record.ip = String(ip)
  return record
}
