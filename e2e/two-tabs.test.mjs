// Scenario 4: two tabs of one browser (one cookie jar). 4a: the client makes them share one refresh: both
// ask at the same moment, one POST /auth/refresh goes out, both tabs hold its token. 4b and 4c: what the client
// no longer does but another script, an old tab or a lost answer may, two requests presenting the same refresh
// cookie at the same moment (a small proxy in front of the demo holds both until both have been sent). With
// refreshToken.reuseInterval set, the second is within the grace period and both stay signed in; with it at 0
// the second presentation is reuse: the session is revoked and both tabs end signed out.
import { createServer, request as httpRequest } from 'node:http'
import t from 'tap'
import {
  COOKIE_NAME, isResponse, launchChromium, newPage, refreshCookie, screenshot, signIn, startDemo, waitForStatus
} from './helpers.mjs'

const browser = await launchChromium(t)

/** Two signed-in tabs of one context (at `site`); the second restored its session from the cookie the first got. */
async function twoSignedInTabs (t, site) {
  const first = await newPage(browser, t)
  await first.goto(site.url)
  t.equal((await signIn(first)).status(), 200, 'tab 1 signs in')
  await waitForStatus(first, 'Signed in as Alice Liddell')
  const second = await first.context().newPage()
  await second.goto(site.url)
  await waitForStatus(second, 'Signed in as Alice Liddell')
  return [first, second]
}

/**
 * A pass-through HTTP proxy in front of the demo. `holdRefreshes(n)` makes it hold the next n POST /auth/refresh
 * requests until all n have arrived, then forward them together. The browser attaches cookies when it sends a
 * request, so n requests that reached the proxy before any was answered carry the same refresh cookie.
 */
async function startProxy (t, target) {
  let barrier = null
  let refreshes = 0
  const issued = []
  const server = createServer((request, reply) => {
    const forward = () => {
      const upstream = httpRequest(new URL(request.url, target), { method: request.method, headers: request.headers }, answer => {
        if (request.url === '/auth/refresh' && answer.statusCode === 200) issued.push(answer.headers['set-cookie'])
        reply.writeHead(answer.statusCode, answer.headers)
        answer.pipe(reply)
      })
      upstream.on('error', () => reply.destroy())
      request.pipe(upstream)
    }
    if (request.method === 'POST' && request.url === '/auth/refresh') refreshes++
    if (barrier === null || request.method !== 'POST' || request.url !== '/auth/refresh') return forward()
    barrier.held.push({ forward, cookie: request.headers.cookie })
    if (barrier.held.length === barrier.count) {
      const { held, release } = barrier
      barrier = null
      for (const { forward } of held) forward()
      release(held.map(({ cookie }) => cookie))
    }
  })
  await new Promise(resolve => server.listen(0, 'localhost', resolve))
  t.teardown(() => new Promise(resolve => {
    server.closeAllConnections()
    server.close(resolve)
  }))
  return {
    url: `http://localhost:${server.address().port}`,
    /** How many POST /auth/refresh have reached the proxy so far. */
    refreshes: () => refreshes,
    /** The value of the refresh cookie set by the last refresh that answered 200. */
    lastIssuedCookie: () => issued.at(-1)?.map(header => header.split(';')[0]).find(pair => pair.startsWith(`${COOKIE_NAME}=`))?.slice(COOKIE_NAME.length + 1),
    /** Resolves with the cookie headers of the n held requests once they have been forwarded. */
    holdRefreshes (count) {
      return new Promise(resolve => { barrier = { count, held: [], release: resolve } })
    }
  }
}

/** Records in the page the client's ends and new tokens. */
async function instrument (tab) {
  await tab.waitForFunction(() => window.auth !== undefined)
  await tab.evaluate(() => {
    window.__ends = []
    window.__tokens = []
    window.auth.on('end', (event) => window.__ends.push(event.reason))
    window.auth.on('session', (event) => window.__tokens.push(event.accessToken))
  })
}

/**
 * Each tab posts to /auth/refresh with its cookie, outside the client (as another script or a retried request
 * would), and the proxy forwards both requests together. Resolves with the two statuses.
 */
async function refreshTogether (t, proxy, tabs) {
  const forwarded = proxy.holdRefreshes(2)
  const statuses = Promise.all(tabs.map(tab => tab.evaluate(() => fetch('/auth/refresh', { method: 'POST', credentials: 'include' }).then(r => r.status))))
  const cookies = await forwarded
  t.ok(cookies[0], 'the refresh requests carried the cookie')
  t.equal(cookies[0], cookies[1], 'both tabs presented the same refresh token at the same time')
  return statuses
}

t.test('4a. both tabs ask for a refresh at the same moment: one refresh, its token in both tabs', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '60', REUSE_INTERVAL: '0' })
  const proxy = await startProxy(t, demo.url)
  const tabs = await twoSignedInTabs(t, proxy)
  for (const tab of tabs) await instrument(tab)
  const before = proxy.refreshes()
  const [first, second] = await Promise.all(tabs.map(tab => tab.evaluate(() => window.auth.refresh())))
  t.ok(first && second, 'both tabs\' refresh() resolve true')
  t.equal(proxy.refreshes() - before, 1, 'one POST /auth/refresh for both tabs')
  const tokens = await Promise.all(tabs.map(tab => tab.evaluate(() => window.auth.getAccessToken())))
  t.equal(tokens[0], tokens[1], 'both tabs hold the token of that refresh')
  for (const [index, tab] of tabs.entries()) {
    t.equal(await tab.evaluate(() => window.__tokens.length), 1, `tab ${index + 1} heard one new token`)
    await tab.locator('#refresh-count').filter({ hasText: '1' }).waitFor()
    const api = tab.waitForResponse(isResponse('/api/me'))
    await tab.click('#call-api')
    t.equal((await api).status(), 200, `tab ${index + 1}: the protected call succeeds`)
    t.same(await tab.evaluate(() => window.__ends), [], `tab ${index + 1} is still signed in`)
    await screenshot(tab, `4a-one-refresh-tab${index + 1}`)
  }
  // reuseInterval is 0: a second presentation of the cookie would have been reuse
  t.notMatch(demo.output(), /reuse detected/, 'the server logged no reuse')
})

t.test('4b. two requests with the same cookie, reuseInterval set: both succeed, both tabs stay signed in', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '60', REUSE_INTERVAL: '10' })
  const proxy = await startProxy(t, demo.url)
  const tabs = await twoSignedInTabs(t, proxy)
  for (const tab of tabs) await instrument(tab)
  t.same((await refreshTogether(t, proxy, tabs)).sort(), [200, 200], 'both refreshes succeed')

  for (const [index, tab] of tabs.entries()) {
    const next = tab.evaluate(() => window.auth.refresh())
    t.equal(await next, true, `tab ${index + 1}'s client refreshes afterwards`)
    const api = tab.waitForResponse(isResponse('/api/me'))
    await tab.click('#call-api')
    t.equal((await api).status(), 200, `tab ${index + 1}: the protected call succeeds`)
    await tab.locator('#api-result').filter({ hasText: 'HTTP 200' }).waitFor()
    await waitForStatus(tab, 'Signed in as Alice Liddell')
    t.same(await tab.evaluate(() => window.__ends), [], `tab ${index + 1} is still signed in`)
    await screenshot(tab, `4b-reuse-interval-tab${index + 1}`)
  }
  t.notMatch(demo.output(), /reuse detected/, 'the server logged no reuse')
})

t.test('4c. two requests with the same cookie, reuseInterval 0: reuse, the session is revoked, both tabs end signed out', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '60', REUSE_INTERVAL: '0' })
  const proxy = await startProxy(t, demo.url)
  const tabs = await twoSignedInTabs(t, proxy)
  for (const tab of tabs) await instrument(tab)
  const accessToken = await tabs[0].evaluate(() => window.auth.getAccessToken())
  t.same((await refreshTogether(t, proxy, tabs)).sort(), [200, 401], 'one refresh wins, the other is refused')
  await demo.waitForOutput(/refresh token reuse detected, session revoked/)

  // Both tabs hear the end of the session on the events stream and show the sign-in form.
  for (const tab of tabs) {
    await tab.waitForFunction(() => window.__ends.length > 0)
    t.same(await tab.evaluate(() => window.__ends), ['reuse'], 'the client ends the session: reuse')
    await waitForStatus(tab, 'Signed out.')
    await tab.locator('#error').filter({ hasText: 'refresh token was used twice' }).waitFor()
    t.ok(await tab.isVisible('#login-form'), 'the tab shows the login form')
  }
  // The tabs' access token died with the session, and so did the winner's new refresh cookie.
  const api = await fetch(`${demo.url}/api/me`, { headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(api.status, 401, 'the tabs\' access token is refused at once')
  const winnerCookie = proxy.lastIssuedCookie()
  t.ok(winnerCookie, 'the winner received a new refresh cookie')
  const replay = await fetch(`${demo.url}/auth/refresh`, { method: 'POST', headers: { cookie: `${COOKIE_NAME}=${winnerCookie}` } })
  t.equal(replay.status, 401, 'and it is refused')
  // whichever answer came last set the jar; a refresh from the tab now is refused and clears the cookie
  const status = await tabs[0].evaluate(() => fetch('/auth/refresh', { method: 'POST', credentials: 'include' }).then(r => r.status))
  t.equal(status, 401, 'a refresh from the tab is refused')
  t.equal(await refreshCookie(tabs[0].context(), proxy.url), undefined, 'the refresh cookie is cleared')
  await screenshot(tabs[0], '4c-reuse-detected-tab1')
  await screenshot(tabs[1], '4c-reuse-detected-tab2')
})
