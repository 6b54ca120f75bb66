import Fastify from 'fastify'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { MemoryStore, type FastifyRefreshAuthOptions } from '../lib/index.js'
import { COOKIE, SECRET, USER, verifyCredentials, refreshCookie } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'

// Issue 20, finding 12: two instances whose clocks differ by 2 seconds must not sign users out. Date.now()
// is one clock per process, so the clock is moved to stand for the instance that answers: `ahead` while
// instance A works, back while instance B does.

async function instance (t: Test, store: MemoryStore, options: Partial<FastifyRefreshAuthOptions> = {}) {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store, ...options })
  app.get('/private', { preHandler: app.authenticate }, async request => ({ sub: request.user?.sub }))
  await app.ready()
  t.teardown(() => app.close())
  return app
}

t.test('with the default tolerance, an instance 2 s ahead and one behind serve each other\'s tokens', async t => {
  const clock = fakeClock(t)
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const [a, b] = [await instance(t, store), await instance(t, store)]

  // A, 2 s ahead, signs in: its tokens were issued "in the future" for B
  clock.advance(2)
  const login = await a.inject({ method: 'POST', url: '/auth/login', payload: USER })
  clock.advance(-2)
  const headers = { authorization: `Bearer ${login.json().access_token as string}` }
  t.equal((await b.inject({ url: '/private', headers })).statusCode, 200, 'B accepts A\'s access token')
  const onB = await b.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=${refreshCookie(login) as string}` } })
  t.equal(onB.statusCode, 200, 'B refreshes A\'s refresh token: no sign-out')

  // and back: B's tokens on A, 2 s ahead
  clock.advance(2)
  const onA = await a.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=${refreshCookie(onB) as string}` } })
  t.equal(onA.statusCode, 200, 'A refreshes B\'s refresh token')
  t.equal((await a.inject({ url: '/private', headers: { authorization: `Bearer ${onB.json().access_token as string}` } })).statusCode, 200)
})

t.test('an access token at the end of its life on the behind instance still passes on the one ahead', async t => {
  const clock = fakeClock(t)
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const options = { accessToken: { expiresIn: 60 } }
  const [ahead, behind] = [await instance(t, store, options), await instance(t, store, options)]
  const login = await behind.inject({ method: 'POST', url: '/auth/login', payload: USER })
  const headers = { authorization: `Bearer ${login.json().access_token as string}` }
  // 59 s later on the instance behind, 61 s on the one ahead: expired there by one second
  clock.advance(61)
  t.equal((await ahead.inject({ url: '/private', headers })).statusCode, 200, 'within the tolerance')
  clock.advance(5)
  t.equal((await ahead.inject({ url: '/private', headers })).statusCode, 401, 'past it, refused')
})

t.test('clockTolerance: 0 is still strict', async t => {
  const clock = fakeClock(t)
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const [a, b] = [await instance(t, store, { clockTolerance: 0 }), await instance(t, store, { clockTolerance: 0 })]
  clock.advance(2)
  const login = await a.inject({ method: 'POST', url: '/auth/login', payload: USER })
  clock.advance(-2)
  t.equal((await b.inject({ url: '/private', headers: { authorization: `Bearer ${login.json().access_token as string}` } })).statusCode, 401)
})
