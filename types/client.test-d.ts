// Type tests of the browser client (`fastify-refresh-auth/client`) and of onSessionEnd on the server (tstyche).
import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import type { SessionEndEvent, SessionEndReason } from 'fastify-refresh-auth'
import {
  AuthClientError, createAuthClient, type AuthClient, type AuthClientOptions, type EndEvent, type EndReason, type SessionEvent, type TokenStorage
} from 'fastify-refresh-auth/client'
import type { SessionEndNotice, RevocationListener } from 'fastify-refresh-auth/store'

const auth = createAuthClient()

describe('createAuthClient', () => {
  test('every option is optional; each has its own type', () => {
    expect(createAuthClient).type.toBeCallableWith()
    expect(createAuthClient).type.toBeCallableWith({})
    expect(createAuthClient).type.toBeCallableWith({
      prefix: '/auth', baseUrl: 'https://auth.example.com', fetch: globalThis.fetch, transport: 'body', refreshAhead: 30, live: false
    })
    expect(createAuthClient).type.not.toBeCallableWith({ transport: 'header' })
    expect(createAuthClient).type.not.toBeCallableWith({ refreshAhead: '30' })
    expect(createAuthClient).type.not.toBeCallableWith({ live: 'yes' })
    expect(createAuthClient).type.not.toBeCallableWith({ prefix: 1 })
    expect(createAuthClient(undefined)).type.toBe<AuthClient>()
  })

  test('storage: get may be sync or async; set and remove answer anything', () => {
    const sync: TokenStorage = { get: () => null, set: () => {}, remove: () => {} }
    const async: TokenStorage = { get: async () => 'token', set: async () => {}, remove: async () => {} }
    expect<AuthClientOptions>().type.toBeAssignableFrom({ transport: 'body' as const, storage: sync })
    expect<AuthClientOptions>().type.toBeAssignableFrom({ transport: 'body' as const, storage: async })
    expect<TokenStorage>().type.not.toBeAssignableFrom({ get: () => 42, set: () => {}, remove: () => {} })
    expect<TokenStorage>().type.not.toBeAssignableFrom({ get: () => null, set: () => {} })
  })
})

describe('the client', () => {
  test('what each method resolves to', () => {
    expect(auth.restore()).type.toBe<Promise<boolean>>()
    expect(auth.login({ username: 'alice', password: 'x' })).type.toBe<Promise<any>>()
    expect(auth.login()).type.toBe<Promise<any>>()
    expect(auth.fetch('/api/me')).type.toBe<Promise<Response>>()
    expect(auth.fetch(new Request('https://example.com/api/me'), { method: 'POST' })).type.toBe<Promise<Response>>()
    expect(auth.getAccessToken()).type.toBe<Promise<string | null>>()
    expect(auth.refresh()).type.toBe<Promise<boolean>>()
    expect(auth.logout()).type.toBe<Promise<void>>()
    expect(auth.logout({ all: true })).type.toBe<Promise<void>>()
    expect(auth.logout).type.toBeCallableWith({ others: true })
    expect(auth.logout).type.not.toBeCallableWith({ everywhere: true })
    expect(auth.close()).type.toBe<void>()
  })

  test('state is one of two, and read-only', () => {
    expect(auth.state).type.toBe<'signed-in' | 'signed-out'>()
    // @ts-expect-error Cannot assign to 'state' because it is a read-only property
    auth.state = 'signed-in'
  })

  test('on: the listener of each event gets its payload; the answer stops listening', () => {
    expect(auth.on('session', (event) => {
      expect(event).type.toBe<SessionEvent>()
      expect(event.accessToken).type.toBe<string>()
      expect(event.expiresAt).type.toBe<number>()
    })).type.toBe<() => void>()
    expect(auth.on('end', (event) => {
      expect(event).type.toBe<EndEvent>()
      expect(event.reason).type.toBe<EndReason>()
    })).type.toBe<() => void>()
    expect(auth.on).type.not.toBeCallableWith('ended', () => {})
    expect(auth.on).type.not.toBeCallableWith('session', (event: EndEvent) => event)
    expect(auth.on).type.not.toBeCallableWith('end', (event: { reason: 'timeout' }) => event)
  })

  test('the reasons an end has', () => {
    expect<EndReason>().type.toBe<'logout' | 'revoked' | 'expired' | 'reuse' | 'unknown'>()
    expect<EndReason>().type.not.toBeAssignableFrom('timeout' as const)
    expect<EndEvent>().type.not.toBeAssignableFrom({ reason: 'signed-out' as const })
  })

  test('a refused login or logout: the status and the code', () => {
    const error = new AuthClientError(401, 'FST_REFRESH_AUTH_INVALID_CREDENTIALS')
    expect(error).type.toBeAssignableTo<Error>()
    expect(error.status).type.toBe<number>()
    expect(error.code).type.toBe<string | undefined>()
  })
})

describe('onSessionEnd on the server', () => {
  test('its event names the session, the user and the reason the client hears; it answers its unsubscribe', () => {
    const app = Fastify()
    expect(app.refreshAuth.onSessionEnd((event) => {
      expect(event).type.toBe<SessionEndEvent>()
      expect(event.sessionId).type.toBe<string>()
      expect(event.userId).type.toBe<string | null>()
      expect(event.reason).type.toBe<SessionEndReason>()
    })).type.toBe<() => void>()
    expect<SessionEndReason>().type.toBe<EndReason>()
  })

  test('a store\'s feed announces each end with its user and cause', () => {
    expect<Parameters<RevocationListener['revoked']>[2]>().type.toBe<SessionEndNotice>()
    expect<SessionEndNotice>().type.toBeAssignableFrom({ userId: '42', cause: 'logout' as const })
    expect<SessionEndNotice>().type.toBeAssignableFrom({ userId: null, cause: 'revoke-others' as const })
    expect<SessionEndNotice>().type.not.toBeAssignableFrom({ userId: '42', cause: 'logout-everywhere' as const })
    expect<SessionEndNotice>().type.not.toBeAssignableFrom({ cause: 'reuse' as const })
  })
})
