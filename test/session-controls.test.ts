import type { FastifyInstance, FastifyRequest, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { MemoryStore, type FastifyRefreshAuthOptions, type LogoutEvent, type SessionStore } from '../lib/index.js'
import { COOKIE, buildApp, getPrivate, refresh, refreshCookie, setCookies } from './helpers/app.js'
import { shippedStores, withoutFeed } from './helpers/shipped-stores.js'

// Issue 11, session controls: a limit of sessions per user (revoke the least recently used, or refuse),
// "sign out the other devices", and a login on a device that already has a session replacing it. Each
// runs on every store the project ships, through the routes, as a client would see it.

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file

// Users sign in with `{ "user": "<id>" }`; each test run has users of its own (stores may share a backend).
let run = 0
function users (): (name: string) => string {
  const prefix = `u${process.pid}-${run++}-`
  return (name: string) => prefix + name
}

async function verifyCredentials (request: FastifyRequest): Promise<{ id: string } | null> {
  const user = (request.body as { user?: unknown } | undefined)?.user
  return typeof user === 'string' ? { id: user } : null
}

interface Signed {
  response: LightMyRequestResponse
  accessToken: string
  refreshToken: string
  sessionId: string
}

function claimsOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, unknown>
}

function signIn (app: FastifyInstance, user: string, cookie?: string, payload: Record<string, unknown> = {}): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { user, ...payload },
    headers: cookie === undefined ? {} : { cookie }
  })
}

async function signedIn (app: FastifyInstance, user: string, cookie?: string): Promise<Signed> {
  const response = await signIn(app, user, cookie)
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  const refreshToken = refreshCookie(response) as string
  return { response, accessToken: response.json().access_token, refreshToken, sessionId: claimsOf(refreshToken).sid as string }
}

function logoutWith (app: FastifyInstance, refreshToken: string, payload?: Record<string, unknown>): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/auth/logout',
    headers: { cookie: `${COOKIE}=${refreshToken}` },
    ...(payload === undefined ? {} : { payload })
  })
}

/** Whether a session still refreshes; a refresh rotates it, so the fresh token is handed back. */
async function stillRefreshes (app: FastifyInstance, session: Signed): Promise<boolean> {
  const response = await refresh(app, session.refreshToken)
  if (response.statusCode !== 200) return false
  session.refreshToken = refreshCookie(response) as string
  return true
}

function sessionIds (sessions: Array<{ sessionId: string }>): string[] {
  return sessions.map(s => s.sessionId).sort()
}

for (const [name, makeStore] of shippedStores(__filename)) {
  t.test(name, async t => {
    const made = await makeStore(t)
    if (made === null) return
    const store: SessionStore = made
    const logouts: LogoutEvent[] = []
    const reuses: string[] = []
    async function app (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}, setup?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
      return await buildApp(t, {
        store,
        verifyCredentials,
        onLogout: (event) => { logouts.push(event) },
        onReuseDetected: (event) => { reuses.push(event.sessionId) },
        ...options
      }, setup)
    }

    t.test('maxSessionsPerUser: a login at the limit ends the least recently used session, access tokens included', async t => {
      const server = await app(t, { maxSessionsPerUser: 2 })
      const user = users()
      const first = await signedIn(server, user('ann'))
      const second = await signedIn(server, user('ann'))
      const stranger = await signedIn(server, user('bob'))
      // refreshing the first makes the second the least recently used
      t.ok(await stillRefreshes(server, first))
      logouts.length = 0
      const third = await signedIn(server, user('ann'))
      t.notOk(await stillRefreshes(server, second), 'the least recently used session ended')
      t.equal((await getPrivate(server, second.accessToken)).statusCode, 401, 'and its access token with it')
      t.same(logouts, [{ userId: user('ann'), sessionId: second.sessionId, all: false, others: false, reason: 'session-limit' }], 'told like a logout')
      t.ok(await stillRefreshes(server, first), 'the recently used one lives on')
      t.ok(await stillRefreshes(server, third))
      t.ok(await stillRefreshes(server, stranger), 'another user is not counted')
      t.same(sessionIds(await server.refreshAuth.listUserSessions(user('ann'))), sessionIds([first, third]))
    })

    t.test('maxSessionsPerUser: 1 is a single session per user', async t => {
      const server = await app(t, { maxSessionsPerUser: 1 })
      const user = users()
      const laptop = await signedIn(server, user('ann'))
      const phone = await signedIn(server, user('ann'))
      t.notOk(await stillRefreshes(server, laptop), 'the earlier device is signed out')
      t.equal((await getPrivate(server, laptop.accessToken)).statusCode, 401)
      t.equal((await getPrivate(server, phone.accessToken)).statusCode, 200)
      t.same(sessionIds(await server.refreshAuth.listUserSessions(user('ann'))), [phone.sessionId])
    })

    t.test("onSessionLimit 'refuse': a 403 with its own code, no cookie, nothing ended", async t => {
      const server = await app(t, { maxSessionsPerUser: 2, onSessionLimit: 'refuse' })
      const user = users()
      const first = await signedIn(server, user('ann'))
      const second = await signedIn(server, user('ann'))
      const refused = await signIn(server, user('ann'))
      t.equal(refused.statusCode, 403)
      t.equal(refused.json().code, 'FST_REFRESH_AUTH_SESSION_LIMIT')
      t.equal(refused.headers['set-cookie'], undefined, 'no cookie')
      t.notOk('access_token' in refused.json(), 'no token')
      t.ok(await stillRefreshes(server, first), 'the sessions held live on')
      t.ok(await stillRefreshes(server, second))
      // once one signs out, there is room again
      t.equal((await logoutWith(server, first.refreshToken)).statusCode, 204)
      t.equal((await signIn(server, user('ann'))).statusCode, 200)
      t.equal((await signIn(server, user('bob'))).statusCode, 200, 'another user is not counted')
    })

    t.test('20 concurrent logins of one user with a limit of 3 leave exactly 3 live sessions', async t => {
      for (const onSessionLimit of ['revoke-oldest', 'refuse'] as const) {
        const server = await app(t, { maxSessionsPerUser: 3, onSessionLimit })
        const user = users()
        const responses = await Promise.all(Array.from({ length: 20 }, () => signIn(server, user('ann'))))
        const statuses = responses.map(r => r.statusCode)
        // every login is answered: made room for, or refused
        t.ok(statuses.every(s => s === 200 || (onSessionLimit === 'refuse' && s === 403)), `${onSessionLimit}: ${statuses.join(' ')}`)
        const live = await server.refreshAuth.listUserSessions(user('ann'))
        t.equal(live.length, 3, `${onSessionLimit}: exactly three live`)
        let refreshing = 0
        for (const response of responses.filter(r => r.statusCode === 200)) {
          if ((await refresh(server, refreshCookie(response))).statusCode === 200) refreshing++
        }
        t.equal(refreshing, 3, `${onSessionLimit}: exactly three refresh`)
        if (onSessionLimit === 'refuse') t.equal(statuses.filter(s => s === 200).length, 3, 'refuse: exactly three signed in')
      }
    })

    t.test('logout with { "others": true } signs out every other device and keeps this one and its cookie', async t => {
      const server = await app(t)
      const user = users()
      const kept = await signedIn(server, user('ann'))
      const others = [await signedIn(server, user('ann')), await signedIn(server, user('ann'))]
      const stranger = await signedIn(server, user('bob'))
      logouts.length = 0
      const response = await logoutWith(server, kept.refreshToken, { others: true })
      t.equal(response.statusCode, 204)
      t.same(setCookies(response).filter(c => c.name === COOKIE), [], 'the cookie is neither cleared nor changed')
      t.same(logouts, [{ userId: user('ann'), sessionId: kept.sessionId, all: false, others: true, reason: 'logout' }])
      for (const other of others) {
        t.notOk(await stillRefreshes(server, other), 'another device is signed out')
        t.equal((await getPrivate(server, other.accessToken)).statusCode, 401, 'its access token too')
      }
      t.equal((await getPrivate(server, kept.accessToken)).statusCode, 200, 'this device stays signed in')
      t.ok(await stillRefreshes(server, kept))
      t.ok(await stillRefreshes(server, stranger), 'other users are untouched')
      // `all` asks for more, and wins
      const again = await signedIn(server, user('ann'))
      t.equal((await logoutWith(server, kept.refreshToken, { all: true, others: true })).statusCode, 204)
      t.notOk(await stillRefreshes(server, kept))
      t.notOk(await stillRefreshes(server, again))
    })

    t.test('{ "others": true } with a rotated refresh token is reuse: that session ends, the others live on', async t => {
      const server = await app(t, { refreshToken: { reuseInterval: 0 } })
      const user = users()
      const stolen = await signedIn(server, user('ann'))
      const other = await signedIn(server, user('ann'))
      const rotatedAway = stolen.refreshToken
      t.ok(await stillRefreshes(server, stolen))
      reuses.length = 0
      logouts.length = 0
      t.equal((await logoutWith(server, rotatedAway, { others: true })).statusCode, 204)
      t.same(reuses, [stolen.sessionId], 'onReuseDetected')
      t.same(logouts, [], 'no logout was told')
      t.notOk(await stillRefreshes(server, stolen), 'the replayed session ended')
      t.ok(await stillRefreshes(server, other), 'the other device was not signed out')
    })

    t.test('revokeOtherSessions(userId, keepSessionId): after a password change, keep this device', async t => {
      const server = await app(t, {}, (server) => {
        server.post('/account/password', { preHandler: server.authenticate }, async (request) => {
          const user = await request.authenticate()
          await server.refreshAuth.revokeOtherSessions(user.sub, user.sid)
          return { ok: true }
        })
      })
      const user = users()
      const current = await signedIn(server, user('ann'))
      const other = await signedIn(server, user('ann'))
      const changed = await server.inject({ method: 'POST', url: '/account/password', headers: { authorization: `Bearer ${current.accessToken}` } })
      t.equal(changed.statusCode, 200)
      t.notOk(await stillRefreshes(server, other))
      t.equal((await getPrivate(server, other.accessToken)).statusCode, 401)
      t.ok(await stillRefreshes(server, current))
      await server.refreshAuth.revokeOtherSessions(user('nobody'), current.sessionId)
      t.ok(await stillRefreshes(server, current), 'a user without sessions is not an error, and ends nothing else')
      for (const [userId, keep] of [['', 'x'], [Number.NaN, 'x'], [user('ann'), ''], [user('ann'), 7]] as const) {
        await t.rejects(server.refreshAuth.revokeOtherSessions(userId as string, keep as string), { code: 'FST_REFRESH_AUTH_INVALID_ARGUMENT' })
      }
    })

    t.test('a login carrying the live refresh cookie of the same user replaces that session', async t => {
      const server = await app(t, { maxSessionsPerUser: 1, onSessionLimit: 'refuse' })
      const user = users()
      const before = await signedIn(server, user('ann'))
      logouts.length = 0
      const after = await signedIn(server, user('ann'), `${COOKIE}=${before.refreshToken}`)
      t.not(after.sessionId, before.sessionId, 'a new session')
      t.ok((claimsOf(after.accessToken).auth_time as number) >= (claimsOf(before.accessToken).auth_time as number), 'with a fresh auth_time')
      t.notOk(await stillRefreshes(server, before), 'the old one ended')
      t.equal((await getPrivate(server, before.accessToken)).statusCode, 401, 'its access token too')
      t.same(logouts, [{ userId: user('ann'), sessionId: before.sessionId, all: false, others: false, reason: 'replaced' }])
      t.same(sessionIds(await server.refreshAuth.listUserSessions(user('ann'))), [after.sessionId], 'no session piled up, and the limit did not refuse')
    })

    t.test('a refresh token of another user, a rotated one, or one planted twice replaces nothing', async t => {
      const server = await app(t, { refreshToken: { reuseInterval: 0 } })
      const user = users()
      const bob = await signedIn(server, user('bob'))
      const ann = await signedIn(server, user('ann'), `${COOKIE}=${bob.refreshToken}`)
      t.ok(await stillRefreshes(server, bob), "another user's session is not ended")
      t.equal((await server.refreshAuth.listUserSessions(user('ann'))).length, 1)

      // the same user's rotated token: reuse (a thief refreshed it), so the session ends; the login goes on
      const rotatedAway = ann.refreshToken
      t.ok(await stillRefreshes(server, ann))
      reuses.length = 0
      const next = await signedIn(server, user('ann'), `${COOKIE}=${rotatedAway}`)
      t.same(reuses, [ann.sessionId], 'onReuseDetected')
      t.notOk(await stillRefreshes(server, ann))
      t.ok(await stillRefreshes(server, next))

      // two cookies of the name (one planted by a sibling subdomain): the login is not blocked, nothing replaced
      const planted = await signIn(server, user('ann'), `${COOKIE}=${next.refreshToken}; ${COOKIE}=${bob.refreshToken}`)
      t.equal(planted.statusCode, 200)
      t.ok(await stillRefreshes(server, next), 'not replaced')
      t.ok(await stillRefreshes(server, bob))

      // garbage in the cookie is ignored
      t.equal((await signIn(server, user('ann'), `${COOKIE}=not-a-token`)).statusCode, 200)
      t.equal((await server.refreshAuth.listUserSessions(user('ann'))).length, 3)
    })

    t.test('on the body transport, the login body\'s refresh_token replaces its session', async t => {
      const server = await app(t, { refreshTokenTransport: 'body' })
      const user = users()
      const first = await signIn(server, user('ann'))
      const firstToken = first.json().refresh_token as string
      const second = await signIn(server, user('ann'), undefined, { refresh_token: firstToken })
      t.equal(second.statusCode, 200)
      const sessions = await server.refreshAuth.listUserSessions(user('ann'))
      t.same(sessionIds(sessions), [claimsOf(second.json().refresh_token).sid], 'the first session was replaced')
    })
  })
}

t.test('options: maxSessionsPerUser is a positive integer, onSessionLimit one of two', async t => {
  for (const maxSessionsPerUser of [0, -1, 1.5, Number.NaN, '3', null]) {
    await t.rejects(buildApp(t, { maxSessionsPerUser: maxSessionsPerUser as number }), {
      code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /maxSessionsPerUser must be a positive integer/
    })
  }
  for (const onSessionLimit of ['oldest', '', 1]) {
    await t.rejects(buildApp(t, { onSessionLimit: onSessionLimit as 'refuse' }), {
      code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /onSessionLimit must be 'revoke-oldest' or 'refuse'/
    })
  }
})

t.test('a store without a revocation feed: the other sessions\' access tokens are refused by this instance', async t => {
  const inner = new MemoryStore()
  t.teardown(() => inner.close())
  const bare = withoutFeed(inner)
  const server = await buildApp(t, { store: bare, verifyCredentials, maxSessionsPerUser: 2 })
  const kept = await signedIn(server, 'ann')
  const other = await signedIn(server, 'ann')
  t.equal((await logoutWith(server, kept.refreshToken, { others: true })).statusCode, 204)
  t.equal((await getPrivate(server, other.accessToken)).statusCode, 401, 'signed out by logout others')
  t.equal((await getPrivate(server, kept.accessToken)).statusCode, 200, 'the kept session is not')
  const third = await signedIn(server, 'ann')
  await server.refreshAuth.revokeOtherSessions('ann', third.sessionId)
  t.equal((await getPrivate(server, kept.accessToken)).statusCode, 401, 'signed out by revokeOtherSessions')
  t.equal((await getPrivate(server, third.accessToken)).statusCode, 200)
  const fourth = await signedIn(server, 'ann')
  const fifth = await signedIn(server, 'ann')
  t.equal((await getPrivate(server, third.accessToken)).statusCode, 401, 'evicted at the limit: refused locally')
  t.equal((await getPrivate(server, fourth.accessToken)).statusCode, 200)
  t.equal((await getPrivate(server, fifth.accessToken)).statusCode, 200)
})
