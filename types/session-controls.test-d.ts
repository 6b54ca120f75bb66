// Type tests of the session controls (issue 11): rememberMe, auth_time and the step-up guard, the limit of
// sessions per user and signing out the other devices (tstyche).
import Fastify, { type FastifyRequest } from 'fastify'
import { describe, expect, test } from 'tstyche'
import fastifyRefreshAuth, {
  ErrorCodes,
  InsufficientUserAuthenticationError,
  SessionLimitError,
  type AuthenticatedUser,
  type ClaimGuard,
  type ErrorMessages,
  type FastifyRefreshAuthOptions,
  type FreshAuthGuards,
  type LoginUser,
  type LogoutEvent,
  type SessionLimitPolicy,
  type SessionStore
} from 'fastify-refresh-auth'
import type { CreateResult } from 'fastify-refresh-auth/store'

const app = Fastify()
const secret = 'x'.repeat(32)
const verifyCredentials = async () => ({ id: 1 })

describe('rememberMe', () => {
  test('gets the user and the request, and answers a boolean, sync or async', () => {
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, {
      secret,
      verifyCredentials,
      rememberMe: (user: LoginUser, request: FastifyRequest) => {
        expect(user.id).type.toBe<number>()
        return (request.body as { remember?: boolean }).remember === true
      }
    })
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, rememberMe: async () => false })
    expect<Parameters<NonNullable<FastifyRefreshAuthOptions['rememberMe']>>>().type.toBe<[user: LoginUser, request: FastifyRequest<{ Body: unknown }>]>()
  })

  test('anything but a boolean is refused', () => {
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ rememberMe: () => 'yes' })
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ rememberMe: async () => 1 })
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ rememberMe: true })
  })
})

describe('auth_time', () => {
  test('request.user carries it, in seconds: every access token does', () => {
    expect<AuthenticatedUser['auth_time']>().type.toBe<number>()
  })
})

describe('requireFreshAuth', () => {
  test('takes a duration and returns a guard, as requireScopes does', () => {
    expect(app.refreshAuth.requireFreshAuth('5m')).type.toBe<ClaimGuard>()
    expect(app.refreshAuth.requireFreshAuth).type.toBeCallableWith(300)
    expect(app.refreshAuth.requireFreshAuth).type.not.toBeCallableWith()
    expect(app.refreshAuth.requireFreshAuth).type.not.toBeCallableWith(true)
    expect(app.refreshAuth.requireFreshAuth).type.not.toBeCallableWith({ maxAge: 300 })
    expect<FreshAuthGuards['requireFreshAuth']>().type.toBe(app.refreshAuth.requireFreshAuth)
  })

  test('is a preHandler, alone or with other guards', () => {
    app.delete('/account', { preHandler: app.refreshAuth.requireFreshAuth('5m') }, async () => 'deleted')
    app.post('/payouts', { preHandler: [app.refreshAuth.requireScopes('payouts:write'), app.refreshAuth.requireFreshAuth(300)] }, async () => 'paid')
  })

  test('its refusal has a code of its own, and a message the host may replace', () => {
    expect(new InsufficientUserAuthenticationError().code).type.toBe<'FST_REFRESH_AUTH_INSUFFICIENT_USER_AUTHENTICATION'>()
    expect(new InsufficientUserAuthenticationError().statusCode).type.toBe<401>()
    expect(ErrorCodes.INSUFFICIENT_USER_AUTHENTICATION).type.toBe<'FST_REFRESH_AUTH_INSUFFICIENT_USER_AUTHENTICATION'>()
    expect<ErrorMessages>().type.toBeAssignableFrom({ FST_REFRESH_AUTH_INSUFFICIENT_USER_AUTHENTICATION: 'Please confirm your password' })
  })
})

describe('maxSessionsPerUser and onSessionLimit', () => {
  test('a positive integer, and one of two policies', () => {
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, maxSessionsPerUser: 1 })
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, maxSessionsPerUser: 3, onSessionLimit: 'refuse' })
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, onSessionLimit: 'revoke-oldest' })
    expect<SessionLimitPolicy>().type.toBe<'revoke-oldest' | 'refuse'>()
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ maxSessionsPerUser: '3' })
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ onSessionLimit: true })
  })

  test('the refusal has a code of its own, a 403, and a message the host may replace', () => {
    expect(new SessionLimitError().code).type.toBe<'FST_REFRESH_AUTH_SESSION_LIMIT'>()
    expect(new SessionLimitError().statusCode).type.toBe<403>()
    expect(ErrorCodes.SESSION_LIMIT).type.toBe<'FST_REFRESH_AUTH_SESSION_LIMIT'>()
    expect<ErrorMessages>().type.toBeAssignableFrom({ FST_REFRESH_AUTH_SESSION_LIMIT: 'Sign out on another device first' })
  })
})

describe('revokeOtherSessions', () => {
  test('takes the user id (as sub or a number) and the session to keep', () => {
    expect(app.refreshAuth.revokeOtherSessions('42', 'sid')).type.toBe<Promise<void>>()
    expect(app.refreshAuth.revokeOtherSessions).type.toBeCallableWith(42, 'sid')
    expect(app.refreshAuth.revokeOtherSessions).type.not.toBeCallableWith('42')
    expect(app.refreshAuth.revokeOtherSessions).type.not.toBeCallableWith('42', 7)
  })

  test('a custom store must implement it, and create must answer a CreateResult', () => {
    expect<SessionStore['revokeOtherSessions']>().type.toBe<(userId: string, keepSessionId: string) => Promise<void>>()
    expect<ReturnType<SessionStore['create']>>().type.toBe<Promise<CreateResult>>()
  })

  test('onLogout tells why a session ended, and whether the others were signed out', () => {
    expect<LogoutEvent['reason']>().type.toBe<'logout' | 'user-refused' | 'session-limit' | 'replaced' | 'ended-by-user'>()
    expect<LogoutEvent['others']>().type.toBe<boolean>()
  })
})
