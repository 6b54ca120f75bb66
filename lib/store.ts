// The `fastify-refresh-auth/store` entry: what a store author needs. A store made of a few storage primitives
// with `createSessionStore`, or one written whole against `SessionStore`, on the same decisions the shipped
// stores use; the battery that checks either is `fastify-refresh-auth/store-contract`.
export {
  createSessionStore,
  type SessionPrimitives,
  type SessionStoreOptions,
  type StoredSession,
  type StoredUser,
  type LoginCommit
} from './stores/simple-store.js'
export {
  judgeToken,
  decideRotation,
  decidePresent,
  decideLogin,
  isExpired,
  leastRecentlyUsedFirst,
  type TokenVerdict,
  type Presentation,
  type RotateDecision,
  type PresentDecision,
  type LoginDecision
} from './sessions/decisions.js'
export {
  toSessionInfo,
  compareIds,
  type SessionStore,
  type SessionRecord,
  type SessionInfo,
  type RotateRequest,
  type RotateResult,
  type CreateOptions,
  type CreateResult,
  type PresentedToken,
  type PresentRequest,
  type PresentResult,
  type RevocationFeedStatus,
  type RevocationListener,
  type SessionEndCause,
  type SessionEndNotice,
  type WatchOptions,
  type RevocationWatch
} from './stores/store.js'
// what a store rejects with: a timeout, or a login that lost to a revocation (the plugin logs it and answers 503)
export { StoreTimeoutError, StoreConflictError } from './errors.js'
