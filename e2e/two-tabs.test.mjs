// Scenario 4: two tabs of one browser (one cookie jar) refresh at the same moment, both presenting the same
// refresh cookie (a small proxy in front of the demo holds both requests until both have been sent). With refreshToken.reuseInterval set, the second is within the grace period and both tabs
// stay signed in; with it at 0 the second presentation is reuse: the session is revoked and both tabs end signed out.
import { createServer, request as httpRequest } from 'node:http'
import t from 'tap'
import {
  isResponse, launchChromium, newPage, refreshCookie, screenshot, signIn, startDemo, waitForStatus
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
  const server = createServer((request, reply) => {
    const forward = () => {
      const upstream = httpRequest(new URL(request.url, target), { method: request.method, headers: request.headers }, answer => {
        reply.writeHead(answer.statusCode, answer.headers)
        answer.pipe(reply)
      })
      upstream.on('error', () => reply.destroy())
      request.pipe(upstream)
    }
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
    /** Resolves with the cookie headers of the n held requests once they have been forwarded. */
    holdRefreshes (count) {
      return new Promise(resolve => { barrier = { count, held: [], release: resolve } })
    }
  }
}

/** Both tabs click "Refresh now" and their requests reach the server together. Resolves with the two responses. */
async function refreshTogether (t, proxy, tabs) {
  const forwarded = proxy.holdRefreshes(2)
  const responses = tabs.map(tab => tab.waitForResponse(isResponse('/auth/refresh')))
  await Promise.all(tabs.map(tab => tab.click('#refresh-now')))
  const cookies = await forwarded
  t.ok(cookies[0], 'the refresh requests carried the cookie')
  t.equal(cookies[0], cookies[1], 'both tabs presented the same refresh token at the same time')
  return Promise.all(responses)
}

t.test('4a. with reuseInterval set, both tabs stay signed in', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '60', REUSE_INTERVAL: '10' })
  const proxy = await startProxy(t, demo.url)
  const tabs = await twoSignedInTabs(t, proxy)
  const responses = await refreshTogether(t, proxy, tabs)
  t.same(responses.map(r => r.status()).sort(), [200, 200], 'both refreshes succeed')

  for (const [index, tab] of tabs.entries()) {
    await tab.locator('#log').filter({ hasText: 'Access token refreshed silently (on request)' }).waitFor()
    await waitForStatus(tab, 'Signed in as Alice Liddell')
    const next = tab.waitForResponse(isResponse('/auth/refresh'))
    await tab.click('#refresh-now')
    t.equal((await next).status(), 200, `tab ${index + 1} refreshes again afterwards`)
    const api = tab.waitForResponse(isResponse('/api/me'))
    await tab.click('#call-api')
    t.equal((await api).status(), 200, `tab ${index + 1}: the protected call succeeds`)
    await tab.locator('#api-result').filter({ hasText: 'HTTP 200' }).waitFor()
    await screenshot(tab, `4a-reuse-interval-tab${index + 1}`)
  }
  t.notMatch(demo.output(), /reuse detected/, 'the server logged no reuse')
})

t.test('4b. with reuseInterval 0, the second presentation is reuse: the session is revoked, both tabs end signed out', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '60', REUSE_INTERVAL: '0' })
  const proxy = await startProxy(t, demo.url)
  const tabs = await twoSignedInTabs(t, proxy)
  const responses = await refreshTogether(t, proxy, tabs)
  t.same(responses.map(r => r.status()).sort(), [200, 401], 'one refresh wins, the other is refused')
  await demo.waitForOutput(/refresh token reuse detected, session revoked/)

  const loser = tabs[responses.findIndex(r => r.status() === 401)]
  const winner = tabs[responses.findIndex(r => r.status() === 200)]
  await waitForStatus(loser, 'Signed out.')
  await loser.locator('#error').filter({ hasText: 'Your session has ended' }).waitFor()

  // The winner holds an access token of the session that reuse ended: its API call is refused at once (the
  // token died with the session), the page's one refresh is refused too, and it is signed out.
  const api = winner.waitForResponse(isResponse('/api/me'))
  const next = winner.waitForResponse(isResponse('/auth/refresh'))
  await winner.click('#call-api')
  t.equal((await api).status(), 401, 'the other tab\'s access token died with the session')
  t.equal((await next).status(), 401, 'and its refresh is refused')
  await waitForStatus(winner, 'Signed out.')
  t.ok(await winner.isVisible('#login-form'), 'both tabs show the login form')
  t.equal(await refreshCookie(winner.context(), proxy.url), undefined, 'the refresh cookie is cleared')
  await screenshot(loser, '4b-reuse-detected-tab-refused')
  await screenshot(winner, '4b-reuse-detected-other-tab')
})
