// A model-based test of a session store: seeded random sequences of logins (with per-user limits under both
// policies, and replacement of the user's own session, another user's or one that is not live), rotations (of
// the live token, its parent, older tokens, strangers, and retries of the same request), presents with and
// without end, revocations (one, all of a user's, all but one) and the passing of time, each checked step by
// step against a small reference model of the contract; with a revocation feed, also what it announced.
import { strict as assert } from 'node:assert'
import { setTimeout as sleep } from 'node:timers/promises'
import { decideLogin, decidePresent, decideRotation, isExpired, loginRecord } from '../sessions/decisions.js'
import type {
  CreateOptions, CreateResult, PresentRequest, PresentResult, RevocationFeedStatus, RotateRequest, RotateResult, SessionRecord, SessionStore
} from '../stores/store.js'

const IDLE_MS = 10_000
const ABSOLUTE_MS = 30_000
const REUSE_MS = 2000
const USERS = ['ann', 'bob', 'cy']

/** mulberry32: a small seeded generator, so a failing sequence can be replayed from its seed. */
export function seededRandom (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

interface ModelSession extends SessionRecord {
  /** Every token id the session has had, the live one last, each with its generation. */
  tokens: Array<{ id: string, generation: number }>
}

/**
 * What the contract says a store holds: the records the shared decisions (lib/sessions/decisions.ts) make of
 * each operation, kept in a Map. The store under test must agree with it step by step.
 */
class Model {
  readonly sessions = new Map<string, ModelSession>()
  /** Sessions the store must have announced: every end but expiry. */
  readonly ended = new Set<string>()

  live (sessionId: string, now: number): ModelSession | undefined {
    const session = this.sessions.get(sessionId)
    if (session !== undefined && isExpired(session, now)) {
      this.sessions.delete(sessionId)
      return undefined
    }
    return session
  }

  ofUser (userId: string, now: number): ModelSession[] {
    return [...this.sessions.values()].filter(s => s.userId === userId && this.live(s.sessionId, now) !== undefined)
  }

  end (sessionId: string): void {
    if (this.sessions.delete(sessionId)) this.ended.add(sessionId)
  }

  create (session: SessionRecord, options: CreateOptions): CreateResult {
    const decision = decideLogin(this.ofUser(session.userId, session.createdAt), options)
    if (decision.outcome === 'limit-reached') return decision
    const endedSessionIds = decision.ended.map(s => s.sessionId)
    for (const sessionId of endedSessionIds) this.end(sessionId)
    this.sessions.set(session.sessionId, { ...session, tokens: [{ id: session.tokenId, generation: session.generation }] })
    return { outcome: 'created', endedSessionIds }
  }

  rotate (request: RotateRequest): RotateResult['outcome'] {
    const session = this.live(request.sessionId, request.now)
    const decision = decideRotation(session, request)
    if (decision.outcome === 'reused') this.end(request.sessionId)
    if (decision.outcome === 'rotated' && decision.next !== null) {
      const next = decision.next
      const tokens = (session as ModelSession).tokens
      // a token ahead of the record joins the history as the one the store lost
      if (tokens[tokens.length - 1].id !== request.presentedTokenId) tokens.push({ id: request.presentedTokenId, generation: next.generation - 1 })
      tokens.push({ id: next.tokenId, generation: next.generation })
      this.sessions.set(request.sessionId, { ...next, tokens })
    }
    return decision.outcome
  }

  present (request: PresentRequest): PresentResult['outcome'] {
    const decision = decidePresent(this.live(request.sessionId, request.now), request)
    if (decision.outcome === 'reused' || (decision.outcome === 'live' && request.end)) this.end(request.sessionId)
    return decision.outcome
  }
}

export interface ModelRunOptions {
  store: SessionStore
  seed: number
  steps: number
}

/**
 * Runs one seeded sequence; throws (node:assert) at the first step where the store and the model disagree,
 * naming the seed, the step and the last operations. The store's clock starts now and never moves back,
 * faster than real time, so keys that expire on the server never expire before the model says. Answers how
 * many times each kind of operation ran, and how many logins were refused or ended sessions.
 */
export async function runSessionModel ({ store, seed, steps }: ModelRunOptions): Promise<Record<string, number>> {
  const random = seededRandom(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]
  const model = new Model()
  const start = Date.now()
  const prefix = `model-${seed}-${start}-${Math.floor(Math.random() * 1e9)}-`
  const users = USERS.map(user => prefix + user)
  const known: string[] = []
  let counter = 0
  const id = (kind: string): string => `${prefix}${kind}-${counter++}`
  // session ids differ in case too, as ids in code-unit order and in a locale's order sometimes do not agree
  const newSessionId = (): string => id(random() < 0.5 ? 'session' : 'Session')
  let now = start
  let lastRotation: RotateRequest | null = null
  const log: string[] = []
  const where = (step: number): string => `seed ${seed}, step ${step}: ${log.slice(-6).join(' | ')}`
  const tally: Record<string, number> = {}
  const count = (what: string): void => { tally[what] = (tally[what] ?? 0) + 1 }

  const heard = new Set<string>()
  const statuses: RevocationFeedStatus[] = []
  const watch = store.watchRevocations?.({
    revoked (sessionIds) { for (const sessionId of sessionIds) heard.add(sessionId) },
    status (status) { statuses.push(status) }
  }, { retentionMs: 16 * 60_000 })
  try {
    if (watch !== undefined) {
      for (let i = 0; i < 300 && !statuses.includes('live'); i++) await sleep(10)
      assert.ok(statuses.includes('live'), `seed ${seed}: the feed reports live`)
    }

    /**
     * A token to present, with its generation: mostly the live one, else its parent, an older one, one never
     * issued, or one from ahead of the store (a rotation the store lost in a failover).
     */
    const presentable = (session: ModelSession | undefined): { id: string, generation: number } => {
      if (session === undefined) return { id: id('token'), generation: 0 }
      const { tokens } = session
      const choice = random()
      if (choice < 0.06) return { id: id('stranger'), generation: Math.floor(random() * (session.generation + 1)) }
      if (choice < 0.1) return { id: id('ahead'), generation: session.generation + pick([1, 1, 2]) }
      if (choice < 0.55 || tokens.length === 1) return tokens[tokens.length - 1]
      if (choice < 0.85) return tokens[tokens.length - 2]
      return tokens[Math.floor(random() * tokens.length)]
    }

    /** What a login replaces: the user's own live session (the same device), another user's, or one not live. */
    const replaceable = (userId: string): string => {
      const choice = random()
      const own = model.ofUser(userId, now)
      const theirs = [...model.sessions.values()].filter(s => s.userId !== userId)
      if (choice < 0.5 && own.length > 0) return pick(own).sessionId
      if (choice < 0.75 && theirs.length > 0) return pick(theirs).sessionId
      return pick([...known, newSessionId()])
    }

    /** One login of `userId` at `now`, with options of the kind the plugin passes, checked against the model. */
    const login = async (userId: string, step: number): Promise<void> => {
      const options: CreateOptions = {}
      // a limit near what the user holds: below it (several make room), at it (one makes room, or a refusal), above
      if (random() < 0.6) options.maxSessionsPerUser = Math.max(1, model.ofUser(userId, now).length + pick([-1, 0, 0, 1]))
      const policy = random()
      if (policy < 0.3) options.onLimit = 'refuse'
      else if (policy < 0.6) options.onLimit = 'revoke-oldest'
      if (random() < 0.3) options.replaceSessionId = replaceable(userId)
      const session = loginRecord({ sessionId: newSessionId(), userId, tokenId: id('token'), now, expiresAt: now + IDLE_MS, absoluteExpiresAt: now + ABSOLUTE_MS })
      log.push(`create ${session.sessionId} ${userId} ${JSON.stringify(options)}`)
      count('create')
      const expected = model.create(session, options)
      const actual: CreateResult | undefined = await store.create(session, options)
      assert.equal(actual?.outcome, expected.outcome, `create must resolve to a CreateResult: ${where(step)}`)
      if (expected.outcome === 'created') {
        const { endedSessionIds } = actual as Extract<CreateResult, { outcome: 'created' }>
        assert.deepEqual([...endedSessionIds].sort(), [...expected.endedSessionIds].sort(), `the sessions create ended, ${where(step)}`)
        if (expected.endedSessionIds.length > 0) count('create ended sessions')
        known.push(session.sessionId)
      } else {
        count('create limit-reached')
      }
    }

    for (let step = 0; step < steps; step++) {
      // now and then no time passes: sessions used at the same time tie on recency, and their ids decide
      if (random() >= 0.15) now += 1 + Math.floor(random() * (random() < 0.1 ? 12_000 : 1500))
      // mostly a session the model holds, so that sessions live on and users reach their limits; else any
      // session ever made, or one never made
      const held = [...model.sessions.keys()]
      let sessionId = held.length > 0 && random() < 0.7 ? pick(held) : known.length > 0 && random() < 0.9 ? pick(known) : newSessionId()
      // now and then the clock goes to the very edge of a session's reuse interval, and its parent is presented
      const nearEdge = [...model.sessions.values()].filter(s => s.tokens.length > 1 && s.rotatedAt + REUSE_MS + 1 > now)
      const edge = nearEdge.length > 0 && random() < 0.5 ? pick(nearEdge) : undefined
      if (edge !== undefined) {
        sessionId = edge.sessionId
        now = Math.max(now, edge.rotatedAt + REUSE_MS + pick([-1, 0, 1]))
      }
      const atEdge = edge !== undefined
      const current = model.live(sessionId, now)
      const edgeToken = edge === undefined ? null : edge.tokens[edge.tokens.length - 2]
      const roll = atEdge ? 0.32 + random() * 0.48 : random()

      if (roll < 0.32 || known.length === 0) {
        // now and then a burst: the same user signs in on several devices at the same instant
        const userId = pick(users)
        const logins = random() < 0.25 ? 3 : 1
        for (let i = 0; i < logins; i++) await login(userId, step)
      } else if (roll < 0.62) {
        // a rotation, or now and then the previous one again (a retry after a lost reply)
        const retry = !atEdge && lastRotation !== null && random() < 0.15
        const presented = edgeToken ?? presentable(current)
        const request: RotateRequest = retry
          ? { ...lastRotation as RotateRequest, now }
          : {
              sessionId,
              presentedTokenId: presented.id,
              presentedGeneration: presented.generation,
              nextTokenId: id('token'),
              now,
              nextExpiresAt: now + IDLE_MS,
              reuseIntervalMs: atEdge || random() < 0.7 ? REUSE_MS : 0
            }
        log.push(`rotate ${request.sessionId} ${request.presentedTokenId} gen=${String(request.presentedGeneration)}${retry ? ' (retry)' : ''} reuse=${request.reuseIntervalMs}`)
        count('rotate')
        lastRotation = request
        const session = model.live(request.sessionId, now)
        const userId = session?.userId
        const expected = model.rotate(request)
        if (expected === 'rotated' && request.presentedTokenId.includes('ahead')) count('rotate ahead')
        const actual = await store.rotate(request)
        assert.equal(actual.outcome, expected, where(step))
        if (actual.outcome !== 'not-found') {
          const live = model.sessions.get(request.sessionId) ?? session as ModelSession
          assert.equal(actual.session.tokenId, live.tokenId, `the live token, ${where(step)}`)
          assert.equal(actual.session.generation, live.generation, `the live token's generation, ${where(step)}`)
          assert.equal(actual.session.userId, userId, where(step))
        }
      } else if (roll < 0.8) {
        const presented = edgeToken ?? presentable(current)
        const end = random() < 0.5
        const reuseIntervalMs = atEdge || random() < 0.7 ? REUSE_MS : 0
        log.push(`present ${sessionId} ${presented.id} gen=${presented.generation} end=${String(end)} reuse=${reuseIntervalMs}`)
        count('present')
        const session = model.live(sessionId, now)
        const request: PresentRequest = { sessionId, presentedTokenId: presented.id, presentedGeneration: presented.generation, now, reuseIntervalMs, end }
        const expected = model.present(request)
        const actual = await store.present(request)
        assert.equal(actual.outcome, expected, where(step))
        if (session !== undefined && actual.outcome !== 'not-found') {
          assert.equal(actual.session.tokenId, session.tokenId, `the live token, ${where(step)}`)
        }
      } else if (roll < 0.88) {
        log.push(`revoke ${sessionId}`)
        count('revoke')
        await store.revoke(sessionId)
        model.end(sessionId)
      } else if (roll < 0.92) {
        const userId = pick(users)
        log.push(`revokeUser ${userId}`)
        count('revokeUser')
        await store.revokeUser(userId)
        for (const s of model.ofUser(userId, now)) model.end(s.sessionId)
      } else {
        // mostly the kept session's own user; now and then another, whose sessions then all end
        const userId = current !== undefined && random() < 0.8 ? current.userId : pick(users)
        log.push(`revokeOtherSessions ${userId} keep ${sessionId}`)
        count('revokeOtherSessions')
        await store.revokeOtherSessions(userId, sessionId)
        for (const s of model.ofUser(userId, now)) if (s.sessionId !== sessionId) model.end(s.sessionId)
      }

      // after every step: each user's live sessions are the model's, and the feed told of every end
      for (const userId of users) {
        const listed = (await store.listUserSessions(userId, now)).map(s => `${s.sessionId} ${s.lastRefreshedAt}`).sort()
        const expected = model.ofUser(userId, now).map(s => `${s.sessionId} ${s.rotatedAt}`).sort()
        assert.deepEqual(listed, expected, `sessions of ${userId}, ${where(step)}`)
      }
      if (watch !== undefined) {
        for (const ended of model.ended) assert.ok(heard.has(ended), `${ended} ended and was announced, ${where(step)}`)
        for (const live of model.sessions.keys()) assert.ok(!heard.has(live), `${live} is live and was not announced, ${where(step)}`)
      }
    }
  } finally {
    await watch?.close()
  }
  return tally
}
