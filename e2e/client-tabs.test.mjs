// fastify-refresh-auth/client in Chromium: tabs of one browser share one refresh per rotation, survive a tab
// closed while it refreshes, all hear a session's end within a second (from a logout in one of them, or from
// another app instance sharing Redis), and keep the session through 5 s offline. The demo page (example/) is the
// client's host; it exposes the client as window.auth. Waits are on events, never on fixed sleeps.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { launchChromium, signIn, startDemo, waitForStatus, WAIT } from './helpers.mjs'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const browser = await launchChromium(t)

/** A browser context (one cookie jar: the tabs of one browser) and `count` tabs on the demo, signed in. */
async function tabsOf (t, demo, count) {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  // the events stream is registered on the server once its answer's headers are out (the route writes them as
  // it registers the stream): resolves then
  const streaming = new Promise(resolve => {
    const onResponse = (response) => {
      if (new URL(response.url()).pathname === '/auth/events' && response.status() === 200) {
        context.off('response', onResponse)
        resolve()
      }
    }
    context.on('response', onResponse)
  })
  const first = await context.newPage()
  first.setDefaultTimeout(WAIT)
  await first.goto(demo.url)
  t.equal((await signIn(first)).status(), 200, 'signs in')
  await waitForStatus(first, 'Signed in as Alice Liddell')
  const tabs = [first]
  for (let i = 1; i < count; i++) {
    const tab = await context.newPage()
    tab.setDefaultTimeout(WAIT)
    await tab.goto(demo.url)
    // a tab opened later restores from the others (or the cookie)
    await waitForStatus(tab, 'Signed in as Alice Liddell')
    tabs.push(tab)
  }
  for (const tab of tabs) await instrument(tab)
  return { context, tabs, streaming }
}

/** Records in the page what the client tells: its tokens and its end. */
async function instrument (tab) {
  await tab.waitForFunction(() => window.auth !== undefined)
  await tab.evaluate(() => {
    window.__ends = []
    window.__tokens = []
    window.auth.on('end', (event) => window.__ends.push({ ...event, at: Date.now() }))
    window.auth.on('session', (event) => window.__tokens.push({ token: event.accessToken, expiresAt: event.expiresAt, at: Date.now() }))
  })
}

async function stats (demo) {
  return await (await fetch(`${demo.url}/e2e/stats`)).json()
}

t.test('five tabs, 2 s access tokens, 20 rotations with 20 concurrent auth.fetch per tab: one refresh per rotation', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '2', E2E: '1' })
  const { tabs } = await tabsOf(t, demo, 5)
  const before = (await stats(demo)).refreshes.length
  const statuses = []
  for (let cycle = 0; cycle < 20; cycle++) {
    // every tab fires its 20 calls when the access token is due for its refresh (at half its 2 s life, when the
    // client's own timer fires too): the calls meet the rotation, in every tab at once
    const results = await Promise.all(tabs.map(tab => tab.evaluate(async () => {
      // (the first cycle waits for the first rotation heard since the tab was instrumented)
      const { expiresAt } = window.__tokens.at(-1) ?? await new Promise(resolve => { const off = window.auth.on('session', (event) => { off(); resolve(event) }) })
      await new Promise(resolve => setTimeout(resolve, expiresAt - 1000 - Date.now()))
      const responses = await Promise.all(Array.from({ length: 20 }, () => window.auth.fetch('/api/me')))
      return responses.map(response => response.status)
    })))
    statuses.push(...results.flat())
  }
  const { refreshes, reuse } = await stats(demo)
  const during = refreshes.slice(before)
  const gaps = during.slice(1).map((at, i) => at - during[i])
  t.ok(during.length >= 20, `${during.length} refreshes for 20 rotations and more`)
  // a 2 s token is refreshed at half its life: rotations are a second apart; a second refresh of one rotation
  // would follow the first within the client's short wait for the other tabs' answer
  t.same(gaps.filter(gap => gap < 500), [], `no two refreshes for one rotation (shortest gap ${Math.min(...gaps)} ms)`)
  t.equal(statuses.length, 2000)
  t.same(statuses.filter(status => status !== 200), [], 'every fetch answered 200')
  t.equal(reuse, 0, 'no reuse detected')
  for (const tab of tabs) t.same(await tab.evaluate(() => window.__ends), [], 'no sign-out')
  // every tab holds the last token: the tabs are read one after the other while rotations go on every second,
  // so they are read again (bounded) until one reading finds them all on one token
  const deadline = Date.now() + WAIT
  let last
  do last = await Promise.all(tabs.map(tab => tab.evaluate(() => window.__tokens.at(-1).token)))
  while (new Set(last).size !== 1 && Date.now() < deadline)
  t.equal(new Set(last).size, 1, 'one token in every tab')
})

t.test('the tab holding the lock is closed during a refresh the server holds for 2 s: the others refresh within 3 s', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '30', E2E: '1' })
  const { tabs: [holder, ...others] } = await tabsOf(t, demo, 3)
  const before = (await stats(demo)).refreshes.length
  await fetch(`${demo.url}/e2e/hold-next-refresh?ms=2000`, { method: 'POST' })
  await holder.evaluate(() => { window.auth.refresh() })
  // the refresh has reached the server, which holds it
  const deadline = Date.now() + WAIT
  while ((await stats(demo)).refreshes.length === before && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  const tokens = await Promise.all(others.map(tab => tab.evaluate(() => window.__tokens.length)))
  const refreshed = others.map(tab => tab.evaluate(() => window.auth.refresh()))
  const closedAt = Date.now()
  await holder.close()
  t.same(await Promise.all(refreshed), [true, true])
  const took = Date.now() - closedAt
  t.ok(took < 3000, `the other tabs refreshed ${took} ms after the holder closed`)
  for (const [i, tab] of others.entries()) t.ok(await tab.evaluate((n) => window.__tokens.length > n, tokens[i]), 'a new token')
  const { reuse } = await stats(demo)
  t.equal(reuse, 0, 'the held refresh, completed after, was no reuse')
  for (const tab of others) {
    const status = await tab.evaluate(async () => (await window.auth.fetch('/api/me')).status)
    t.equal(status, 200)
  }
})

t.test('a logout in one tab fires end in every tab within 1 s', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '30', E2E: '1' })
  const { tabs } = await tabsOf(t, demo, 3)
  const started = await tabs[1].evaluate(() => Date.now())
  await tabs[1].evaluate(() => window.auth.logout())
  for (const tab of tabs) {
    await tab.waitForFunction(() => window.__ends.length === 1)
    const [end] = await tab.evaluate(() => window.__ends)
    t.equal(end.reason, 'logout')
    t.ok(end.at - started < 1000, `end in ${end.at - started} ms`)
    await waitForStatus(tab, 'Signed out.')
  }
})

t.test('revokeUserSessions on another instance sharing Redis fires end in every tab within 1 s', async t => {
  const env = { ACCESS_TOKEN_TTL: '30', E2E: '1', REDIS_URL, REDIS_PREFIX: `fastify-refresh-auth-e2e-${randomUUID()}:`, AUTH_SECRET: randomUUID() + randomUUID() }
  const [demo, other] = await Promise.all([startDemo(t, env), startDemo(t, env)])
  const { tabs, streaming } = await tabsOf(t, demo, 3)
  // the events stream is open (one tab holds it for all): the server has it
  await streaming
  const started = Date.now()
  const response = await fetch(`${other.url}/e2e/revoke-user/1`, { method: 'POST' })
  t.equal(response.status, 200)
  for (const tab of tabs) {
    await tab.waitForFunction(() => window.__ends.length === 1)
    const [end] = await tab.evaluate(() => window.__ends)
    t.equal(end.reason, 'revoked')
    t.ok(end.at - started < 1000, `end in ${end.at - started} ms`)
  }
})

t.test('offline for 5 s, then back: the session is kept', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '2', E2E: '1' })
  const { context, tabs } = await tabsOf(t, demo, 2)
  await context.setOffline(true)
  const offlineAt = Date.now()
  // the scenario is 5 s without a network: the 2 s tokens expire, refreshes fail and are tried again
  while (Date.now() - offlineAt < 5000) await tabs[0].waitForTimeout(250)
  await context.setOffline(false)
  for (const tab of tabs) {
    const status = await tab.evaluate(async () => (await window.auth.fetch('/api/me')).status)
    t.equal(status, 200, 'a call after the network is back answers 200')
    t.same(await tab.evaluate(() => window.__ends), [], 'no sign-out')
    t.equal(await tab.evaluate(() => window.auth.state), 'signed-in')
  }
  t.equal((await stats(demo)).reuse, 0)
})
