import Fastify from 'fastify'
import t from 'tap'
import fastifyRefreshAuth, {
  CrossSiteRequestError,
  SessionLimitError,
  SessionNotFoundError,
  ErrorCodes,
  InsufficientScopeError,
  InsufficientUserAuthenticationError,
  InvalidCredentialsError,
  InvalidOptionError,
  InvalidRefreshTokenError,
  InvalidTokenError,
  KeysUnavailableError,
  MissingTokenError,
  RevocationUnconfirmedError,
  EventStreamsFullError,
  StoreUnavailableError,
  InvalidArgumentError,
  DuplicateCookieError,
  InvalidClaimsError,
  InvalidSubjectError,
  CallbackFailedError,
  PluginNotRegisteredError,
  CallbackTimeoutError,
  InvalidDpopProofError,
  UseDpopNonceError
} from '../lib/index.js'
import * as entry from '../lib/index.js'
import { JwksFetchError, StoreConflictError, StoreTimeoutError } from '../lib/errors.js'
import * as storeEntry from '../lib/store.js'
import { SECRET, USER, buildApp, getPrivate, login, refresh, verifyCredentials } from './helpers/app.js'

t.test('the entry exports only the errors a client or a host can meet; the store ones are at /store', async t => {
  const exported = Object.entries(entry).filter(([, value]) => typeof value === 'function' && /Error$/.test(value.name)).map(([name]) => name)
  t.same(exported.sort(), [
    'CallbackFailedError', 'CallbackTimeoutError', 'CrossSiteRequestError', 'DuplicateCookieError', 'InsufficientScopeError',
    'InsufficientUserAuthenticationError', 'InvalidArgumentError', 'InvalidClaimsError', 'InvalidCredentialsError',
    'InvalidOptionError', 'InvalidRefreshTokenError', 'InvalidSubjectError', 'InvalidTokenError', 'KeysUnavailableError',
    'MissingTokenError', 'PluginNotRegisteredError', 'RevocationUnconfirmedError', 'SessionLimitError', 'StoreUnavailableError',
    'EventStreamsFullError', 'InvalidDpopProofError', 'UseDpopNonceError', 'SessionNotFoundError'
  ].sort())
  t.equal(storeEntry.StoreTimeoutError, StoreTimeoutError)
  t.equal(storeEntry.StoreConflictError, StoreConflictError)
})

t.test('every error class has its stable code and status', async t => {
  const table: Array<[new () => Error & { code: string, statusCode?: number }, string, number]> = [
    [MissingTokenError, 'FST_REFRESH_AUTH_NO_TOKEN', 401],
    [InvalidTokenError, 'FST_REFRESH_AUTH_INVALID_TOKEN', 401],
    [InsufficientScopeError, 'FST_REFRESH_AUTH_INSUFFICIENT_SCOPE', 403],
    [InsufficientUserAuthenticationError, 'FST_REFRESH_AUTH_INSUFFICIENT_USER_AUTHENTICATION', 401],
    [InvalidCredentialsError, 'FST_REFRESH_AUTH_INVALID_CREDENTIALS', 401],
    [InvalidRefreshTokenError, 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN', 401],
    [SessionLimitError, 'FST_REFRESH_AUTH_SESSION_LIMIT', 403],
    [CrossSiteRequestError, 'FST_REFRESH_AUTH_CROSS_SITE', 403],
    [StoreUnavailableError, 'FST_REFRESH_AUTH_STORE_UNAVAILABLE', 503],
    [KeysUnavailableError, 'FST_REFRESH_AUTH_KEYS_UNAVAILABLE', 503],
    [DuplicateCookieError, 'FST_REFRESH_AUTH_DUPLICATE_COOKIE', 400],
    [InvalidClaimsError, 'FST_REFRESH_AUTH_INVALID_CLAIMS', 500],
    [InvalidSubjectError, 'FST_REFRESH_AUTH_INVALID_SUBJECT', 500],
    [CallbackFailedError, 'FST_REFRESH_AUTH_CALLBACK_FAILED', 500],
    [RevocationUnconfirmedError, 'FST_REFRESH_AUTH_REVOCATION_UNCONFIRMED', 503],
    [EventStreamsFullError, 'FST_REFRESH_AUTH_EVENT_STREAMS_FULL', 503],
    [PluginNotRegisteredError, 'FST_REFRESH_AUTH_NOT_REGISTERED', 500],
    [CallbackTimeoutError, 'FST_REFRESH_AUTH_CALLBACK_TIMEOUT', 503],
    // 401 on protected routes; the auth routes answer an invalid proof with 400 (test/dpop-token-endpoint.test.ts)
    [InvalidDpopProofError, 'FST_REFRESH_AUTH_INVALID_DPOP_PROOF', 401],
    [UseDpopNonceError, 'FST_REFRESH_AUTH_USE_DPOP_NONCE', 401],
    [SessionNotFoundError, 'FST_REFRESH_AUTH_SESSION_NOT_FOUND', 404]
  ]
  for (const [ErrorClass, code, status] of table) {
    const error = new ErrorClass()
    t.equal(error.code, code)
    t.equal(error.statusCode, status, code)
    t.ok(error instanceof ErrorClass)
  }
  const timeout = new StoreTimeoutError('rotate timed out after 500ms')
  t.equal(timeout.code, 'FST_REFRESH_AUTH_STORE_TIMEOUT')
  t.equal(timeout.statusCode, 503)
  const option = new InvalidOptionError('secret is missing')
  t.equal(option.code, 'FST_REFRESH_AUTH_INVALID_OPTION')
  t.equal(option.message, 'fastify-refresh-auth: secret is missing')
  const argument = new InvalidArgumentError('revokeSession: sessionId must be a non-empty string')
  t.equal(argument.code, 'FST_REFRESH_AUTH_INVALID_ARGUMENT')
  t.ok(argument instanceof TypeError, 'an argument error is a TypeError, as in Node')
  t.equal(new JwksFetchError('HTTP status 500').code, 'FST_REFRESH_AUTH_JWKS_FETCH_FAILED')
  const conflict = new StoreConflictError('the session was revoked while it was being created')
  t.equal(conflict.code, 'FST_REFRESH_AUTH_STORE_CONFLICT')
  t.equal(conflict.statusCode, 503)
  t.same(Object.values(ErrorCodes).sort(), [...table.map(([, code]) => code), 'FST_REFRESH_AUTH_STORE_TIMEOUT', 'FST_REFRESH_AUTH_INVALID_OPTION',
    'FST_REFRESH_AUTH_INVALID_ARGUMENT', 'FST_REFRESH_AUTH_JWKS_FETCH_FAILED', 'FST_REFRESH_AUTH_STORE_CONFLICT'].sort(), 'ErrorCodes lists every code')
})

t.test('messages replace what clients read, never the code, status or challenge', async t => {
  const app = await buildApp(t, {
    claims: async () => ({ roles: ['user'] }),
    messages: {
      FST_REFRESH_AUTH_INVALID_CREDENTIALS: 'Wrong e-mail or password',
      FST_REFRESH_AUTH_NO_TOKEN: 'Please sign in',
      FST_REFRESH_AUTH_INSUFFICIENT_SCOPE: 'Admins only'
    }
  }, app => {
    app.get('/admin', { preHandler: app.refreshAuth.requireRoles('admin') }, async () => 'ok')
    app.get('/broken', async () => { throw new Error('host bug') })
  })
  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { ...USER, password: 'nope' } })
  t.same(wrong.json(), { statusCode: 401, code: 'FST_REFRESH_AUTH_INVALID_CREDENTIALS', error: 'Unauthorized', message: 'Wrong e-mail or password' })

  const missing = await app.inject({ url: '/private' })
  t.equal(missing.json().message, 'Please sign in')
  t.equal(missing.json().code, 'FST_REFRESH_AUTH_NO_TOKEN')
  t.equal(missing.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth"')

  const { accessToken } = await login(app)
  const admin = await getPrivate(app, accessToken, '/admin')
  t.equal(admin.statusCode, 403)
  t.equal(admin.json().message, 'Admins only')

  const invalid = await refresh(app, 'not.a.token')
  t.equal(invalid.json().message, 'The refresh token is invalid or expired', 'codes without a custom message keep ours')
  const notFound = await app.inject({ url: '/nowhere' })
  t.equal(notFound.statusCode, 404, 'other errors are not touched')
  const broken = await app.inject({ url: '/broken' })
  t.equal(broken.statusCode, 500)
  t.equal(broken.json().message, 'host bug', 'errors without a code are not touched')
  t.equal(new InvalidCredentialsError().message, 'Invalid credentials', 'the classes themselves are unchanged')
})

t.test("the routes' error schema keeps the fields a host's error handler adds", async t => {
  const app = Fastify()
  app.setErrorHandler((error: Error & { statusCode?: number, code?: string }, request, reply) => {
    reply.code(error.statusCode ?? 500).send({ statusCode: error.statusCode, code: error.code, message: error.message, requestId: request.id })
  })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  t.teardown(() => app.close())
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { ...USER, password: 'nope' } })
  t.equal(response.statusCode, 401)
  t.match(response.json(), { code: 'FST_REFRESH_AUTH_INVALID_CREDENTIALS', requestId: /\w/ })
})

t.test('the messages option is validated', async t => {
  const cases: Array<[unknown, RegExp]> = [
    ['text', /messages must be an object/],
    [null, /messages must be an object/],
    [{ FST_REFRESH_AUTH_TYPO: 'x' }, /FST_REFRESH_AUTH_TYPO is not an error code/],
    [{ FST_REFRESH_AUTH_INVALID_OPTION: 'x' }, /FST_REFRESH_AUTH_INVALID_OPTION is not an error code/],
    [{ FST_REFRESH_AUTH_STORE_TIMEOUT: 'x' }, /FST_REFRESH_AUTH_STORE_TIMEOUT is not an error code/],
    [{ FST_REFRESH_AUTH_STORE_CONFLICT: 'x' }, /FST_REFRESH_AUTH_STORE_CONFLICT is not an error code/],
    [{ FST_REFRESH_AUTH_INVALID_ARGUMENT: 'x' }, /FST_REFRESH_AUTH_INVALID_ARGUMENT is not an error code/],
    [{ FST_REFRESH_AUTH_JWKS_FETCH_FAILED: 'x' }, /FST_REFRESH_AUTH_JWKS_FETCH_FAILED is not an error code/],
    [{ FST_REFRESH_AUTH_NO_TOKEN: '' }, /messages.FST_REFRESH_AUTH_NO_TOKEN must be a non-empty string/],
    [{ FST_REFRESH_AUTH_NO_TOKEN: 5 }, /must be a non-empty string/]
  ]
  for (const [messages, message] of cases) {
    await t.rejects(buildApp(t, { messages: messages as Record<string, string> }), { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message })
  }
})
