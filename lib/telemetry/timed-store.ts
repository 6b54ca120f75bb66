import type { RevocationListener, SessionStore } from '../stores/store.js'
import type { OpenTelemetrySessions } from './opentelemetry.js'

/**
 * The store with each call a child span and a `refresh_auth.store.duration` record, named by its class
 * (`MemoryStore`, `RedisStore`, `PostgresStore`); the feed and `close` pass through untouched.
 */
export function timedStore (store: SessionStore, telemetry: OpenTelemetrySessions): SessionStore {
  const name = storeName(store)
  const timed: SessionStore = {
    create: async (session, options) => await telemetry.storeCall(name, 'create', () => store.create(session, options)),
    rotate: async request => await telemetry.storeCall(name, 'rotate', () => store.rotate(request)),
    present: async request => await telemetry.storeCall(name, 'present', () => store.present(request)),
    revoke: async sessionId => await telemetry.storeCall(name, 'revoke', () => store.revoke(sessionId)),
    revokeUser: async userId => await telemetry.storeCall(name, 'revokeUser', () => store.revokeUser(userId)),
    revokeOtherSessions: async (userId, keepSessionId) =>
      await telemetry.storeCall(name, 'revokeOtherSessions', () => store.revokeOtherSessions(userId, keepSessionId)),
    listUserSessions: async (userId, now) => await telemetry.storeCall(name, 'listUserSessions', () => store.listUserSessions(userId, now))
  }
  if (store.watchRevocations !== undefined) timed.watchRevocations = store.watchRevocations.bind(store)
  if (store.close !== undefined) timed.close = store.close.bind(store)
  return timed
}

function storeName (store: SessionStore): string {
  // a store written as an object literal has no class to name
  return store.constructor === Object ? 'custom' : store.constructor.name
}

/**
 * The revocation listener with `refresh_auth.revocation.lag` recorded for each session this instance
 * had not heard of yet: from its end to now, when this instance starts refusing its tokens.
 */
export function lagRecordingListener (
  listener: RevocationListener & { has: (sessionId: string) => boolean }, telemetry: OpenTelemetrySessions
): Pick<RevocationListener, 'revoked'> {
  return {
    revoked (sessionIds, revokedAt, notice) {
      for (const sessionId of sessionIds) if (!listener.has(sessionId)) telemetry.revocationHeard(revokedAt)
      listener.revoked(sessionIds, revokedAt, notice)
    }
  }
}
