import { setImmediate as turn } from 'node:timers/promises'
import type { SessionPrimitives, StoredSession } from '../../lib/store.js'

/**
 * The storage primitives of `createSessionStore` on two Maps, each call yielding to the event loop first, as
 * a database would, so that concurrent calls interleave. `sweeps` off: a backend that never deletes expired
 * sessions (the battery must catch it).
 */
export function mapPrimitives ({ sweeps = true } = {}): SessionPrimitives & { sessions: Map<string, StoredSession> } {
  const sessions = new Map<string, StoredSession>()
  const users = new Map<string, number>()
  const idsOf = (userId: string): string[] => [...sessions.values()].filter(s => s.record.userId === userId).map(s => s.record.sessionId)
  const primitives: SessionPrimitives & { sessions: Map<string, StoredSession> } = {
    sessions,
    async getSession (sessionId) {
      await turn()
      const stored = sessions.get(sessionId)
      return stored === undefined ? undefined : { record: { ...stored.record }, version: stored.version }
    },
    async updateSession (record, version) {
      await turn()
      if (sessions.get(record.sessionId)?.version !== version) return false
      sessions.set(record.sessionId, { record: { ...record }, version: version + 1 })
      return true
    },
    async deleteSession (sessionId, version) {
      await turn()
      const stored = sessions.get(sessionId)
      if (stored === undefined || (version !== undefined && stored.version !== version)) return false
      return sessions.delete(sessionId)
    },
    async getUser (userId) {
      await turn()
      return { version: users.get(userId) ?? 0, sessionIds: idsOf(userId) }
    },
    async commitLogin ({ session, userVersion, endSessionIds }) {
      await turn()
      if ((users.get(session.userId) ?? 0) !== userVersion) return false
      users.set(session.userId, userVersion + 1)
      sessions.set(session.sessionId, { record: { ...session }, version: 0 })
      for (const id of endSessionIds) sessions.delete(id)
      return true
    }
  }
  if (sweeps) {
    primitives.deleteExpired = async (now) => {
      await turn()
      for (const [id, { record }] of sessions) if (now >= record.expiresAt || now >= record.absoluteExpiresAt) sessions.delete(id)
    }
  }
  return primitives
}
