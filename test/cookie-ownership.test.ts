import fastifyCookie from '@fastify/cookie'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../lib/index.js'
import { COOKIE, SECRET, USER, refreshCookie, setCookies, verifyCredentials, type ParsedCookie } from './helpers/app.js'

// Issue 13, finding 1: a host's @fastify/cookie `parseOptions` apply to every reply.setCookie of the app.
// The refresh cookie must carry the plugin's attributes only, whatever the host's defaults say.
const hostDefaults = {
  domain: 'example.com',
  path: '/',
  sameSite: 'none',
  secure: false,
  httpOnly: false,
  maxAge: 400 * 24 * 3600,
  expires: new Date(Date.now() + 400 * 24 * 3600 * 1000),
  partitioned: true,
  priority: 'high'
} as const

async function hostApp (t: Test, cookieOptions: Record<string, unknown>, options: Partial<FastifyRefreshAuthOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  // as the README tells hosts that read request.cookies: registered before the plugin
  await app.register(fastifyCookie, cookieOptions)
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, ...options } as FastifyRefreshAuthOptions)
  app.get('/theme', async (_request, reply) => reply.setCookie('theme', 'dark').send('ok'))
  await app.ready()
  t.teardown(() => app.close())
  return app
}

function theRefreshCookie (t: Test, cookies: ParsedCookie[]): ParsedCookie {
  const found = cookies.filter(cookie => cookie.name === COOKIE)
  t.equal(found.length, 1, 'one refresh cookie')
  return found[0]
}

// Exactly the plugin's attributes, nothing of the host's.
function assertOurs (t: Test, cookie: ParsedCookie, maxAge: string): void {
  const { expires, ...attributes } = cookie.attributes
  t.same(attributes, { 'max-age': maxAge, path: '/auth', httponly: true, secure: true, samesite: 'Strict' }, `attributes of ${cookie.value === '' ? 'the cleared' : 'the set'} cookie`)
  if (maxAge === '0') t.equal(expires, 'Thu, 01 Jan 1970 00:00:00 GMT', 'cleared: expired in the past')
  else t.equal(expires, undefined, 'no Expires of the host')
}

t.test("the refresh cookie ignores the host's @fastify/cookie defaults: set, rotated, cleared", async t => {
  const app = await hostApp(t, { parseOptions: hostDefaults })

  const host = setCookies(await app.inject('/theme'))[0]
  t.equal(host.attributes.domain, 'example.com', "control: the host's own cookies do get its defaults")

  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  t.equal(login.statusCode, 200)
  assertOurs(t, theRefreshCookie(t, setCookies(login)), String(7 * 24 * 3600))

  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=${refreshCookie(login) as string}` } })
  t.equal(refreshed.statusCode, 200)
  const rotated = theRefreshCookie(t, setCookies(refreshed))
  assertOurs(t, rotated, String(7 * 24 * 3600))

  const refused = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=not.a.token` } })
  t.equal(refused.statusCode, 401)
  const cleared = theRefreshCookie(t, setCookies(refused))
  t.equal(cleared.value, '')
  assertOurs(t, cleared, '0')

  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: `${COOKIE}=${rotated.value}` } })
  t.equal(logout.statusCode, 204)
  const loggedOut = theRefreshCookie(t, setCookies(logout))
  t.equal(loggedOut.value, '')
  assertOurs(t, loggedOut, '0')
})

t.test("the host's signing and encoding never touch the refresh cookie's value", async t => {
  const app = await hostApp(t, {
    secret: 'a-cookie-signing-secret-of-the-host-0123456789',
    parseOptions: { signed: true, encode: (value: string) => `enc:${value}`, decode: (value: string) => `dec:${value}` }
  })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  const token = refreshCookie(login) as string
  t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the bare token: neither signed nor encoded')
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=${token}` } })
  t.equal(refreshed.statusCode, 200, "read without the host's decode")
})

t.test('the same holds on the body transport, for the clients that use the cookie', async t => {
  const app = await hostApp(t, { parseOptions: hostDefaults }, { refreshTokenTransport: 'both' })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  assertOurs(t, theRefreshCookie(t, setCookies(login)), String(7 * 24 * 3600))
  const refused = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=not.a.token` } })
  assertOurs(t, theRefreshCookie(t, setCookies(refused)), '0')

  const mobile = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { 'refresh-token-transport': 'body' } })
  t.equal(mobile.headers['set-cookie'], undefined, 'a body client still gets no cookie')
})

t.test("cookies the host sets on the same reply are kept next to the plugin's", async t => {
  const app = Fastify()
  await app.register(fastifyCookie, { parseOptions: hostDefaults })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, routes: false })
  app.route(app.refreshAuth.loginRoute({
    onSend: async (_request, reply) => { reply.setCookie('last_login', 'now') }
  }))
  await app.ready()
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  const names = setCookies(login).map(cookie => cookie.name).sort()
  t.same(names, [COOKIE, 'last_login'])
  assertOurs(t, theRefreshCookie(t, setCookies(login)), String(7 * 24 * 3600))
})

// The plugin loads @fastify/cookie's serialize/parse without registering it on the host (not even in a child
// context, which would clash with the host's own registration): the host registers its own, before or after.
for (const order of ['before', 'after'] as const) {
  t.test(`a host registering its own @fastify/cookie ${order} the plugin keeps its parseOptions, the refresh cookie ours`, async t => {
    const app = Fastify()
    // `decode` is read by parseCookie though the types leave it out of parseOptions
    const hostOptions: Record<string, unknown> = { parseOptions: { ...hostDefaults, decode: (value: string) => `dec:${value}` } }
    const host = async (): Promise<void> => { await app.register(fastifyCookie, hostOptions) }
    if (order === 'before') await host()
    await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
    if (order === 'after') await host()
    app.get('/theme', async (request, reply) => reply.setCookie('theme', 'dark').send(request.cookies))
    await app.ready()
    t.teardown(() => app.close())

    const theme = await app.inject({ url: '/theme', headers: { cookie: 'lang=en' } })
    t.same(theme.json(), { lang: 'dec:en' }, "the host's routes parse with the host's decode")
    t.equal(setCookies(theme)[0].attributes.domain, 'example.com', "the host's cookies get the host's defaults")

    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
    assertOurs(t, theRefreshCookie(t, setCookies(login)), String(7 * 24 * 3600))
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `lang=en; ${COOKIE}=${refreshCookie(login) as string}` } })
    t.equal(refreshed.statusCode, 200, "read without the host's decode")
    assertOurs(t, theRefreshCookie(t, setCookies(refreshed)), String(7 * 24 * 3600))
  })
}
