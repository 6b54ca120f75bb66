// Type tests of issue 22's strict TypeScript: what compiles without a cast, and what must not compile.
import Fastify, { type FastifyPluginOptions, type FastifyRequest } from 'fastify'
import { describe, expect, test } from 'tstyche'
import fastifyRefreshAuth, { type AuthenticatedRequest, type AuthenticatedUser, type Duration, type FastifyRefreshAuthOptions } from 'fastify-refresh-auth'

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

describe('typed login bodies', () => {
  interface LoginBody { username: string, password: string, remember?: boolean }

  test('verifyCredentials declares the body; rememberMe gets the same type, with no cast', async () => {
    await app.register(fastifyRefreshAuth, {
      secret,
      routes: { loginBody: { type: 'object', required: ['username', 'password'] } },
      verifyCredentials: async (request: FastifyRequest<{ Body: LoginBody }>) => {
        expect(request.body.username).type.toBe<string>()
        return { id: 1 }
      },
      rememberMe: (_user, request) => {
        expect(request.body).type.toBe<LoginBody>()
        return request.body.remember === true
      }
    })
  })

  test('a property the body does not declare does not compile', () => {
    expect(app.register).type.not.toBeCallableWith(fastifyRefreshAuth, {
      secret,
      verifyCredentials: async (_request: FastifyRequest<{ Body: LoginBody }>) => ({ id: 1 }),
      rememberMe: (_user: unknown, request: FastifyRequest<{ Body: { nickname: string } }>) => request.body.nickname === ''
    })
  })

  test('without a declared body, it is unknown: narrowed before use, never any', async () => {
    await app.register(fastifyRefreshAuth, {
      secret,
      verifyCredentials: async (request) => {
        expect(request.body).type.toBe<unknown>()
        return null
      }
    })
  })

  test('options kept in a variable carry the body type', async () => {
    const options: FastifyRefreshAuthOptions<LoginBody> = {
      secret,
      verifyCredentials: async (request) => {
        expect(request.body.password).type.toBe<string>()
        return null
      }
    }
    await app.register(fastifyRefreshAuth, options)
  })

  test('other plugins keep their own option types', async () => {
    await app.register(async (_child, options) => {
      expect(options).type.toBe<{ prefix: string }>()
    }, { prefix: '/v1' })
    await app.register(async (_child, options) => {
      expect(options).type.toBe<FastifyPluginOptions>()
    })
  })
})

describe('the devices routes option', () => {
  test('routes.sessions is a boolean', () => {
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, routes: { sessions: true } })
    expect(app.register).type.not.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, routes: { sessions: 'yes' } })
  })
})

describe('auth_time', () => {
  test('required in the access-token claims, as every access token carries it', () => {
    app.get('/fresh', app.refreshAuth.authenticated(async (request) => {
      expect(request.user.auth_time).type.toBe<number>()
    }))
    expect<AuthenticatedUser>().type.toHaveProperty('auth_time')
    expect<Pick<AuthenticatedUser, 'auth_time'>>().type.toBe<{ auth_time: number }>()
  })
})
