import { connect } from 'node:http2'
import Fastify from 'fastify'
import t from 'tap'
import fastifyRefreshAuth, { MemoryStore, RedisStore, type FastifyRefreshAuthOptions, type SessionEndEvent, type SessionStore } from '../lib/index.js'
import { COOKIE, SECRET, USER, verifyCredentials } from './helpers/app.js'
import { ENDED, listen, openStream, post, reasonOf, signIn } from './helpers/event-stream.js'
import { redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'

// GET {prefix}/events, the session-ended push, and app.refreshAuth.onSessionEnd, spoken to over real HTTP
// (the stream is read while it is open). Every end on another instance: test/session-ends-across-instances.test.ts.

// real timers (backoff, token lifetimes of seconds): more than the default 30 s on a busy machine

t.test('the stream: 401 without a token, an event-stream with a heartbeat, and request.user.sid names the session', async t => {
  const { app, url } = await listen(t, { events: { heartbeatInterval: 1 } })
  const none = await fetch(url + '/auth/events')
  t.equal(none.status, 401)
  t.equal(none.headers.get('www-authenticate'), 'Bearer realm="fastify-refresh-auth"')
  const bad = await fetch(url + '/auth/events', { headers: { authorization: 'Bearer nope' } })
  t.equal(bad.status, 401)
  t.equal((await bad.json() as { code: string }).code, 'FST_REFRESH_AUTH_INVALID_TOKEN')

  const { accessToken } = await signIn(url)
  const stream = await openStream(t, url, accessToken)
  t.equal(stream.response.status, 200)
  t.equal(stream.response.headers.get('content-type'), 'text/event-stream')
  t.equal(stream.response.headers.get('cache-control'), 'no-store')
  const { text, ended } = await stream.until(/: heartbeat\n\n/)
  t.notOk(ended, 'still open after a heartbeat')
  t.match(text, /^: open\n\n/)
  const sessions = await app.refreshAuth.listUserSessions(42)
  t.equal(sessions.length, 1)
  const sid = JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid
  t.equal(sessions[0].sessionId, sid, 'the sid claim, request.user.sid, names the session')
})

t.test('a logout ends the stream with reason logout, and onSessionEnd hears it once, with the user', async t => {
  const { app, url } = await listen(t, { events: true })
  const heard: SessionEndEvent[] = []
  const stop = app.refreshAuth.onSessionEnd(event => heard.push(event))
  const { accessToken, cookie } = await signIn(url)
  const stream = await openStream(t, url, accessToken)
  t.equal((await post(url, '/auth/logout', cookie)).status, 204)
  // until() fails the test when the event never comes; how fast it comes is bench/push.mjs's to measure
  const { text } = await stream.until(ENDED)
  t.equal(reasonOf(text), 'logout')
  t.equal(heard.length, 1)
  t.match(heard[0], { userId: '42', reason: 'logout' })
  t.equal((await stream.until(/(?!)/)).ended, true, 'and the stream closes')
  stop()
  const again = await signIn(url)
  await post(url, '/auth/logout', again.cookie)
  t.equal(heard.length, 1, 'an unsubscribed listener hears nothing more')
})

t.test('every way a session ends has its reason', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  let refuse = false
  const { app, url } = await listen(t, {
    store,
    maxSessionsPerUser: 2,
    loadUser: async (id) => refuse ? null : { id },
    refreshToken: { reuseInterval: 0 }
  })
  const heard: SessionEndEvent[] = []
  app.refreshAuth.onSessionEnd(event => heard.push(event))
  const listener = (): never => { throw new Error('a listener that throws changes nothing') }
  app.refreshAuth.onSessionEnd(listener)
  process.removeAllListeners('warning')
  const warned: Error[] = []
  process.on('warning', (warning) => warned.push(warning))

  async function ends (what: string, reason: string, act: (session: { accessToken: string, cookie: string }) => Promise<unknown>): Promise<void> {
    const session = await signIn(url)
    const stream = await openStream(t, url, session.accessToken)
    t.equal(stream.response.status, 200)
    await act(session)
    const { text } = await stream.until(ENDED)
    t.equal(reasonOf(text), reason, what)
  }

  await ends('reuse', 'reuse', async ({ cookie }) => {
    t.equal((await post(url, '/auth/refresh', cookie)).status, 200)
    t.equal((await post(url, '/auth/refresh', cookie)).status, 401)
  })
  await ends('revokeSession', 'revoked', async ({ accessToken }) => {
    await app.refreshAuth.revokeSession(JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid)
  })
  await ends('revokeUserSessions', 'revoked', () => app.refreshAuth.revokeUserSessions(42))
  await ends('logout of another session with all', 'revoked', async () => {
    const other = await signIn(url)
    await post(url, '/auth/logout', other.cookie, { all: true })
  })
  await ends('logout with all', 'logout', ({ cookie }) => post(url, '/auth/logout', cookie, { all: true }))
  await ends('logout of another session with others', 'revoked', async () => {
    const other = await signIn(url)
    await post(url, '/auth/logout', other.cookie, { others: true })
  })
  await ends('revokeOtherSessions', 'revoked', async () => {
    const other = await signIn(url)
    const sid = JSON.parse(Buffer.from(other.accessToken.split('.')[1], 'base64url').toString()).sid
    await app.refreshAuth.revokeOtherSessions(42, sid)
  })
  await app.refreshAuth.revokeUserSessions(42)
  await ends('loadUser refusal', 'revoked', async ({ cookie }) => {
    refuse = true
    t.equal((await post(url, '/auth/refresh', cookie)).status, 401)
    refuse = false
  })
  await ends('a login at maxSessionsPerUser', 'revoked', async () => {
    await signIn(url)
    await signIn(url)
  })
  await app.refreshAuth.revokeUserSessions(42)
  await ends('a login that replaces the session', 'revoked', ({ cookie }) => fetch(url + '/auth/login', {
    method: 'POST', headers: { 'content-type': 'application/json', cookie: `${COOKIE}=${cookie}` }, body: JSON.stringify(USER)
  }))
  t.ok(heard.every(event => event.userId === '42'), 'every event names the user')
  t.ok(heard.some(event => event.reason === 'reuse'))
  t.ok(warned.length > 0, 'the throwing listener was reported as a warning')
})

t.test('an instance that starts later is not told of the ends from before it started', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const first = await listen(t, { store })
  const { cookie } = await signIn(first.url)
  await post(first.url, '/auth/logout', cookie)
  const heard: SessionEndEvent[] = []
  await listen(t, { store }, app => { app.refreshAuth.onSessionEnd(event => heard.push(event)) })
  await new Promise(resolve => setTimeout(resolve, 400))
  t.same(heard, [])
  const second = await signIn(first.url)
  await post(first.url, '/auth/logout', second.cookie)
  for (let i = 0; i < 100 && heard.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
  t.match(heard, [{ reason: 'logout', userId: '42' }], 'but of those after (heard from the shared store, with the user and the reason)')
})

t.test('the stream closes when its access token expires', async t => {
  const { url } = await listen(t, { accessToken: { expiresIn: 2 } })
  const { accessToken } = await signIn(url)
  const started = Date.now()
  const stream = await openStream(t, url, accessToken)
  const { text, ended } = await stream.until(/(?!)/)
  t.equal(ended, true)
  t.notMatch(text, ENDED, 'no session-ended: the session lives on')
  t.ok(Date.now() - started >= 500, 'open until about the token expired')
})

t.test('over events.maxStreams: 503 EVENT_STREAMS_FULL; a closed stream frees its place', async t => {
  const { url } = await listen(t, { events: { maxStreams: 1 } })
  const { accessToken } = await signIn(url)
  const first = await openStream(t, url, accessToken)
  t.equal(first.response.status, 200)
  const second = await openStream(t, url, accessToken)
  t.equal(second.response.status, 503)
  t.equal((await second.response.json() as { code: string }).code, 'FST_REFRESH_AUTH_EVENT_STREAMS_FULL')
  first.cancel()
  let status = 503
  for (let i = 0; i < 100 && status === 503; i++) {
    const next = await fetch(url + '/auth/events', { headers: { authorization: `Bearer ${accessToken}` } })
    status = next.status
    await next.body?.cancel()
  }
  t.equal(status, 200, 'the place is free again')
})

t.test('404 without a revocation feed, or with events: false; invalid options refused', async t => {
  const memory = new MemoryStore()
  t.teardown(() => memory.close())
  const feedless: SessionStore = {
    create: (...args) => memory.create(...args),
    rotate: (...args) => memory.rotate(...args),
    present: (...args) => memory.present(...args),
    revoke: (...args) => memory.revoke(...args),
    revokeUser: (...args) => memory.revokeUser(...args),
    revokeOtherSessions: (...args) => memory.revokeOtherSessions(...args),
    listUserSessions: (...args) => memory.listUserSessions(...args)
  }
  for (const options of [{ store: feedless }, { events: false }, { accessToken: { revocation: false } }] as Array<Partial<FastifyRefreshAuthOptions>>) {
    const { app, url } = await listen(t, options)
    const heard: SessionEndEvent[] = []
    app.refreshAuth.onSessionEnd(event => heard.push(event))
    const { accessToken, cookie } = await signIn(url)
    const response = await fetch(url + '/auth/events', { headers: { authorization: `Bearer ${accessToken}` } })
    t.equal(response.status, 404)
    await post(url, '/auth/logout', cookie)
    t.match(heard, [{ reason: 'logout', userId: '42' }], 'onSessionEnd still hears this instance\'s ends')
  }
  for (const events of [7, null, { maxStreams: 0 }, { maxStreams: 1.5 }, { heartbeatInterval: 0 }]) {
    await t.rejects(listen(t, { events } as never), { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /events/ })
  }
})

t.test('a session that ends while a host hook runs, after the authentication: the stream says so at once', async t => {
  const { url } = await listen(t, {}, app => {
    app.addHook('preHandler', async (request) => {
      if (request.headers['x-end-it'] === 'yes') await app.refreshAuth.revokeSession((request.user as { sid: string }).sid)
    })
  })
  const { accessToken } = await signIn(url)
  const response = await fetch(url + '/auth/events', { headers: { authorization: `Bearer ${accessToken}`, 'x-end-it': 'yes' } })
  t.equal(response.status, 200)
  const text = await response.text()
  t.equal(reasonOf(text), 'revoked')
})

t.test('HTTP/2: the stream without a Connection header', async t => {
  const app = Fastify({ http2: true })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  await app.ready()
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  const accessToken = login.json().access_token
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const client = connect(url)
  t.teardown(() => client.close())
  const request = client.request({ ':path': '/auth/events', authorization: `Bearer ${accessToken}` })
  const headers = await new Promise<Record<string, unknown>>(resolve => request.once('response', resolve))
  t.equal(headers[':status'], 200)
  t.equal(headers.connection, undefined)
  t.equal(headers['content-type'], 'text/event-stream')
  const sid = JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid
  let text = ''
  request.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
  const ended = new Promise(resolve => request.once('end', resolve))
  await app.refreshAuth.revokeSession(sid)
  await ended
  t.equal(reasonOf(text), 'revoked')
})

t.test('the app closes with streams open', async t => {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const { accessToken } = await signIn(url)
  const stream = await openStream(t, url, accessToken)
  await app.close()
  t.equal((await stream.until(/(?!)/)).ended, true)
})

t.test('Redis: an end on another instance reaches the stream, and onSessionEnd on both', async t => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const clients = [redisClient(t, prefix), redisClient(t, null)]
  const [a, b] = await Promise.all(clients.map(client => listen(t, { store: new RedisStore({ client, prefix }) })))
  const heardA: SessionEndEvent[] = []
  const heardB: SessionEndEvent[] = []
  a.app.refreshAuth.onSessionEnd(event => heardA.push(event))
  b.app.refreshAuth.onSessionEnd(event => heardB.push(event))

  const session = await signIn(a.url)
  const stream = await openStream(t, b.url, session.accessToken)
  t.equal(stream.response.status, 200)
  t.equal((await post(a.url, '/auth/logout', session.cookie)).status, 204)
  let { text } = await stream.until(ENDED)
  t.equal(reasonOf(text), 'logout', 'another instance\'s end comes with its reason')

  const second = await signIn(b.url)
  const streamOnB = await openStream(t, b.url, second.accessToken)
  await a.app.refreshAuth.revokeUserSessions(42);
  ({ text } = await streamOnB.until(ENDED))
  t.equal(reasonOf(text), 'revoked')
  for (let i = 0; i < 100 && heardB.length < 2; i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.match(heardA, [{ reason: 'logout', userId: '42' }, { reason: 'revoked', userId: '42' }])
  t.match(heardB, [{ reason: 'logout', userId: '42' }, { reason: 'revoked', userId: '42' }], 'B hears the user and the reason')
})

t.test('accessToken.revocation false: onSessionEnd still hears what this instance ends; the sessions are listed only for a listener', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  let listings = 0
  const list = store.listUserSessions.bind(store)
  store.listUserSessions = async (userId, now) => { listings++; return await list(userId, now) }
  const { app, url } = await listen(t, { store, accessToken: { revocation: false } })
  await signIn(url)
  await app.refreshAuth.revokeUserSessions(42)
  t.equal(listings, 0, 'nobody listens: nothing listed')
  const heard: SessionEndEvent[] = []
  app.refreshAuth.onSessionEnd(event => heard.push(event))
  const sessions = [await signIn(url), await signIn(url)]
  await app.refreshAuth.revokeUserSessions(42)
  t.equal(listings, 1)
  t.same(heard.map(event => event.sessionId).sort(), sessions.map(s => JSON.parse(Buffer.from(s.accessToken.split('.')[1], 'base64url').toString()).sid).sort())
  t.ok(heard.every(event => event.userId === '42' && event.reason === 'revoked'))
})
