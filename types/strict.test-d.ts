// Type tests of issue 22's strict TypeScript: what compiles without a cast, and what must not compile.
import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import fastifyRefreshAuth, { type AuthenticatedRequest, type AuthenticatedUser, type Duration } from 'fastify-refresh-auth'

const app = Fastify()
const secret = 'x'.repeat(32)
const verifyCredentials = async () => ({ id: 1 })

describe('a protected route', () => {
  test('authenticated(): request.user is never null, with no narrowing', () => {
    app.get('/me', app.refreshAuth.authenticated(async (request) => {
      expect(request.user).type.toBe<AuthenticatedUser>()
      expect(request.user.sub).type.toBe<string>()
      return request.user.sub
    }))
  })

  test('authenticated() keeps the route generic: a typed body', () => {
    app.post<{ Body: { name: string } }>('/notes', app.refreshAuth.authenticated<{ Body: { name: string } }>(async (request) => {
      expect(request.body.name).type.toBe<string>()
      expect(request).type.toBeAssignableTo<AuthenticatedRequest<{ Body: { name: string } }>>()
      return request.user.sid
    }))
  })
})

describe('claims are readonly, as they are frozen at run time', () => {
  test('roles.push() does not compile', () => {
    app.get('/admin', app.refreshAuth.authenticated(async (request) => {
      expect(request.user.roles).type.not.toHaveProperty('push')
      expect(request.user.roles.includes('admin')).type.toBe<boolean>()
    }))
  })
})

describe('durations', () => {
  test('a misspelt unit does not compile', () => {
    expect<Duration>().type.toBeAssignableFrom('15 minutes' as const)
    expect<Duration>().type.toBeAssignableFrom('15m' as const)
    expect<Duration>().type.toBeAssignableFrom('600' as const)
    expect<Duration>().type.toBeAssignableFrom(900)
    expect<Duration>().type.not.toBeAssignableFrom('15 minutez' as const)
    expect(app.register).type.not.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, accessToken: { expiresIn: '15 minutez' } })
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, accessToken: { expiresIn: '15 minutes' } })
  })
})
