import fastifyRateLimit from '@fastify/rate-limit'
import Fastify, { type FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import fastifyRefreshAuth from '../lib/index.js'
import { COOKIE, SECRET, USER, refreshCookie, verifyCredentials } from './helpers/app.js'

// The recipe of docs/recipes.md: login limited per IP and per username, refresh limited per IP.
async function rateLimitedApp (t: Test) {
  let credentialChecks = 0
  const app = Fastify()
  await app.register(fastifyRateLimit, { global: false })
  await app.register(fastifyRefreshAuth, {
    secret: SECRET,
    routes: false,
    verifyCredentials: async (request) => {
      credentialChecks++
      return verifyCredentials(request)
    }
  })

  // @fastify/rate-limit runs one limiter hook per request: the per-IP limit is the route's own,
  // the per-username one a manual check in a preHandler, where the body is parsed.
  const loginPerUsername = app.createRateLimit({
    max: 3,
    timeWindow: '15 minutes',
    keyGenerator: (request: FastifyRequest) => {
      const username = (request.body as { username?: unknown } | undefined)?.username
      return `login:${typeof username === 'string' ? username.toLowerCase() : ''}`
    }
  })
  app.route(app.refreshAuth.loginRoute({
    config: { rateLimit: { max: 5, timeWindow: '15 minutes' } },
    preHandler: async (request) => {
      const limit = await loginPerUsername(request)
      if (!limit.isAllowed && limit.isExceeded) {
        throw Object.assign(new Error('Too many sign-in attempts, try again later'), {
          statusCode: 429, headers: { 'retry-after': String(limit.ttlInSeconds) }
        })
      }
    }
  }))
  app.route(app.refreshAuth.refreshRoute({ config: { rateLimit: { max: 2, timeWindow: '1 minute' } } }))
  app.route(app.refreshAuth.logoutRoute())
  await app.ready()
  t.teardown(() => app.close())
  return { app, credentialChecks: () => credentialChecks }
}

function attempt (app: Awaited<ReturnType<typeof rateLimitedApp>>['app'], ip: string, username: string, password = 'guess') {
  return app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { username, password } })
}

t.test('login: the attempts past the per-username limit get 429, whatever the IP, before credentials are checked', async t => {
  const { app, credentialChecks } = await rateLimitedApp(t)
  for (let i = 1; i <= 3; i++) t.equal((await attempt(app, `10.0.0.${i}`, 'alice')).statusCode, 401)
  const limited = await attempt(app, '10.0.0.9', 'Alice', USER.password)
  t.equal(limited.statusCode, 429, 'even with the right password, from a fresh IP')
  t.equal(limited.json().statusCode, 429)
  t.ok(limited.headers['retry-after'])
  t.equal(refreshCookie(limited), undefined, 'no session started')
  t.equal(credentialChecks(), 3, 'verifyCredentials never ran for the 429')
  t.equal((await attempt(app, '10.0.0.9', 'bob')).statusCode, 401, 'other usernames are not affected')
})

t.test('login: the attempts past the per-IP limit get 429, whatever the username', async t => {
  const { app } = await rateLimitedApp(t)
  for (let i = 1; i <= 5; i++) t.equal((await attempt(app, '10.0.1.1', `user${i}`)).statusCode, 401)
  t.equal((await attempt(app, '10.0.1.1', 'alice', USER.password)).statusCode, 429)
  t.equal((await attempt(app, '10.0.1.2', 'alice', USER.password)).statusCode, 200, 'another IP still signs in')
})

t.test('refresh: a 429 never consumes the refresh token it carried', async t => {
  const { app } = await rateLimitedApp(t)
  const signedIn = await attempt(app, '10.0.2.1', USER.username, USER.password)
  let token = refreshCookie(signedIn) as string
  const refresh = (ip: string, presented: string) =>
    app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: ip, headers: { cookie: `${COOKIE}=${presented}` } })

  for (let i = 0; i < 2; i++) {
    const response = await refresh('10.0.2.1', token)
    t.equal(response.statusCode, 200)
    token = refreshCookie(response) as string
  }
  const limited = await refresh('10.0.2.1', token)
  t.equal(limited.statusCode, 429)
  t.equal(refreshCookie(limited), undefined, 'no new token and the cookie is left alone')
  t.notOk(limited.headers['set-cookie'])

  // Had the 429 rotated it, presenting it again would be reuse: 401 and the whole session revoked.
  const later = await refresh('10.0.2.2', token)
  t.equal(later.statusCode, 200, 'the token the 429 carried is still the live one')
  t.equal((await refresh('10.0.2.2', refreshCookie(later) as string)).statusCode, 200, 'and the session goes on')
})
