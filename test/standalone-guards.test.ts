import Fastify from 'fastify'
import t from 'tap'
import fastifyRefreshAuth, { authenticate, requireFreshAuth, requireRoles, requireScopes } from '../lib/index.js'
import { SECRET, USER, login } from './helpers/app.js'
import { runNode as run } from './helpers/run-node.js'

// Issue 20, finding 7: a route that names the hook before the plugin has registered (a `register` not
// awaited, as CommonJS apps write it) must be protected, and one whose instance lacks the plugin refused.

async function verifyCredentials (request: { body: unknown }) {
  const body = request.body as { username?: unknown } | undefined
  if (body?.username === USER.username) return { id: 42, scopes: ['orders:read'], roles: ['analyst'] }
  return null
}

const claims = (user: unknown) => {
  const { scopes, roles } = user as { scopes: string[], roles: string[] }
  return { scope: scopes.join(' '), roles }
}

t.test('a route declared before registration completes is protected by the standalone hook', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  // not awaited: the plugin has not run when the routes below are declared
  app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, claims })
  t.equal((app as { authenticate?: unknown }).authenticate, undefined, 'app.authenticate does not exist yet')
  app.get('/payroll', { preHandler: authenticate }, async () => ({ secret: 'payroll' }))
  app.get('/orders', { preHandler: requireScopes(['orders:read']) }, async () => ({ orders: [] }))
  app.get('/admin', { preHandler: requireRoles('admin') }, async () => ({ admin: true }))
  app.get('/reports', { preHandler: [authenticate, requireRoles(['analyst'])] }, async () => ({ reports: [] }))
  app.get('/account', { onRequest: authenticate, preHandler: requireFreshAuth('5m') }, async () => ({ fresh: true }))
  await app.ready()

  const anonymous = await app.inject({ url: '/payroll' })
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.json().code, 'FST_REFRESH_AUTH_NO_TOKEN')
  t.equal(anonymous.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth"')
  const forged = await app.inject({ url: '/payroll', headers: { authorization: 'Bearer not.a.token' } })
  t.equal(forged.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
  t.equal((await app.inject({ url: '/orders' })).statusCode, 401, 'a guard authenticates first')

  const headers = { authorization: `Bearer ${(await login(app)).accessToken}` }
  t.same((await app.inject({ url: '/payroll', headers })).json(), { secret: 'payroll' })
  t.equal((await app.inject({ url: '/orders', headers })).statusCode, 200)
  const admin = await app.inject({ url: '/admin', headers })
  t.equal(admin.statusCode, 403)
  t.equal(admin.json().code, 'FST_REFRESH_AUTH_INSUFFICIENT_SCOPE')
  t.match(admin.headers['www-authenticate'], /realm="fastify-refresh-auth", error="insufficient_scope", scope="admin"/, "the plugin's realm")
  t.equal((await app.inject({ url: '/reports', headers })).statusCode, 200)
  t.equal((await app.inject({ url: '/account', headers })).statusCode, 200)
  t.equal((await app.inject({ url: '/admin', headers })).statusCode, 403, 'a guard made once per instance answers again')
})

t.test('the standalone hook and guards fail closed with a coded 500 where the plugin is not registered', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  // the plugin lives in a sibling context only: the routes on the root cannot reach it
  await app.register(async function sibling (child) {
    await child.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  })
  app.get('/payroll', { preHandler: authenticate }, async () => ({ secret: 'payroll' }))
  app.get('/orders', { preHandler: requireScopes('orders:read') }, async () => ({ orders: [] }))
  app.get('/account', { preHandler: requireFreshAuth(300) }, async () => ({ fresh: true }))
  app.get('/awaited', async (request, reply) => {
    await authenticate(request, reply)
    return { secret: 'awaited' }
  })
  for (const url of ['/payroll', '/orders', '/account', '/awaited']) {
    const response = await app.inject({ url, headers: { authorization: 'Bearer x.y.z' } })
    t.equal(response.statusCode, 500, url)
    t.equal(response.json().code, 'FST_REFRESH_AUTH_NOT_REGISTERED', url)
  }
})

t.test('awaited in a handler, the standalone hook answers as app.authenticate', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  app.get('/me', async (request, reply) => {
    await authenticate(request, reply)
    return { sub: request.user?.sub }
  })
  t.equal((await app.inject({ url: '/me' })).json().code, 'FST_REFRESH_AUTH_NO_TOKEN')
  const headers = { authorization: `Bearer ${(await login(app)).accessToken}` }
  t.same((await app.inject({ url: '/me', headers })).json(), { sub: '42' })
})

t.test('the standalone guards check their arguments where the route is declared', async t => {
  const invalid = { code: 'FST_REFRESH_AUTH_INVALID_ARGUMENT' }
  t.throws(() => requireScopes(''), invalid)
  t.throws(() => requireRoles(['a b']), invalid)
  t.throws(() => requireFreshAuth(0), invalid)
})

t.test('the built package exports the standalone hook to require() and import', async t => {
  const script = (load: string) => `
    ${load}
    const app = Fastify()
    app.register(plugin, { secret: 'an-export-test-secret-of-32-bytes-or-more', verifyCredentials: async () => ({ id: 7 }) })
    app.get('/payroll', { preHandler: authenticate }, async () => ({ secret: 'payroll' }))
    app.get('/orders', { preHandler: requireScopes('orders:read') }, async () => ({ orders: [] }))
    await app.ready()
    const anonymous = await app.inject({ url: '/payroll' })
    const login = await app.inject({ method: 'POST', url: '/auth/login' })
    const signedIn = await app.inject({ url: '/payroll', headers: { authorization: 'Bearer ' + login.json().access_token } })
    const orders = await app.inject({ url: '/orders', headers: { authorization: 'Bearer ' + login.json().access_token } })
    console.log(JSON.stringify([anonymous.statusCode, signedIn.statusCode, orders.statusCode, typeof requireRoles, typeof requireFreshAuth]))
    await app.close()`
  const expected = [401, 200, 403, 'function', 'function']
  t.same(run(['--input-type=module', '-e', script("import Fastify from 'fastify'; import plugin, { authenticate, requireScopes, requireRoles, requireFreshAuth } from 'fastify-refresh-auth'")]), expected)
  t.same(run(['-e', `(async () => { ${script("const Fastify = require('fastify'); const plugin = require('fastify-refresh-auth'); const { authenticate, requireScopes, requireRoles, requireFreshAuth } = plugin")} })()`]), expected)
})
