import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import fastifyRefreshAuth, {
  CrossSiteRequestError,
  InsufficientScopeError,
  InsufficientUserAuthenticationError,
  InvalidCredentialsError,
  InvalidRefreshTokenError,
  InvalidTokenError,
  MemoryStore,
  MissingTokenError,
  PostgresStore,
  RedisStore,
  type PostgresPool,
  type RedisClient
} from '../lib/index.js'
import { KeySet } from '../lib/tokens/keys.js'
import { TokenCache } from '../lib/tokens/cache.js'
import { TokenCodec } from '../lib/tokens/codec.js'
import { SECRET, buildApp, getPrivate, login, verifyCredentials } from './helpers/app.js'

// Issue 13, finding 10: every error the package throws carries a code of ErrorCodes; misuse at
// registration is an InvalidOptionError, misuse at a call an argument error of its own, and no 401 or
// 403 error is a TypeError.

const invalidArgument = (message: RegExp) => ({ code: 'FST_REFRESH_AUTH_INVALID_ARGUMENT', message })
const invalidOption = (message: RegExp) => ({ code: 'FST_REFRESH_AUTH_INVALID_OPTION', message })

t.test('misuse at a call: an argument error with a code, naming the function and the argument', async t => {
  const app = await buildApp(t)
  const api = app.refreshAuth
  await t.rejects(api.revokeSession(123 as never), invalidArgument(/revokeSession: sessionId must be a non-empty string/))
  await t.rejects(api.revokeUserSessions('' as never), invalidArgument(/revokeUserSessions: userId/))
  await t.rejects(api.listUserSessions(null as never), invalidArgument(/listUserSessions: userId/))
  t.throws(() => api.requireScopes(''), invalidArgument(/requireScopes: scopes must be one or more strings/))
  t.throws(() => api.requireScopes([]), invalidArgument(/requireScopes: scopes/))
  t.throws(() => api.requireScopes(['a b']), invalidArgument(/requireScopes: scopes/))
  t.throws(() => api.requireRoles([7 as never]), invalidArgument(/requireRoles: roles/))
  t.throws(() => api.requireFreshAuth(0), invalidArgument(/requireFreshAuth: maxAge must be a duration/))
  const error = await api.revokeSession(123 as never).catch((err: Error) => err)
  t.ok(error instanceof TypeError, 'argument errors stay TypeErrors, as in Node')
})

t.test('misuse at construction: the stores and the token cache throw InvalidOptionError', async t => {
  t.throws(() => new MemoryStore({ maxSessions: 0 }), invalidOption(/MemoryStore: maxSessions must be a positive integer/))
  t.throws(() => new MemoryStore({ pruneInterval: -1 }), invalidOption(/MemoryStore: pruneInterval/))
  const client: RedisClient = { defineCommand () {}, duplicate () { throw new Error('no server') } }
  t.throws(() => new RedisStore({ client: {} as never }), invalidOption(/RedisStore: client must be an ioredis client/))
  t.throws(() => new RedisStore(undefined as never), invalidOption(/RedisStore: client/))
  t.throws(() => new RedisStore({ client, prefix: '{x}' }), invalidOption(/RedisStore: prefix/))
  t.throws(() => new RedisStore({ client, timeout: 5 }), invalidOption(/RedisStore: timeout/))
  const pool: PostgresPool = { connect: async () => { throw new Error('no database here') } }
  t.throws(() => new PostgresStore({ pool: {} as never }), invalidOption(/PostgresStore: pool must be a pg Pool/))
  t.throws(() => new PostgresStore({ pool, table: '1sessions' }), invalidOption(/PostgresStore: table must be/))
  t.throws(() => new PostgresStore({ pool, timeout: 5 }), invalidOption(/PostgresStore: timeout/))
  t.throws(() => new PostgresStore({ pool, cleanupInterval: -1 }), invalidOption(/PostgresStore: cleanupInterval/))
  // what the plugin hands a store at a call: an argument error
  const postgres = new PostgresStore({ pool, cleanupInterval: 0 })
  const session = { sessionId: 's', userId: 'u', tokenId: 't', previousTokenId: null, generation: 0, createdAt: 0, rotatedAt: 0, expiresAt: 1, absoluteExpiresAt: 1 }
  await t.rejects(postgres.create(session, { maxSessionsPerUser: 0 }), invalidArgument(/maxSessionsPerUser must be a positive integer/))
  t.throws(() => postgres.watchRevocations({ revoked () {}, status () {} }, { retentionMs: 0 }), invalidArgument(/retentionMs must be a positive number/))
  t.throws(() => new TokenCache(0), invalidOption(/TokenCache: maxEntries/))
  const codec = new TokenCodec({ keys: new KeySet([]), type: 'at+jwt', issuer: 'i', audience: 'a', clockTolerance: 0 })
  t.throws(() => codec.sign({ sub: 's', sid: 's', jti: 'j', iat: 1, exp: 2 }), invalidOption(/no key to sign with/))
})

t.test('the 401 and 403 errors are Errors, not TypeErrors', async t => {
  for (const ErrorClass of [MissingTokenError, InvalidTokenError, InsufficientScopeError, InsufficientUserAuthenticationError, InvalidCredentialsError, InvalidRefreshTokenError, CrossSiteRequestError]) {
    const error = new ErrorClass()
    t.ok(error instanceof Error, error.code)
    t.notOk(error instanceof TypeError, `${error.code} is no TypeError`)
  }
  // and so are the ones a host's error handler receives
  const seen: Error[] = []
  const app = Fastify()
  t.teardown(() => app.close())
  // set before the plugin, so that its routes use it too
  app.setErrorHandler((error, _request, reply) => { seen.push(error as Error); reply.send(error) })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, claims: () => ({ roles: [] }) })
  app.get('/private', { preHandler: app.authenticate }, async () => 'ok')
  app.get('/admin', { preHandler: app.refreshAuth.requireRoles('admin') }, async () => 'ok')
  await app.inject('/private')
  await getPrivate(app, 'a.b.c')
  await getPrivate(app, (await login(app)).accessToken, '/admin')
  await app.inject({ method: 'POST', url: '/auth/login', payload: {} })
  await app.inject({ method: 'POST', url: '/auth/refresh' })
  await app.inject({ method: 'POST', url: '/auth/refresh', headers: { 'sec-fetch-site': 'cross-site' } })
  t.same(seen.map(error => (error as Error & { code: string }).code), [
    'FST_REFRESH_AUTH_NO_TOKEN', 'FST_REFRESH_AUTH_INVALID_TOKEN', 'FST_REFRESH_AUTH_INSUFFICIENT_SCOPE',
    'FST_REFRESH_AUTH_INVALID_CREDENTIALS', 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN', 'FST_REFRESH_AUTH_CROSS_SITE'
  ])
  t.notOk(seen.some(error => error instanceof TypeError))
})

// A guard for the future: errors are created in lib/errors.ts with a code, nowhere else.
t.test('no file under lib/ throws an error without a code', async t => {
  const root = join(__dirname, '..', 'lib')
  const files = (function list (dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap(entry =>
      entry.isDirectory() ? list(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [])
  })(root)
  const plain = /\bnew (Error|TypeError|RangeError|SyntaxError|ReferenceError)\(|\bthrow ['"`]/
  const offenders = files
    .flatMap(file => readFileSync(file, 'utf8').split('\n')
      .map((line, index) => ({ line, where: `${relative(root, file)}:${index + 1}` }))
      .filter(({ line }) => plain.test(line)))
    .map(({ where, line }) => `${where}: ${line.trim()}`)
  t.same(offenders, [])
})
