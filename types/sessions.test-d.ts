// Type tests of RedisStore, session management, the audit hooks and the store contract battery (tstyche).
import Fastify, { type FastifyRequest } from 'fastify'
import { Cluster, Redis } from 'ioredis'
import { describe, expect, test } from 'tstyche'
import fastifyRefreshAuth, {
  RedisStore,
  type LogoutEvent,
  type SessionEvent,
  type DeviceType,
  type SessionDevice,
  type SessionInfo,
  type SessionStore,
  type UserSession
} from 'fastify-refresh-auth'
import { StoreTimeoutError } from 'fastify-refresh-auth/store'
import { storeContract } from 'fastify-refresh-auth/store-contract'

const app = Fastify()

describe('RedisStore', () => {
  test('takes any ioredis client, standalone or cluster, and requires one', () => {
    expect<SessionStore>().type.toBeAssignableFrom(new RedisStore({ client: new Redis(), prefix: 'app:', timeout: 1500 }))
    expect<SessionStore>().type.toBeAssignableFrom(new RedisStore({ client: new Cluster([{ host: '127.0.0.1', port: 7000 }]) }))
    expect(RedisStore).type.not.toBeConstructableWith({ prefix: 'app:' })
  })

  test('a timeout is a coded error', () => {
    expect(new StoreTimeoutError('x').code).type.toBe<'FST_REFRESH_AUTH_STORE_TIMEOUT'>()
  })
})

describe('session management', () => {
  test('user ids are what subject answers: a string or a number', () => {
    expect(app.refreshAuth.revokeUserSessions('42')).type.toBe<Promise<void>>()
    expect(app.refreshAuth.revokeUserSessions).type.toBeCallableWith(42)
    expect(app.refreshAuth.listUserSessions).type.toBeCallableWith(42)
    expect(app.refreshAuth.listUserSessions).type.not.toBeCallableWith({ id: 42 })
    expect(app.refreshAuth.revokeUserSessions).type.not.toBeCallableWith(null)
  })

  test('session ids are strings', () => {
    expect(app.refreshAuth.revokeSession('sid')).type.toBe<Promise<void>>()
    expect(app.refreshAuth.revokeSession).type.not.toBeCallableWith(42)
  })

  test('the session list has no token ids', () => {
    expect(app.refreshAuth.listUserSessions('42')).type.toBe<Promise<UserSession[]>>()
    expect<UserSession>().type.toBeAssignableTo<SessionInfo>()
    expect<SessionInfo['lastRefreshedAt']>().type.toBe<number>()
    expect<SessionInfo['userAgent']>().type.toBe<string | undefined>()
    expect<SessionInfo>().type.not.toHaveProperty('tokenId')
    expect<UserSession>().type.not.toHaveProperty('tokenId')
  })

  test('each listed session says when it was last seen and what device it is', async () => {
    const [session] = await app.refreshAuth.listUserSessions(42)
    expect(session.lastSeenAt).type.toBe<number>()
    expect(session.device).type.toBe<SessionDevice>()
    expect(session.device.browser).type.toBe<string | null>()
    expect(session.device.os).type.toBe<string | null>()
    expect(session.device.type).type.toBe<DeviceType | null>()
    expect<DeviceType>().type.toBe<'desktop' | 'mobile' | 'tablet' | 'tv' | 'bot'>()
  })
})

describe('audit hooks', () => {
  test('each hook gets its event and the request', async () => {
    await app.register(fastifyRefreshAuth, {
      secret: 'x'.repeat(32),
      verifyCredentials: async () => ({ id: 1 }),
      onLogin: (event, request) => {
        expect(event).type.toBe<SessionEvent>()
        expect(request).type.toBe<FastifyRequest>()
      },
      onRefresh: async ({ sessionId }) => { expect(sessionId).type.toBe<string>() },
      onLogout: (event) => { expect(event).type.toBe<LogoutEvent>() },
      onReuseDetected: async (event) => { expect(event.userId).type.toBe<string>() }
    })
    expect<LogoutEvent['all']>().type.toBe<boolean>()
  })
})

describe('the store contract battery', () => {
  test('runs against any store', () => {
    expect(storeContract).type.toBeCallableWith({
      test: (name: string, fn: () => Promise<void>) => ({ name, fn }),
      createStore: () => new RedisStore({ client: new Redis() }),
      destroyStore: async () => {},
      isStored: async (_store: RedisStore, session: { generation: number }) => session.generation >= 0,
      createFailingStore: () => new RedisStore({ client: new Redis(1) })
    })
    expect(storeContract).type.not.toBeCallableWith({ createStore: () => ({}) })
    // the battery checks expired sessions leave the backend: it needs a way to look
    expect(storeContract).type.not.toBeCallableWith({ test: () => {}, createStore: () => new RedisStore({ client: new Redis() }) })
  })
})
