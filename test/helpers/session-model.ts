// A model-based test of a session store: random sequences of logins (with limits and replacement), rotations
// (of the live token, its parent, older tokens and strangers), presents, revocations and the passing of time,
// each checked step by step against a small reference model of the contract. Any StoreV2 can be run through it.
import { strict as assert } from 'node:assert'
import type { CreateOptions, SessionRecord } from '../../lib/index.js'
import type { StoreV2 } from './store-contract-v2.js'

const IDLE_MS = 10_000
const ABSOLUTE_MS = 30_000
const REUSE_MS = 2000
const USERS = ['alice', 'bob', 'carol']

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

interface ModelSession {
  sessionId: string
  userId: string
  /** Every token id the session has had, the live one last. */
  tokens: string[]
  rotatedAt: number
  expiresAt: number
  absoluteExpiresAt: number
}

/** What the contract says a store holds. */
class Model {
  readonly sessions = new Map<string, ModelSession>()

  live (sessionId: string, now: number): ModelSession | undefined {
    const session = this.sessions.get(sessionId)
    if (session === undefined) return undefined
    if (now >= session.expiresAt || now >= session.absoluteExpiresAt) {
      this.sessions.delete(sessionId)
      return undefined
    }
    return session
  }

  ofUser (userId: string, now: number): ModelSession[] {
    return [...this.sessions.values()].filter(s => s.userId === userId && this.live(s.sessionId, now) !== undefined)
  }

  create (session: SessionRecord, options: CreateOptions): { outcome: 'created', ended: string[] } | { outcome: 'limit-reached' } {
    const now = session.createdAt
    let others = this.ofUser(session.userId, now)
    const replaced = others.filter(s => s.sessionId === options.replaceSessionId)
    others = others.filter(s => s.sessionId !== options.replaceSessionId)
    let evicted: ModelSession[] = []
    const limit = options.maxSessionsPerUser
    if (limit !== undefined && others.length >= limit) {
      if (options.onLimit === 'refuse') return { outcome: 'limit-reached' }
      evicted = [...others].sort((a, b) => a.rotatedAt - b.rotatedAt).slice(0, others.length - limit + 1)
    }
    const ended = [...evicted, ...replaced].map(s => s.sessionId)
    for (const id of ended) this.sessions.delete(id)
    this.sessions.set(session.sessionId, {
      sessionId: session.sessionId,
      userId: session.userId,
      tokens: [session.tokenId],
      rotatedAt: now,
      expiresAt: session.expiresAt,
      absoluteExpiresAt: session.absoluteExpiresAt
    })
    return { outcome: 'created', ended }
  }

  /** The rules shared by rotate and present: live, grace (the parent within the interval) or reused. */
  judge (session: ModelSession, presented: string, now: number, reuseIntervalMs: number): 'live' | 'grace' | 'reused' {
    const live = session.tokens[session.tokens.length - 1]
    const parent = session.tokens[session.tokens.length - 2]
    if (presented === live) return 'live'
    if (presented === parent && now - session.rotatedAt < reuseIntervalMs) return 'grace'
    return 'reused'
  }
}

export interface ModelRunOptions {
  store: StoreV2
  seed: number
  steps: number
  /** The store's clock starts here; every step moves it on by at least a millisecond, so no two rotations tie. */
  start?: number
}

/** Runs one seeded sequence; throws (node:assert) at the first step where the store and the model disagree. */
export async function runSessionModel ({ store, seed, steps, start = Date.now() }: ModelRunOptions): Promise<Record<string, number>> {
  const random = seededRandom(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]
  const model = new Model()
  const prefix = `model-${seed}-${start}-`
  const users = USERS.map(user => prefix + user)
  const known: string[] = []
  let counter = 0
  const id = (kind: string): string => `${prefix}${kind}-${counter++}`
  let now = start
  const tally: Record<string, number> = {}
  const log: string[] = []

  /** A token to present: mostly the live one, sometimes its parent, an older one or one never issued. */
  const presentable = (session: ModelSession | undefined, parentAtEdge: boolean): string => {
    if (session === undefined) return id('token')
    const choice = random()
    const { tokens } = session
    if (parentAtEdge) return tokens[tokens.length - 2]
    if (choice < 0.55 || tokens.length === 1) return tokens[tokens.length - 1]
    if (choice < 0.8) return tokens[tokens.length - 2]
    if (choice < 0.9) return tokens[Math.floor(random() * tokens.length)]
    return id('stranger')
  }

  for (let step = 0; step < steps; step++) {
    now += 1 + Math.floor(random() * (random() < 0.1 ? 12_000 : 1500))
    const roll = random()
    let sessionId = known.length > 0 && random() < 0.9 ? pick(known) : id('session')
    // now and then the clock goes to the very edge of a session's reuse interval (its parent presented) or idle limit
    let parentAtEdge = false
    if (random() < 0.3) {
      parentAtEdge = random() < 0.8
      const edgeOf = (s: ModelSession): number => parentAtEdge ? s.rotatedAt + REUSE_MS : s.expiresAt
      const candidates = [...model.sessions.values()].filter(s => edgeOf(s) > now && (!parentAtEdge || s.tokens.length > 1))
      if (candidates.length > 0) {
        const chosen = pick(candidates)
        sessionId = chosen.sessionId
        now = Math.max(now + 1, edgeOf(chosen) + pick([-1, 0, 1]))
      } else {
        parentAtEdge = false
      }
    }
    const current = model.sessions.get(sessionId)
    let operation: string
    const where = (): string => `seed ${seed}, step ${step}: ${log.slice(-5).join(' | ')}`

    if (roll < 0.25 || known.length === 0) {
      const userId = pick(users)
      const options: CreateOptions = {}
      if (random() < 0.6) options.maxSessionsPerUser = 1 + Math.floor(random() * 3)
      if (random() < 0.3) options.onLimit = 'refuse'
      if (random() < 0.2) options.replaceSessionId = pick([...known, id('session')])
      const session: SessionRecord = {
        sessionId: id('session'),
        userId,
        tokenId: id('token'),
        previousTokenId: null,
        createdAt: now,
        rotatedAt: now,
        expiresAt: now + IDLE_MS,
        absoluteExpiresAt: now + ABSOLUTE_MS
      }
      operation = `create ${session.sessionId} ${JSON.stringify(options)}`
      log.push(operation)
      const expected = model.create(session, options)
      const actual = await store.create(session, options)
      assert.ok(actual !== undefined, where())
      assert.equal(actual.outcome, expected.outcome, where())
      if (actual.outcome === 'created' && expected.outcome === 'created') {
        assert.deepEqual([...actual.endedSessionIds].sort(), [...expected.ended].sort(), `ended sessions, ${where()}`)
        known.push(session.sessionId)
      }
    } else if (roll < 0.6) {
      const presented = presentable(current, parentAtEdge)
      const nextTokenId = id('token')
      const reuseIntervalMs = parentAtEdge || random() < 0.7 ? REUSE_MS : 0
      operation = `rotate ${sessionId} ${presented} reuse=${reuseIntervalMs}`
      log.push(operation)
      const session = model.live(sessionId, now)
      const verdict = session === undefined ? 'not-found' : model.judge(session, presented, now, reuseIntervalMs)
      const actual = await store.rotate({ sessionId, presentedTokenId: presented, nextTokenId, now, nextExpiresAt: now + IDLE_MS, reuseIntervalMs })
      const expected = verdict === 'live' ? 'rotated' : verdict
      assert.equal(actual.outcome, expected, where())
      if (session !== undefined && actual.outcome !== 'not-found') {
        if (verdict === 'live') {
          session.tokens.push(nextTokenId)
          session.rotatedAt = now
          session.expiresAt = now + IDLE_MS
        }
        assert.equal(actual.session.tokenId, session.tokens[session.tokens.length - 1], `the live token, ${where()}`)
        assert.equal(actual.session.userId, session.userId, where())
        if (verdict === 'reused') model.sessions.delete(sessionId)
      }
    } else if (roll < 0.75) {
      const presented = presentable(current, parentAtEdge)
      const end = random() < 0.5
      const reuseIntervalMs = parentAtEdge || random() < 0.7 ? REUSE_MS : 0
      operation = `present ${sessionId} ${presented} end=${end}`
      log.push(operation)
      const session = model.live(sessionId, now)
      const verdict = session === undefined ? 'not-found' : model.judge(session, presented, now, reuseIntervalMs)
      const actual = await store.present({ sessionId, presentedTokenId: presented, now, reuseIntervalMs, end })
      assert.equal(actual.outcome, verdict === 'grace' ? 'live' : verdict, where())
      if (session !== undefined && (verdict === 'reused' || end)) model.sessions.delete(sessionId)
    } else if (roll < 0.85) {
      operation = `revoke ${sessionId}`
      log.push(operation)
      model.sessions.delete(sessionId)
      await store.revoke(sessionId)
    } else if (roll < 0.9) {
      const userId = pick(users)
      operation = `revokeUser ${userId}`
      log.push(operation)
      for (const s of model.ofUser(userId, now)) model.sessions.delete(s.sessionId)
      await store.revokeUser(userId)
    } else {
      const userId = current?.userId ?? pick(users)
      operation = `revokeOtherSessions ${userId} ${sessionId}`
      log.push(operation)
      for (const s of model.ofUser(userId, now)) if (s.sessionId !== sessionId) model.sessions.delete(s.sessionId)
      await store.revokeOtherSessions(userId, sessionId)
    }
    const kind = operation.split(' ')[0]
    tally[kind] = (tally[kind] ?? 0) + 1

    // after every step, every user's live sessions are the model's
    for (const userId of users) {
      const listed = (await store.listUserSessions(userId, now)).map(s => [s.sessionId, s.lastRefreshedAt]).sort()
      const expected = model.ofUser(userId, now).map(s => [s.sessionId, s.rotatedAt]).sort()
      assert.deepEqual(listed, expected, `sessions of ${userId}, ${where()}`)
    }
  }
  return tally
}
