import t from 'tap'
import { AuthClientError, createAuthClient, type EndEvent, type SessionEvent } from '../lib/client/index.js'
import { json, jwt, refused, scriptedFetch, sse, tokens, until } from './helpers/client.js'
import { virtualTimers } from './helpers/clock.js'

// The client in one tab (Node has no navigator.locks: refreshes are single-flight inside the client), against a
// scripted fetch: what it sends, and what it makes of each answer.

const INVALID_TOKEN = { 'www-authenticate': 'Bearer realm="fastify-refresh-auth", error="invalid_token"' }

// Backoff and token lifetimes of seconds run on virtual timers (helpers/clock.ts): the same schedule, without
// waiting it out.

t.test('restore, fetch with the token, the session event, state, close', async t => {
  const fetch = scriptedFetch((url, init) => {
    if (url === '/auth/refresh') return tokens()
    return json(200, { auth: init.headers.get('authorization') })
  })
  const auth = createAuthClient({ fetch, live: false })
  t.teardown(() => auth.close())
  const sessions: SessionEvent[] = []
  const off = auth.on('session', event => sessions.push(event))
  t.equal(auth.state, 'signed-out')
  t.equal(await auth.getAccessToken(), null, 'no token while signed out, and no refresh tried')
  t.equal(fetch.calls.length, 0)
  t.equal(await auth.restore(), true)
  t.equal(auth.state, 'signed-in')
  t.equal(await auth.restore(), true, 'restoring a signed-in client changes nothing')
  t.equal(fetch.to('/refresh').length, 1)
  t.match(fetch.calls[0].init, { method: 'POST', credentials: 'include', body: undefined })
  t.equal(sessions.length, 1)
  t.match(sessions[0], { accessToken: /^access-/ })
  t.ok(Math.abs(sessions[0].expiresAt - (Date.now() + 900_000)) < 5000, 'expiresAt from expires_in')
  const response = await auth.fetch('/api/me', { headers: { 'x-mine': '1' } })
  t.same(await response.json(), { auth: `Bearer ${sessions[0].accessToken}` })
  t.equal(fetch.calls.at(-1)?.init.headers.get('x-mine'), '1', 'the caller\'s headers are kept')
  off()
  await auth.refresh()
  t.equal(sessions.length, 1, 'a removed listener hears nothing')
})

t.test('restore without a session: false, no end event; a plain fetch goes out without Authorization', async t => {
  const fetch = scriptedFetch((url) => url === '/auth/refresh' ? refused() : json(401, {}, url === '/api/me' ? { 'www-authenticate': 'Bearer realm="x"' } : {}))
  const auth = createAuthClient({ fetch, live: false })
  t.teardown(() => auth.close())
  const ends: EndEvent[] = []
  auth.on('end', event => ends.push(event))
  t.equal(await auth.restore(), false)
  t.same(ends, [])
  const response = await auth.fetch('/api/me')
  t.equal(response.status, 401)
  t.equal(fetch.calls.at(-1)?.init.headers.has('authorization'), false)
  t.equal((await auth.fetch('/api/other')).status, 401, 'nor is a 401 without WWW-Authenticate')
  t.equal(fetch.to('/refresh').length, 1, 'a 401 without invalid_token is not refreshed')
})

t.test('login: JSON body, the session starts; a refusal rejects with the status and code', async t => {
  let ok = true
  const fetch = scriptedFetch((url, init) => {
    if (url !== 'https://api.example/v1/auth/login') return json(500, {})
    if (!ok) return init.body === undefined ? json(400, null) : json(401, { code: 'FST_REFRESH_AUTH_INVALID_CREDENTIALS' })
    return tokens(60)
  })
  const auth = createAuthClient({ fetch, live: false, baseUrl: 'https://api.example', prefix: '/v1/auth' })
  t.teardown(() => auth.close())
  const answer = await auth.login({ username: 'alice', password: 'pw' })
  t.match(answer, { token_type: 'Bearer', expires_in: 60 })
  t.equal(fetch.calls[0].init.body, '{"username":"alice","password":"pw"}')
  t.equal(fetch.calls[0].init.headers['content-type'], 'application/json')
  t.equal(fetch.calls[0].init.headers['refresh-token-transport'], undefined, 'the cookie transport asks for nothing')
  t.equal(auth.state, 'signed-in')
  ok = false
  await t.rejects(auth.login({ username: 'alice', password: 'no' }), { status: 401, code: 'FST_REFRESH_AUTH_INVALID_CREDENTIALS' })
  const err = await auth.login().catch((err: unknown) => err)
  t.ok(err instanceof AuthClientError)
  t.match(err, { status: 401, code: 'FST_REFRESH_AUTH_INVALID_CREDENTIALS', message: /401/ })
  t.equal(fetch.calls.at(-1)?.init.body, '{}', 'no credentials: an empty JSON object')
  t.equal(new AuthClientError(400).message, 'fastify-refresh-auth: 400 ', 'without a code')
})

t.test('fetch: a 401 invalid_token refreshes once and retries once; a Request keeps its headers and body', async t => {
  let refreshes = 0
  const fetch = scriptedFetch(async (url, init) => {
    if (url === '/auth/refresh') {
      refreshes++
      return tokens()
    }
    if (url.endsWith('/always-401')) return json(401, {}, INVALID_TOKEN)
    const auth = init.headers.get('authorization')
    // the first token is refused once, as after a revocation race
    if (auth === 'Bearer access-first') return json(401, {}, INVALID_TOKEN)
    return json(200, { auth, mine: init.headers.get('x-mine') })
  })
  const auth = createAuthClient({ fetch, live: false })
  t.teardown(() => auth.close())
  await auth.restore()
  const first = await auth.getAccessToken()
  const response = await auth.fetch(new Request('http://localhost/api', { method: 'POST', headers: { 'x-mine': 'req' }, body: 'hello' }))
  t.equal(response.status, 200)
  t.equal((await response.json() as { mine: string }).mine, 'req', 'the Request\'s headers')
  t.equal(refreshes, 1, 'a 200 needs no refresh')
  const always = await auth.fetch('/always-401')
  t.equal(always.status, 401, 'a second 401 is answered as it is')
  t.equal(refreshes, 2, 'refreshed once')
  t.not(await auth.getAccessToken(), first)
})

t.test('fetch: a 401 for a token that another call already replaced retries with the new one, without refreshing', async t => {
  let refreshes = 0
  let stale = ''
  const fetch = scriptedFetch(async (url, init) => {
    if (url === '/auth/refresh') return tokens(900, String(++refreshes))
    const auth = init.headers.get('authorization')
    if (auth === stale) {
      // while this request was out, another refreshed
      await client.refresh()
      return json(401, {}, INVALID_TOKEN)
    }
    return json(200, { auth })
  })
  const client = createAuthClient({ fetch, live: false })
  t.teardown(() => client.close())
  await client.restore()
  stale = `Bearer ${await client.getAccessToken()}`
  const response = await client.fetch('/api')
  t.equal(response.status, 200)
  t.equal(refreshes, 2, 'one refresh at restore, one by the other call: none more')
})

t.test('fetch: when the refresh is refused, the 401 is the answer and the session ends', async t => {
  let refreshes = 0
  const fetch = scriptedFetch((url) => url === '/auth/refresh' ? (++refreshes === 1 ? tokens() : refused()) : json(401, {}, INVALID_TOKEN))
  const auth = createAuthClient({ fetch, live: false })
  t.teardown(() => auth.close())
  const ends: EndEvent[] = []
  auth.on('end', event => ends.push(event))
  await auth.restore()
  const response = await auth.fetch('/api')
  t.equal(response.status, 401)
  t.same(ends, [{ reason: 'unknown' }], 'a refused refresh tells no more than unknown (the server gives one answer for all)')
  t.equal(auth.state, 'signed-out')
})

t.test('a 503 is retried with backoff, never a sign-out; a lost answer is retried with the same token', async t => {
  virtualTimers(t)
  const answers = ['503', 'lost', 'cut', 'empty', '502']
  const fetch = scriptedFetch(async () => {
    const next = answers.shift()
    if (next === '503') return json(503, { code: 'FST_REFRESH_AUTH_STORE_UNAVAILABLE' })
    if (next === 'lost') throw new TypeError('fetch failed')
    if (next === 'cut') return new Response('{"access_tok', { status: 200 })
    if (next === 'empty') return json(200, {})
    if (next === '502') return new Response('<html>bad gateway</html>', { status: 502 })
    return tokens()
  })
  const auth = createAuthClient({ fetch, live: false })
  t.teardown(() => auth.close())
  const ends: EndEvent[] = []
  auth.on('end', event => ends.push(event))
  const started = Date.now()
  t.equal(await auth.refresh(), true)
  t.equal(fetch.to('/refresh').length, 6)
  const waited = Date.now() - started
  t.ok(waited >= 250 + 500 + 1000 + 2000 + 4000 - 100, `backed off between tries (${waited} ms)`)
  t.same(ends, [])
  t.equal(auth.state, 'signed-in')
})

t.test('a refresh that fails for now gives up after its tries, keeps the session, and is tried again', async t => {
  virtualTimers(t)
  let fail = true
  const fetch = scriptedFetch(() => fail ? json(503, {}) : tokens())
  const auth = createAuthClient({ fetch, live: false, refreshAhead: 0 })
  t.teardown(() => auth.close())
  fail = false
  await auth.restore()
  fail = true
  const ends: EndEvent[] = []
  auth.on('end', event => ends.push(event))
  const sessions: SessionEvent[] = []
  auth.on('session', event => sessions.push(event))
  const started = Date.now()
  t.equal(await auth.refresh(), false, 'eight tries, then false')
  t.equal(fetch.to('/refresh').length, 1 + 8)
  t.ok(Date.now() - started > 10_000)
  t.equal(auth.state, 'signed-in', 'still signed in')
  t.same(ends, [])
})

t.test('other 4xx answers of the refresh route are not retried and end nothing', async t => {
  const fetch = scriptedFetch(() => json(403, { code: 'FST_REFRESH_AUTH_CROSS_SITE' }))
  const auth = createAuthClient({ fetch, live: false })
  t.teardown(() => auth.close())
  t.equal(await auth.refresh(), false)
  t.equal(fetch.calls.length, 1)
})

t.test('refreshAhead: before exp by that much; 0 at exp; as long as the life or longer, at half of it', async t => {
  virtualTimers(t)
  async function firstRefreshAfter (refreshAhead: number | undefined, life: number): Promise<number> {
    let restored = 0
    const fetch = scriptedFetch(() => tokens(life))
    const auth = createAuthClient({ fetch, live: false, ...(refreshAhead === undefined ? {} : { refreshAhead }) })
    t.teardown(() => auth.close())
    await auth.restore()
    restored = Date.now()
    await until(() => fetch.calls.length === 2, 'the timer\'s refresh', 20_000)
    auth.close()
    return (Date.now() - restored) / 1000
  }
  const [ahead, atExp, clamped, longer, byDefault] = await Promise.all([
    firstRefreshAfter(1, 3), firstRefreshAfter(0, 2), firstRefreshAfter(2, 2), firstRefreshAfter(10, 2), firstRefreshAfter(undefined, 2)
  ])
  t.ok(ahead >= 1.9 && ahead < 2.8, `refreshAhead 1 of 3 s: refreshed after ${ahead} s`)
  t.ok(atExp >= 1.95, `refreshAhead 0: refreshed at exp, after ${atExp} s, never before`)
  t.ok(clamped >= 0.95 && clamped < 1.8, `refreshAhead equal to the life: at half, after ${clamped} s`)
  t.ok(longer >= 0.95 && longer < 1.8, `refreshAhead longer than the life: at half, after ${longer} s`)
  t.ok(byDefault >= 0.95 && byDefault < 1.8, `the default 30 s on a 2 s token: at half, after ${byDefault} s`)
})

t.test('getAccessToken refreshes a token inside refreshAhead; null once expired and not refreshed', async t => {
  virtualTimers(t)
  let down = false
  const fetch = scriptedFetch(() => down ? Promise.reject(new TypeError('offline')) : tokens(1))
  const auth = createAuthClient({ fetch, live: false, refreshAhead: 0 })
  t.teardown(() => auth.close())
  await auth.restore()
  const first = await auth.getAccessToken()
  t.ok(first)
  await until(() => fetch.calls.length >= 2, 'the refresh at exp')
  down = true
  await new Promise(resolve => setTimeout(resolve, 1100))
  const closing = auth.getAccessToken()
  auth.close()
  t.equal(await closing, null, 'expired, offline, and closed: no token')
})

t.test('logout: the flags in the body; the session ends with reason logout; others keeps it; a 5xx rejects', async t => {
  let status = 204
  const fetch = scriptedFetch((url) => url === '/auth/refresh' ? tokens() : (status === 204 ? json(204, null) : json(status, { code: 'FST_REFRESH_AUTH_STORE_UNAVAILABLE' })))
  const auth = createAuthClient({ fetch, live: false })
  t.teardown(() => auth.close())
  const ends: EndEvent[] = []
  auth.on('end', event => ends.push(event))
  await auth.restore()
  await auth.logout({ others: true })
  t.equal(fetch.calls.at(-1)?.init.body, '{"all":false,"others":true}')
  t.equal(auth.state, 'signed-in', 'signing out the others keeps this one')
  status = 503
  await t.rejects(auth.logout(), { status: 503, code: 'FST_REFRESH_AUTH_STORE_UNAVAILABLE' })
  t.equal(auth.state, 'signed-in', 'a failed logout keeps the session, for a retry')
  status = 204
  await auth.logout({ all: true, others: true })
  t.equal(fetch.calls.at(-1)?.init.body, '{"all":true,"others":true}')
  t.same(ends, [{ reason: 'logout' }])
  await auth.restore()
  await auth.logout()
  t.equal(fetch.calls.at(-1)?.init.body, '{"all":false,"others":false}')
  t.same(ends, [{ reason: 'logout' }, { reason: 'logout' }])
  await auth.logout()
  t.equal(ends.length, 2, 'no end for a client already signed out')
})

t.test('the default fetch is the global one, read at each call', async t => {
  const g = globalThis as any
  const original = g.fetch
  t.teardown(() => { g.fetch = original })
  const fetch = scriptedFetch(() => refused())
  g.fetch = fetch
  const auth = createAuthClient({ live: false })
  t.teardown(() => auth.close())
  t.equal(await auth.restore(), false)
  t.equal(fetch.calls.length, 1)
})

t.test('body transport: the refresh token in the storage, sent in the body, replaced at each refresh, removed at the end', async t => {
  const stored: string[] = []
  let value: string | null = null
  const storage = { get: async () => value, set: (token: string) => { value = token; stored.push(token) }, remove: () => { value = null } }
  let n = 0
  const fetch = scriptedFetch((url, init) => {
    if (url === '/auth/login') return tokens(900, 'rt-login')
    if (url === '/auth/logout') return json(204, null)
    const presented = JSON.parse(init.body).refresh_token
    if (presented === 'rt-dead') return refused()
    if (presented === 'rt-no-successor') return tokens(900)
    return tokens(900, `rt-${++n}`)
  })
  const auth = createAuthClient({ fetch, live: false, transport: 'body', storage })
  t.teardown(() => auth.close())
  t.equal(await auth.restore(), false, 'nothing stored: signed out, nothing sent')
  t.equal(fetch.calls.length, 0)
  await auth.login({ username: 'alice' })
  t.equal(fetch.calls[0].init.headers['refresh-token-transport'], 'body')
  t.equal(value, 'rt-login')
  t.equal(await auth.refresh(), true)
  t.same(JSON.parse(fetch.calls[1].init.body), { refresh_token: 'rt-login' })
  t.equal(value, 'rt-1')
  value = 'rt-no-successor'
  t.equal(await auth.refresh(), true)
  t.equal(value, 'rt-no-successor', 'an answer without a refresh token leaves the stored one')
  value = 'rt-1'
  await auth.logout()
  t.same(JSON.parse(fetch.calls.at(-1)?.init.body), { all: false, others: false, refresh_token: 'rt-1' })
  t.equal(value, null, 'removed at the logout')
  const ends: EndEvent[] = []
  auth.on('end', event => ends.push(event))
  value = 'rt-1'
  await auth.restore()
  value = 'rt-dead'
  t.equal(await auth.refresh(), false)
  t.equal(value, null)
  t.same(ends, [{ reason: 'unknown' }])
})

t.test('body transport: a refused refresh token past its exp ends the session as expired; the default storage is memory', async t => {
  const expiredToken = jwt({ exp: Math.floor(Date.now() / 1000) - 10 })
  const liveToken = jwt({ exp: Math.floor(Date.now() / 1000) + 3600 })
  let next = expiredToken
  const fetch = scriptedFetch((url, init) => {
    if (url === '/auth/login') return tokens(900, next)
    if (url === '/auth/logout') return json(204, null)
    t.equal(JSON.parse(init.body).refresh_token, next, 'the token kept in memory is the one sent')
    return refused()
  })
  const auth = createAuthClient({ fetch, live: false, transport: 'body' })
  t.teardown(() => auth.close())
  const ends: EndEvent[] = []
  auth.on('end', event => ends.push(event))
  await auth.login({})
  await auth.refresh()
  next = liveToken
  await auth.login({})
  await auth.refresh()
  await auth.logout()
  t.same(ends, [{ reason: 'expired' }, { reason: 'unknown' }])
  t.same(JSON.parse(fetch.calls.at(-1)?.init.body), { all: false, others: false }, 'nothing stored: nothing sent')
})

t.test('live: the events stream with the access token; session-ended ends the session with its reason', async t => {
  const reasons = ['reuse', 'revoked', 'something-new', 'not json']
  const seen: EndEvent[] = []
  for (const reason of reasons) {
    const abort = new AbortController()
    t.teardown(() => abort.abort())
    const data = reason === 'not json' ? '{' : JSON.stringify({ reason })
    const fetch = scriptedFetch((url) => url === '/auth/refresh'
      ? tokens()
      // split across chunks, after a comment and a heartbeat
      : sse([': open\n\n', ': heartbeat\n\nevent: session-', `ended\ndata: ${data}`, '\n\n'], false, abort.signal))
    const auth = createAuthClient({ fetch })
    t.teardown(() => auth.close())
    auth.on('end', event => seen.push(event))
    await auth.restore()
    await until(() => auth.state === 'signed-out', 'the end')
    const events = fetch.to('/events')
    t.equal(events.length, 1)
    t.match(events[0].init.headers.authorization, /^Bearer access-\d+$/)
  }
  t.same(seen, [{ reason: 'reuse' }, { reason: 'revoked' }, { reason: 'unknown' }, { reason: 'unknown' }])
})

t.test('live: 404 (no feed) stops following; a stream that ends is opened again, with backoff when it ends at once', async t => {
  virtualTimers(t)
  const noFeed = scriptedFetch((url) => url === '/auth/refresh' ? tokens() : json(404, {}))
  const quiet = createAuthClient({ fetch: noFeed })
  t.teardown(() => quiet.close())
  await quiet.restore()
  await until(() => noFeed.to('/events').length === 1, 'the events request')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(noFeed.to('/events').length, 1, 'not asked again')

  let opened = 0
  const fetch = scriptedFetch((url) => {
    if (url === '/auth/refresh') return tokens()
    opened++
    return sse([': open\n\n'], true)
  })
  const auth = createAuthClient({ fetch })
  t.teardown(() => auth.close())
  await auth.restore()
  await until(() => opened >= 3, 'reconnections')
  const at3 = Date.now()
  await until(() => opened >= 4, 'one more, later')
  t.ok(Date.now() - at3 >= 1000, 'streams that end at once on one token are opened again ever more slowly')
  auth.close()
  const after = opened
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(opened, after, 'closed: no more')
})

t.test('live: a 401 on the stream refreshes; 503 and network errors back off; a new token resets it', async t => {
  virtualTimers(t)
  const answers = ['401', '503', 'throw', 'open']
  const abort = new AbortController()
  t.teardown(() => abort.abort())
  const fetch = scriptedFetch(async (url) => {
    if (url === '/auth/refresh') return tokens()
    const next = answers.shift()
    // over a network: the restore's refresh has settled by the time the stream answers
    await new Promise(resolve => setTimeout(resolve, 20))
    if (next === '401') return json(401, {}, INVALID_TOKEN)
    if (next === '503') return json(503, { code: 'FST_REFRESH_AUTH_EVENT_STREAMS_FULL' })
    if (next === 'throw') throw new TypeError('network')
    return sse([': open\n\n'], false, abort.signal)
  })
  const auth = createAuthClient({ fetch })
  t.teardown(() => auth.close())
  await auth.restore()
  await until(() => answers.length === 0, 'every answer used', 20_000)
  t.equal(fetch.to('/refresh').length, 2, 'the 401 refreshed')
  t.equal(auth.state, 'signed-in')
})

t.test('live: a stream without a readable body (React Native) is given up', async t => {
  virtualTimers(t)
  const fetch = scriptedFetch((url) => url === '/auth/refresh' ? tokens() : new Response(null, { status: 200 }))
  const auth = createAuthClient({ fetch })
  t.teardown(() => auth.close())
  await auth.restore()
  await until(() => fetch.to('/events').length === 1, 'the events request')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(fetch.to('/events').length, 1)
})

t.test('live: the stream that the reader cancels after the event, whose cancel fails, changes nothing', async t => {
  const fetch = scriptedFetch((url) => {
    if (url === '/auth/refresh') return tokens()
    const body = {
      getReader: () => ({
        read: async () => ({ done: false, value: new TextEncoder().encode('event: session-ended\ndata: {"reason":"logout"}\n\n') }),
        cancel: async () => { throw new Error('already closed') }
      })
    }
    return { status: 200, body } as unknown as Response
  })
  const auth = createAuthClient({ fetch })
  t.teardown(() => auth.close())
  const ends: EndEvent[] = []
  auth.on('end', event => ends.push(event))
  await auth.restore()
  await until(() => ends.length === 1, 'the end')
  t.same(ends, [{ reason: 'logout' }])
})

t.test('close: stops the retries of a refresh and the timer', async t => {
  virtualTimers(t)
  const fetch = scriptedFetch(() => json(503, {}))
  const auth = createAuthClient({ fetch, live: false })
  const refreshing = auth.refresh()
  await until(() => fetch.calls.length === 2, 'a retry')
  auth.close()
  t.equal(await refreshing, false)
  t.ok(fetch.calls.length <= 3)
})

t.test('fetch: a URL object, and a Request with headers given in init', async t => {
  const fetch = scriptedFetch((url, init) => url === '/auth/refresh' ? tokens() : json(200, { mine: init.headers.get('x-mine'), auth: init.headers.get('authorization') }))
  const auth = createAuthClient({ fetch, live: false })
  t.teardown(() => auth.close())
  await auth.restore()
  const byUrl = await (await auth.fetch(new URL('http://localhost/api'))).json() as { auth: string }
  t.match(byUrl.auth, /^Bearer access-/)
  const request = new Request('http://localhost/api', { headers: { 'x-mine': 'request' } })
  const byInit = await (await auth.fetch(request, { headers: { 'x-mine': 'init' } })).json() as { mine: string }
  t.equal(byInit.mine, 'init', 'init.headers win, as with fetch')
})

t.test('a refresh by the timer that fails for now is tried again 5 s later, while signed in', async t => {
  virtualTimers(t)
  let refused403 = 0
  const fetch = scriptedFetch(() => {
    if (fetch.calls.length === 1) return tokens(1)
    refused403++
    return json(403, { code: 'FST_REFRESH_AUTH_CROSS_SITE' })
  })
  const auth = createAuthClient({ fetch, live: false, refreshAhead: 0 })
  t.teardown(() => auth.close())
  await auth.restore()
  await until(() => refused403 === 1, 'the timer\'s refresh')
  const first = Date.now()
  await until(() => refused403 === 2, 'the timer\'s second try', 15_000)
  t.ok(Date.now() - first >= 4900, 'about 5 s later')
  t.equal(auth.state, 'signed-in')
})
