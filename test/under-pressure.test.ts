import Fastify from 'fastify'
import underPressure from '@fastify/under-pressure'
import t from 'tap'
import fastifyRefreshAuth, { authenticate } from '../lib/index.js'
import { COOKIE, SECRET, USER, verifyCredentials, refreshCookie } from './helpers/app.js'

// Issue 20, finding 14: docs/recipes.md puts @fastify/under-pressure in front of the auth routes. An
// overloaded app answers 503 with Retry-After at once rather than queueing, and a refused request consumes
// nothing. The overload is deterministic: under-pressure's healthCheck reports it, and the test waits for
// a check to have seen it.

t.test('the load-shedding recipe: overloaded, the auth routes answer 503 with Retry-After and consume nothing', async t => {
  let overloaded = false
  let checked: (() => void) | null = null
  // under-pressure's check timer is unref'd: a timer of ours keeps the process alive until a check has run
  const checkedAfterChange = async (): Promise<void> => {
    const keepAlive = setInterval(() => {}, 1000)
    try {
      await new Promise<void>(resolve => { checked = resolve })
    } finally {
      clearInterval(keepAlive)
    }
  }
  let credentialChecks = 0

  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyRefreshAuth, {
    secret: SECRET,
    routes: false,
    // reuse the recipe's user check, counting the calls
    verifyCredentials: async (request) => { credentialChecks++; return await verifyCredentials(request) }
  })
  await app.register(async function authRoutes (auth) {
    await auth.register(underPressure, {
      maxEventLoopDelay: 1000,
      maxEventLoopUtilization: 0.98,
      retryAfter: 5,
      healthCheck: async () => {
        const healthy = !overloaded
        // resolved after the check has run, on the next turn, once under-pressure has stored its answer
        const done = checked
        checked = null
        if (done !== null) setImmediate(done)
        return healthy
      },
      healthCheckInterval: 20
    })
    auth.route(app.refreshAuth.loginRoute())
    auth.route(app.refreshAuth.refreshRoute())
    auth.route(app.refreshAuth.logoutRoute())
  })
  app.get('/profile', { preHandler: authenticate }, async (request) => ({ userId: request.user?.sub }))
  await app.ready()

  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  t.equal(login.statusCode, 200, 'healthy: served')
  const cookie = `${COOKIE}=${refreshCookie(login) as string}`
  const bearer = { authorization: `Bearer ${login.json().access_token as string}` }

  overloaded = true
  await checkedAfterChange()
  const before = credentialChecks
  for (const request of [
    { method: 'POST' as const, url: '/auth/login', payload: USER },
    { method: 'POST' as const, url: '/auth/refresh', headers: { cookie } },
    { method: 'POST' as const, url: '/auth/logout', headers: { cookie } }
  ]) {
    const response = await app.inject(request)
    t.equal(response.statusCode, 503, `${request.url}: shed`)
    t.equal(response.headers['retry-after'], '5', `${request.url}: Retry-After`)
    t.equal(response.headers['set-cookie'], undefined, `${request.url}: no cookie set or cleared`)
  }
  t.equal(credentialChecks, before, 'verifyCredentials was not called')
  t.equal((await app.inject({ url: '/profile', headers: bearer })).statusCode, 200, 'routes outside the auth context are not shed')

  overloaded = false
  await checkedAfterChange()
  const retried = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie } })
  t.equal(retried.statusCode, 200, 'the same refresh cookie works once the load is gone: nothing was consumed')
})
