import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../lib/index.js'
import { SECRET, USER, refreshCookie, setCookies, verifyCredentials } from './helpers/app.js'

// Issue 13, finding 7: cookie options with which a browser would drop the refresh cookie, or never send
// it to the refresh and logout routes, are refused at registration instead of breaking refresh silently.

const base = { secret: SECRET, verifyCredentials }
const invalidOption = (message: RegExp) => ({ code: 'FST_REFRESH_AUTH_INVALID_OPTION', message })

async function ready (t: Test, options: Partial<FastifyRefreshAuthOptions>, setup?: (app: FastifyInstance) => void | Promise<void>): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyRefreshAuth, { ...base, ...options } as FastifyRefreshAuthOptions)
  if (setup !== undefined) await setup(app)
  await app.ready()
  return app
}

async function signInAndRefresh (t: Test, app: FastifyInstance, name: string, urls = { login: '/auth/login', refresh: '/auth/refresh' }) {
  const login = await app.inject({ method: 'POST', url: urls.login, payload: USER })
  const cookie = setCookies(login).find(c => c.name === name)
  const refreshed = await app.inject({ method: 'POST', url: urls.refresh, headers: { cookie: `${name}=${refreshCookie(login, name) as string}` } })
  t.equal(refreshed.statusCode, 200, 'refresh works')
  return cookie
}

t.test('cookie prefixes are matched in any case, as browsers do', async t => {
  const refused: Array<[FastifyRefreshAuthOptions['cookie'], RegExp]> = [
    [{ name: '__Host-rt' }, /__Host- needs cookie.path '\/'/],
    [{ name: '__host-rt' }, /__Host- needs cookie.path '\/'/],
    [{ name: '__HOST-rt', path: '/auth' }, /__Host- needs cookie.path '\/'/],
    [{ name: '__Host-rt', path: '/', secure: false }, /__Host- needs cookie.secure/],
    [{ name: '__hOsT-rt', path: '/', secure: false }, /__Host- needs cookie.secure/],
    [{ name: '__Secure-rt', secure: false }, /__Secure- needs cookie.secure/],
    [{ name: '__secure-rt', secure: false }, /__Secure- needs cookie.secure/],
    [{ name: '__SECURE-rt', secure: false }, /__Secure- needs cookie.secure/]
  ]
  for (const [cookie, message] of refused) {
    await t.rejects(ready(t, { cookie }), invalidOption(message), JSON.stringify(cookie))
  }
})

t.test('a __Host- cookie with Path=/ works', async t => {
  const app = await ready(t, { cookie: { name: '__Host-refresh', path: '/' } })
  const cookie = await signInAndRefresh(t, app, '__Host-refresh')
  t.match(cookie?.attributes, { path: '/', secure: true, httponly: true })
  t.notOk('domain' in (cookie?.attributes ?? {}))
})

t.test('cookie.path must cover the refresh and logout routes (path-match, not string prefix)', async t => {
  for (const path of ['/auth/refresh', '/auth/logout', '/au', '/auth/x', '/other']) {
    await t.rejects(ready(t, { cookie: { path } }), invalidOption(new RegExp(`cookie.path '${path}' does not cover POST /auth/`)), path)
  }
  for (const path of ['/', '/auth', '/auth/']) {
    const app = await ready(t, { cookie: { path, name: 'rt' } })
    t.equal((await signInAndRefresh(t, app, 'rt'))?.attributes.path, path, `${path} covers them`)
  }
})

t.test('routes mounted through the factories are checked at their own URL', async t => {
  await t.rejects(ready(t, { routes: false }, app => { app.route(app.refreshAuth.refreshRoute({ url: '/session/refresh' })) }),
    invalidOption(/cookie.path '\/auth' does not cover POST \/session\/refresh/))
  await t.rejects(ready(t, { routes: false }, app => { app.route(app.refreshAuth.logoutRoute({ url: '/session/logout' })) }),
    invalidOption(/does not cover POST \/session\/logout/))

  const moved = await ready(t, { routes: false, cookie: { path: '/session' } }, app => {
    app.route(app.refreshAuth.loginRoute({ url: '/session' }))
    app.route(app.refreshAuth.refreshRoute({ url: '/session/refresh' }))
    app.route(app.refreshAuth.logoutRoute({ url: '/session/logout' }))
  })
  await signInAndRefresh(t, moved, '__Secure-refresh_token', { login: '/session', refresh: '/session/refresh' })

  await t.rejects(ready(t, { routes: false, cookie: { path: '/t/acme' } }, app => { app.route(app.refreshAuth.refreshRoute({ url: '/t/:tenant/refresh' })) }),
    invalidOption(/does not cover/), 'a cookie path cannot depend on a route parameter')
  await t.resolves(ready(t, { routes: false, cookie: { path: '/t' } }, app => { app.route(app.refreshAuth.refreshRoute({ url: '/t/:tenant/refresh' })) }))
})

t.test('a prefix the routes inherit from an encapsulating plugin is checked too', async t => {
  const underPrefix = (cookie?: FastifyRefreshAuthOptions['cookie']) => async (app: FastifyInstance) => {
    await app.register(async api => { await api.register(fastifyRefreshAuth, { ...base, cookie }) }, { prefix: '/api' })
  }
  const bare = Fastify()
  t.teardown(() => bare.close())
  await t.rejects(underPrefix()(bare).then(() => bare.ready()), invalidOption(/cookie.path '\/auth' does not cover POST \/api\/auth\/refresh/))

  const app = Fastify()
  t.teardown(() => app.close())
  await underPrefix({ path: '/api/auth' })(app)
  await app.ready()
  const cookie = await signInAndRefresh(t, app, '__Secure-refresh_token', { login: '/api/auth/login', refresh: '/api/auth/refresh' })
  t.equal(cookie?.attributes.path, '/api/auth')
})

t.test('on the body transport no cookie is set, so its path is not checked', async t => {
  const app = await ready(t, { refreshTokenTransport: 'body', routes: false, cookie: { path: '/elsewhere' } }, app => {
    app.route(app.refreshAuth.refreshRoute({ url: '/session/refresh' }))
  })
  t.equal((await app.inject({ method: 'POST', url: '/session/refresh', payload: { refresh_token: 'a.b.c' } })).statusCode, 401)
  await t.rejects(ready(t, { refreshTokenTransport: 'both', cookie: { path: '/elsewhere' } }), invalidOption(/does not cover/), "'both' uses the cookie")
})
