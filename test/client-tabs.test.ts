import t, { type Test } from 'tap'
import { createAuthClient, type AuthClient, type EndEvent } from '../lib/client/index.js'
import { FakeLocks, json, scriptedFetch, sse, tokens, until, withLocks, type Handler } from './helpers/client.js'

// Several tabs in one process: each client is a tab. Node's BroadcastChannel links clients of one name, and a
// navigator.locks double (one holder per lock name, in order) stands in for the browser's. Chromium runs the same
// scenarios in e2e/client-tabs.test.mjs.

function tabs (t: Test, count: number, handler: Handler, options: object = {}): { tabs: AuthClient[], fetch: ReturnType<typeof scriptedFetch> } {
  const fetch = scriptedFetch(handler)
  const clients = Array.from({ length: count }, () => createAuthClient({ fetch, live: false, ...options }))
  t.teardown(() => { for (const client of clients) client.close() })
  return { tabs: clients, fetch }
}

// real timers (backoff, token lifetimes of seconds): more than the default 30 s on a busy machine

t.test('five tabs refreshing at once make one refresh; every tab gets its token', async t => {
  withLocks(t)
  const { tabs: five, fetch } = tabs(t, 5, async (url) => {
    // the refresh takes a moment, so every tab is waiting for it
    await new Promise(resolve => setTimeout(resolve, 50))
    return url === '/auth/refresh' ? tokens() : json(404, {})
  })
  t.equal(await five[0].restore(), true)
  t.same(await Promise.all(five.slice(1).map(tab => tab.restore())), [true, true, true, true], 'the other tabs restore from the first')
  t.equal(fetch.to('/refresh').length, 1)
  for (let cycle = 0; cycle < 3; cycle++) {
    const results = await Promise.all(five.flatMap(tab => [tab.refresh(), tab.refresh()]))
    t.ok(results.every(Boolean))
    t.equal(fetch.to('/refresh').length, 2 + cycle, `cycle ${cycle}: one refresh for five tabs`)
    const seen = new Set(await Promise.all(five.map(tab => tab.getAccessToken())))
    t.equal(seen.size, 1, 'one token in every tab')
  }
})

t.test('a tab opened later restores from the others; a tab whose token is older takes the newer one', async t => {
  withLocks(t)
  const { tabs: [first, second], fetch } = tabs(t, 2, () => tokens())
  await first.restore()
  await second.restore()
  t.equal(fetch.calls.length, 1)
  const late = createAuthClient({ fetch, live: false })
  t.teardown(() => late.close())
  t.equal(await late.restore(), true)
  t.equal(await late.getAccessToken(), await first.getAccessToken())
  t.equal(fetch.calls.length, 1, 'no refresh for the tab opened later')
  // a refresh of the late tab reaches the others
  await late.refresh()
  await until(() => fetch.calls.length === 2, 'the refresh')
  const token = await late.getAccessToken()
  const firstToken = (): Promise<string | null> => first.getAccessToken()
  let seen = await firstToken()
  for (let i = 0; i < 500 && seen !== token; i++) seen = await new Promise(resolve => setTimeout(resolve, 10)).then(firstToken)
  t.equal(seen, token, 'the other tabs take the newer token')
})

t.test('no peer answers (a signed-out tab has nothing to give): the tab refreshes itself after its short wait', async t => {
  withLocks(t)
  const { tabs: [signedOut, restoring], fetch } = tabs(t, 2, () => tokens())
  const started = Date.now()
  t.equal(await restoring.restore(), true)
  t.ok(Date.now() - started >= 90, 'after waiting for an answer')
  t.equal(fetch.calls.length, 1)
  await until(() => signedOut.state === 'signed-in', 'the other tab hearing of the token')
  t.equal(signedOut.state, 'signed-in', 'and the other tab hears of the token')
})

t.test('a logout in one tab ends the session in every tab, with its reason', async t => {
  withLocks(t)
  const { tabs: three } = tabs(t, 3, (url) => url === '/auth/logout' ? json(204, null) : tokens())
  const ends: EndEvent[][] = [[], [], []]
  three.forEach((tab, i) => tab.on('end', event => ends[i].push(event)))
  for (const tab of three) await tab.restore()
  await three[1].logout()
  await until(() => ends.every(list => list.length === 1), 'the end in every tab')
  t.same(ends, [[{ reason: 'logout' }], [{ reason: 'logout' }], [{ reason: 'logout' }]])
  // late answers to the restores' questions (the token of the ended session) must not sign a tab back in
  await new Promise(resolve => setTimeout(resolve, 200))
  t.ok(three.every(tab => tab.state === 'signed-out'))
  // a sign-in in one tab signs every tab in
  await three[2].login({})
  await until(() => three.every(tab => tab.state === 'signed-in'), 'every tab signed in')
  t.pass('signed in everywhere')
})

t.test('one events stream for all tabs, relayed; the next tab takes it when the holder closes', async t => {
  withLocks(t)
  const streams: AbortController[] = []
  let ending = ''
  const fetch = scriptedFetch((url) => {
    if (url === '/auth/refresh') return tokens()
    const abort = new AbortController()
    streams.push(abort)
    return sse(ending === '' ? [': open\n\n'] : [`event: session-ended\ndata: {"reason":"${ending}"}\n\n`], false, abort.signal)
  })
  t.teardown(() => { for (const stream of streams) stream.abort() })
  const three = [0, 1, 2].map(() => createAuthClient({ fetch }))
  t.teardown(() => { for (const tab of three) tab.close() })
  const ends: EndEvent[][] = [[], [], []]
  three.forEach((tab, i) => tab.on('end', event => ends[i].push(event)))
  for (const tab of three) await tab.restore()
  await until(() => fetch.to('/events').length === 1, 'the stream')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(fetch.to('/events').length, 1, 'one stream for three tabs')
  // the holder (the first tab) goes: another takes the stream, which says the session ended
  ending = 'revoked'
  three[0].close()
  streams[0].abort()
  await until(() => ends[1].length === 1 && ends[2].length === 1, 'the end relayed')
  t.same(ends, [[], [{ reason: 'revoked' }], [{ reason: 'revoked' }]])
  t.ok(fetch.to('/events').length >= 2, 'the stream was opened again by another tab')
})

t.test('messages of no interest change nothing', async t => {
  withLocks(t)
  const { tabs: [tab] } = tabs(t, 1, () => tokens())
  await tab.restore()
  const token = await tab.getAccessToken()
  const other = new BroadcastChannel('fastify-refresh-auth /auth')
  t.teardown(() => other.close())
  other.postMessage({ t: 'token', a: 'older', e: 1, l: 1000 })
  other.postMessage({ t: 'something else' })
  other.postMessage({ t: 'ask', e: Number.MAX_SAFE_INTEGER })
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(await tab.getAccessToken(), token)
})

t.test('close while waiting for a lock: the refresh resolves false', async t => {
  const locks = new FakeLocks()
  withLocks(t, locks)
  let release = (): void => {}
  const blocker = locks.request('fastify-refresh-auth refresh /auth', {}, () => new Promise<void>(resolve => { release = resolve }))
  const { tabs: [tab] } = tabs(t, 1, () => tokens())
  const refreshing = tab.refresh()
  await until(() => locks.held.get('fastify-refresh-auth refresh /auth') === 1, 'the blocker holding the lock')
  tab.close()
  release()
  await blocker
  t.equal(await refreshing, false)
})

t.test('a session that ends while a refresh waits for the lock: the refresh still asks the server, which refuses', async t => {
  const locks = new FakeLocks()
  withLocks(t, locks)
  const { tabs: [tab], fetch } = tabs(t, 1, () => fetch.calls.length === 1 ? tokens() : json(401, { code: 'FST_REFRESH_AUTH_INVALID_REFRESH_TOKEN' }))
  await tab.restore()
  let release = (): void => {}
  const blocker = locks.request('fastify-refresh-auth refresh /auth', {}, () => new Promise<void>(resolve => { release = resolve }))
  await until(() => locks.held.get('fastify-refresh-auth refresh /auth') === 1, 'the blocker holding the lock')
  const refreshing = tab.refresh()
  const other = new BroadcastChannel('fastify-refresh-auth /auth')
  t.teardown(() => other.close())
  other.postMessage({ t: 'end', r: 'revoked' })
  await until(() => tab.state === 'signed-out', 'the end')
  release()
  await blocker
  t.equal(await refreshing, false)
  t.equal(fetch.calls.length, 2)
})
