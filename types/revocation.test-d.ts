// Type tests of the revocation options, loadUser, the store contract's present and feed, and their errors (tstyche).
import Fastify, { type FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import { describe, expect, test } from 'tstyche'
import fastifyRefreshAuth, {
  MemoryStore,
  RedisStore,
  RevocationUnconfirmedError,
  type FastifyRefreshAuthOptions,
  type LogoutEvent,
  type RedisClient,
  type RevocationOptions,
  type SessionStore
} from 'fastify-refresh-auth'
import { StoreConflictError } from 'fastify-refresh-auth/store'
import type { PresentResult, RevocationFeedStatus, RevocationWatch } from 'fastify-refresh-auth/store'
import { storeContract } from 'fastify-refresh-auth/store-contract'

const secret = 'x'.repeat(32)
const verifyCredentials = async () => ({ id: 1 })

describe('accessToken.revocation', () => {
  test('is a boolean or { failClosed, feedTolerance }', () => {
    expect<FastifyRefreshAuthOptions>().type.toBeAssignableFrom({ secret, verifyCredentials, accessToken: { revocation: false } })
    expect<FastifyRefreshAuthOptions>().type.toBeAssignableFrom({ secret, verifyCredentials, accessToken: { revocation: { failClosed: true, feedTolerance: '5s' as const } } })
    expect<RevocationOptions>().type.toBeAssignableFrom({ feedTolerance: 10 })
    expect<RevocationOptions>().type.not.toBeAssignableFrom({ failClosed: 'yes' })
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ secret, accessToken: { revocation: 'on' } })
  })

  test('its errors are coded', () => {
    expect(new RevocationUnconfirmedError().code).type.toBe<'FST_REFRESH_AUTH_REVOCATION_UNCONFIRMED'>()
    expect(new StoreConflictError('x').code).type.toBe<'FST_REFRESH_AUTH_STORE_CONFLICT'>()
  })
})

describe('loadUser', () => {
  test('gets the user id and the request, and resolves to a user, null or undefined', async () => {
    const app = Fastify()
    await app.register(fastifyRefreshAuth, {
      secret,
      verifyCredentials,
      loadUser: async (userId, request) => {
        expect(userId).type.toBe<string>()
        expect(request).type.toBe<FastifyRequest>()
        return userId === 'gone' ? null : { id: Number(userId) }
      }
    })
    expect<FastifyRefreshAuthOptions['loadUser']>().type.toBeAssignableFrom(() => undefined)
    expect<FastifyRefreshAuthOptions['loadUser']>().type.not.toBeAssignableFrom((userId: number) => ({ id: userId }))
  })

  test('onLogout says why the session ended', () => {
    expect<LogoutEvent['reason']>().type.toBe<'logout' | 'user-refused' | 'session-limit' | 'replaced' | 'ended-by-user'>()
  })
})

describe('the store contract', () => {
  test('present is required; the feed is optional', () => {
    expect<SessionStore>().type.toHaveProperty('present')
    expect<SessionStore['present']>().type.toBe<(request: Parameters<SessionStore['present']>[0]) => Promise<PresentResult>>()
    const store = new MemoryStore()
    expect(store.watchRevocations({ revoked: () => {}, status: (status) => { expect(status).type.toBe<RevocationFeedStatus>() } }, { retentionMs: 1000 }))
      .type.toBe<RevocationWatch>()
    expect<SessionStore>().type.toBeAssignableFrom({
      create: async () => ({ outcome: 'created' as const, endedSessionIds: [] }),
      rotate: async () => ({ outcome: 'not-found' as const }),
      present: async () => ({ outcome: 'not-found' as const }),
      revoke: async () => {},
      revokeUser: async () => {},
      revokeOtherSessions: async () => {},
      listUserSessions: async () => []
    })
  })

  test('an ioredis client duplicates itself for the feed', () => {
    expect<RedisClient>().type.toBeAssignableFrom(new Redis())
    expect<RedisClient>().type.not.toBeAssignableFrom({ defineCommand () {} })
    expect(new RedisStore({ client: new Redis() }).watchRevocations).type.toBeCallableWith({ revoked () {}, status () {} }, { retentionMs: 60_000 })
  })

  test('the battery takes a peer and the model\'s length', () => {
    expect(storeContract).type.toBeCallableWith({
      test: (name: string, fn: () => Promise<void>) => ({ name, fn }),
      createStore: () => new MemoryStore(),
      createPeer: () => new MemoryStore(),
      isStored: async () => true,
      modelSteps: 50
    })
  })
})
