import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { COOKIE, USER, login, refreshCookie } from './helpers/app.js'
import { buildLoggedApp, WARN } from './helpers/logs.js'

// Issue 13, finding 2: a sibling subdomain can plant a second cookie of the refresh cookie's name
// (`Domain=` the parent, a longer `Path`, so the browser sends it first). The server must not pick one.

const refreshWith = (app: FastifyInstance, cookie: string, payload?: object) =>
  app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie }, ...(payload === undefined ? {} : { payload }) })
const logoutWith = (app: FastifyInstance, cookie: string) =>
  app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie } })

async function twoSessions (app: FastifyInstance) {
  const victim = (await login(app)).refreshToken
  // the attacker's own, valid session, planted in the victim's browser
  const planted = (await login(app)).refreshToken
  return { victim, planted }
}

function assertRefused (t: Test, response: Awaited<ReturnType<typeof refreshWith>>, what: string): void {
  t.equal(response.statusCode, 400, what)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_DUPLICATE_COOKIE')
  t.equal(response.headers['set-cookie'], undefined, 'no cookie set or cleared: clearing ours would leave only the planted one')
  t.equal(response.headers['cache-control'], 'no-store')
}

t.test('refresh and logout refuse a request carrying the refresh cookie twice, consuming nothing', async t => {
  const { app, lines, text } = await buildLoggedApp(t)
  const { victim, planted } = await twoSessions(app)
  const headers = [
    `${COOKIE}=${planted}; ${COOKIE}=${victim}`,
    `${COOKIE}=${victim}; ${COOKIE}=${planted}`,
    `theme=dark;${COOKIE}=${victim} ;  ${COOKIE}=${planted}; lang=en`,
    `${COOKIE}=${victim}; ${COOKIE}=${victim}`,
    `${COOKIE}=${victim}; ${COOKIE}=; ${COOKIE}=${planted}`
  ]
  for (const cookie of headers) {
    assertRefused(t, await refreshWith(app, cookie), `refresh: ${cookie.replace(/[\w-]+\.[\w-]+\.[\w-]+/g, '<token>')}`)
    assertRefused(t, await logoutWith(app, cookie), 'logout')
  }
  // nothing was consumed or revoked: each token still works on its own, once
  t.equal((await refreshWith(app, `${COOKIE}=${victim}`)).statusCode, 200, "the victim's session is intact")
  t.equal((await refreshWith(app, `${COOKIE}=${planted}`)).statusCode, 200, 'so is the planted one')

  const warnings = lines.filter(line => line.level === WARN && /more than once/.test(line.msg))
  t.equal(warnings.length, headers.length * 2, 'each refusal is logged as a warning')
  t.match(warnings[0], { cookie: COOKIE, count: 2 })
  t.match(warnings[2 * 4], { count: 3 })
  t.notOk(text().includes(victim) || text().includes(planted), 'never a token in the log')
})

t.test('cookies whose names only resemble the refresh cookie are no duplicates', async t => {
  const { app } = await buildLoggedApp(t)
  const { refreshToken } = await login(app)
  const cookie = `x${COOKIE}=a.b.c; ${COOKIE}x=d.e.f; ${COOKIE.toLowerCase()}=g.h.i; ${COOKIE}=${refreshToken}; =${COOKIE}; ${COOKIE}`
  const response = await refreshWith(app, cookie)
  t.equal(response.statusCode, 200)
  t.ok(refreshCookie(response), 'rotated as usual')
})

t.test("on the 'both' transport: a body token is used as is, a doubled cookie is refused", async t => {
  const { app } = await buildLoggedApp(t, { refreshTokenTransport: 'both' })
  const { victim, planted } = await twoSessions(app)
  const doubled = `${COOKIE}=${planted}; ${COOKIE}=${victim}`
  assertRefused(t, await refreshWith(app, doubled), 'cookie client')
  assertRefused(t, await logoutWith(app, doubled), 'cookie client logout')

  const mobile = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { 'refresh-token-transport': 'body' } })
  const bodyToken = mobile.json().refresh_token as string
  const response = await refreshWith(app, doubled, { refresh_token: bodyToken })
  t.equal(response.statusCode, 200, 'the body token is unambiguous; the cookies are not read')
  t.equal(response.headers['set-cookie'], undefined)
  t.equal((await refreshWith(app, `${COOKIE}=${victim}`)).statusCode, 200, "the victim's cookie session is intact")
})

t.test("on the 'body' transport cookies are never read", async t => {
  const { app } = await buildLoggedApp(t, { refreshTokenTransport: 'body' })
  const { refresh_token: token } = (await app.inject({ method: 'POST', url: '/auth/login', payload: USER })).json()
  const response = await refreshWith(app, `${COOKIE}=a.b.c; ${COOKIE}=d.e.f`, { refresh_token: token })
  t.equal(response.statusCode, 200)
})
