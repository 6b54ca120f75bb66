// A model-based test of a session store: seeded random sequences of logins, rotations (of the live token,
// its parent, older tokens, strangers, and retries of the same request), presents with and without end,
// revocations and the passing of time, each checked step by step against a small reference model of the
// contract; with a revocation feed, also what it announced.
import { strict as assert } from 'node:assert'
import { setTimeout as sleep } from 'node:timers/promises'
import type { RevocationFeedStatus, RotateRequest, SessionRecord, SessionStore } from '../stores/store.js'

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

interface ModelSession {
  sessionId: string
  userId: string
  /** Every token id the session has had, the live one last. */
  tokens: string[]
  rotatedAt: number
  expiresAt: number
  absoluteExpiresAt: number
}

type Verdict = 'live' | 'grace' | 'retry' | 'reused'

/** What the contract says a store holds. */
class Model {
  readonly sessions = new Map<string, ModelSession>()
  /** Sessions the store must have announced: ended by revoke, revokeUser, reuse or present with end. */
  readonly ended = new Set<string>()

  live (sessionId: string, now: number): ModelSession | undefined {
    const session = this.sessions.get(sessionId)
    if (session !== undefined && (now >= session.expiresAt || now >= session.absoluteExpiresAt)) {
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

  /** The rules shared by rotate and present. */
  judge (session: ModelSession, presented: string, next: string | null, now: number, reuseIntervalMs: number): Verdict {
    const live = session.tokens[session.tokens.length - 1]
    const parent = session.tokens[session.tokens.length - 2]
    if (presented === live) return 'live'
    if (presented === parent && next === live) return 'retry'
    if (presented === parent && now - session.rotatedAt < reuseIntervalMs) return 'grace'
    return 'reused'
  }
}

export interface ModelRunOptions {
  store: SessionStore
  seed: number
  steps: number
}

/**
 * Runs one seeded sequence; throws (node:assert) at the first step where the store and the model disagree,
 * naming the seed, the step and the last operations. The store's clock starts now and only moves forward,
 * faster than real time, so keys that expire on the server never expire before the model says.
 */
export async function runSessionModel ({ store, seed, steps }: ModelRunOptions): Promise<void> {
  const random = seededRandom(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]
  const model = new Model()
  const start = Date.now()
  const prefix = `model-${seed}-${start}-${Math.floor(Math.random() * 1e9)}-`
  const users = USERS.map(user => prefix + user)
  const known: string[] = []
  let counter = 0
  const id = (kind: string): string => `${prefix}${kind}-${counter++}`
  let now = start
  let lastRotation: RotateRequest | null = null
  const log: string[] = []
  const where = (step: number): string => `seed ${seed}, step ${step}: ${log.slice(-6).join(' | ')}`

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

    /** A token to present: mostly the live one, else its parent, an older one or one never issued. */
    const presentable = (session: ModelSession | undefined): string => {
      if (session === undefined) return id('token')
      const { tokens } = session
      const choice = random()
      if (choice < 0.1) return id('stranger')
      if (choice < 0.55 || tokens.length === 1) return tokens[tokens.length - 1]
      if (choice < 0.85) return tokens[tokens.length - 2]
      return tokens[Math.floor(random() * tokens.length)]
    }

    for (let step = 0; step < steps; step++) {
      now += 1 + Math.floor(random() * (random() < 0.1 ? 12_000 : 1500))
      let sessionId = known.length > 0 && random() < 0.9 ? pick(known) : id('session')
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
      const roll = atEdge ? 0.2 + random() * 0.55 : random()

      if (roll < 0.2 || known.length === 0) {
        const session: SessionRecord = {
          sessionId: id('session'),
          userId: pick(users),
          tokenId: id('token'),
          previousTokenId: null,
          createdAt: now,
          rotatedAt: now,
          expiresAt: now + IDLE_MS,
          absoluteExpiresAt: now + ABSOLUTE_MS
        }
        log.push(`create ${session.sessionId}`)
        await store.create(session)
        model.sessions.set(session.sessionId, {
          sessionId: session.sessionId, userId: session.userId, tokens: [session.tokenId], rotatedAt: now, expiresAt: session.expiresAt, absoluteExpiresAt: session.absoluteExpiresAt
        })
        known.push(session.sessionId)
      } else if (roll < 0.55) {
        // a rotation, or now and then the previous one again (a retry after a lost reply)
        const retry = !atEdge && lastRotation !== null && random() < 0.15
        const request: RotateRequest = retry
          ? { ...lastRotation as RotateRequest, now }
          : {
              sessionId,
              presentedTokenId: edgeToken ?? presentable(current),
              nextTokenId: id('token'),
              now,
              nextExpiresAt: now + IDLE_MS,
              reuseIntervalMs: atEdge || random() < 0.7 ? REUSE_MS : 0
            }
        log.push(`rotate ${request.sessionId} ${request.presentedTokenId}${retry ? ' (retry)' : ''} reuse=${request.reuseIntervalMs}`)
        lastRotation = request
        const session = model.live(request.sessionId, now)
        const verdict = session === undefined ? 'not-found' : model.judge(session, request.presentedTokenId, request.nextTokenId, now, request.reuseIntervalMs)
        const actual = await store.rotate(request)
        const expected = verdict === 'live' || verdict === 'retry' ? 'rotated' : verdict
        assert.equal(actual.outcome, expected, where(step))
        if (session !== undefined && actual.outcome !== 'not-found') {
          if (verdict === 'live') {
            session.tokens.push(request.nextTokenId)
            session.rotatedAt = now
            session.expiresAt = request.nextExpiresAt
          }
          assert.equal(actual.session.tokenId, session.tokens[session.tokens.length - 1], `the live token, ${where(step)}`)
          assert.equal(actual.session.userId, session.userId, where(step))
          if (verdict === 'reused') model.end(request.sessionId)
        }
      } else if (roll < 0.75) {
        const presented = edgeToken ?? presentable(current)
        const end = random() < 0.5
        const reuseIntervalMs = atEdge || random() < 0.7 ? REUSE_MS : 0
        log.push(`present ${sessionId} ${presented} end=${String(end)} reuse=${reuseIntervalMs}`)
        const session = model.live(sessionId, now)
        const verdict = session === undefined ? 'not-found' : model.judge(session, presented, null, now, reuseIntervalMs)
        const actual = await store.present({ sessionId, presentedTokenId: presented, now, reuseIntervalMs, end })
        assert.equal(actual.outcome, verdict === 'grace' ? 'live' : verdict, where(step))
        if (session !== undefined && actual.outcome !== 'not-found') {
          assert.equal(actual.session.tokenId, session.tokens[session.tokens.length - 1], `the live token, ${where(step)}`)
          if (verdict === 'reused' || end) model.end(sessionId)
        }
      } else if (roll < 0.9) {
        log.push(`revoke ${sessionId}`)
        await store.revoke(sessionId)
        model.end(sessionId)
      } else {
        const userId = pick(users)
        log.push(`revokeUser ${userId}`)
        await store.revokeUser(userId)
        for (const s of model.ofUser(userId, now)) model.end(s.sessionId)
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
}
