import Fastify from 'fastify'
import jwt from 'jsonwebtoken'
import t from 'tap'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions, type LogoutEvent } from '../lib/index.js'
import { SECRET, buildApp, getPrivate, login, refresh, refreshCookie, setCookies, COOKIE, verifyCredentials } from './helpers/app.js'
import { logLines } from './helpers/feed-store.js'

interface Account { id: number, roles: string[], disabled?: boolean }

/** A user table the test edits, and loadUser / claims over it. */
function accounts () {
  const users = new Map<string, Account>([['42', { id: 42, roles: ['reader'] }]])
  const calls: Array<[string, string]> = []
  let failure: Error | null = null
  return {
    users,
    calls,
    fail (err: Error | null) { failure = err },
    options: {
      // the login finds the user in the table too
      verifyCredentials: async (request: { body: unknown }) => (await verifyCredentials(request)) === null ? null : users.get('42'),
      claims: (user: unknown) => ({ roles: (user as Account).roles }),
      loadUser: async (userId: string, request: { url: string }) => {
        calls.push([userId, request.url])
        if (failure !== null) throw failure
        const user = users.get(userId)
        return user === undefined || user.disabled === true ? null : user
      }
    } as Partial<FastifyRefreshAuthOptions>
  }
}

function rolesOf (token: string): unknown {
  return (jwt.decode(token) as jwt.JwtPayload).roles
}

t.test('loadUser is asked at every refresh (not at login), and the claims come from the user it loads', async (t) => {
  const table = accounts()
  const app = await buildApp(t, table.options)
  const session = await login(app)
  t.same(table.calls, [], 'not at login')
  t.same(rolesOf(session.accessToken), ['reader'])
  table.users.set('42', { id: 42, roles: ['reader', 'admin'] })
  const first = await refresh(app, session.refreshToken)
  t.equal(first.statusCode, 200)
  t.same(table.calls, [['42', '/auth/refresh']], 'with the token\'s sub and the request')
  t.same(rolesOf(first.json().access_token), ['reader', 'admin'], 'a role change shows at the next refresh')
  table.users.set('42', { id: 42, roles: [] })
  const second = await refresh(app, refreshCookie(first))
  t.same(rolesOf(second.json().access_token), [], 'and is kept in the session from then on')
  t.equal(table.calls.length, 2)
})

t.test('loadUser without a claims option: access tokens carry no extra claims', async (t) => {
  const table = accounts()
  const app = await buildApp(t, { loadUser: table.options.loadUser })
  const session = await login(app)
  const next = await refresh(app, session.refreshToken)
  t.equal(next.statusCode, 200)
  t.equal(rolesOf(next.json().access_token), undefined)
  t.same(table.calls.map(([userId]) => userId), ['42'])
})

t.test('without loadUser a refresh copies the login\'s claims', async (t) => {
  const roles = ['reader']
  const app = await buildApp(t, { claims: () => ({ roles: [...roles] }) })
  const session = await login(app)
  roles.push('admin')
  const next = await refresh(app, session.refreshToken)
  t.same(rolesOf(next.json().access_token), ['reader'])
})

t.test('loadUser resolving to null or undefined ends the session everywhere: 401, tokens refused, onLogout says why', async (t) => {
  for (const refusal of [null, undefined]) {
    const table = accounts()
    const events: LogoutEvent[] = []
    const app = await buildApp(t, {
      ...table.options,
      loadUser: async () => refusal,
      onLogout: (event) => { events.push(event) }
    })
    const session = await login(app)
    const other = await login(app)
    const response = await refresh(app, session.refreshToken)
    t.equal(response.statusCode, 401, `${String(refusal)}: 401`)
    t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN', 'the one refusal')
    t.equal(setCookies(response).find(c => c.name === COOKIE)?.value, '', 'the cookie is cleared')
    t.equal((await getPrivate(app, session.accessToken)).statusCode, 401, 'the session\'s access token is refused')
    t.same(events, [{ userId: '42', sessionId: JSON.parse(Buffer.from(session.refreshToken.split('.')[1], 'base64url').toString()).sid, all: false, others: false, reason: 'user-refused' }])
    t.equal((await getPrivate(app, other.accessToken)).statusCode, 200, 'another session lives until its own refresh')
    t.equal((await refresh(app, other.refreshToken)).statusCode, 401, 'which ends it too')
  }
})

t.test('a disabled account can no longer refresh; enabled again, a new login works', async (t) => {
  const table = accounts()
  const app = await buildApp(t, table.options)
  const session = await login(app)
  table.users.get('42')!.disabled = true
  t.equal((await refresh(app, session.refreshToken)).statusCode, 401)
  table.users.get('42')!.disabled = false
  t.equal((await refresh(app, session.refreshToken)).statusCode, 401, 'the ended session stays ended')
  const again = await login(app)
  t.equal((await refresh(app, again.refreshToken)).statusCode, 200)
})

t.test('loadUser throwing answers 503 like a store failure, logged, and leaves the session intact', async (t) => {
  const table = accounts()
  const { stream, lines } = logLines()
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, ...table.options, refreshToken: { reuseInterval: 0 } })
  app.get('/private', { preHandler: app.authenticate }, async () => 'ok')
  t.teardown(() => app.close())
  const session = await login(app)
  for (const err of [new Error('users db: connection refused password=hunter2'), Object.assign(new Error('not found'), { statusCode: 404 })]) {
    table.fail(err)
    const response = await refresh(app, session.refreshToken)
    t.equal(response.statusCode, 503, `${err.message}: 503`)
    t.same(response.json(), { statusCode: 503, code: 'FST_REFRESH_AUTH_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'Session store unavailable, try again later' })
    t.equal(response.headers['set-cookie'], undefined, 'nothing issued, nothing cleared')
    t.notOk(response.body.includes('hunter2'))
  }
  const logged = lines.filter(line => line.level === 50 && /loadUser callback failed/.test(line.msg))
  t.equal(logged.length, 2, 'each failure logged at error for the operator')
  t.match(logged[0], { err: { message: /connection refused/ } })
  t.notOk(JSON.stringify(lines).includes(session.refreshToken), 'never the token')
  t.equal((await getPrivate(app, session.accessToken)).statusCode, 200, 'the session was not ended')
  table.fail(null)
  // strict reuse interval: had a failed attempt rotated the token, this retry would be reuse
  const retried = await refresh(app, session.refreshToken)
  t.equal(retried.statusCode, 200, 'the same cookie refreshes once loadUser works again')
})

t.test('loadUser is not asked for a token that fails its checks, or for a session known to have ended', async (t) => {
  const table = accounts()
  const app = await buildApp(t, table.options)
  t.equal((await refresh(app, 'not.a.token')).statusCode, 401)
  const session = await login(app)
  await app.refreshAuth.revokeSession(JSON.parse(Buffer.from(session.refreshToken.split('.')[1], 'base64url').toString()).sid)
  t.equal((await refresh(app, session.refreshToken)).statusCode, 401)
  t.same(table.calls, [])
})

t.test('loadUser must be a function', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, loadUser: 'users' } as unknown as FastifyRefreshAuthOptions).ready() },
    { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /loadUser must be a function/ })
})
