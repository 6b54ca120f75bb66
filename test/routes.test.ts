import Fastify from 'fastify'
import t from 'tap'
import fastifyRefreshAuth, { InvalidOptionError } from '../lib/index.js'
import { COOKIE, getPrivate, refreshCookie, SECRET, setCookies, USER, verifyCredentials } from './helpers/app.js'

t.test('routes: false registers no route, and the factories mount them anywhere', async t => {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, routes: false })
  app.route(app.refreshAuth.loginRoute({ url: '/signin' }))
  app.route(app.refreshAuth.refreshRoute({ url: '/auth/renew' }))
  app.route(app.refreshAuth.logoutRoute({ url: '/auth/signout' }))
  app.get('/private', { preHandler: app.authenticate }, async (request) => request.user)
  t.teardown(() => app.close())
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: USER })).statusCode, 404, 'no default route')
  const login = await app.inject({ method: 'POST', url: '/signin', payload: USER })
  t.equal(login.statusCode, 200)
  t.equal((await getPrivate(app, login.json().access_token)).statusCode, 200)
  const renewed = await app.inject({ method: 'POST', url: '/auth/renew', headers: { cookie: `${COOKIE}=${refreshCookie(login) as string}` } })
  t.equal(renewed.statusCode, 200)
  const out = await app.inject({ method: 'POST', url: '/auth/signout', headers: { cookie: `${COOKIE}=${refreshCookie(renewed) as string}` } })
  t.equal(out.statusCode, 204)
})

t.test('without verifyCredentials the login factory refuses, the others work', async t => {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, routes: false })
  t.teardown(() => app.close())
  t.throws(() => app.refreshAuth.loginRoute(), InvalidOptionError)
  t.throws(() => app.refreshAuth.loginRoute(), /verifyCredentials is required/)
  t.equal(app.refreshAuth.refreshRoute().url, '/auth/refresh')
  t.equal(app.refreshAuth.logoutRoute().method, 'POST')
})

t.test('the prefix moves the routes and scopes the cookie path', async t => {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, routes: { prefix: '/api/session' } })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/api/session/login', payload: USER })
  t.equal(login.statusCode, 200)
  t.equal(setCookies(login)[0].attributes.path, '/api/session')
  const renewed = await app.inject({ method: 'POST', url: '/api/session/refresh', headers: { cookie: `${COOKIE}=${refreshCookie(login) as string}` } })
  t.equal(renewed.statusCode, 200)
})

t.test('a host body schema validates login and keeps the response schema', async t => {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, routes: false })
  app.route(app.refreshAuth.loginRoute({
    schema: {
      body: {
        type: 'object',
        required: ['username', 'password'],
        properties: { username: { type: 'string', maxLength: 100 }, password: { type: 'string', maxLength: 200 } }
      }
    }
  }))
  t.teardown(() => app.close())
  const bad = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice' } })
  t.equal(bad.statusCode, 400)
  t.equal(bad.headers['set-cookie'], undefined)
  const good = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  t.equal(good.statusCode, 200)
  t.same(Object.keys(good.json()).sort(), ['access_token', 'expires_in', 'token_type'])
})

t.test('the handler cannot be overridden', async t => {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, routes: false })
  t.teardown(() => app.close())
  const route = app.refreshAuth.refreshRoute({ handler: async () => 'hijacked' } as never)
  t.not(route.handler.toString(), (async () => 'hijacked').toString())
})

t.test('the plugin puts no cookie machinery on the app\'s other routes: no parsing hook, no onSend hook', async t => {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  app.get('/other', async (request, reply) => ({ cookies: request.cookies ?? null, setCookie: typeof reply.setCookie }))
  t.teardown(() => app.close())
  await app.ready()
  t.notOk(app.hasPlugin('@fastify/cookie'), '@fastify/cookie is not registered: its onSend hook would run on every route')
  t.notOk(app.hasReplyDecorator('setCookie'))
  t.notOk(app.hasRequestDecorator('cookies'))
  t.notOk(app.hasDecorator('parseCookie'))
  const other = await app.inject({ url: '/other', headers: { cookie: 'theme=dark' } })
  t.same(other.json(), { cookies: null, setCookie: 'undefined' }, 'no per-request cookie parsing or setCookie outside the auth routes')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  const renewed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `theme=dark; ${COOKIE}=${refreshCookie(login) as string}` } })
  t.equal(renewed.statusCode, 200, 'the auth routes still read the refresh cookie')
})
