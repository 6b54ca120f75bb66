import fastifyAuth from '@fastify/auth'
import type { FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp, getPrivate, login } from './helpers/app.js'

class ApiKeyError extends Error {
  statusCode = 401
  code = 'APP_BAD_API_KEY'
}

// The host's own check: an API key, callback style.
function apiKeyCheck (request: FastifyRequest, _reply: unknown, done: (err?: Error) => void) {
  done(request.headers['x-api-key'] === 'key-1' ? undefined : new ApiKeyError('bad api key'))
}

async function authApp (t: Test) {
  return buildApp(t, { claims: async () => ({ roles: ['user'] }) }, async app => {
    await app.register(fastifyAuth)
    app.get('/either', { preHandler: app.auth([apiKeyCheck, app.authenticate], { relation: 'or' }) }, async request => ({ user: request.user?.sub ?? null }))
    app.get('/token-first', { preHandler: app.auth([app.authenticate, apiKeyCheck], { relation: 'or' }) }, async () => 'ok')
    app.get('/both', { preHandler: app.auth([app.authenticate, apiKeyCheck], { relation: 'and' }) }, async () => 'ok')
    app.get('/admin-or-key', { preHandler: app.auth([apiKeyCheck, app.refreshAuth.requireRoles('admin')]) }, async () => 'ok')
    app.get('/user-or-key', { preHandler: app.auth([apiKeyCheck, app.refreshAuth.requireRoles('user')]) }, async () => 'ok')
  })
}

t.test("relation 'or': a valid access token or the other check lets the request through", async t => {
  const app = await authApp(t)
  const { accessToken } = await login(app)
  const byToken = await getPrivate(app, accessToken, '/either')
  t.equal(byToken.statusCode, 200)
  t.same(byToken.json(), { user: '42' })
  const byKey = await app.inject({ url: '/either', headers: { 'x-api-key': 'key-1' } })
  t.equal(byKey.statusCode, 200)
  t.same(byKey.json(), { user: null })
  t.equal((await getPrivate(app, accessToken, '/token-first')).statusCode, 200)
  t.equal((await app.inject({ url: '/token-first', headers: { 'x-api-key': 'key-1' } })).statusCode, 200)
})

t.test('when both fail, the error of app.authenticate keeps its 401 and WWW-Authenticate challenge', async t => {
  const app = await authApp(t)
  const missing = await app.inject({ url: '/either' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.json().code, 'FST_REFRESH_AUTH_NO_TOKEN')
  t.equal(missing.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth"')

  const invalid = await getPrivate(app, 'not.a.token', '/either')
  t.equal(invalid.statusCode, 401)
  t.equal(invalid.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
  t.equal(invalid.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth", error="invalid_token"')
})

t.test("@fastify/auth answers with the last failure: put app.authenticate last in an 'or' to get its challenge", async t => {
  const app = await authApp(t)
  const response = await app.inject({ url: '/token-first' })
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'APP_BAD_API_KEY')
  t.equal(response.headers['www-authenticate'], undefined)
})

t.test("relation 'and': both are needed, and a failing app.authenticate answers with its challenge", async t => {
  const app = await authApp(t)
  const { accessToken } = await login(app)
  const both = await app.inject({ url: '/both', headers: { authorization: `Bearer ${accessToken}`, 'x-api-key': 'key-1' } })
  t.equal(both.statusCode, 200)
  const noToken = await app.inject({ url: '/both', headers: { 'x-api-key': 'key-1' } })
  t.equal(noToken.statusCode, 401)
  t.equal(noToken.headers['www-authenticate'], 'Bearer realm="fastify-refresh-auth"')
  const noKey = await getPrivate(app, accessToken, '/both')
  t.equal(noKey.statusCode, 401)
  t.equal(noKey.json().code, 'APP_BAD_API_KEY')
})

t.test('a role guard composes too: 403 insufficient_scope survives @fastify/auth', async t => {
  const app = await authApp(t)
  const { accessToken } = await login(app)
  t.equal((await getPrivate(app, accessToken, '/user-or-key')).statusCode, 200)
  const response = await getPrivate(app, accessToken, '/admin-or-key')
  t.equal(response.statusCode, 403)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_INSUFFICIENT_SCOPE')
  t.match(response.headers['www-authenticate'], /error="insufficient_scope", scope="admin"/)
})
