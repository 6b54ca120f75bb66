// Type tests of the public API as a consumer sees it, run by tstyche (`npm run test:types`) against the
// built declarations: the package imports itself by name. An assertion fails on `any` and on a type that
// is wider or narrower than the one expected, not only on one that cannot be assigned.
import { generateKeyPairSync } from 'node:crypto'
import Fastify, { type FastifyRequest, type RouteOptions } from 'fastify'
import { describe, expect, test } from 'tstyche'
import fastifyRefreshAuth, {
  fastifyRefreshAuth as named,
  InvalidTokenError,
  MemoryStore,
  type AuthenticatedUser,
  type AuthenticateHook,
  type FastifyRefreshAuthOptions,
  type LoginUser,
  type SessionStore
} from 'fastify-refresh-auth'
import type { CreateResult, PresentResult, RotateResult } from 'fastify-refresh-auth/store'

// The host's own types, merged into the package's through the entry's re-exports. (Every file of this
// folder is one program: the other files see these too.)
declare module 'fastify-refresh-auth' {
  interface RefreshAuthUser {
    roles: string[]
  }
  interface LoginUser {
    id: number
    email?: string
    roles?: string[]
  }
}

const app = Fastify()
const secret = 'x'.repeat(32)
const verifyCredentials = async (request: FastifyRequest) => (request.body as { ok?: boolean }).ok === true ? { id: 1 } : null

describe('the plugin', () => {
  test('is exported by default and by name', () => {
    expect(named).type.toBe(fastifyRefreshAuth)
  })

  test('registers with every option', async () => {
    await app.register(fastifyRefreshAuth, {
      secret,
      verifyCredentials,
      store: new MemoryStore({ maxSessions: 10 }),
      accessToken: { expiresIn: '15m', cacheSize: 1000 },
      refreshToken: { expiresIn: 7 * 86400, reuseInterval: '5s', absoluteExpiresIn: '30d' },
      routes: { prefix: '/auth' },
      issuer: 'https://id.example',
      audience: 'api',
      cookie: { name: 'rt', path: '/auth', secure: true, sameSite: 'strict' },
      realm: 'api',
      clockTolerance: 0,
      subject: (user) => user.id,
      claims: (user) => ({ roles: user.roles ?? [] }),
      trustedOrigins: ['https://app.example'],
      refreshTokenTransport: 'both',
      messages: { FST_REFRESH_AUTH_INVALID_CREDENTIALS: 'Wrong e-mail or password' }
    })
  })
})

describe('request.user and request.authenticate()', () => {
  test('request.user is the verified claims with the augmented ones, or null', () => {
    expect<FastifyRequest['user']>().type.toBe<AuthenticatedUser | null>()
    expect<AuthenticatedUser['sub']>().type.toBe<string>()
    expect<AuthenticatedUser['sid']>().type.toBe<string>()
    expect<AuthenticatedUser['exp']>().type.toBe<number>()
    // frozen at run time, so readonly in the type
    expect<AuthenticatedUser['roles']>().type.toBe<readonly string[]>()
    expect<AuthenticatedUser>().type.not.toHaveProperty('email')
  })

  test('request.authenticate() resolves to a user that is never null', () => {
    app.get('/me', { preHandler: app.authenticate }, async (request) => {
      expect(request.user).type.toBe<AuthenticatedUser | null>()
      const user = await request.authenticate()
      expect(user).type.toBe<AuthenticatedUser>()
      return user.roles.join(',')
    })
  })

  test('app.authenticate is a preHandler, an onRequest hook, or awaited', () => {
    expect(app.authenticate).type.toBe<AuthenticateHook>()
    app.get('/on-request', { onRequest: app.authenticate }, async () => 'ok')
    app.get('/awaited', async (request, reply) => {
      expect(app.authenticate(request, reply)).type.toBe<Promise<void> | undefined>()
      return 'ok'
    })
  })
})

describe('options under strict TypeScript', () => {
  test('a secret straight from the environment compiles (a missing one is refused at registration)', () => {
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret: process.env.AUTH_SECRET, verifyCredentials })
    expect<FastifyRefreshAuthOptions['secret']>().type.toBe<string | Buffer | undefined>()
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ secret: 42 })
  })

  test('options kept in a variable compile: routes, algorithm and the other literals widen', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const options = {
      secret,
      verifyCredentials,
      routes: false,
      accessToken: { algorithm: 'ES256', keys: [{ kid: 'k1', privateKey }] },
      cookie: { sameSite: 'lax' },
      refreshTokenTransport: 'body'
    }
    expect(options.routes).type.toBe<boolean>()
    expect(options.accessToken.algorithm).type.toBe<string>()
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, options)
    expect<FastifyRefreshAuthOptions>().type.toBeAssignableFrom(options)
  })

  test('wrong option types still fail', () => {
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ routes: 'yes' })
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ cookie: { secure: 'no' } })
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ accessToken: { algorithm: 256 } })
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ refreshToken: { expiresIn: true } })
  })

  test('verifyCredentials resolves to the augmented LoginUser, and subject reads it', () => {
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ verifyCredentials: async () => ({ id: 'one' }) })
    expect<FastifyRefreshAuthOptions>().type.toBeAssignableFrom({
      subject: (user: LoginUser) => {
        expect(user.id).type.toBe<number>()
        expect(user.email).type.toBe<string | undefined>()
        return `user-${user.id}`
      }
    })
  })

  test('subject answers a string or a number', () => {
    expect<ReturnType<NonNullable<FastifyRefreshAuthOptions['subject']>>>().type.toBe<string | number>()
    expect<FastifyRefreshAuthOptions>().type.not.toBeAssignableFrom({ subject: () => true })
  })

  test('claims must return what RefreshAuthUser declares', () => {
    expect(app.register).type.not.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, claims: () => ({}) })
    expect(app.register).type.not.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, claims: () => ({ roles: 'admin' }) })
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, claims: () => ({ roles: ['admin'], tenant: 't1' }) })
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, claims: async (user: LoginUser) => ({ roles: user.roles ?? [] }) })
  })
})

describe('route factories', () => {
  test('answer route options, and take any of them but the handler', () => {
    expect(app.refreshAuth.loginRoute({ url: '/signin' })).type.toBe<RouteOptions>()
    expect(app.refreshAuth.refreshRoute()).type.toBe<RouteOptions>()
    expect(app.refreshAuth.logoutRoute({ url: '/bye', schema: { body: { type: 'object' } } })).type.toBe<RouteOptions>()
    expect(app.refreshAuth.loginRoute).type.not.toBeCallableWith({ handler: async () => 'mine' })
  })
})

describe('errors', () => {
  test('carry their literal code and status', () => {
    expect(new InvalidTokenError().code).type.toBe<'FST_REFRESH_AUTH_INVALID_TOKEN'>()
    expect(new InvalidTokenError().statusCode).type.toBe<401>()
  })
})

describe('stores', () => {
  test('a custom store implements SessionStore', () => {
    class SqlStore {
      async create (): Promise<CreateResult> { return { outcome: 'created', endedSessionIds: [] } }
      async rotate (): Promise<RotateResult> { return { outcome: 'not-found' } }
      async present (): Promise<PresentResult> { return { outcome: 'not-found' } }
      async revoke () {}
      async revokeUser () {}
      async revokeOtherSessions () {}
      async listUserSessions () { return [] }
    }
    expect<SessionStore>().type.toBeAssignableFrom(new SqlStore())
    expect<SessionStore>().type.not.toBeAssignableFrom({ create: async () => {} })
    // present is required: logout asks it
    expect<SessionStore>().type.not.toBeAssignableFrom({
      create: async () => {},
      rotate: async (): Promise<RotateResult> => ({ outcome: 'not-found' }),
      revoke: async () => {},
      revokeUser: async () => {},
      listUserSessions: async () => []
    })
  })

  test('MemoryStore takes its options', () => {
    expect(MemoryStore).type.toBeConstructableWith({ maxSessions: 10 })
    expect(MemoryStore).type.not.toBeConstructableWith({ maxSessions: '10' })
  })
})
