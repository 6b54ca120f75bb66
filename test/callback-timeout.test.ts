import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Duration, LoginUser } from '../lib/index.js'
import { COOKIE, USER, login, refresh, refreshCookie } from './helpers/app.js'
import { buildLoggedApp, ERROR } from './helpers/logs.js'

// Issue 20, finding 9: a host callback that never settles must not hold a request forever. After
// callbackTimeout the request answers 503 with a code of its own, nothing is issued or rotated, and a
// callback that settles later changes nothing.

const TIMEOUT = { statusCode: 503, code: 'FST_REFRESH_AUTH_CALLBACK_TIMEOUT' }

/** A promise the test settles when it chooses. */
function deferred<T> () {
  let settle!: { resolve: (value: T) => void, reject: (reason: unknown) => void }
  const promise = new Promise<T>((resolve, reject) => { settle = { resolve, reject } })
  return { promise, resolve: (value: T) => settle.resolve(value), reject: (reason: unknown) => settle.reject(reason) }
}

const signIn = (app: FastifyInstance, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers })

const alice = { id: 42, name: 'alice' }

t.test('a login callback that never settles answers 503 after callbackTimeout; settling later starts nothing', async t => {
  for (const callback of ['verifyCredentials', 'claims', 'subject', 'rememberMe'] as const) {
    const late = deferred<unknown>()
    const logins: string[] = []
    const options = {
      callbackTimeout: '1s' as const,
      onLogin: (event: { sessionId: string }) => { logins.push(event.sessionId) },
      [callback]: () => late.promise
    }
    const { app, lines } = await buildLoggedApp(t, options)
    const started = Date.now()
    const response = await signIn(app)
    t.match(response.json(), TIMEOUT, `${callback}: 503 with its own code`)
    t.ok(Date.now() - started >= 900, `${callback}: after the timeout`)
    t.equal(response.headers['set-cookie'], undefined, `${callback}: no cookie`)
    t.ok(lines.some(line => line.level === ERROR && line.callback === callback), `${callback}: logged by name`)
    // the callback answers now, as a working one would
    late.resolve(callback === 'verifyCredentials' ? alice : callback === 'claims' ? { role: 'x' } : callback === 'subject' ? '42' : true)
    await new Promise(resolve => setImmediate(resolve))
    t.same(await app.refreshAuth.listUserSessions('42'), [], `${callback}: no session, then or later`)
    t.same(logins, [], `${callback}: onLogin never fired`)
  }
})

t.test('a loadUser that settles after the 503 rotates nothing: the same refresh token still refreshes once', async t => {
  let pending: ReturnType<typeof deferred<LoginUser | null>> | null = null
  const refreshes: string[] = []
  const { app } = await buildLoggedApp(t, {
    callbackTimeout: 1,
    // strict rotation: had the late answer rotated the token, the next refresh with it would be reuse
    refreshToken: { reuseInterval: 0 },
    loadUser: async () => pending === null ? alice : await pending.promise,
    onRefresh: (event) => { refreshes.push(event.sessionId) }
  })
  const { refreshToken } = await login(app)
  pending = deferred<LoginUser | null>()
  const timedOut = await refresh(app, refreshToken)
  t.match(timedOut.json(), TIMEOUT)
  t.equal(timedOut.headers['set-cookie'], undefined, 'no cookie set or cleared')
  // settles late, and refusing the user: the session must not end either
  const late = pending
  pending = null
  late.resolve(null)
  await new Promise(resolve => setImmediate(resolve))
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 1, 'the session lives on')
  t.same(refreshes, [], 'nothing was refreshed')
  const retried = await refresh(app, refreshToken)
  t.equal(retried.statusCode, 200, 'the token the client holds still refreshes')
  t.not(refreshCookie(retried), refreshToken, 'and rotates now')
  t.equal(refreshes.length, 1)
})

t.test('a loadUser that rejects after the 503 leaves no unhandled rejection and no trace', async t => {
  let pending: ReturnType<typeof deferred<LoginUser | null>> | null = null
  const { app } = await buildLoggedApp(t, { callbackTimeout: '1s', loadUser: async () => pending === null ? alice : await pending.promise })
  const { refreshToken } = await login(app)
  pending = deferred<LoginUser | null>()
  t.match((await refresh(app, refreshToken)).json(), TIMEOUT)
  pending.reject(new Error('the database answered at last, with an error'))
  pending = null
  await new Promise(resolve => setImmediate(resolve))
  t.equal((await refresh(app, refreshToken)).statusCode, 200)
})

t.test('the body transport answers the same', async t => {
  const late = deferred<LoginUser>()
  const { app } = await buildLoggedApp(t, { callbackTimeout: 1, refreshTokenTransport: 'body', verifyCredentials: () => late.promise })
  const response = await signIn(app)
  t.match(response.json(), TIMEOUT)
  t.notOk('refresh_token' in response.json())
  late.resolve(alice)
})

t.test('callbacks that answer in time are not affected, synchronous ones included', async t => {
  const { app } = await buildLoggedApp(t, {
    callbackTimeout: 1,
    verifyCredentials: () => alice,
    claims: async () => ({ name: 'alice' }),
    rememberMe: () => false,
    loadUser: async () => alice
  })
  const { response, refreshToken } = await login(app)
  t.equal(response.statusCode, 200)
  const { app: refusing } = await buildLoggedApp(t, { callbackTimeout: 1, verifyCredentials: () => null })
  t.equal((await signIn(refusing)).json().code, 'FST_REFRESH_AUTH_INVALID_CREDENTIALS', 'a synchronous null is an answer too')
  t.equal((await refresh(app, refreshToken)).statusCode, 200)
  t.equal(COOKIE, '__Secure-refresh_token')
})

t.test('callbackTimeout is a duration, 10 seconds by default, at most an hour', async t => {
  const invalid = { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /callbackTimeout/ }
  // 'soon' does not compile: a JavaScript caller's value, refused at run time
  for (const callbackTimeout of [0, -1, 'soon' as Duration, '2h', 86_400 * 30] satisfies Duration[]) {
    await t.rejects(buildLoggedApp(t, { callbackTimeout }), invalid, String(callbackTimeout))
  }
  const late = deferred<LoginUser>()
  const { app } = await buildLoggedApp(t, { verifyCredentials: () => late.promise })
  const answered = signIn(app).then(response => response.json())
  // nothing before ten seconds: after 1.5 s the login is still waiting
  const early = await Promise.race([answered, new Promise(resolve => setTimeout(resolve, 1500, 'waiting'))])
  t.equal(early, 'waiting')
  late.resolve(alice)
  t.equal((await answered).token_type, 'Bearer', 'answered once the callback settled, within the default')
})
