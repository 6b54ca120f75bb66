import t, { type Test } from 'tap'
import { buildApp, getPrivate, login } from './helpers/app.js'

const claims = async () => ({ scope: 'orders:read profile', roles: ['support'] })

async function guardedApp (t: Test) {
  return buildApp(t, { claims }, app => {
    app.get('/orders', { preHandler: app.refreshAuth.requireScopes('orders:read') }, async request => ({ sub: request.user?.sub }))
    app.post('/orders', { preHandler: app.refreshAuth.requireScopes(['orders:read', 'orders:write']) }, async () => 'created')
    app.get('/either', { preHandler: app.refreshAuth.requireScopes(['orders:write', 'profile'], { match: 'any' }) }, async () => 'ok')
    app.get('/support', { preHandler: app.refreshAuth.requireRoles(['admin', 'support']) }, async () => 'ok')
    app.get('/admin', { preHandler: app.refreshAuth.requireRoles('admin') }, async () => 'ok')
    app.get('/both-roles', { preHandler: app.refreshAuth.requireRoles(['admin', 'support'], { match: 'all' }) }, async () => 'ok')
    app.get('/custom-claim', { preHandler: app.refreshAuth.requireScopes('support', { claim: 'roles' }) }, async () => 'ok')
    app.get('/after-authenticate', { preHandler: [app.authenticate, app.refreshAuth.requireScopes('profile')] }, async () => 'ok')
  })
}

t.test('a token with the scopes or roles a route needs passes', async t => {
  const app = await guardedApp(t)
  const { accessToken } = await login(app)
  const orders = await getPrivate(app, accessToken, '/orders')
  t.equal(orders.statusCode, 200)
  t.same(orders.json(), { sub: '42' }, 'the guard authenticated the request and set request.user')
  for (const url of ['/either', '/support', '/custom-claim', '/after-authenticate']) {
    t.equal((await getPrivate(app, accessToken, url)).statusCode, 200, url)
  }
})

t.test('a valid token lacking a scope or role gets 403 insufficient_scope (RFC 6750 §3.1)', async t => {
  const app = await guardedApp(t)
  const { accessToken } = await login(app)
  const create = await app.inject({ method: 'POST', url: '/orders', headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(create.statusCode, 403)
  t.equal(create.json().code, 'FST_REFRESH_AUTH_INSUFFICIENT_SCOPE')
  t.equal(create.headers['www-authenticate'],
    'Bearer realm="fastify-refresh-auth", error="insufficient_scope", scope="orders:read orders:write"')
  for (const url of ['/admin', '/both-roles']) {
    const response = await getPrivate(app, accessToken, url)
    t.equal(response.statusCode, 403, url)
    t.match(response.headers['www-authenticate'], /error="insufficient_scope"/)
  }
})

t.test('no token or a bad token is still a 401 with the usual challenge', async t => {
  const app = await guardedApp(t)
  const missing = await app.inject({ method: 'GET', url: '/orders' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.json().code, 'FST_REFRESH_AUTH_NO_TOKEN')
  t.equal(missing.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth"')
  const invalid = await getPrivate(app, 'not.a.token', '/admin')
  t.equal(invalid.statusCode, 401)
  t.equal(invalid.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth", error="invalid_token"')
})

t.test('tokens without the claim, or with a claim of another shape, grant nothing', async t => {
  for (const value of [undefined, 42, { 'orders:read': true }, ['orders:read:all', 7]]) {
    const app = await buildApp(t, { claims: async () => (value === undefined ? {} : { scope: value }) }, app => {
      app.get('/orders', { preHandler: app.refreshAuth.requireScopes('orders:read') }, async () => 'ok')
    })
    const { accessToken } = await login(app)
    t.equal((await getPrivate(app, accessToken, '/orders')).statusCode, 403, JSON.stringify(value))
  }
})

t.test('an array claim and an unknown match value (treated as all) work', async t => {
  const app = await buildApp(t, { claims: async () => ({ scope: ['a', 'b'] }) }, app => {
    app.get('/ab', { preHandler: app.refreshAuth.requireScopes(['a', 'b'], { match: 'every' as 'all' }) }, async () => 'ok')
    app.get('/ac', { preHandler: app.refreshAuth.requireScopes(['a', 'c'], { match: 'some' as 'all' }) }, async () => 'ok')
  })
  const { accessToken } = await login(app)
  t.equal((await getPrivate(app, accessToken, '/ab')).statusCode, 200)
  t.equal((await getPrivate(app, accessToken, '/ac')).statusCode, 403, 'fails closed')
})

t.test('guards refuse values that cannot be scopes when the route is built', async t => {
  const app = await buildApp(t)
  for (const bad of [[], '', 'two words', 'quo"te', ['ok', 3 as unknown as string]]) {
    t.throws(() => app.refreshAuth.requireScopes(bad), /scopes must be one or more strings/, JSON.stringify(bad))
  }
  t.throws(() => app.refreshAuth.requireRoles([]), /roles must be one or more strings/)
})
