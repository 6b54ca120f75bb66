import { setTimeout as sleep } from 'node:timers/promises'
import { InvalidArgumentError, InvalidOptionError, StoreConflictError, StoreTimeoutError } from '../errors.js'
import { LocalListeners } from './listeners.js'
import { RedisRevocationFeed, type RedisFeedConnection } from './redis-feed.js'
import {
  announceRevocation, createSession, markSessionEnded, presentSession, readSession, reserveLogin, rotateSession, SCRIPTS, sessionState,
  stripEndedSession, trimRevocations, userSessionIds, type RedisScript, type Reservation, type ScriptReply, type SessionReply
} from './redis-scripts.js'
import {
  toSessionInfo, type CreateOptions, type CreateResult, type PresentedToken, type PresentRequest, type PresentResult, type RevocationListener, type RevocationWatch,
  type RotateRequest, type RotateResult, type SessionEndCause, type SessionEndNotice, type SessionInfo, type SessionRecord, type SessionStore, type WatchOptions
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

type ScriptCall = (...keysThenArg: string[]) => Promise<ScriptReply>

// How long the stream keeps revocations while no watch on this store object said how long it needs them.
const DEFAULT_RETENTION_MS = 60 * 60 * 1000
// How often a store with watches trims the stream by age (more often for a shorter retention), so that it
// shrinks while no revocation is written.
const TRIM_INTERVAL_MS = 60_000

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
 * - `{prefix}{revocations}`: the revocation feed, a stream of the sessions ended (ids, time, user, cause), trimmed by
 *   age to the longest retention a watch asked for (an hour while none did);
 * - `{prefix}{revocations}:epoch`: when the stream's history begins (server time, ms): made when missing, so a
 *   store that lost its data has a new epoch, and every instance knows which tokens predate what it can know.
 * The braces are Redis Cluster hash tags: each key lives in one slot and every script touches the keys of one
 * slot (a session's, a user's two, the stream's two).
 * Every session the store ends is announced on the stream; each watch reads it on a connection of its own
 * (`client.duplicate()`, closed by `close()` of the watch).
 *
 * @example
 * import Redis from 'ioredis'
 * const store = new RedisStore({ client: new Redis(process.env.REDIS_URL) })
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, store })
 */
export class RedisStore implements SessionStore {
  readonly #client: Record<string, ScriptCall>
  readonly #redis: RedisClient
  readonly #listeners = new LocalListeners()
  readonly #prefix: string
  readonly #revocationsKey: string
  readonly #timeout: number
  // How long a script may wait before it starts; the rest of the timeout is left for its reply to travel.
  readonly #startWindow: number
  // Replies slower than this do not update the clock offset: their delay would make it less precise.
  readonly #sampleLimit: number
  // Estimate of (server clock − our clock), in ms; 0 (clocks in sync) until the first reply.
  #clockOffset = 0
  // How long a revocation's mark outlives a session that did not exist yet: longer than any login in flight.
  readonly #markMs: number
  #trimTimer: NodeJS.Timeout | null = null

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
    // Registered once per client (ioredis sends EVALSHA, falling back to EVAL). Only the listing read may go to
    // a replica (ioredis `scaleReads`): revokeUser and a login read the user's index on the primary, so a
    // replica lagging behind never hides a session from them.
    const commands = client as unknown as Record<string, unknown>
    for (const { name, lua, keys, readOnly } of SCRIPTS) {
      if (typeof commands[name] !== 'function') client.defineCommand(name, { lua, numberOfKeys: keys, readOnly })
    }
    this.#client = client as unknown as Record<string, ScriptCall>
    this.#redis = client
    this.#prefix = prefix
    this.#revocationsKey = `${prefix}{revocations}`
    this.#timeout = timeout
    this.#startWindow = Math.floor(timeout * 0.75)
    this.#sampleLimit = Math.min(100, timeout / 10)
    this.#markMs = 2 * timeout + 5000
  }

  #sessionKey (sessionId: string): string {
    return `${this.#prefix}session:{${sessionId}}`
  }

  #userKeys (userId: string): [index: string, logins: string] {
    return [`${this.#prefix}user:{${userId}}`, `${this.#prefix}logins:{${userId}}`]
  }

  /**
   * Saves a session. The user's slot decides (reserveLogin): with no limit and nothing to replace, the login
   * is two scripts; with either, the store reads the user's sessions (in their own slots) and the reservation
   * checks the count against the index atomically, then the sessions it picked are ended (marked, announced)
   * before the new one is saved. See docs/redis.md for the round trips and the races.
   */
  async create (session: SessionRecord, options: CreateOptions = {}): Promise<CreateResult> {
    const { maxSessionsPerUser: limit, onLimit = 'revoke-oldest', replaceSessionId } = options
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) {
      throw new InvalidArgumentError('RedisStore: maxSessionsPerUser must be a positive integer')
    }
    const replace = replaceSessionId === session.sessionId ? undefined : replaceSessionId
    return await this.#withTimeout('create', async (deadline) => {
      const states: Record<string, string> = {}
      if (replace !== undefined) await this.#readStates([replace], session, deadline, states)
      // One deadline on the server's clock for the reservation and every script after it: what the reservation
      // leaves for other logins expires a timeout after it (a margin for the nodes' clocks), when this login can
      // no longer end or save anything.
      const latest = deadline + this.#clockOffset
      const by = (): number => Math.min(deadline, latest - this.#clockOffset)
      const login = {
        until: latest + this.#timeout,
        now: session.createdAt,
        prune: Math.min(Date.now(), session.createdAt),
        limit: limit ?? 0,
        onLimit,
        replace,
        session: {
          id: session.sessionId,
          absoluteExpiresAt: session.absoluteExpiresAt,
          rotatedAt: session.rotatedAt,
          expiry: Math.min(session.expiresAt, session.absoluteExpiresAt)
        },
        states
      }
      const keys = this.#userKeys(session.userId)
      // Each 'read' asks for sessions this login has not read: ones that other logins of the user reserved
      // since, or logins in flight to wait for. No count bounds it, the deadline does: past it the script
      // answers 'late', and this loop stops on our clock too.
      let reservation: Reservation
      for (let pass = 0; (reservation = await this.#run(reserveLogin, keys, login, by())).outcome === 'read'; pass++) {
        if (Date.now() > deadline) throw new StoreTimeoutError('create: logins of this user kept racing it until its deadline')
        const ids = reservation.sessionIds
        // logins in flight that had not saved their session when last read: give them a moment
        if (ids.some(id => states[id] === 'absent')) await sleep(Math.min(2 ** pass, 16))
        await this.#readStates(ids, session, deadline, states)
      }
      if (reservation.outcome === 'limit-reached') return { outcome: 'limit-reached' }
      const ended = reservation.ended
      // ended before the new session is saved: whatever fails in between, the user never has one too many
      if (ended.length > 0) {
        await Promise.all(ended.map(async id => await this.#run(markSessionEnded, this.#sessionKey(id), { markMs: this.#markMs, cause: 'create' }, by())))
        await this.#announce(ended, { userId: session.userId, cause: 'create' }, deadline)
      }
      const [saved] = await Promise.all([
        this.#run(createSession, this.#sessionKey(session.sessionId), { session, ttl: login.session.expiry - Date.now() }, by()),
        ended.length > 0 ? this.#stripEnded(ended, deadline) : undefined
      ])
      // the user's sessions were revoked while this one was being saved: it must not live on
      if (saved === 'ended') throw new StoreConflictError('the session was revoked while it was being created')
      return { outcome: 'created', endedSessionIds: ended }
    })
  }

  /** Reads what a login needs to know of each session (sessionState) into `states`. */
  async #readStates (ids: readonly string[], session: SessionRecord, deadline: number, states: Record<string, string>): Promise<void> {
    const arg = { now: session.createdAt, userId: session.userId }
    const replies = await Promise.all(ids.map(async id => await this.#run(sessionState, this.#sessionKey(id), arg, deadline)))
    ids.forEach((id, i) => { states[id] = replies[i] })
  }

  async rotate (request: RotateRequest): Promise<RotateResult> {
    return await this.#withTimeout('rotate', async (deadline) => await this.#runTokenScript(rotateSession, request, {
      next: request.nextTokenId, nextExpiresAt: request.nextExpiresAt, jkt: request.jkt
    }, deadline))
  }

  async present (request: PresentRequest): Promise<PresentResult> {
    return await this.#withTimeout('present', async (deadline) => {
      const result = await this.#runTokenScript(presentSession, request, { end: request.end }, deadline)
      // a logout: the script marked the session ended; announce it, then strip it
      if (result.outcome === 'live' && request.end) await this.#announceEnded([request.sessionId], { userId: result.session.userId, cause: 'logout' }, deadline)
      return result
    })
  }

  /**
   * Runs rotate's or present's script on the presented token (`arg`: what the script takes besides it), and
   * finishes the ends it met: reuse (the script marked the session ended) is announced, then stripped; a session
   * found ended (its announcement unconfirmed) is announced again, and answered not found.
   */
  async #runTokenScript<Outcome extends string> (
    script: RedisScript<SessionReply<Outcome>>, request: PresentedToken, arg: Record<string, unknown>, deadline: number
  ): Promise<{ outcome: Outcome, session: SessionRecord } | { outcome: 'not-found' }> {
    const { sessionId } = request
    const reply = await this.#run(script, this.#sessionKey(sessionId), {
      presented: request.presentedTokenId,
      generation: request.presentedGeneration,
      now: request.now,
      reuseIntervalMs: request.reuseIntervalMs,
      ...arg
    }, deadline, sessionId)
    // 'ended' carries the user and cause of the end to announce again
    if ('cause' in reply) await this.#announceEnded([sessionId], reply, deadline)
    if (reply.session === null) return { outcome: 'not-found' }
    if (reply.outcome === 'reused') await this.#announceEnded([sessionId], { userId: reply.session.userId, cause: 'reuse' }, deadline)
    return reply
  }

  async revoke (sessionId: string): Promise<void> {
    await this.#withTimeout('revoke', async (deadline) => {
      await this.#endSessions([sessionId], null, 'revoke', deadline)
    })
  }

  /**
   * Revokes each session in the user's index, one script per session (they live in different slots).
   * A session whose login is still in flight when this runs may survive it; see the README.
   */
  async revokeUser (userId: string): Promise<void> {
    await this.#withTimeout('revokeUser', async (deadline) => {
      const ids = await this.#userSessionIds(userId, deadline)
      if (ids.length > 0) await this.#endSessions(ids, userId, 'revoke-user', deadline)
    })
  }

  /** Ends every session in the user's index but `keepSessionId`, as revokeUser does. */
  async revokeOtherSessions (userId: string, keepSessionId: string): Promise<void> {
    await this.#withTimeout('revokeOtherSessions', async (deadline) => {
      const ids = (await this.#userSessionIds(userId, deadline)).filter(id => id !== keepSessionId)
      if (ids.length > 0) await this.#endSessions(ids, userId, 'revoke-others', deadline)
    })
  }

  /**
   * The revocation feed: a watch reads the stream on its own connection (`client.duplicate()`), from what
   * it holds, and hears at once (before the method resolves) of every session this store object ends. While
   * a watch runs, the store trims the stream by age every minute (a failure waits for the next turn).
   */
  watchRevocations (listener: RevocationListener, options: WatchOptions): RevocationWatch {
    if (typeof this.#redis.duplicate !== 'function') throw new InvalidOptionError('RedisStore: the client has no duplicate(); the revocation feed needs a connection of its own')
    const watcher = this.#listeners.add(listener, options)
    this.#trimTimer ??= setInterval(() => { this.#trim().catch(() => {}) }, Math.min(TRIM_INTERVAL_MS, watcher.retentionMs)).unref()
    const feed = new RedisRevocationFeed({
      connect: () => this.#redis.duplicate(),
      key: this.#revocationsKey,
      epochKey: `${this.#revocationsKey}:epoch`,
      watcher,
      timeout: this.#timeout,
      onClose: () => {
        this.#listeners.remove(watcher)
        if (this.#listeners.size === 0 && this.#trimTimer !== null) {
          clearInterval(this.#trimTimer)
          this.#trimTimer = null
        }
      }
    })
    feed.start()
    return feed
  }

  /** Drops the stream's entries older than the retention. */
  async #trim (): Promise<void> {
    const retentionMs = this.#listeners.retentionMs(DEFAULT_RETENTION_MS)
    await this.#withTimeout('trim', async (deadline) => {
      await this.#run(trimRevocations, this.#revocationsKey, { retentionMs }, deadline)
    })
  }

  /**
   * Ends sessions of one user (revoke, revokeUser, revokeOtherSessions): marks each ended first, then announces
   * and strips them. `userId` null (revoke): the user the session's mark answers.
   */
  async #endSessions (sessionIds: readonly string[], userId: string | null, cause: SessionEndCause, deadline: number): Promise<void> {
    const arg = { markMs: this.#markMs, cause }
    const users = await Promise.all(sessionIds.map(async id => await this.#run(markSessionEnded, this.#sessionKey(id), arg, deadline)))
    await this.#announceEnded(sessionIds, { userId: userId ?? users[0], cause }, deadline)
  }

  /**
   * The rest of every end: announced to this store object's watches at once, then on the stream, then stripped.
   * The sessions are marked ended already, so a failure here leaves them dead and announced again when next
   * met, never alive.
   */
  async #announceEnded (sessionIds: readonly string[], notice: SessionEndNotice, deadline: number): Promise<void> {
    await this.#announce(sessionIds, notice, deadline)
    await this.#stripEnded(sessionIds, deadline)
  }

  async #announce (sessionIds: readonly string[], { userId, cause }: SessionEndNotice, deadline: number): Promise<void> {
    const revokedAt = Date.now()
    this.#listeners.announce(sessionIds, revokedAt, { userId, cause })
    await this.#run(announceRevocation, [this.#revocationsKey, `${this.#revocationsKey}:epoch`],
      { sessionIds, revokedAt, userId, cause, retentionMs: this.#listeners.retentionMs(DEFAULT_RETENTION_MS) }, deadline)
  }

  async #stripEnded (sessionIds: readonly string[], deadline: number): Promise<void> {
    const arg = { markMs: this.#markMs }
    await Promise.all(sessionIds.map(async id => await this.#run(stripEndedSession, this.#sessionKey(id), arg, deadline)))
  }

  async listUserSessions (userId: string, now: number): Promise<SessionInfo[]> {
    return await this.#withTimeout('listUserSessions', async (deadline) => {
      const ids = await this.#userSessionIds(userId, deadline, now)
      const replies = await Promise.all(ids.map(async id => await this.#run(readSession, this.#sessionKey(id), {}, deadline, id)))
      const list: SessionInfo[] = []
      for (const { session } of replies) {
        // revoked, ended or expired sessions stay in the index until their absolute expiry: skip them
        if (session !== null && now < session.expiresAt && now < session.absoluteExpiresAt) list.push(toSessionInfo(session))
      }
      return list
    })
  }

  async #userSessionIds (userId: string, deadline: number, now = Date.now()): Promise<string[]> {
    return await this.#run(userSessionIds, this.#userKeys(userId)[0], { now }, deadline)
  }

  /**
   * Runs one script: its arguments as one JSON object with the operation's deadline translated to the server's
   * clock, its reply checked for lateness and decoded by the script's decoder.
   */
  async #run<Reply> (script: RedisScript<Reply>, keys: string | readonly string[], arg: Record<string, unknown>, deadline: number, id = ''): Promise<Reply> {
    arg.deadline = deadline + this.#clockOffset
    const json = JSON.stringify(arg)
    const client = this.#client
    const sent = Date.now()
    const reply = typeof keys === 'string' ? await client[script.name](keys, json) : await client[script.name](...keys, json)
    const received = Date.now()
    // The server ran the script somewhere between `sent` and `received`: serverNow − received is a lower bound of
    // the offset, so the deadline errs early (refusing a command) rather than late (letting a stale one through).
    if (received - sent <= this.#sampleLimit) this.#clockOffset = Number(reply[0]) - received
    if (reply[1] === 'late') throw new StoreTimeoutError('the operation reached Redis after its deadline and was refused')
    return script.decode(reply, id)
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
