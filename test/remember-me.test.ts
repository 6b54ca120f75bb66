import type { FastifyInstance, FastifyRequest, LightMyRequestResponse } from 'fastify'
import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
import type { SessionStore } from '../lib/index.js'
import { COOKIE, USER, buildApp, getPrivate, logout, refresh, refreshCookie, setCookies, type ParsedCookie } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { buildLoggedApp, ERROR } from './helpers/logs.js'
import { sharedStores } from './helpers/shipped-stores.js'

// Issue 11, remember me: `rememberMe(user, request)` answering false makes the refresh cookie a
// browser-session cookie (no Max-Age, no Expires) for the whole session, across every rotation.

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file

// The demo's way: a "Keep me signed in" checkbox sent with the credentials.
const fromBody = (_user: unknown, request: FastifyRequest) => (request.body as { remember?: unknown }).remember === true

function signIn (app: FastifyInstance, remember: boolean | undefined, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/login', payload: remember === undefined ? USER : { ...USER, remember }, headers })
}

function theCookie (response: LightMyRequestResponse): ParsedCookie {
  const cookie = setCookies(response).find(c => c.name === COOKIE)
  if (cookie === undefined) throw new Error(`no refresh cookie set: ${response.statusCode} ${response.body}`)
  return cookie
}

/** Asserts a refresh cookie that the browser keeps for `maxAge`, or (null) until its session ends. */
function assertCookie (t: Test, response: LightMyRequestResponse, maxAge: number | null, what: string) {
  t.equal(response.statusCode, 200, `${what}: 200`)
  const cookie = theCookie(response)
  t.not(cookie.value, '', `${what}: a token`)
  if (maxAge === null) {
    t.equal(cookie.attributes['max-age'], undefined, `${what}: no Max-Age`)
    t.equal(cookie.attributes.expires, undefined, `${what}: no Expires`)
  } else {
    t.equal(cookie.attributes['max-age'], String(maxAge), `${what}: Max-Age`)
  }
  t.match(cookie.attributes, { httponly: true, secure: true, samesite: 'Strict', path: '/auth' }, `${what}: the other attributes as always`)
}

const WEEK = 7 * 86400

t.test('by default every session is remembered: a persistent cookie at login and at each refresh', async t => {
  const app = await buildApp(t)
  const login = await signIn(app, false)
  assertCookie(t, login, WEEK, 'login')
  assertCookie(t, await refresh(app, refreshCookie(login)), WEEK, 'refresh')
})

t.test('rememberMe false: a browser-session cookie at login, at every rotation and at a re-issue', async t => {
  const app = await buildApp(t, { rememberMe: fromBody, refreshToken: { reuseInterval: 30 } })
  const login = await signIn(app, false)
  assertCookie(t, login, null, 'login')
  let token = refreshCookie(login) as string
  let parent = token
  for (let i = 1; i <= 3; i++) {
    const response = await refresh(app, token)
    assertCookie(t, response, null, `rotation ${i}`)
    parent = token
    token = refreshCookie(response) as string
  }
  const reissued = await refresh(app, parent)
  assertCookie(t, reissued, null, 'the parent again, within the reuse interval')
  t.equal((jwt.decode(refreshCookie(reissued) as string) as jwt.JwtPayload).jti, (jwt.decode(token) as jwt.JwtPayload).jti, 'a re-issue of the live token')
  t.equal((await getPrivate(app, reissued.json().access_token)).statusCode, 200, 'the tokens work as any')
})

t.test('rememberMe true keeps the cookie; sessions of one user each keep their own choice', async t => {
  const app = await buildApp(t, { rememberMe: fromBody })
  const kept = await signIn(app, true)
  const forgotten = await signIn(app, false)
  assertCookie(t, kept, WEEK, 'remembered login')
  assertCookie(t, forgotten, null, 'forgotten login')
  assertCookie(t, await refresh(app, refreshCookie(kept)), WEEK, 'remembered refresh')
  assertCookie(t, await refresh(app, refreshCookie(forgotten)), null, 'forgotten refresh')
})

t.test("the host's claims ride along with the choice, rotation after rotation", async t => {
  const app = await buildApp(t, { rememberMe: () => false, claims: async () => ({ roles: ['editor'] }) })
  const login = await signIn(app, undefined)
  assertCookie(t, login, null, 'login')
  const refreshed = await refresh(app, refreshCookie(login))
  assertCookie(t, refreshed, null, 'refresh')
  t.same((jwt.decode(refreshed.json().access_token) as jwt.JwtPayload).roles, ['editor'], 'the claims are kept')
  const claims = jwt.decode(refreshCookie(refreshed) as string) as jwt.JwtPayload
  t.equal(claims.remember, false, 'the refresh token says the session is not remembered')
  t.same(claims.ext, { roles: ['editor'] })
})

t.test('rememberMe gets the user verifyCredentials resolved to and the request, and may be async', async t => {
  const seen: Array<{ user: unknown, url: string }> = []
  const app = await buildApp(t, {
    rememberMe: async (user, request) => {
      seen.push({ user, url: request.url })
      await new Promise(resolve => setImmediate(resolve))
      return false
    }
  })
  assertCookie(t, await signIn(app, undefined), null, 'login')
  t.same(seen, [{ user: { id: 42, email: 'alice@example.com' }, url: '/auth/login' }])
  t.equal(seen.length, 1, 'asked once, at login only')
  await refresh(app, refreshCookie(await signIn(app, undefined)))
  t.equal(seen.length, 2, 'never at refresh: the token carries the answer')
})

t.test('wrong credentials never reach rememberMe', async t => {
  let asked = 0
  const app = await buildApp(t, { rememberMe: () => { asked++; return false } })
  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { ...USER, password: 'nope' } })
  t.equal(wrong.statusCode, 401)
  t.equal(asked, 0)
})

t.test("the server still applies the session's idle and absolute limits", async t => {
  const clock = fakeClock(t)
  const app = await buildApp(t, { rememberMe: () => false, accessToken: { expiresIn: 60 }, refreshToken: { expiresIn: '1h', absoluteExpiresIn: '2h' } })
  const idle = refreshCookie(await signIn(app, undefined))
  let token = refreshCookie(await signIn(app, undefined)) as string
  clock.advance(50 * 60)
  const kept = await refresh(app, token)
  assertCookie(t, kept, null, 'within the idle limit')
  token = refreshCookie(kept) as string
  clock.advance(11 * 60)
  t.equal((await refresh(app, idle)).statusCode, 401, 'past the idle limit: refused, whatever the browser kept')
  clock.advance(40 * 60)
  token = refreshCookie(await refresh(app, token)) as string
  clock.advance(21 * 60)
  t.equal((await refresh(app, token)).statusCode, 401, 'past the absolute limit')
})

t.test('logout clears a browser-session cookie as any other', async t => {
  const app = await buildApp(t, { rememberMe: () => false })
  const token = refreshCookie(await signIn(app, undefined))
  const response = await logout(app, token)
  t.equal(response.statusCode, 204)
  t.match(theCookie(response), { value: '', attributes: { 'max-age': '0', path: '/auth' } })
  t.equal((await refresh(app, token)).statusCode, 401)
})

t.test('the body transport has no cookie: rememberMe is not asked and the answer is unchanged', async t => {
  let asked = 0
  const rememberMe = () => { asked++; return false }
  const body = await buildApp(t, { rememberMe, refreshTokenTransport: 'body' })
  const signedIn = await signIn(body, undefined)
  t.equal(signedIn.statusCode, 200)
  t.equal(signedIn.headers['set-cookie'], undefined)
  const refreshed = await body.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: signedIn.json().refresh_token } })
  t.equal(refreshed.statusCode, 200)
  t.type(refreshed.json().refresh_token, 'string')
  t.equal(asked, 0, 'never asked on the body transport')

  const both = await buildApp(t, { rememberMe, refreshTokenTransport: 'both' })
  const mobile = await signIn(both, undefined, { 'refresh-token-transport': 'body' })
  t.equal(mobile.headers['set-cookie'], undefined)
  t.equal(asked, 0, "nor for a body login on 'both'")
  assertCookie(t, await signIn(both, undefined), null, "a browser login on 'both'")
  t.equal(asked, 1)
})

const GENERIC = { statusCode: 500, code: 'FST_REFRESH_AUTH_CALLBACK_FAILED', error: 'Internal Server Error', message: 'The server could not complete the request' }

t.test('an answer other than a boolean is the host bug it is: logged, a generic 500, and no session', async t => {
  for (const answer of ['false', 'true', 0, 1, null, undefined, {}, Promise.resolve('yes')]) {
    const { app, lines, text } = await buildLoggedApp(t, { rememberMe: () => answer as never })
    const response = await signIn(app, undefined)
    t.same(response.json(), GENERIC, `${String(answer)}: a generic 500`)
    t.equal(response.headers['set-cookie'], undefined, 'no cookie')
    t.same(await app.refreshAuth.listUserSessions('42'), [], 'no session saved')
    const line = lines.find(line => line.level === ERROR && line.callback === 'rememberMe')
    t.match(line, { msg: /must answer true or false/ }, 'the operator is told')
    if (typeof answer === 'string') t.notMatch(text(), new RegExp(`"${answer}"`), 'by type, not by value')
  }
})

t.test('rememberMe that throws is handled as every host callback: a generic 500, or its own 4xx', async t => {
  const { app, lines } = await buildLoggedApp(t, { rememberMe: async () => { throw new Error('preferences service down') } })
  const response = await signIn(app, undefined)
  t.same(response.json(), GENERIC)
  t.notMatch(response.body, /preferences/, 'its message stays in the log')
  t.same(await app.refreshAuth.listUserSessions('42'), [], 'no session saved')
  t.match(lines.find(line => line.callback === 'rememberMe'), { level: ERROR, err: { message: 'preferences service down' } })

  const refused = Object.assign(new Error('Shared computers may not stay signed in'), { statusCode: 403 })
  const { app: strict } = await buildLoggedApp(t, { rememberMe: () => { throw refused } })
  const answer = await signIn(strict, undefined)
  t.equal(answer.statusCode, 403, 'a 4xx is the host answering')
  t.equal(answer.json().message, 'Shared computers may not stay signed in')
})

t.test('rememberMe must be a function', async t => {
  for (const bad of [true, 'yes', {}]) {
    await t.rejects(buildApp(t, { rememberMe: bad as never }), { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /rememberMe must be a function/ })
  }
})

/**
 * Model-based: random logins (remembered or not), refreshes of the live token, of its parent within the
 * reuse interval and of older tokens, and logouts, checked step by step against a small model of the
 * sessions (which are live, which token is live). Whatever the sequence, a cookie the plugin sets is persistent exactly when its session was
 * remembered at login.
 */
async function modelCheck (t: Test, store: SessionStore | undefined, seed: number, steps: number) {
  const app = await buildApp(t, { rememberMe: fromBody, refreshToken: { reuseInterval: 60 }, ...(store === undefined ? {} : { store }) })
  interface ModelSession { remember: boolean, chain: string[], tokens: Map<string, string>, live: boolean }
  const sessions: ModelSession[] = []
  let state = seed
  // a small linear congruential generator: the same seed gives the same run
  const random = (n: number) => {
    state = (state * 1103515245 + 12345) % 2147483648
    // the high bits: the low ones of this generator repeat with a short period
    return Math.floor(state / 65536) % n
  }
  const jtiOf = (token: string) => (jwt.decode(token) as jwt.JwtPayload).jti as string
  const keep = (session: ModelSession, token: string) => {
    const jti = jtiOf(token)
    if (session.chain.at(-1) !== jti) session.chain.push(jti)
    session.tokens.set(jti, token)
  }

  for (let step = 0; step < steps; step++) {
    // 0 login, 1 refresh of the live token (weighted, so chains grow), 2 of its parent, 3 of an older one, 4 logout
    const operation = sessions.length === 0 ? 0 : [0, 1, 1, 1, 2, 3, 3, 4][random(8)]
    // mostly live sessions (a quarter of the time any, ended ones included); an older token (3) needs two rotations
    const candidates = random(4) === 0 ? sessions : sessions.filter(s => s.live)
    const pool = operation === 3 ? candidates.filter(s => s.chain.length >= 3) : candidates
    const session = pool[random(pool.length || 1)]
    if (operation !== 0 && session === undefined) continue
    if (operation === 0) {
      const remember = random(2) === 0
      const response = await signIn(app, remember)
      const model: ModelSession = { remember, chain: [], tokens: new Map(), live: true }
      assertCookie(t, response, remember ? WEEK : null, `step ${step}: login (remember ${remember})`)
      keep(model, theCookie(response).value)
      sessions.push(model)
    } else if (operation <= 3) {
      // the live token, its parent, or an older one (reuse)
      const back = operation === 1 ? 0 : operation === 2 ? 1 : 2 + random(3)
      const jti = session.chain[session.chain.length - 1 - back]
      if (jti === undefined) continue
      const response = await refresh(app, session.tokens.get(jti))
      if (session.live && back <= 1) {
        const maxAge = Number(theCookie(response).attributes['max-age'])
        assertCookie(t, response, session.remember ? maxAge : null, `step ${step}: refresh ${back === 0 ? 'live' : 'parent'} (remember ${session.remember})`)
        if (session.remember) t.ok(maxAge > WEEK - 5 && maxAge <= WEEK, 'a fresh idle limit')
        const next = theCookie(response).value
        if (back === 1) t.equal(jtiOf(next), session.chain.at(-1), 'the parent gets the live token again')
        keep(session, next)
      } else {
        t.equal(response.statusCode, 401, `step ${step}: refused (${session.live ? 'reuse' : 'session ended'})`)
        t.equal(theCookie(response).value, '', 'the cookie is cleared')
        session.live = false
      }
    } else {
      const response = await logout(app, session.tokens.get(session.chain.at(-1) as string))
      t.equal(response.statusCode, 204, `step ${step}: logout`)
      session.live = false
    }
  }
  t.ok(sessions.some(s => s.remember) && sessions.some(s => !s.remember), 'the run saw both kinds of session')
}

t.test('model-based: cookie persistence follows the session through any sequence (MemoryStore)', async t => {
  for (const seed of [1, 7, 42]) await modelCheck(t, undefined, seed, 60)
})

for (const [name, makeStore] of sharedStores(__filename)) {
  t.test(`${name}: a refresh keeps the browser-session cookie`, async t => {
    const store = await makeStore(t)
    if (store === null) return

    t.test('rotations and a re-issue', async t => {
      const app = await buildApp(t, { store, rememberMe: fromBody, refreshToken: { reuseInterval: 30 } })
      const forgotten = await signIn(app, false)
      assertCookie(t, forgotten, null, 'login')
      const rotated = await refresh(app, refreshCookie(forgotten))
      assertCookie(t, rotated, null, 'rotation')
      assertCookie(t, await refresh(app, refreshCookie(rotated)), null, 'second rotation')
      assertCookie(t, await refresh(app, refreshCookie(rotated)), null, 'the parent again, within the reuse interval')
      assertCookie(t, await refresh(app, refreshCookie(await signIn(app, true))), WEEK, 'a remembered session beside it')
    })

    t.test('model-based', async t => {
      await modelCheck(t, store, 3, 60)
    })
  })
}
