import { SpanStatusCode, type Attributes } from '@opentelemetry/api'
import { DataPointType } from '@opentelemetry/sdk-metrics'
import Fastify from 'fastify'
import fastifyPlugin from 'fastify-plugin'
import jwt from 'jsonwebtoken'
import t from 'tap'
import { MemoryStore } from '../lib/index.js'
import type { RotateRequest } from '../lib/store.js'
import { importOptional } from '../lib/telemetry/load-api.js'
import { COOKIE, SECRET, USER, buildApp, derivedKey, getPrivate, login, logout, refresh, refreshCookie, verifyCredentials } from './helpers/app.js'
import { ControlledFeedStore, sessionIdOf } from './helpers/feed-store.js'
import { TelemetryCapture } from './helpers/telemetry.js'

// The host's providers, registered before any app, as the Node SDK does at start-up.
const capture = new TelemetryCapture()
t.teardown(() => capture.shutdown())

/** How much a counter (or a histogram's count) with these attributes grew while `action` ran. */
async function growth (name: string, attributes: Attributes, action: () => Promise<unknown>): Promise<number> {
  const count = async (): Promise<number> => {
    const point = (await capture.points(name)).find(p => JSON.stringify(p.attributes) === JSON.stringify(attributes))
    return point?.count ?? point?.value ?? 0
  }
  const before = await count()
  await action()
  return await count() - before
}

function spansNamed (name: string): ReturnType<typeof capture.spans> {
  return capture.spans().filter(span => span.name === name)
}

t.test('each instrument has the shape of the contract', async (t) => {
  const app = await buildApp(t)
  const session = await login(app)
  await refresh(app, session.refreshToken)
  await logout(app, refreshCookie(await refresh(app, session.refreshToken)))
  for (const name of ['refresh_auth.logins', 'refresh_auth.refreshes', 'refresh_auth.sessions.ended']) {
    t.same(await capture.shape(name), { unit: '', dataPointType: DataPointType.SUM, isMonotonic: true }, `${name}: a monotonic sum`)
  }
  t.same(await capture.shape('refresh_auth.store.duration'), { unit: 'ms', dataPointType: DataPointType.HISTOGRAM })
  t.same(await capture.shape('refresh_auth.sessions.active'), { unit: '', dataPointType: DataPointType.GAUGE })
})

t.test('logins: success, invalid_credentials, limit_refused and error, each in a refresh_auth.login span', async (t) => {
  const app = await buildApp(t, { maxSessionsPerUser: 1, onSessionLimit: 'refuse' })
  const failing = await buildApp(t, { verifyCredentials: async () => { throw new Error('directory down') } })
  const post = (target = app, payload: object = USER) => target.inject({ method: 'POST', url: '/auth/login', payload })
  capture.resetSpans()
  t.equal(await growth('refresh_auth.logins', { outcome: 'success' }, () => post()), 1)
  t.equal(await growth('refresh_auth.logins', { outcome: 'limit_refused' }, async () => t.equal((await post()).statusCode, 403)), 1)
  t.equal(await growth('refresh_auth.logins', { outcome: 'invalid_credentials' }, async () =>
    t.equal((await post(app, { ...USER, password: 'wrong' })).statusCode, 401)), 1)
  t.equal(await growth('refresh_auth.logins', { outcome: 'error' }, async () => t.ok((await post(failing)).statusCode >= 500)), 1)
  const spans = spansNamed('refresh_auth.login')
  t.same(spans.map(span => span.attributes.outcome), ['success', 'limit_refused', 'invalid_credentials', 'error'])
  t.same(spans.map(span => span.status.code), [SpanStatusCode.UNSET, SpanStatusCode.UNSET, SpanStatusCode.UNSET, SpanStatusCode.ERROR])
  // the store's calls are child spans of the login that made them
  const create = spansNamed('refresh_auth.store.create')[0]
  t.equal(create.parentSpanContext?.spanId, spans[0].spanContext().spanId, 'create: a child of the login span')
  t.same(create.attributes, { operation: 'create', store: 'MemoryStore' })
})

t.test('refreshes: rotated, grace, reuse, expired, invalid, revoked and refused_by_host', async (t) => {
  let refuseUser = false
  const app = await buildApp(t, { loadUser: async (id) => refuseUser ? null : { id } })
  const strict = await buildApp(t, { refreshToken: { reuseInterval: 0 } })
  capture.resetSpans()
  const first = await login(app)
  t.equal(await growth('refresh_auth.refreshes', { outcome: 'rotated' }, async () => t.equal((await refresh(app, first.refreshToken)).statusCode, 200)), 1)
  t.equal(await growth('refresh_auth.refreshes', { outcome: 'grace' }, async () =>
    t.equal((await refresh(app, first.refreshToken)).statusCode, 200, 'the parent again, within the reuse interval')), 1)

  const replayed = await login(strict)
  await refresh(strict, replayed.refreshToken)
  t.equal(await growth('refresh_auth.refreshes', { outcome: 'reuse' }, async () => t.equal((await refresh(strict, replayed.refreshToken)).statusCode, 401)), 1)

  const now = Math.floor(Date.now() / 1000)
  const expired = jwt.sign({ iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', sub: '42', sid: 's', jti: 'j', gen: 0, iat: now - 100, exp: now - 50 },
    derivedKey('refresh-token HS256 v1'), { algorithm: 'HS256', header: { alg: 'HS256', typ: 'rt+jwt' } })
  t.equal(await growth('refresh_auth.refreshes', { outcome: 'expired' }, async () => t.equal((await refresh(app, expired)).statusCode, 401)), 1)
  t.equal(await growth('refresh_auth.refreshes', { outcome: 'invalid' }, async () => {
    t.equal((await refresh(app, 'not-a-token')).statusCode, 401)
    t.equal((await refresh(app, `${expired.slice(0, 20)}.e30.sig`)).statusCode, 401)
  }), 2)

  const ended = await login(app)
  await logout(app, ended.refreshToken)
  t.equal(await growth('refresh_auth.refreshes', { outcome: 'revoked' }, async () => t.equal((await refresh(app, ended.refreshToken)).statusCode, 401)), 1)

  const refused = await login(app)
  refuseUser = true
  t.equal(await growth('refresh_auth.refreshes', { outcome: 'refused_by_host' }, async () => t.equal((await refresh(app, refused.refreshToken)).statusCode, 401)), 1)
  t.equal(await growth('refresh_auth.sessions.ended', { reason: 'user-refused' }, async () => {
    refuseUser = false
    const other = await login(app)
    refuseUser = true
    await refresh(app, other.refreshToken)
  }), 1)

  t.same(spansNamed('refresh_auth.refresh').map(span => span.attributes.outcome),
    ['rotated', 'grace', 'rotated', 'reuse', 'expired', 'invalid', 'invalid', 'revoked', 'refused_by_host', 'refused_by_host'])
  const rotate = spansNamed('refresh_auth.store.rotate')[0]
  t.equal(rotate.parentSpanContext?.spanId, spansNamed('refresh_auth.refresh')[0].spanContext().spanId, 'rotate: a child of the refresh span')
})

t.test('a store outage: refreshes and logouts unavailable, their spans and store calls in error, the duration still recorded', async (t) => {
  let down = false
  class FlakyStore extends MemoryStore {
    override async rotate (request: RotateRequest) {
      if (down) throw new Error('connection refused')
      return await super.rotate(request)
    }

    override async present (request: Parameters<MemoryStore['present']>[0]) {
      if (down) throw new Error('connection refused')
      return await super.present(request)
    }
  }
  const app = await buildApp(t, { store: new FlakyStore() })
  const session = await login(app)
  down = true
  capture.resetSpans()
  t.equal(await growth('refresh_auth.refreshes', { outcome: 'unavailable' }, async () => t.equal((await refresh(app, session.refreshToken)).statusCode, 503)), 1)
  t.equal(await growth('refresh_auth.store.duration', { operation: 'present', store: 'FlakyStore' }, async () =>
    t.equal((await logout(app, session.refreshToken)).statusCode, 503)), 1)
  const [refreshSpan] = spansNamed('refresh_auth.refresh')
  t.same([refreshSpan.attributes.outcome, refreshSpan.status.code], ['unavailable', SpanStatusCode.ERROR])
  const [logoutSpan] = spansNamed('refresh_auth.logout')
  t.same([logoutSpan.attributes.outcome, logoutSpan.status.code], ['unavailable', SpanStatusCode.ERROR])
  t.equal(spansNamed('refresh_auth.store.rotate')[0].status.code, SpanStatusCode.ERROR)
  t.ok((await capture.points('refresh_auth.store.duration')).some(p => p.attributes.operation === 'rotate' && p.attributes.store === 'FlakyStore'))
})

t.test('logouts: their span outcome, and sessions.ended by reason', async (t) => {
  const app = await buildApp(t, { refreshToken: { reuseInterval: 0 }, maxSessionsPerUser: 1 })
  capture.resetSpans()
  const first = await login(app)
  t.equal(await growth('refresh_auth.sessions.ended', { reason: 'session-limit' }, () => login(app)), 1)
  const second = await login(app, '/auth')
  const replaced = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { cookie: `${COOKIE}=${second.refreshToken}` } })
  t.equal(replaced.statusCode, 200)
  t.equal(await growth('refresh_auth.sessions.ended', { reason: 'logout' }, () => logout(app, refreshCookie(replaced))), 1)
  await logout(app, first.refreshToken)
  await logout(app, 'garbage')
  const third = await login(app)
  await refresh(app, third.refreshToken)
  await logout(app, third.refreshToken)
  t.same(spansNamed('refresh_auth.logout').map(span => span.attributes.outcome), ['success', 'invalid', 'invalid', 'reuse'])
  t.ok((await capture.points('refresh_auth.sessions.ended')).some(p => p.attributes.reason === 'replaced'))
})

t.test('a store written as an object is named custom', async (t) => {
  const memory = new MemoryStore()
  const store = {
    create: memory.create.bind(memory),
    rotate: memory.rotate.bind(memory),
    present: memory.present.bind(memory),
    revoke: memory.revoke.bind(memory),
    revokeUser: memory.revokeUser.bind(memory),
    revokeOtherSessions: memory.revokeOtherSessions.bind(memory),
    listUserSessions: memory.listUserSessions.bind(memory)
  }
  const app = await buildApp(t, { store, accessToken: { revocation: false } })
  t.equal(await growth('refresh_auth.store.duration', { operation: 'create', store: 'custom' }, () => login(app)), 1)
})

t.test('the host\'s onLogout is still called, after the count', async (t) => {
  const reasons: string[] = []
  const app = await buildApp(t, { onLogout: (event) => { reasons.push(event.reason) } })
  const session = await login(app)
  await logout(app, session.refreshToken)
  t.same(reasons, ['logout'])
})

t.test('revocation lag: a session ended elsewhere, from its end to this instance refusing its tokens', async (t) => {
  const store = new ControlledFeedStore()
  const a = await buildApp(t, { store })
  const b = await buildApp(t, { store })
  const session = await login(a)
  t.equal((await getPrivate(b, session.accessToken)).statusCode, 200)
  const lagBefore = await capture.points('refresh_auth.revocation.lag')
  // announced by the backend 1.5 s after the session ended, to both instances
  store.announce([sessionIdOf(session.refreshToken)], Date.now() - 1500)
  t.equal((await getPrivate(b, session.accessToken)).statusCode, 401, 'b refuses it')
  const lag = await capture.points('refresh_auth.revocation.lag')
  const recorded = (lag[0]?.count ?? 0) - (lagBefore[0]?.count ?? 0)
  t.equal(recorded, 2, 'one record per instance')
  t.ok((lag[0]?.min ?? 0) >= 0)
  t.ok((lag[0]?.value ?? 0) - (lagBefore[0]?.value ?? 0) >= 3000, 'about 1.5 s each')
  store.announce([sessionIdOf(session.refreshToken)], Date.now())
  t.equal((await capture.points('refresh_auth.revocation.lag'))[0]?.count, lag[0]?.count, 'a session heard again is not recorded again')
  store.announce(['unknown-session'], Number.NaN)
  t.equal((await capture.points('refresh_auth.revocation.lag'))[0]?.count, lag[0]?.count, 'an end with no time is not recorded')
  store.status('live')
})

t.test('sessions.active: the live sessions of a MemoryStore', async (t) => {
  const store = new MemoryStore()
  const app = await buildApp(t, { store })
  await login(app)
  await login(app)
  const values = (await capture.points('refresh_auth.sessions.active')).map(p => p.value)
  t.ok(values.includes(2), `a MemoryStore with 2 sessions reports 2 (${values.join(', ')})`)
})

t.test('authenticate: no span and no metric by default; countAuthentications adds a counter', async (t) => {
  const quiet = await buildApp(t)
  const session = await login(quiet)
  capture.resetSpans()
  const before = await capture.points('refresh_auth.authentications')
  await getPrivate(quiet, session.accessToken)
  await quiet.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })
  t.same(capture.spans(), [], 'no span')
  t.same(await capture.points('refresh_auth.authentications'), before, 'no count')

  const counted = await buildApp(t, { telemetry: { countAuthentications: true } })
  const user = await login(counted)
  t.equal(await growth('refresh_auth.authentications', { outcome: 'success' }, async () => {
    t.equal((await getPrivate(counted, user.accessToken)).statusCode, 200)
    t.equal((await counted.inject({ url: '/me', headers: { authorization: `Bearer ${user.accessToken}` } })).statusCode, 200)
  }), 2)
  t.equal(await growth('refresh_auth.authentications', { outcome: 'refused' }, async () => {
    t.equal((await getPrivate(counted, 'forged')).statusCode, 401)
    t.equal((await counted.inject({ url: '/me' })).statusCode, 401)
  }), 2)
})

t.test('telemetry: false records nothing', async (t) => {
  const app = await buildApp(t, { telemetry: false })
  capture.resetSpans()
  const before = await capture.points('refresh_auth.logins')
  const session = await login(app)
  await refresh(app, session.refreshToken)
  t.same(capture.spans(), [])
  t.same(await capture.points('refresh_auth.logins'), before)
})

t.test('nothing secret in any exported attribute', async (t) => {
  const app = await buildApp(t)
  const session = await login(app)
  const rotated = refreshCookie(await refresh(app, session.refreshToken))
  await getPrivate(app, session.accessToken)
  await logout(app, rotated)
  await app.inject({ method: 'POST', url: '/auth/login', payload: { ...USER, password: 'hunter2-wrong' } })
  const values = [
    ...capture.spans().flatMap(span => Object.entries(span.attributes)),
    ...(await capture.metrics()).flatMap(metric => metric.dataPoints.flatMap(point => Object.entries(point.attributes)))
  ].map(([key, value]) => `${key}=${String(value)}`)
  t.ok(values.length > 20, `${values.length} attributes checked`)
  const secrets = [SECRET, USER.password, 'hunter2-wrong', session.accessToken, session.refreshToken, String(rotated)]
  const shapes = [
    /eyJ[\w-]+\.[\w-]*/, // a JWT (a base64url JSON header)
    /[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}/, // a compact JWS of any header
    /[A-Za-z0-9+/_-]{32,}/, // a long opaque token or secret
    /[0-9a-f]{8}-[0-9a-f]{4}-/i // an id (a session or token id)
  ]
  for (const value of values) {
    for (const shape of shapes) t.notMatch(value, shape, `${value}: not token-shaped`)
    for (const secret of secrets) t.notOk(value.includes(secret), `${value}: no secret`)
  }
})

t.test('without @opentelemetry/api installed, an import that fails once into null, and nothing reported', async (t) => {
  t.equal(await importOptional(async () => { throw new Error('Cannot find module') }), null)
  const { refreshAuth } = t.mockRequire<typeof import('../lib/plugin.js')>('../lib/plugin.js', {
    '../lib/telemetry/load-api.js': { loadOpenTelemetry: async () => null }
  })
  const app = Fastify()
  await app.register(fastifyPlugin(refreshAuth), { secret: SECRET, verifyCredentials, telemetry: { countAuthentications: true } })
  t.teardown(() => app.close())
  capture.resetSpans()
  const session = await login(app)
  t.equal((await refresh(app, session.refreshToken)).statusCode, 200)
  t.same(capture.spans(), [], 'no span')
})

t.test('store calls outside a request: the management API, timed too', async (t) => {
  const app = await buildApp(t)
  const session = await login(app)
  await login(app)
  const operations = ['listUserSessions', 'revokeOtherSessions', 'revokeUser', 'revoke']
  const grew = await Promise.all(operations.map(operation => capture.points('refresh_auth.store.duration')
    .then(points => points.find(p => p.attributes.operation === operation)?.count ?? 0)))
  t.equal((await app.refreshAuth.listUserSessions(42)).length, 2)
  await app.refreshAuth.revokeOtherSessions(42, sessionIdOf(session.refreshToken))
  await app.refreshAuth.revokeUserSessions(42)
  await app.refreshAuth.revokeSession(sessionIdOf(session.refreshToken))
  const after = await capture.points('refresh_auth.store.duration')
  operations.forEach((operation, i) => {
    t.ok((after.find(p => p.attributes.operation === operation)?.count ?? 0) - grew[i] >= 1, `${operation}: recorded`)
  })
})
