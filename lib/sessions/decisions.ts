import { InvalidArgumentError } from '../errors.js'
import { compareIds, withDevice, type CreateOptions, type PresentedToken, type RotateRequest, type SessionRecord } from '../stores/store.js'

// The session rules, once, as pure functions: every store that runs them in JavaScript (MemoryStore, the
// simple-store adapter, the reference model of the tests) calls these; a store that must run them elsewhere
// for atomicity (Redis Lua, SQL) is checked against them by the model-based test.

/**
 * What a presented refresh token is against its session's record at `now`:
 * - `unknown`: no such session (never existed, ended, or already swept);
 * - `expired`: past its idle or absolute limit: gone, whatever was presented;
 * - `live`: the session's live token;
 * - `retry`: the live token's parent presented again with the same successor id: a rotation whose answer
 *   was lost, asked again;
 * - `grace`: the live token's parent, within the reuse interval of the rotation that replaced it;
 * - `ahead`: a token of a later generation than the record's: a rotation the store acknowledged and then
 *   lost (a failover). The session goes on from it; see `docs/sessions-end.md`, "Failover is not theft";
 * - `reused`: any other token of the session: a replay of a rotated token, or a fork.
 *
 * @example
 * const verdict = judgeToken(await primitives.get(request.sessionId), request)
 */
export type TokenVerdict = 'unknown' | 'expired' | 'live' | 'retry' | 'grace' | 'ahead' | 'reused'

/** The presentation a verdict is made on: a rotation carries the successor's id, a logout does not. */
export type Presentation = PresentedToken & { nextTokenId?: string }

/** Whether a session is over at `now`: its idle limit or its absolute one reached. */
export function isExpired (session: Pick<SessionRecord, 'expiresAt' | 'absoluteExpiresAt'>, now: number): boolean {
  return now >= session.expiresAt || now >= session.absoluteExpiresAt
}

/**
 * The one rule of what a presented token is. A token of a generation not above the record's that is
 * neither the live one nor its parent (as a retry or within the interval) is reuse: the thief and the
 * victim cannot be told apart, so the session ends. Only a generation above the record's, which the store
 * never issued, proves the store is behind: tokens are signed, so no client can make one up.
 */
export function judgeToken (session: SessionRecord | undefined, token: Presentation): TokenVerdict {
  if (session === undefined) return 'unknown'
  if (isExpired(session, token.now)) return 'expired'
  const presented = token.presentedTokenId
  if (presented === session.tokenId) return 'live'
  if (presented === session.previousTokenId) {
    if (token.nextTokenId === session.tokenId) return 'retry'
    // an interval of 0 has no grace at all: a request whose `now` was read before the rotation it lost to
    // (another instance, a slower path) sees a negative age, and must not count it as within the interval
    if (token.reuseIntervalMs > 0 && token.now - session.rotatedAt < token.reuseIntervalMs) return 'grace'
  }
  const generation = token.presentedGeneration
  if (generation !== undefined && generation > session.generation) return 'ahead'
  return 'reused'
}

/**
 * What `rotate` does with a session:
 * - `not-found` (`expired`: the record is to be deleted, unannounced);
 * - `rotated` with `next`: save it in place of the record (compare-and-set); with `next` null, a retry:
 *   nothing to write;
 * - `grace`: nothing to write;
 * - `reused`: end the session (announced).
 *
 * @example
 * const decision = decideRotation(record, request)
 * if (decision.outcome === 'rotated' && decision.next !== null) await primitives.replace(record, decision.next)
 */
export type RotateDecision =
  | { outcome: 'not-found', expired: boolean }
  | { outcome: 'rotated', next: SessionRecord | null }
  | { outcome: 'grace' }
  | { outcome: 'reused' }

export function decideRotation (session: SessionRecord | undefined, request: RotateRequest): RotateDecision {
  const verdict = judgeToken(session, request)
  if (verdict === 'unknown' || verdict === 'expired') return notFound(verdict)
  switch (verdict) {
    case 'live':
    case 'ahead':
      return { outcome: 'rotated', next: rotatedRecord(session as SessionRecord, request, verdict) }
    case 'retry':
      return { outcome: 'rotated', next: null }
    case 'grace':
    case 'reused':
      return { outcome: verdict }
  }
}

/** Rotate's and present's answer for a session that is gone: an expired one's record is to be deleted too. */
function notFound (verdict: 'unknown' | 'expired'): { outcome: 'not-found', expired: boolean } {
  return { outcome: 'not-found', expired: verdict === 'expired' }
}

/** What a login chooses of its session's record; the rest is the same for every login. */
export type LoginChoices = Omit<SessionRecord, 'previousTokenId' | 'generation' | 'createdAt' | 'rotatedAt'> & {
  /** The login's time: the session is created, and its first token issued, then. */
  now: number
}

/**
 * The record a login saves: its first token live, with no parent, generation 0, issued at the login's time. A
 * device field or key the login has not (undefined) stays absent, as in every record a rotation makes.
 */
export function loginRecord ({ now, userAgent, ip, jkt, ...chosen }: LoginChoices): SessionRecord {
  const record = withDevice<SessionRecord>({ ...chosen, previousTokenId: null, generation: 0, createdAt: now, rotatedAt: now }, { userAgent, ip })
  if (jkt !== undefined) record.jkt = jkt
  return record
}

/**
 * The record after a rotation: the presented token becomes the parent and the successor the live one, one
 * generation above the presented token (the record's own for the live token; the token's for one ahead, so
 * the session adopts the chain the client holds). The idle limit is renewed; the absolute one never moves.
 * An unbound session is bound to the request's key, if any; a bound one never changes key.
 */
export function rotatedRecord (session: SessionRecord, request: RotateRequest, verdict: 'live' | 'ahead'): SessionRecord {
  // field by field rather than a spread: one object shape for every record, on the path of every refresh
  const next = withDevice<SessionRecord>({
    sessionId: session.sessionId,
    userId: session.userId,
    tokenId: request.nextTokenId,
    previousTokenId: request.presentedTokenId,
    // a token is ahead only by the generation it carries
    generation: (verdict === 'ahead' ? request.presentedGeneration as number : session.generation) + 1,
    createdAt: session.createdAt,
    rotatedAt: request.now,
    expiresAt: request.nextExpiresAt,
    absoluteExpiresAt: session.absoluteExpiresAt
  }, session)
  const jkt = session.jkt ?? request.jkt
  if (jkt !== undefined) next.jkt = jkt
  return next
}

/**
 * What `present` does: `not-found` (`expired` as for rotate); `live` (the live token, its parent within the
 * interval, or one ahead: the session's own holder) and the session ends only with `end`; `reused`: the
 * session ends.
 *
 * @example
 * const decision = decidePresent(record, request)
 * if (decision.outcome === 'reused' || (decision.outcome === 'live' && request.end)) await end(record)
 */
export type PresentDecision =
  | { outcome: 'not-found', expired: boolean }
  | { outcome: 'live' }
  | { outcome: 'reused' }

export function decidePresent (session: SessionRecord | undefined, token: PresentedToken): PresentDecision {
  const verdict = judgeToken(session, token)
  if (verdict === 'unknown' || verdict === 'expired') return notFound(verdict)
  return { outcome: verdict === 'reused' ? 'reused' : 'live' }
}

/** What a login decides from the user's live sessions: see {@link decideLogin}. */
export type LoginDecision<T> =
  | { outcome: 'created', ended: T[] }
  | { outcome: 'limit-reached' }

/**
 * Which of a user's live sessions a login ends: the one it replaces (a live session of the same user; it is
 * not counted), and at `maxSessionsPerUser` the least recently used ones (oldest `rotatedAt`, ties by id in
 * code-unit order) to make room; with `onLimit: 'refuse'`, at the limit nothing ends and nothing is saved.
 * `live` are the user's sessions live at the login's time, in any order. Throws `InvalidArgumentError` for a
 * limit that is not a positive integer.
 *
 * @example
 * const decision = decideLogin(liveSessionsOf(session.userId), { maxSessionsPerUser: 3 })
 */
export function decideLogin<T extends Pick<SessionRecord, 'sessionId' | 'rotatedAt'>> (live: readonly T[], options: CreateOptions): LoginDecision<T> {
  const { maxSessionsPerUser: limit, onLimit = 'revoke-oldest', replaceSessionId } = options
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) {
    throw new InvalidArgumentError('maxSessionsPerUser must be a positive integer')
  }
  const replaced = live.filter(session => session.sessionId === replaceSessionId)
  const counted = live.filter(session => session.sessionId !== replaceSessionId)
  if (limit === undefined || counted.length < limit) return { outcome: 'created', ended: replaced }
  if (onLimit === 'refuse') return { outcome: 'limit-reached' }
  const evicted = counted.sort(leastRecentlyUsedFirst).slice(0, counted.length - limit + 1)
  return { outcome: 'created', ended: [...evicted, ...replaced] }
}

/** The oldest last refresh first; ties by id in code-unit order, as every store orders them. */
export function leastRecentlyUsedFirst (a: Pick<SessionRecord, 'sessionId' | 'rotatedAt'>, b: Pick<SessionRecord, 'sessionId' | 'rotatedAt'>): number {
  return a.rotatedAt - b.rotatedAt || compareIds(a.sessionId, b.sessionId)
}
