import Fastify, { type FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import { setImmediate as tick } from 'node:timers/promises'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { MemoryStore, type FastifyRefreshAuthOptions, type SessionStore } from '../lib/index.js'
import { COOKIE, SECRET, USER, buildApp, login, logout, refresh, refreshCookie, verifyCredentials } from './helpers/app.js'

/** An app whose error logs are collected in `logs`. */
async function appWithLogs (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}) {
  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      logs.push(JSON.parse(String(chunk)))
      done()
    }
  })
  const app = Fastify({ logger: { level: 'warn', stream } })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, ...options } as FastifyRefreshAuthOptions)
  await app.ready()
  t.teardown(() => app.close())
  return { app, logs }
}

async function loginAs (app: FastifyInstance, userAgent: string) {
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { 'user-agent': userAgent } })
  return { accessToken: response.json().access_token as string, refreshToken: refreshCookie(response) as string }
}

function sessionIdOf (token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid
}

t.test('listUserSessions shows each device without token ids, refreshed times included', async (t) => {
  const app = await buildApp(t)
  const laptop = await loginAs(app, 'Laptop browser')
  await loginAs(app, 'Phone app')
  const before = Date.now()
  const refreshed = await refresh(app, laptop.refreshToken)
  t.equal(refreshed.statusCode, 200)

  const sessions = await app.refreshAuth.listUserSessions('42')
  t.equal(sessions.length, 2)
  sessions.sort((a, b) => String(a.userAgent).localeCompare(String(b.userAgent)))
  t.same(sessions.map(s => [s.userId, s.userAgent, s.ip]), [['42', 'Laptop browser', '127.0.0.1'], ['42', 'Phone app', '127.0.0.1']])
  t.equal(sessions[0].sessionId, sessionIdOf(laptop.refreshToken))
  t.ok(sessions[0].lastRefreshedAt >= before, 'the laptop refreshed')
  t.ok(sessions[0].createdAt <= before)
  for (const session of sessions) {
    t.same(Object.keys(session).sort(), ['absoluteExpiresAt', 'createdAt', 'device', 'expiresAt', 'ip', 'lastRefreshedAt', 'lastSeenAt', 'sessionId', 'userAgent', 'userId'])
    t.equal(session.lastSeenAt, session.lastRefreshedAt, 'last seen: the last refresh')
    t.same(session.device, { browser: null, os: null, type: null }, 'a User-Agent that names no browser says nothing')
  }
  t.same(await app.refreshAuth.listUserSessions('nobody'), [])
})

t.test('a long User-Agent is stored cut to 256 characters', async (t) => {
  const app = await buildApp(t)
  await loginAs(app, 'x'.repeat(5000))
  const [session] = await app.refreshAuth.listUserSessions('42')
  t.equal(session.userAgent, 'x'.repeat(256))
})

t.test('revokeSession ends one session, revokeUserSessions all of them', async (t) => {
  const app = await buildApp(t)
  const first = await login(app)
  const second = await login(app)
  const third = await login(app)
  await app.refreshAuth.revokeSession(sessionIdOf(first.refreshToken))
  t.equal((await refresh(app, first.refreshToken)).statusCode, 401)
  const next = await refresh(app, second.refreshToken)
  t.equal(next.statusCode, 200)
  t.equal((await app.refreshAuth.listUserSessions('42')).length, 2)

  await app.refreshAuth.revokeUserSessions('42')
  t.equal((await refresh(app, refreshCookie(next))).statusCode, 401)
  t.equal((await refresh(app, third.refreshToken)).statusCode, 401)
  t.same(await app.refreshAuth.listUserSessions('42'), [])
})

t.test('a numeric user id names the same user as its sub, as the default subject makes it', async (t) => {
  const app = await buildApp(t) // verifyCredentials answers { id: 42 }: sub '42'
  const { refreshToken } = await login(app)
  t.equal((await app.refreshAuth.listUserSessions(42)).length, 1)
  await app.refreshAuth.revokeUserSessions(42)
  t.same(await app.refreshAuth.listUserSessions('42'), [])
  t.equal((await refresh(app, refreshToken)).statusCode, 401, 'the session is over')
})

t.test('session management refuses ids that are neither a non-empty string nor a finite number', async (t) => {
  const app = await buildApp(t)
  const argument = (message: RegExp) => ({ code: 'FST_REFRESH_AUTH_INVALID_ARGUMENT', message })
  await t.rejects(app.refreshAuth.revokeSession('' as string), argument(/revokeSession: sessionId must be a non-empty string/))
  await t.rejects(app.refreshAuth.revokeSession(42 as unknown as string), argument(/sessionId must be a non-empty string/))
  for (const id of ['', NaN, Infinity, undefined, null, {}, true, 'u'.repeat(257)]) {
    await t.rejects(app.refreshAuth.revokeUserSessions(id as string), argument(/revokeUserSessions: userId must be a non-empty string or a finite number/), `revokeUserSessions(${String(id)})`)
    await t.rejects(app.refreshAuth.listUserSessions(id as string), argument(/listUserSessions: userId must be a non-empty string or a finite number/), `listUserSessions(${String(id)})`)
  }
})

t.test('session management fails closed with a 503 error when the store fails, and logs it', async (t) => {
  const broken = new MemoryStore()
  t.teardown(() => broken.close())
  const failure = async () => { throw new Error('database down') }
  Object.assign(broken, { revoke: failure, revokeUser: failure, listUserSessions: failure })
  const { app, logs } = await appWithLogs(t, { store: broken as SessionStore })
  const unavailable = { code: 'FST_REFRESH_AUTH_STORE_UNAVAILABLE', statusCode: 503 }
  await t.rejects(app.refreshAuth.revokeSession('s'), unavailable)
  await t.rejects(app.refreshAuth.revokeUserSessions('u'), unavailable)
  await t.rejects(app.refreshAuth.listUserSessions('u'), unavailable)
  t.equal(logs.filter(line => line.msg === 'fastify-refresh-auth: session store failed').length, 3)
})

t.test('POST /auth/logout with { "all": true } ends every session of the user', async (t) => {
  const app = await buildApp(t)
  const first = await login(app)
  const second = await login(app)
  const response = await app.inject({ method: 'POST', url: '/auth/logout', payload: { all: true }, headers: { cookie: `${COOKIE}=${first.refreshToken}` } })
  t.equal(response.statusCode, 204)
  t.equal(refreshCookie(response), undefined, 'the cookie is cleared')
  t.equal((await refresh(app, first.refreshToken)).statusCode, 401)
  t.equal((await refresh(app, second.refreshToken)).statusCode, 401)
})

t.test('POST /auth/logout without all (or with all not exactly true) ends only that session', async (t) => {
  const app = await buildApp(t)
  const first = await login(app)
  const second = await login(app)
  const third = await login(app)
  const response = await app.inject({ method: 'POST', url: '/auth/logout', payload: { all: 'yes' }, headers: { cookie: `${COOKIE}=${first.refreshToken}` } })
  t.equal(response.statusCode, 204)
  t.equal((await logout(app, second.refreshToken)).statusCode, 204)
  t.equal((await refresh(app, first.refreshToken)).statusCode, 401)
  t.equal((await refresh(app, second.refreshToken)).statusCode, 401)
  t.equal((await refresh(app, third.refreshToken)).statusCode, 200)
})

t.test('logout everywhere with an invalid token revokes nothing', async (t) => {
  const app = await buildApp(t)
  const session = await login(app)
  const response = await app.inject({ method: 'POST', url: '/auth/logout', payload: { all: true }, headers: { cookie: `${COOKIE}=not-a-token` } })
  t.equal(response.statusCode, 204)
  t.equal((await refresh(app, session.refreshToken)).statusCode, 200)
})

t.test('audit hooks receive ids and the request, never a token', async (t) => {
  const events: Array<[string, Record<string, unknown>, string | undefined]> = []
  const hook = (name: string) => (event: object, request: { headers: Record<string, unknown> }) => {
    events.push([name, { ...event }, request.headers['user-agent'] as string | undefined])
  }
  const app = await buildApp(t, {
    onLogin: hook('login'),
    onRefresh: hook('refresh'),
    onLogout: hook('logout'),
    onReuseDetected: hook('reuse'),
    refreshToken: { reuseInterval: 0 }
  })
  const first = await loginAs(app, 'UA-1')
  const sid = sessionIdOf(first.refreshToken)
  const rotated = await refresh(app, first.refreshToken, { 'user-agent': 'UA-2' })
  t.equal(rotated.statusCode, 200)
  t.equal((await refresh(app, first.refreshToken)).statusCode, 401, 'replay')
  const second = await login(app)
  t.equal((await logout(app, second.refreshToken)).statusCode, 204)
  const third = await login(app)
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { all: true }, headers: { cookie: `${COOKIE}=${third.refreshToken}` } })

  t.same(events, [
    ['login', { userId: '42', sessionId: sid }, 'UA-1'],
    ['refresh', { userId: '42', sessionId: sid }, 'UA-2'],
    ['reuse', { userId: '42', sessionId: sid }, 'lightMyRequest'],
    ['login', { userId: '42', sessionId: sessionIdOf(second.refreshToken) }, 'lightMyRequest'],
    ['logout', { userId: '42', sessionId: sessionIdOf(second.refreshToken), all: false, others: false, reason: 'logout' }, 'lightMyRequest'],
    ['login', { userId: '42', sessionId: sessionIdOf(third.refreshToken) }, 'lightMyRequest'],
    ['logout', { userId: '42', sessionId: sessionIdOf(third.refreshToken), all: true, others: false, reason: 'logout' }, 'lightMyRequest']
  ])
  const seen = JSON.stringify(events)
  for (const token of [first.refreshToken, first.accessToken, second.refreshToken, refreshCookie(rotated) as string]) {
    t.notOk(seen.includes(token), 'no token reaches a hook')
  }
})

t.test('a hook that throws or rejects changes no response and is logged without tokens', async (t) => {
  const { app, logs } = await appWithLogs(t, {
    onLogin: () => { throw new Error('audit sink down') },
    onRefresh: async () => { throw new Error('audit sink rejected') },
    onLogout: async () => {},
    onReuseDetected: () => {},
    refreshToken: { reuseInterval: 0 }
  })
  const session = await login(app)
  const rotated = await refresh(app, session.refreshToken)
  t.equal(rotated.statusCode, 200)
  t.equal((await refresh(app, session.refreshToken)).statusCode, 401)
  t.equal((await logout(app, refreshCookie(rotated))).statusCode, 204)
  await tick()
  const failures = logs.filter(line => line.msg === 'fastify-refresh-auth: an audit hook failed')
  t.same(failures.map(line => [line.hook, (line.err as { message: string }).message]), [
    ['onLogin', 'audit sink down'],
    ['onRefresh', 'audit sink rejected']
  ])
  const logged = JSON.stringify(logs)
  t.notOk(logged.includes(session.refreshToken) || logged.includes(session.accessToken), 'no token in the logs')
})

t.test('hook options must be functions; a store must implement the whole interface', async (t) => {
  for (const name of ['onLogin', 'onRefresh', 'onLogout', 'onReuseDetected']) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, [name]: 'yes' } as FastifyRefreshAuthOptions).ready() },
      { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: new RegExp(`${name} must be a function`) })
  }
  const partial = { create: async () => {}, rotate: async () => ({ outcome: 'not-found' }), revoke: async () => {} }
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store: partial as unknown as SessionStore }).ready() },
    { message: /store must implement create\(\), rotate\(\), present\(\), revoke\(\), revokeUser\(\), revokeOtherSessions\(\), listUserSessions\(\); missing: present\(\), revokeUser\(\), revokeOtherSessions\(\), listUserSessions\(\)/ })
})

t.test('session management works on an app without routes that shares the store', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const auth = await buildApp(t, { store })
  const admin = Fastify()
  await admin.register(fastifyRefreshAuth, { secret: SECRET, routes: false, store })
  t.teardown(() => admin.close())
  const session = await login(auth)
  t.equal((await admin.refreshAuth.listUserSessions('42')).length, 1)
  await admin.refreshAuth.revokeUserSessions('42')
  t.equal((await refresh(auth, session.refreshToken)).statusCode, 401)
})
