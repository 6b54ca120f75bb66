// Scenario 6: a page on another origin posts to /auth/refresh with credentials: 'include' and gets no token.
// A cross-site page (another host name: 127.0.0.1 against localhost) gets nothing at all: SameSite=Strict keeps
// the cookie home and Fetch Metadata (Sec-Fetch-Site: cross-site) makes the server answer 403 before reading
// anything. A same-site page on another port of localhost is a different origin but the same site (ports do not
// count for SameSite): see the second test for what it can and cannot do.
import { createServer } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import {
  COOKIE_NAME, WAIT, isResponse, launchChromium, newPage, refreshCookie, screenshot, signIn, startDemo, waitForStatus
} from './helpers.mjs'

const browser = await launchChromium(t)

/** Another web site: one page that posts to the demo's refresh route with credentials and shows what it got. */
async function startOtherSite (t, host, target) {
  const app = Fastify()
  app.get('/', (request, reply) => {
    const url = `${target}/auth/${request.query.route === 'logout' ? 'logout' : 'refresh'}`
    reply.type('text/html; charset=utf-8').send(`<!doctype html>
<title>Another site</title>
<h1>Another site: ${host}</h1>
<p>This page runs <code>fetch('${url}', { method: 'POST', credentials: 'include' })</code>.</p>
<p id="result">Working…</p>
<script>
  fetch('${url}', { method: 'POST', credentials: 'include' })
    .then(async response => { document.getElementById('result').textContent = 'Read a response: HTTP ' + response.status + ' ' + await response.text() })
    .catch(err => { document.getElementById('result').textContent = 'No token: the browser gave this page no response (' + err.name + ': ' + err.message + ')' })
</script>`)
  })
  const address = await app.listen({ host, port: 0 })
  t.teardown(() => app.close())
  return `http://${host}:${new URL(address).port}`
}

/**
 * A signed-in victim tab on the demo. The demos below issue 10-minute access tokens, which the client refreshes
 * 30 s before they expire, long after the test: every refresh below is one the test causes.
 */
async function signedInVictim (t, demo) {
  const victim = await newPage(browser, t)
  await victim.goto(demo.url)
  t.equal((await signIn(victim)).status(), 200, 'the victim signs in')
  await waitForStatus(victim, 'Signed in as Alice Liddell')
  return victim
}

/**
 * Starts listening (resolves once it does) and returns a promise of what Chromium really sent for the page's next request to /auth/refresh: the headers and the
 * cookies it considered, each with the reasons it was left out. (Read over CDP: Playwright's own view of a
 * request whose response failed CORS lacks these.)
 */
async function watchAuthRequest (page, path) {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  const refreshIds = new Set()
  const extraInfo = new Map()
  const sent = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no request to ${path} seen: ${[...refreshIds]} ${[...extraInfo.keys()]}`)), WAIT)
    const check = (id) => {
      if (refreshIds.has(id) && extraInfo.has(id)) {
        clearTimeout(timer)
        resolve(extraInfo.get(id))
      }
    }
    cdp.on('Network.requestWillBeSent', event => {
      if (new URL(event.request.url).pathname === path) refreshIds.add(event.requestId)
      check(event.requestId)
    })
    cdp.on('Network.requestWillBeSentExtraInfo', event => {
      const headers = Object.fromEntries(Object.entries(event.headers).map(([name, value]) => [name.toLowerCase(), value]))
      const cookies = event.associatedCookies.map(({ cookie, blockedReasons }) => ({ name: cookie.name, blockedReasons }))
      extraInfo.set(event.requestId, { headers, cookies })
      check(event.requestId)
    })
  })
  return { sent }
}

/**
 * Opens the other site in a new tab of the victim's browser (same cookie jar). Resolves with what the browser
 * sent to /auth/refresh, what the other page could read, and the server's record of its answer
 * (the browser hides a response that fails CORS from the page and from Playwright alike).
 */
async function visit (demo, victim, url, path = '/auth/refresh') {
  const index = demo.completed('POST', path).length
  const page = await victim.context().newPage()
  const { sent } = await watchAuthRequest(page, path)
  await page.goto(`${url}/?route=${path.slice('/auth/'.length)}`)
  await page.locator('#result').filter({ hasNotText: 'Working…' }).waitFor()
  return {
    page,
    ...(await sent),
    result: await page.textContent('#result'),
    served: await demo.waitForCompletedRequest('POST', path, index)
  }
}

t.test('6. a cross-site page gets no token, and the victim\'s session is untouched', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '600', REUSE_INTERVAL: '0', LOG_LEVEL: 'info' })
  const victim = await signedInVictim(t, demo)
  const cookieBefore = await refreshCookie(victim.context(), demo.url)
  const otherSite = await startOtherSite(t, '127.0.0.1', demo.url)

  const { page, headers, cookies, result, served } = await visit(demo, victim, otherSite)
  t.equal(headers['sec-fetch-site'], 'cross-site', 'Chromium labels the request cross-site')
  t.equal(headers.cookie, undefined, 'no cookie was sent')
  t.equal(cookies.length, 1, 'Chromium considered the refresh cookie')
  t.equal(cookies[0].name, COOKIE_NAME, 'by its name')
  t.ok(cookies[0].blockedReasons.includes('SchemefulSameSiteStrict'), 'and held it back: SameSite=Strict')
  t.same(served, { method: 'POST', url: '/auth/refresh', statusCode: 403, errorCode: 'FST_REFRESH_AUTH_CROSS_SITE' },
    'the server refused it on Fetch Metadata, before reading any cookie')
  t.match(result, /^No token: the browser gave this page no response \(TypeError/, 'the other page read nothing')
  await screenshot(page, '6-cross-site-page')

  t.equal((await refreshCookie(victim.context(), demo.url)).value, cookieBefore.value, 'the victim\'s cookie is unchanged')
  // reuseInterval is 0: had the refused request rotated the token, this refresh would be reuse and fail.
  const refreshed = victim.waitForResponse(isResponse('/auth/refresh'))
  await victim.click('#refresh-now')
  t.equal((await refreshed).status(), 200, 'the victim\'s session still refreshes afterwards')
  await victim.locator('#refresh-count').filter({ hasText: '1' }).waitFor()
  await waitForStatus(victim, 'Signed in as Alice Liddell')
  t.notMatch(demo.output(), /reuse detected/, 'no reuse was detected')
  await screenshot(victim, '6-cross-site-victim-still-signed-in')
})

// Documented behaviour of the defaults: ports do not count for SameSite, so a page on another port of the same
// host (or on a sibling subdomain) is same-site. Chromium sends the cookie and Sec-Fetch-Site: same-site, which
// the default Fetch Metadata check lets through. CORS keeps the answer from that page, so it gets no token,
// but the server has rotated the token (and Chromium stores the new cookie from the blocked response), and
// a logout from there ends the session. The trustedOrigins option closes both (6c).
t.test('6b. a same-site page on another port gets no token, but can rotate or end the session (defaults)', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '600', REUSE_INTERVAL: '0', LOG_LEVEL: 'info' })
  const victim = await signedInVictim(t, demo)
  const cookieBefore = await refreshCookie(victim.context(), demo.url)
  const otherPort = await startOtherSite(t, 'localhost', demo.url)

  const refresh = await visit(demo, victim, otherPort)
  t.equal(refresh.headers['sec-fetch-site'], 'same-site', 'Chromium labels the request same-site')
  t.same(refresh.cookies, [{ name: COOKIE_NAME, blockedReasons: [] }], 'and sends the refresh cookie with it')
  t.match(refresh.served, { statusCode: 200 }, 'the server rotates the token and answers with a new one')
  t.match(refresh.result, /^No token: the browser gave this page no response \(TypeError/, 'which CORS keeps from that page')
  const cookieAfter = await refreshCookie(victim.context(), demo.url)
  t.not(cookieAfter.value, cookieBefore.value, 'Chromium stored the rotated cookie from the blocked response')
  await screenshot(refresh.page, '6b-same-site-page')

  const refreshed = victim.waitForResponse(isResponse('/auth/refresh'))
  await victim.click('#refresh-now')
  t.equal((await refreshed).status(), 200, 'so the victim\'s next refresh still works (no reuse)')

  await victim.locator('#refresh-count').filter({ hasText: '1' }).waitFor()
  const cookieBeforeLogout = await refreshCookie(victim.context(), demo.url)
  const logout = await visit(demo, victim, otherPort, '/auth/logout')
  t.equal(logout.headers['sec-fetch-site'], 'same-site', 'the logout request is same-site too')
  t.match(logout.served, { statusCode: 204 }, 'a logout from the same-site page is accepted')
  // the client hears the end on its events stream: the victim's page is signed out at once
  await waitForStatus(victim, 'Signed out.')
  t.ok(await victim.isVisible('#login-form'), 'the victim\'s page shows the sign-in form')
  const replay = await fetch(`${demo.url}/auth/refresh`, { method: 'POST', headers: { cookie: `${COOKIE_NAME}=${cookieBeforeLogout.value}` } })
  t.equal(replay.status, 401, 'and the victim\'s session is over: its last refresh token is refused')
})

t.test('6c. with trustedOrigins set to its own origin, the demo refuses same-site pages too', async t => {
  const port = await freePort()
  const demo = await startDemo(t, {
    PORT: String(port), ACCESS_TOKEN_TTL: '600', REUSE_INTERVAL: '0', LOG_LEVEL: 'info', TRUSTED_ORIGINS: `http://localhost:${port}`
  })
  const victim = await signedInVictim(t, demo)
  const cookieBefore = await refreshCookie(victim.context(), demo.url)
  const otherPort = await startOtherSite(t, 'localhost', demo.url)

  for (const path of ['/auth/refresh', '/auth/logout']) {
    const attempt = await visit(demo, victim, otherPort, path)
    t.equal(attempt.headers['sec-fetch-site'], 'same-site', `${path}: a same-site request with the cookie`)
    t.equal(attempt.headers.origin, otherPort, `${path}: from an origin not in the list`)
    t.same(attempt.served, { method: 'POST', url: path, statusCode: 403, errorCode: 'FST_REFRESH_AUTH_CROSS_SITE' }, `${path}: refused`)
    if (path === '/auth/refresh') await screenshot(attempt.page, '6c-same-site-page-refused')
  }
  t.equal((await refreshCookie(victim.context(), demo.url)).value, cookieBefore.value, 'the cookie was not rotated')
  const refreshed = victim.waitForResponse(isResponse('/auth/refresh'))
  await victim.click('#refresh-now')
  t.equal((await refreshed).status(), 200, 'the demo page itself (its own origin) still refreshes')
  await victim.locator('#refresh-count').filter({ hasText: '1' }).waitFor()
  t.notMatch(demo.output(), /reuse detected/, 'no reuse was detected')
})

/** A port that was free a moment ago, for a server that must know its own origin before it listens. */
function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, 'localhost', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    }).on('error', reject)
  })
}
