import Fastify, { type FastifyInstance } from 'fastify'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { MemoryStore, type FastifyRefreshAuthOptions } from '../lib/index.js'
import { COOKIE, SECRET, buildApp, getPrivate, login, logout, refresh, refreshCookie, verifyCredentials } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { ControlledFeedStore, logLines, sessionIdOf, warnings } from './helpers/feed-store.js'
import { ec, pem } from './helpers/keys.js'
import { withoutFeed } from './helpers/shipped-stores.js'

const INVALID = 'Bearer realm="fastify-refresh-auth", error="invalid_token"'

/** An app with a protected route and its log lines; closed when the test ends. */
async function appWithLog (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}): Promise<{ app: FastifyInstance, lines: ReturnType<typeof logLines>['lines'] }> {
  const { stream, lines } = logLines()
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, ...options } as FastifyRefreshAuthOptions)
  app.get('/private', { preHandler: app.authenticate }, async (request) => ({ user: request.user }))
  app.get('/me', async (request) => ({ user: await request.authenticate() }))
  await app.ready()
  t.teardown(() => app.close())
  return { app, lines }
}

async function assertRefused (t: Test, app: FastifyInstance, accessToken: string, what: string): Promise<void> {
  const response = await getPrivate(app, accessToken)
  t.equal(response.statusCode, 401, `${what}: 401`)
  t.equal(response.headers['www-authenticate'], INVALID, `${what}: the invalid_token challenge`)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
}

t.test('every way a session ends kills its access tokens at once, cached or not, and no other session\'s', async (t) => {
  const endings: Array<[string, Partial<FastifyRefreshAuthOptions>, (app: FastifyInstance, session: Awaited<ReturnType<typeof login>>) => Promise<unknown>]> = [
    ['logout', {}, (app, session) => logout(app, session.refreshToken)],
    ['logout everywhere', {}, (app, session) => app.inject({ method: 'POST', url: '/auth/logout', payload: { all: true }, headers: { cookie: `${COOKIE}=${session.refreshToken}` } })],
    ['revokeSession', {}, (app, session) => app.refreshAuth.revokeSession(sessionIdOf(session.refreshToken))],
    ['revokeUserSessions', {}, (app) => app.refreshAuth.revokeUserSessions('42')],
    ['reuse found by refresh', { refreshToken: { reuseInterval: 0 } }, async (app, session) => {
      await refresh(app, session.refreshToken)
      return refresh(app, session.refreshToken)
    }],
    ['reuse found by logout', { refreshToken: { reuseInterval: 0 } }, async (app, session) => {
      await refresh(app, session.refreshToken)
      return logout(app, session.refreshToken)
    }]
  ]
  for (const cacheSize of [10_000, 0]) {
    for (const [how, options, end] of endings) {
      const app = await buildApp(t, { ...options, accessToken: { cacheSize } })
      const session = await login(app)
      const bystander = await login(app, '/auth')
      t.equal((await getPrivate(app, session.accessToken)).statusCode, 200, `${how}: accepted first (and cached: ${cacheSize})`)
      await end(app, session)
      await assertRefused(t, app, session.accessToken, `${how}, cache ${cacheSize}`)
      const me = await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })
      t.equal(me.statusCode, 401, `${how}: request.authenticate() refuses it too`)
      if (how.startsWith('revokeUser') || how === 'logout everywhere') {
        await assertRefused(t, app, bystander.accessToken, `${how}: the user's other session`)
      } else {
        t.equal((await getPrivate(app, bystander.accessToken)).statusCode, 200, `${how}: another session is untouched`)
      }
    }
  }
})

t.test('a rotated session\'s older and newer access tokens all die with it', async (t) => {
  const app = await buildApp(t, { refreshToken: { reuseInterval: 0 } })
  const session = await login(app)
  const rotated = await refresh(app, session.refreshToken)
  const newer = rotated.json().access_token as string
  t.equal((await getPrivate(app, newer)).statusCode, 200)
  t.equal((await getPrivate(app, session.accessToken)).statusCode, 200, 'the older one lives until its session ends')
  await logout(app, refreshCookie(rotated))
  await assertRefused(t, app, newer, 'the newer token')
  await assertRefused(t, app, session.accessToken, 'the older token')
})

t.test('a resource server given the same store refuses them too', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const keys = ec()
  const { privateKey, publicKey } = pem(keys)
  const auth = await buildApp(t, { store, accessToken: { algorithm: 'ES256', keys: [{ kid: 'k1', privateKey, publicKey }] } })
  const resources = Fastify()
  await resources.register(fastifyRefreshAuth, { routes: false, store, accessToken: { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey }] } })
  resources.get('/private', { preHandler: resources.authenticate }, async () => 'ok')
  t.teardown(() => resources.close())
  // and an app on the secret without routes, sharing the store as well
  const internal = await buildApp(t, { store, routes: false, verifyCredentials: undefined, accessToken: { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey }] } })

  const session = await login(auth)
  t.equal((await getPrivate(resources, session.accessToken)).statusCode, 200)
  t.equal((await getPrivate(internal, session.accessToken)).statusCode, 200)
  await logout(auth, session.refreshToken)
  await assertRefused(t, resources, session.accessToken, 'on the resource server')
  await assertRefused(t, internal, session.accessToken, 'on the app without routes')
})

t.test('a resource server without the store cannot, and says so at registration', async (t) => {
  const { publicKey } = pem(ec())
  const { app, lines } = await appWithLog(t, { secret: undefined, verifyCredentials: undefined, routes: false, accessToken: { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey }] } })
  t.ok(app.hasDecorator('authenticate'))
  t.equal(warnings(lines, 'this resource server has no session store').length, 1, 'one warning')
  const quiet = await appWithLog(t, { secret: undefined, verifyCredentials: undefined, routes: false, accessToken: { algorithm: 'ES256', keys: [{ kid: 'k1', publicKey }], revocation: false } })
  t.same(warnings(quiet.lines, 'session store'), [], 'unless revocation is turned off')
})

t.test('a store without a revocation feed: one warning, and revocation local to the instance that ended the session', async (t) => {
  const inner = new MemoryStore()
  t.teardown(() => inner.close())
  const bare = withoutFeed(inner)
  const { app, lines } = await appWithLog(t, { store: bare, refreshToken: { reuseInterval: 0 } })
  const other = await appWithLog(t, { store: bare })
  t.equal(warnings(lines, 'no revocation feed').length, 1, 'registration warns that revocation is local')

  const first = await login(app)
  const second = await login(app)
  const third = await login(app)
  t.equal((await getPrivate(other.app, first.accessToken)).statusCode, 200)
  await logout(app, first.refreshToken)
  await assertRefused(t, app, first.accessToken, 'on the instance that logged out')
  t.equal((await getPrivate(other.app, first.accessToken)).statusCode, 200, 'another instance cannot know (documented)')
  await refresh(app, second.refreshToken)
  await refresh(app, second.refreshToken)
  await assertRefused(t, app, second.accessToken, 'after reuse')
  await app.refreshAuth.revokeUserSessions('42')
  await assertRefused(t, app, third.accessToken, 'after revokeUserSessions (listed first)')
})

t.test('accessToken.revocation false: tokens live to their exp, nothing is watched', async (t) => {
  const store = new ControlledFeedStore()
  t.teardown(() => store.close())
  const app = await buildApp(t, { store, accessToken: { revocation: false } })
  t.equal(store.watched, null, 'no watch')
  const session = await login(app)
  await app.refreshAuth.revokeSession(sessionIdOf(session.refreshToken))
  t.equal((await getPrivate(app, session.accessToken)).statusCode, 200)
})

t.test('the feed is asked to keep revocations for an access-token lifetime, the clock tolerance and a margin', async (t) => {
  const store = new ControlledFeedStore()
  t.teardown(() => store.close())
  await buildApp(t, { store, accessToken: { expiresIn: '10m' }, clockTolerance: 5 })
  t.equal(store.watched?.retentionMs, (600 + 5 + 60) * 1000)
})

t.test('a session ended on another instance: its tokens are refused, and so is its refresh, whatever the store still holds', async (t) => {
  const store = new ControlledFeedStore()
  t.teardown(() => store.close())
  const app = await buildApp(t, { store })
  const session = await login(app)
  store.announce([sessionIdOf(session.refreshToken)])
  await assertRefused(t, app, session.accessToken, 'announced elsewhere')
  const refused = await refresh(app, session.refreshToken)
  t.equal(refused.statusCode, 401, 'announced but not yet deleted (write-ahead): refresh refused')
  t.equal(refused.json().code, 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN')
  // an announcement too old to matter (every token of it expired) is dropped
  const later = await login(app)
  store.announce([sessionIdOf(later.refreshToken)], Date.now() - 3600_000)
  t.equal((await getPrivate(app, later.accessToken)).statusCode, 200)
})

t.test('an access token never outlives its session\'s absolute expiry', async (t) => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { accessToken: { expiresIn: '15m' }, refreshToken: { expiresIn: '1h', absoluteExpiresIn: '1h' } })
  const session = await login(app)
  const first = jwt.decode(session.accessToken) as jwt.JwtPayload
  t.equal((first.exp as number) - (first.iat as number), 900, 'a full lifetime while the session has longer')
  clock.advance(55 * 60)
  const response = await refresh(app, session.refreshToken)
  t.equal(response.statusCode, 200)
  const capped = jwt.decode(response.json().access_token) as jwt.JwtPayload
  const absolute = (jwt.decode(session.refreshToken) as jwt.JwtPayload).iat as number + 3600
  t.equal(capped.exp, absolute, 'capped at the session\'s end')
  t.equal(response.json().expires_in, absolute - (capped.iat as number), 'and expires_in says so')
})

t.test('feed outages: served by default, logged once', async (t) => {
  const store = new ControlledFeedStore()
  t.teardown(() => store.close())
  const { app, lines } = await appWithLog(t, { store, accessToken: { revocation: { feedTolerance: '1s' } } })
  const session = await login(app)
  store.status('down')
  store.status('down')
  await until(() => warnings(lines, 'revocation feed has been down').length > 0)
  t.equal(warnings(lines, 'revocation feed has been down').length, 1, 'logged once')
  t.match(warnings(lines, 'revocation feed has been down')[0], /served until they expire/)
  t.equal((await getPrivate(app, session.accessToken)).statusCode, 200, 'still served')
  store.status('live')
  t.ok(lines.some(line => line.level === 30 && /caught up again/.test(line.msg)), 'the recovery is logged')
  store.status('gap')
  t.equal(warnings(lines, 'may have missed revocations').length, 1, 'a gap is logged')
  t.equal((await getPrivate(app, session.accessToken)).statusCode, 200, 'and served')
})

t.test('feed outages with failClosed: 503 once the feed has been down longer than the tolerance, until it is live', async (t) => {
  const store = new ControlledFeedStore()
  t.teardown(() => store.close())
  const { app, lines } = await appWithLog(t, { store, accessToken: { revocation: { failClosed: true, feedTolerance: 1 } } })
  const session = await login(app)
  store.status('down')
  t.equal((await getPrivate(app, session.accessToken)).statusCode, 200, 'within the tolerance: served')
  await until(() => warnings(lines, 'revocation feed has been down').length > 0)
  t.match(warnings(lines, 'revocation feed has been down')[0], /answer 503/)
  const refused = await getPrivate(app, session.accessToken)
  t.equal(refused.statusCode, 503)
  t.same(refused.json(), {
    statusCode: 503, code: 'FST_REFRESH_AUTH_REVOCATION_UNCONFIRMED', error: 'Service Unavailable', message: 'Session revocations cannot be confirmed, try again later'
  })
  const me = await app.inject({ url: '/me', headers: { authorization: `Bearer ${session.accessToken}` } })
  t.equal(me.statusCode, 503, 'request.authenticate() too')
  t.equal((await getPrivate(app, 'not-a-token')).statusCode, 401, 'a bad token is still a 401')
  t.equal((await app.inject({ url: '/private' })).statusCode, 401, 'and no token too')
  store.status('live')
  t.equal((await getPrivate(app, session.accessToken)).statusCode, 200, 'live again: served')
})

t.test('after a gap with failClosed, tokens issued before it answer 503; tokens issued after it are served', async (t) => {
  const store = new ControlledFeedStore()
  t.teardown(() => store.close())
  const { app } = await appWithLog(t, { store, accessToken: { revocation: { failClosed: true } } })
  const before = await login(app)
  // tokens carry whole seconds: the gap opens in a later second than the token was issued in
  const issued = (jwt.decode(before.accessToken) as jwt.JwtPayload).iat as number
  await until(() => Math.floor(Date.now() / 1000) > issued)
  store.status('gap')
  const opened = Math.ceil(Date.now() / 1000)
  t.equal((await getPrivate(app, before.accessToken)).statusCode, 503, 'issued before the gap: unconfirmed')
  await until(() => Date.now() / 1000 >= opened)
  const after = await login(app)
  t.equal((await getPrivate(app, after.accessToken)).statusCode, 200, 'issued after it: served')
  store.status('live')
  t.equal((await getPrivate(app, before.accessToken)).statusCode, 503, 'live again, the lost revocations are still unknown until the old tokens expire')
})

t.test('the app starts once the feed has loaded what it holds, or after the tolerance if it never does', async (t) => {
  const held = new ControlledFeedStore({ holdLive: true })
  t.teardown(() => held.close())
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store: held })
  t.teardown(() => app.close())
  let ready = false
  const starting = app.ready().then(() => { ready = true })
  await new Promise(resolve => setTimeout(resolve, 100))
  t.notOk(ready, 'waiting for the feed')
  held.status('live')
  await starting
  t.ok(ready, 'ready once the feed is live')

  const never = new ControlledFeedStore({ holdLive: true })
  t.teardown(() => never.close())
  const { app: late, lines } = await appWithLog(t, { store: never, accessToken: { revocation: { feedTolerance: 1 } } })
  t.ok(late.server !== undefined, 'started anyway')
  await until(() => warnings(lines, 'revocation feed has been down').length > 0)
  t.pass('and the outage is logged')
})

t.test('options: accessToken.revocation is a boolean or { failClosed, feedTolerance }', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['yes', /accessToken.revocation must be a boolean or an object/],
    [null, /accessToken.revocation must be a boolean or an object/],
    [{ failClosed: 'yes' }, /accessToken.revocation.failClosed must be a boolean/],
    [{ feedTolerance: 0 }, /accessToken.revocation.feedTolerance must be a positive/],
    [{ feedTolerance: 'soon' }, /accessToken.revocation.feedTolerance must be a positive/]
  ]
  for (const [revocation, message] of cases) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, accessToken: { revocation } } as unknown as FastifyRefreshAuthOptions).ready() },
      { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message }, JSON.stringify(revocation))
  }
  for (const revocation of [true, {}, { failClosed: false, feedTolerance: '30s' as const }]) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.resolves(async () => { await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, accessToken: { revocation } }).ready() })
  }
})

async function until (condition: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!condition()) {
    if (Date.now() > end) throw new Error(`not within ${ms}ms`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

t.test('a JWKS resource server sharing the store: fail closed holds for a token verified after a key refetch too', async (t) => {
  const store = new ControlledFeedStore()
  t.teardown(() => store.close())
  const first = ec()
  const next = ec()
  const jwk = (pair: ReturnType<typeof ec>, kid: string) => ({ ...pair.publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' })
  let keys = [jwk(first, 'k1')]
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ keys }))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`
  const { app: resources, lines } = await appWithLog(t, {
    secret: undefined,
    verifyCredentials: undefined,
    routes: false,
    store,
    accessToken: { jwksUrl, jwksCooldown: 1, revocation: { failClosed: true, feedTolerance: 1 } }
  })
  // the auth server has moved on to a key the resource server has not fetched yet
  const { privateKey, publicKey } = pem(next)
  const auth = await buildApp(t, { store, accessToken: { algorithm: 'ES256', keys: [{ kid: 'k2', privateKey, publicKey }] } })
  const session = await login(auth)
  keys = [jwk(first, 'k1'), jwk(next, 'k2')]
  store.status('down')
  await until(() => warnings(lines, 'revocation feed has been down').length > 0)
  // past the JWKS cooldown (1 s) since the first fetch, so the unknown kid makes it fetch again
  await new Promise(resolve => setTimeout(resolve, 1100))
  const refused = await getPrivate(resources, session.accessToken)
  t.equal(refused.statusCode, 503, 'verified after the refetch, then refused: the session cannot be confirmed')
  t.equal(refused.json().code, 'FST_REFRESH_AUTH_REVOCATION_UNCONFIRMED')
  store.status('live')
  t.equal((await getPrivate(resources, session.accessToken)).statusCode, 200)
})
