// Type-level tests of the public API, as a consumer sees it: checked by `npm run typecheck`
// against the built declarations (the package imports itself by name).
import Fastify, { type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify'
import fastifyRefreshAuth, {
  fastifyRefreshAuth as named,
  InvalidTokenError,
  MemoryStore,
  type AuthenticatedUser,
  type FastifyRefreshAuthOptions,
  type RotateResult,
  type SessionStore
} from 'fastify-refresh-auth'

function expectType<T> (value: T): T { return value }

declare module 'fastify-refresh-auth' {
  interface RefreshAuthUser {
    roles?: string[]
  }
  interface LoginUser {
    id?: number
  }
}

const app = Fastify()
expectType<typeof fastifyRefreshAuth>(named)

export async function setup (): Promise<void> {
  await app.register(fastifyRefreshAuth, {
    secret: 'x'.repeat(32),
    verifyCredentials: async (request: FastifyRequest) => (request.body as { ok?: boolean }).ok === true ? { id: 1 } : null,
    store: new MemoryStore({ maxSessions: 10 }),
    accessToken: { expiresIn: '15m' },
    refreshToken: { expiresIn: 7 * 86400, reuseInterval: '5s', absoluteExpiresIn: '30d' },
    routes: { prefix: '/auth' },
    issuer: 'https://id.example',
    audience: 'api',
    cookie: { name: 'rt', path: '/auth', secure: true, sameSite: 'strict' },
    realm: 'api',
    clockTolerance: 0,
    subject: (user) => String(user.id),
    claims: () => ({ roles: ['admin'] }),
    trustedOrigins: ['https://app.example']
  })
}

// an unset environment variable is refused at registration, not by the type
const fromEnvironment: FastifyRefreshAuthOptions = { secret: process.env.AUTH_SECRET, verifyCredentials: async () => null }
expectType<FastifyRefreshAuthOptions>(fromEnvironment)

app.get('/private', { preHandler: app.authenticate }, async (request) => {
  const user = request.user
  if (user === null) return null
  expectType<string>(user.sub)
  expectType<string>(user.sid)
  expectType<number>(user.exp)
  expectType<string[] | undefined>(user.roles)
  return user
})
app.get('/on-request', { onRequest: app.authenticate }, async () => 'ok')
app.get('/me', async (request: FastifyRequest, reply: FastifyReply) => {
  const user = await request.authenticate()
  expectType<AuthenticatedUser>(user)
  await app.authenticate(request, reply)
  return user.sub
})

expectType<RouteOptions>(app.refreshAuth.loginRoute({ url: '/signin' }))
expectType<RouteOptions>(app.refreshAuth.refreshRoute())
expectType<RouteOptions>(app.refreshAuth.logoutRoute({ url: '/bye', schema: { body: { type: 'object' } } }))

expectType<'FST_REFRESH_AUTH_INVALID_TOKEN'>(new InvalidTokenError().code)
expectType<401>(new InvalidTokenError().statusCode)

// a custom store implements the interface
class SqlStore implements SessionStore {
  async create () {}
  async rotate (): Promise<RotateResult> { return { outcome: 'not-found' } }
  async revoke () {}
  async revokeUser () {}
  async listUserSessions () { return [] }
}
expectType<SessionStore>(new SqlStore())
