// Type-level tests of RedisStore, session management, the audit hooks and the store contract battery.
import Fastify, { type FastifyRequest } from 'fastify'
import { Cluster, Redis } from 'ioredis'
import fastifyRefreshAuth, {
  RedisStore,
  StoreTimeoutError,
  type LogoutEvent,
  type SessionEvent,
  type SessionInfo,
  type SessionStore
} from 'fastify-refresh-auth'
import { storeContract } from 'fastify-refresh-auth/store-contract'

function expectType<T> (value: T): T { return value }

// any ioredis client: standalone or cluster
expectType<SessionStore>(new RedisStore({ client: new Redis(), prefix: 'app:', timeout: 1500 }))
expectType<SessionStore>(new RedisStore({ client: new Cluster([{ host: '127.0.0.1', port: 7000 }]) }))
// @ts-expect-error a client is required
expectType<RedisStore>(new RedisStore({ prefix: 'app:' }))

const app = Fastify()

export async function setup (): Promise<void> {
  await app.register(fastifyRefreshAuth, {
    secret: 'x'.repeat(32),
    verifyCredentials: async () => ({ id: 1 }),
    store: new RedisStore({ client: new Redis() }),
    onLogin: (event: SessionEvent, request: FastifyRequest) => { request.log.info({ userId: event.userId }) },
    onRefresh: async ({ sessionId }) => { expectType<string>(sessionId) },
    onLogout: (event) => { expectType<LogoutEvent>(event); expectType<boolean>(event.all) },
    onReuseDetected: async (event) => { expectType<SessionEvent>(event) }
  })
  expectType<Promise<void>>(app.refreshAuth.revokeSession('sid'))
  expectType<Promise<void>>(app.refreshAuth.revokeUserSessions('42'))
  const sessions = await app.refreshAuth.listUserSessions('42')
  expectType<SessionInfo[]>(sessions)
  expectType<number>(sessions[0].lastRefreshedAt)
  expectType<string | undefined>(sessions[0].userAgent)
  // @ts-expect-error token ids are not listed
  expectType<string>(sessions[0].tokenId)
}

expectType<'FST_REFRESH_AUTH_STORE_TIMEOUT'>(new StoreTimeoutError('x').code)

storeContract({
  test: (name: string, fn: () => Promise<void>) => ({ name, fn }),
  createStore: () => new RedisStore({ client: new Redis() }),
  destroyStore: async () => {},
  createFailingStore: () => new RedisStore({ client: new Redis(1) })
})
