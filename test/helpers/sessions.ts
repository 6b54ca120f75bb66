import { randomUUID } from 'node:crypto'
import type { SessionRecord } from '../../lib/store.js'

export const DAY = 24 * 3600 * 1000

/** A session record as the plugin saves it at login, `now` being the login time. */
export function newSession (now: number, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    sessionId: randomUUID(),
    userId: `user-${randomUUID()}`,
    tokenId: randomUUID(),
    previousTokenId: null,
    generation: 0,
    createdAt: now,
    rotatedAt: now,
    expiresAt: now + 7 * DAY,
    absoluteExpiresAt: now + 30 * DAY,
    ...overrides
  }
}
