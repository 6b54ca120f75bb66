import { setTimeout as sleep } from 'node:timers/promises'
import { InvalidArgumentError, InvalidOptionError, StoreConflictError, StoreTimeoutError } from '../errors.js'
import { LocalListeners } from './listeners.js'
import { RedisRevocationFeed, type RedisFeedConnection } from './redis-feed.js'
import {
  ANNOUNCE_REVOCATION, CREATE_SESSION, DELETE_SESSION, END_SESSION, PRESENT_SESSION, READ_SESSION, RESERVE_SESSION, ROTATE_SESSION,
  SESSION_STATE, USER_SESSION_IDS
} from './redis-scripts.js'
import {
  toSessionInfo, type CreateOptions, type CreateResult, type PresentRequest, type PresentResult, type RevocationListener, type RevocationWatch,
  type RotateRequest, type RotateResult, type SessionInfo, type SessionRecord, type SessionStore, type WatchOptions
} from './store.js'

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
  /** A new connection with the same settings: the revocation feed reads on one of its own. */
  duplicate (): RedisFeedConnection
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
type ScriptCall = (...keysThenArgs: Array<string | number>) => Promise<ScriptReply>

// Registered once per client under these names (ioredis sends EVALSHA, falling back to EVAL); a script whose
// body changes gets a new name, so that instances of two versions never run each other's. Only the listing
// read may go to a replica (ioredis `scaleReads`): revokeUser reads the user index, and a login its sessions,
// on the primary, so a replica lagging behind never hides a session from them.
const SCRIPTS = {
  refreshAuthCreateSessionV2: { lua: CREATE_SESSION, readOnly: false, keys: 1 },
  refreshAuthRotateSessionV2: { lua: ROTATE_SESSION, readOnly: false, keys: 1 },
  refreshAuthPresentSessionV1: { lua: PRESENT_SESSION, readOnly: false, keys: 1 },
  refreshAuthDeleteSessionV2: { lua: DELETE_SESSION, readOnly: false, keys: 1 },
  refreshAuthEndSessionV1: { lua: END_SESSION, readOnly: false, keys: 1 },
  refreshAuthAnnounceRevocationV1: { lua: ANNOUNCE_REVOCATION, readOnly: false, keys: 1 },
  refreshAuthReadSessionV2: { lua: READ_SESSION, readOnly: true, keys: 1 },
  refreshAuthSessionStateV1: { lua: SESSION_STATE, readOnly: false, keys: 1 },
  refreshAuthReserveSessionV1: { lua: RESERVE_SESSION, readOnly: false, keys: 2 },
  refreshAuthUserSessionIdsV1: { lua: USER_SESSION_IDS, readOnly: false, keys: 1 }
} as const
type ScriptName = keyof typeof SCRIPTS

// How long the stream keeps revocations while no watch on this store object said how long it needs them.
const DEFAULT_RETENTION_MS = 60 * 60 * 1000
// A login that keeps being told to read again (logins of its user racing it) gives up after this many tries.
const MAX_RESERVE_ATTEMPTS = 100

/**
 * Sessions in Redis, shared by every instance of the app. One Lua script per operation, so each
 * rotation, reuse check and revocation is atomic on the server and a refresh is one round trip.
 *
 * Keys (`prefix` default `refresh-auth:`):
 * - `{prefix}session:{<sessionId>}`: a hash per session, expiring at its idle limit capped by its absolute limit;
 * - `{prefix}user:{<userId>}`: a sorted set of the user's session ids scored by absolute expiry, for
 *   `revokeUser`, `listUserSessions` and the count of `maxSessionsPerUser`; pruned on every login and expiring
 *   with its last entry;
 * - `{prefix}logins:{<userId>}`: a hash of the user's logins in flight, beside the index in its slot, so that
 *   logins racing each other count the same sessions; each entry expires a few seconds after its login;
 * - `{prefix}{revocations}`: the revocation feed, a stream of the sessions ended (ids and time), trimmed by
 *   age to the longest retention a watch asked for (an hour while none did).
 * The braces are Redis Cluster hash tags: each key lives in one slot and every script touches the keys of one
 * slot (a session's, or a user's two).
 * Every session the store ends is announced on the stream; each watch reads it on a connection of its own
 * (`client.duplicate()`, closed by `close()` of the watch).
 *
 * @example
 * import Redis from 'ioredis'
 * const store = new RedisStore({ client: new Redis(process.env.REDIS_URL) })
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store })
 */
export class RedisStore implements SessionStore {
  readonly #client: Record<ScriptName, ScriptCall>
  readonly #redis: RedisClient
  readonly #listeners = new LocalListeners()
  readonly #prefix: string
  readonly #timeout: number
  // How long a script may wait before it starts; the rest of the timeout is left for its reply to travel.
  readonly #startWindow: number
  // Replies slower than this do not update the clock offset: their delay would make it less precise.
  readonly #sampleLimit: number
  // Estimate of (server clock − our clock), in ms; 0 (clocks in sync) until the first reply.
  #clockOffset = 0
  // How long a revocation's mark outlives a session that did not exist yet: longer than any login in flight.
  readonly #markMs: number

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
    for (const [name, { lua, readOnly, keys }] of Object.entries(SCRIPTS)) {
      if (typeof commands[name] !== 'function') client.defineCommand(name, { lua, numberOfKeys: keys, readOnly })
    }
    this.#client = client as unknown as Record<ScriptName, ScriptCall>
    this.#redis = client
    this.#prefix = prefix
    this.#timeout = timeout
    this.#startWindow = Math.floor(timeout * 0.75)
    this.#sampleLimit = Math.min(100, timeout / 10)
    this.#markMs = 2 * timeout + 5000
  }

  /** The key of a session's hash. */
  sessionKey (sessionId: string): string {
    return `${this.#prefix}session:{${sessionId}}`
  }

  /** The key of a user's index of sessions. */
  userKey (userId: string): string {
    return `${this.#prefix}user:{${userId}}`
  }

  /** The key of a user's logins in flight (beside the user index, in its slot): see docs/redis.md. */
  loginsKey (userId: string): string {
    return `${this.#prefix}logins:{${userId}}`
  }

  /** The key of the revocation stream. */
  revocationsKey (): string {
    return `${this.#prefix}{revocations}`
  }

  /**
   * Saves a session. The user's slot decides (RESERVE_SESSION): with no limit and nothing to replace, the login
   * is two scripts, as always; with either, the store reads the user's sessions (in their own slots) and the
   * reservation checks the count against the index atomically, then the sessions it picked are ended (marked,
   * announced) before the new one is saved. See docs/redis.md for the round trips and the races.
   */
  async create (session: SessionRecord, options: CreateOptions = {}): Promise<CreateResult> {
    const { maxSessionsPerUser: limit, onLimit = 'revoke-oldest', replaceSessionId } = options
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) {
      throw new InvalidArgumentError('RedisStore: maxSessionsPerUser must be a positive integer')
    }
    const replace = replaceSessionId === undefined || replaceSessionId === session.sessionId ? '' : replaceSessionId
    return await this.#withTimeout('create', async (deadline) => {
      const states = new Map<string, string>()
      if (replace !== '') await this.#readStates([replace], session, deadline, states)
      // One deadline on the server's clock for the reservation and every script after it: what the reservation
      // leaves for other logins expires a timeout after it (a margin for the nodes' clocks), when this login can
      // no longer end or save anything.
      const latest = deadline + this.#clockOffset
      const by = (): number => Math.min(deadline, latest - this.#clockOffset)
      const reserve = async (): Promise<ScriptReply> => await this.#run('refreshAuthReserveSessionV1',
        [this.userKey(session.userId), this.loginsKey(session.userId)], by(),
        latest + this.#timeout, session.createdAt, Math.min(Date.now(), session.createdAt), limit ?? 0, onLimit,
        session.sessionId, session.absoluteExpiresAt, session.rotatedAt, Math.min(session.expiresAt, session.absoluteExpiresAt),
        replace, ...[...states].flat())
      let reply = await reserve()
      for (let attempt = 1; reply[1] === 'read'; attempt++) {
        if (attempt === MAX_RESERVE_ATTEMPTS) throw new StoreConflictError('too many logins of this user at once')
        const ids = reply.slice(2) as string[]
        // logins in flight that had not saved their session when last read: give them a moment
        if (ids.some(id => states.get(id) === 'absent')) await sleep(Math.min(2 ** attempt, 16))
        await this.#readStates(ids, session, deadline, states)
        reply = await reserve()
      }
      if (reply[1] === 'limit-reached') return { outcome: 'limit-reached' }
      const ended = reply.slice(2) as string[]
      // ended before the new session is saved: whatever fails in between, the user never has one too many
      if (ended.length > 0) {
        await Promise.all(ended.map(id => this.#run('refreshAuthEndSessionV1', this.sessionKey(id), by(), this.#markMs)))
        await this.#announce(ended, deadline)
      }
      const [saved] = await Promise.all([
        this.#run('refreshAuthCreateSessionV2', this.sessionKey(session.sessionId), by(),
          session.userId, session.tokenId, session.createdAt, session.rotatedAt, session.expiresAt,
          session.absoluteExpiresAt, Math.min(session.expiresAt, session.absoluteExpiresAt) - Date.now(),
          session.userAgent ?? '', session.ip ?? ''),
        ended.length > 0 ? this.#deleteEnded(ended, deadline) : undefined
      ])
      // the user's sessions were revoked while this one was being saved: it must not live on
      if (saved[1] === 'ended') throw new StoreConflictError('the session was revoked while it was being created')
      return { outcome: 'created', endedSessionIds: ended }
    })
  }

  /** Reads what a login needs to know of each session (SESSION_STATE) into `states`. */
  async #readStates (ids: readonly string[], session: SessionRecord, deadline: number, states: Map<string, string>): Promise<void> {
    const replies = await Promise.all(ids.map(id =>
      this.#run('refreshAuthSessionStateV1', this.sessionKey(id), deadline, session.createdAt, session.userId)))
    ids.forEach((id, i) => states.set(id, String(replies[i][2])))
  }

  async rotate (request: RotateRequest): Promise<RotateResult> {
    return await this.#withTimeout('rotate', async (deadline) => {
      const reply = await this.#run('refreshAuthRotateSessionV2', this.sessionKey(request.sessionId), deadline,
        request.presentedTokenId, request.nextTokenId, request.now, request.nextExpiresAt, request.reuseIntervalMs)
      const outcome = reply[1] as RotateResult['outcome'] | 'ended'
      if (outcome === 'not-found') return { outcome }
      // the script marked the session ended (reuse), or found it marked: announce it, then delete it
      if (outcome === 'reused' || outcome === 'ended') await this.#announceEnded([request.sessionId], deadline)
      if (outcome === 'ended') return { outcome: 'not-found' }
      return { outcome, session: toRecord(request.sessionId, reply) }
    })
  }

  async present (request: PresentRequest): Promise<PresentResult> {
    return await this.#withTimeout('present', async (deadline) => {
      const reply = await this.#run('refreshAuthPresentSessionV1', this.sessionKey(request.sessionId), deadline,
        request.presentedTokenId, request.now, request.reuseIntervalMs, request.end ? '1' : '0')
      const outcome = reply[1] as PresentResult['outcome'] | 'ended'
      if (outcome === 'not-found') return { outcome }
      // the script marked the session ended (reuse, or a logout), or found it marked: announce it, then delete it
      if (outcome !== 'live' || request.end) await this.#announceEnded([request.sessionId], deadline)
      if (outcome === 'ended') return { outcome: 'not-found' }
      return { outcome, session: toRecord(request.sessionId, reply) }
    })
  }

  async revoke (sessionId: string): Promise<void> {
    await this.#withTimeout('revoke', async (deadline) => {
      await this.#endSessions([sessionId], deadline)
    })
  }

  /**
   * Revokes each session in the user's index, one script per session (they live in different slots).
   * A session whose login is still in flight when this runs may survive it; see the README.
   */
  async revokeUser (userId: string): Promise<void> {
    await this.#withTimeout('revokeUser', async (deadline) => {
      const ids = await this.#userSessionIds(userId, deadline)
      if (ids.length > 0) await this.#endSessions(ids, deadline)
    })
  }

  /** Ends every session in the user's index but `keepSessionId`, as revokeUser does. */
  async revokeOtherSessions (userId: string, keepSessionId: string): Promise<void> {
    await this.#withTimeout('revokeOtherSessions', async (deadline) => {
      const ids = (await this.#userSessionIds(userId, deadline)).filter(id => id !== keepSessionId)
      if (ids.length > 0) await this.#endSessions(ids, deadline)
    })
  }

  /**
   * The revocation feed: a watch reads the stream on its own connection (`client.duplicate()`), from what
   * it holds, and hears at once (before the method resolves) of every session this store object ends.
   */
  watchRevocations (listener: RevocationListener, options: WatchOptions): RevocationWatch {
    if (typeof this.#redis.duplicate !== 'function') throw new InvalidOptionError('RedisStore: the client has no duplicate(); the revocation feed needs a connection of its own')
    const watcher = this.#listeners.add(listener, options)
    const feed = new RedisRevocationFeed({
      connect: () => this.#redis.duplicate(),
      key: this.revocationsKey(),
      watcher,
      timeout: this.#timeout,
      onClose: () => this.#listeners.remove(watcher)
    })
    feed.start()
    return feed
  }

  /** Ends sessions (revoke, revokeUser): marks each ended first, then announces and deletes them. */
  async #endSessions (sessionIds: readonly string[], deadline: number): Promise<void> {
    await Promise.all(sessionIds.map(id => this.#run('refreshAuthEndSessionV1', this.sessionKey(id), deadline, this.#markMs)))
    await this.#announceEnded(sessionIds, deadline)
  }

  /**
   * The rest of every end: announced to this store object's watches at once, then on the stream, then deleted.
   * The sessions are marked ended already, so a failure here leaves them dead and announced again when next
   * met, never alive.
   */
  async #announceEnded (sessionIds: readonly string[], deadline: number): Promise<void> {
    await this.#announce(sessionIds, deadline)
    await this.#deleteEnded(sessionIds, deadline)
  }

  async #announce (sessionIds: readonly string[], deadline: number): Promise<void> {
    const revokedAt = Date.now()
    this.#listeners.announce(sessionIds, revokedAt)
    await this.#run('refreshAuthAnnounceRevocationV1', this.revocationsKey(), deadline,
      this.#listeners.retentionMs(DEFAULT_RETENTION_MS), JSON.stringify(sessionIds), revokedAt)
  }

  async #deleteEnded (sessionIds: readonly string[], deadline: number): Promise<void> {
    await Promise.all(sessionIds.map(id => this.#run('refreshAuthDeleteSessionV2', this.sessionKey(id), deadline, this.#markMs)))
  }

  async listUserSessions (userId: string, now: number): Promise<SessionInfo[]> {
    return await this.#withTimeout('listUserSessions', async (deadline) => {
      const ids = await this.#userSessionIds(userId, deadline, now)
      const replies = await Promise.all(ids.map(id => this.#run('refreshAuthReadSessionV2', this.sessionKey(id), deadline)))
      const list: SessionInfo[] = []
      for (let i = 0; i < ids.length; i++) {
        // revoked, ended or expired sessions stay in the index until their absolute expiry: skip them
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
  async #run (name: ScriptName, keys: string | readonly string[], deadline: number, ...args: Array<string | number>): Promise<ScriptReply> {
    const sent = Date.now()
    const reply = await this.#client[name](...[keys].flat(), deadline + this.#clockOffset, ...args)
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
    generation: 0, // interim until this store keeps generations (issue 20 #10)
    createdAt: Number(c),
    rotatedAt: Number(r),
    expiresAt: Number(e),
    absoluteExpiresAt: Number(a)
  }
  if (ua !== null) record.userAgent = String(ua)
  if (ip !== null) record.ip = String(ip)
  return record
}
