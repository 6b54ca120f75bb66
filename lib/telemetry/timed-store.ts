import type { RevocationListener, SessionStore } from '../stores/store.js'
import type { OpenTelemetrySessions, StoreCallAttributes } from './opentelemetry.js'

/**
 * The store with each call a child span and a `refresh_auth.store.duration` record, named by its class
 * (`MemoryStore`, `RedisStore`, `PostgresStore`); the feed and `close` pass through untouched.
 */
export function timedStore (store: SessionStore, telemetry: OpenTelemetrySessions): SessionStore {
  const name = storeName(store)
  // made once: every call of an operation records under the same attributes
  const call = (operation: string): StoreCallAttributes => Object.freeze({ operation, store: name })
  const create = call('create')
  const rotate = call('rotate')
  const present = call('present')
  const revoke = call('revoke')
  const revokeUser = call('revokeUser')
  const revokeOtherSessions = call('revokeOtherSessions')
  const listUserSessions = call('listUserSessions')
  // the inner functions are async so that a store throwing rather than rejecting is still timed and ended
  const timed: SessionStore = {
    create: (session, options) => telemetry.storeCall(create, async () => await store.create(session, options)),
    rotate: request => telemetry.storeCall(rotate, async () => await store.rotate(request)),
    present: request => telemetry.storeCall(present, async () => await store.present(request)),
    revoke: sessionId => telemetry.storeCall(revoke, async () => { await store.revoke(sessionId) }),
    revokeUser: userId => telemetry.storeCall(revokeUser, async () => { await store.revokeUser(userId) }),
    revokeOtherSessions: (userId, keepSessionId) =>
      telemetry.storeCall(revokeOtherSessions, async () => { await store.revokeOtherSessions(userId, keepSessionId) }),
    listUserSessions: (userId, now) => telemetry.storeCall(listUserSessions, async () => await store.listUserSessions(userId, now))
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
