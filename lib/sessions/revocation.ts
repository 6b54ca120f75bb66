import type { FastifyBaseLogger } from 'fastify'
import type { RevocationFeedStatus, RevocationListener } from '../stores/store.js'

/** `accessToken.revocation` once resolved: null when turned off. Seconds. */
export interface RevocationSettings {
  /** Answer 503 to tokens whose session cannot be confirmed live, rather than serve them. */
  failClosed: boolean
  /** How long the feed may be down before revocations count as unconfirmed. */
  feedTolerance: number
}

export interface SessionRevocationsOptions extends RevocationSettings {
  /** The longest an access token can be valid (its lifetime plus the clock tolerance), in seconds. */
  tokenLifetime: number
  /** Whether a store feed tells this instance of sessions ended anywhere; without one it records its own. */
  fed: boolean
  log: FastifyBaseLogger
}

// Beyond an access token's lifetime, an entry is kept this much longer: clocks of other instances may be
// ahead, and a refresh already under way when the session ended may still issue a token (within a store timeout).
const MARGIN_SECONDS = 60
const SWEEP_INTERVAL_MS = 30_000

/**
 * The sessions that ended, as this instance knows them, for as long as one of their access tokens could
 * still be valid: a Map of session id to the second until which it is kept, in the order heard (so expired
 * entries are at the front). Fed by the store's revocation feed, or by this instance alone without one.
 *
 * It also follows the feed's health: while revocations made elsewhere cannot be confirmed (the feed down
 * longer than `feedTolerance`, back after losing some, or a store whose history begins after tokens that may
 * still be valid were issued), it logs it once, and with `failClosed` `failing` is true for the tokens issued
 * before `unconfirmedBefore`.
 */
export class SessionRevocations implements RevocationListener {
  readonly #entries = new Map<string, number>()
  readonly #keepSeconds: number
  readonly #options: SessionRevocationsOptions
  /** True while some tokens cannot be confirmed and the settings say to refuse them: the hot path's one boolean. */
  failing = false
  /** While `failing`, tokens issued (`iat`, seconds) before this are answered 503. */
  unconfirmedBefore = 0
  // the feed down longer than the tolerance, with no catch-up since
  #down = false
  // after a gap: tokens issued before `#gapBefore` stay unconfirmed until `#gapUntil` (seconds)
  #gapBefore = 0
  #gapUntil = 0
  #caughtUp: (() => void) | null = null
  readonly #firstCatchUp = new Promise<void>(resolve => { this.#caughtUp = resolve })
  #downTimer: NodeJS.Timeout | null = null
  #sweepTimer: NodeJS.Timeout | null = null

  constructor (options: SessionRevocationsOptions) {
    this.#options = options
    this.#keepSeconds = Math.ceil(options.tokenLifetime) + MARGIN_SECONDS
  }

  /** How long (ms) an ended session is kept: what the feed must retain. */
  get keepMs (): number {
    return this.#keepSeconds * 1000
  }

  /** Number of sessions held. */
  get size (): number {
    return this.#entries.size
  }

  /** Whether a session ended: one Map lookup, none while nothing ended. */
  has (sessionId: string): boolean {
    return this.#entries.size !== 0 && this.#entries.has(sessionId)
  }

  /** Starts the sweep, and with a feed the wait for its first catch-up. */
  start (): void {
    this.#sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref()
    // until the feed first catches up it counts as down
    if (this.#options.fed) this.#startDownTimer()
  }

  /**
   * Resolves once the feed first caught up (what the store holds is loaded), or once it has been down for
   * `feedTolerance`: the app then starts anyway, and the outage is logged.
   */
  async firstCatchUp (): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const waited = new Promise<void>(resolve => { timer = setTimeout(resolve, this.#options.feedTolerance * 1000).unref() })
    await Promise.race([this.#firstCatchUp, waited])
    clearTimeout(timer)
  }

  stop (): void {
    for (const timer of [this.#sweepTimer, this.#downTimer]) if (timer !== null) clearTimeout(timer)
    this.#sweepTimer = this.#downTimer = null
  }

  /** True when the store has no feed: this instance records the sessions it ends itself. */
  get recordsLocally (): boolean {
    return !this.#options.fed
  }

  /** Sessions this instance ended itself: recorded here only when no feed will tell of them. */
  ended (sessionIds: readonly string[]): void {
    if (!this.#options.fed) this.revoked(sessionIds, Date.now())
  }

  revoked (sessionIds: readonly string[], revokedAt: number): void {
    const now = Date.now() / 1000
    const keepUntil = Math.ceil((Number.isFinite(revokedAt) ? revokedAt : Date.now()) / 1000) + this.#keepSeconds
    if (keepUntil <= now) return
    for (const sessionId of sessionIds) {
      const kept = this.#entries.get(sessionId)
      if (kept !== undefined) {
        if (kept >= keepUntil) continue
        // heard again, later: moved to the back, so the front stays the first to expire
        this.#entries.delete(sessionId)
      }
      this.#entries.set(sessionId, keepUntil)
    }
    this.sweep(now * 1000)
  }

  /**
   * The feed's health. `since` (ms): when the store's history of ended sessions begins (its epoch); while a
   * token issued before it may still be valid, those tokens are a gap, as after an outage.
   */
  status (status: RevocationFeedStatus, since?: number): void {
    if (status === 'down') {
      this.#startDownTimer()
      return
    }
    this.#clearDownTimer()
    this.#caughtUp?.()
    if (this.#down) {
      this.#down = false
      this.#options.log.info('fastify-refresh-auth: the revocation feed caught up again; revocations are confirmed')
    }
    if (status === 'gap') {
      this.#openGap(Date.now(), 'the revocation feed is back but may have missed revocations (away longer than it keeps them, or some were trimmed unread)')
    }
    if (since !== undefined) {
      this.#openGap(since, `the session store's history of ended sessions begins at ${new Date(since).toISOString()} ` +
        '(a new store, or one that lost its data): sessions that ended before it are unknown')
    }
    this.#update()
  }

  #startDownTimer (): void {
    if (this.#downTimer !== null || this.#down) return
    this.#downTimer = setTimeout(() => {
      this.#downTimer = null
      this.#down = true
      this.#options.log.warn(`fastify-refresh-auth: the revocation feed has been down for ${this.#options.feedTolerance}s: ` +
        'sessions ended on other instances cannot be confirmed; ' + (this.#options.failClosed
          ? 'protected requests answer 503 until it is back (accessToken.revocation.failClosed)'
          : 'their access tokens are served until they expire'))
      this.#update()
    }, this.#options.feedTolerance * 1000).unref()
  }

  #clearDownTimer (): void {
    if (this.#downTimer !== null) clearTimeout(this.#downTimer)
    this.#downTimer = null
  }

  // Revocations before `fromMs` may be lost: tokens issued before it cannot be confirmed until the last of them
  // expires. Windows merge, and one already covered is not opened again: one loss is one gap, however many
  // instances and reconnections learn of it.
  #openGap (fromMs: number, why: string): void {
    const before = Math.ceil(fromMs / 1000)
    const until = Math.ceil(fromMs / 1000 + this.#options.tokenLifetime)
    if (until <= Date.now() / 1000 || (before <= this.#gapBefore && until <= this.#gapUntil)) return
    this.#gapBefore = Math.max(before, this.#gapBefore)
    this.#gapUntil = Math.max(until, this.#gapUntil)
    const issuedBefore = new Date(this.#gapBefore * 1000).toISOString()
    this.#options.log.warn(`fastify-refresh-auth: ${why}: ` + (this.#options.failClosed
      ? `access tokens issued before ${issuedBefore} answer 503 until ${new Date(this.#gapUntil * 1000).toISOString()} (accessToken.revocation.failClosed)`
      : `access tokens issued before ${issuedBefore} are served until they expire`))
  }

  #update (nowMs = Date.now()): void {
    const gapOpen = nowMs / 1000 < this.#gapUntil
    this.failing = this.#options.failClosed && (this.#down || gapOpen)
    this.unconfirmedBefore = this.#down ? Number.POSITIVE_INFINITY : this.#gapBefore
  }

  /**
   * Drops the entries no token can outlive any more (from the front: the first heard), and ends a gap's
   * window once every token issued before it expired. A timer calls it every 30 seconds.
   */
  sweep (nowMs = Date.now()): void {
    if (this.failing && nowMs / 1000 >= this.#gapUntil) this.#update(nowMs)
    const now = nowMs / 1000
    for (const [sessionId, keepUntil] of this.#entries) {
      if (keepUntil > now) return
      this.#entries.delete(sessionId)
    }
  }
}
