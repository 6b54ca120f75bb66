// Scenario 6: a page on another origin posts to /auth/refresh with credentials: 'include' and gets no token.
// A cross-site page (another host name: 127.0.0.1 against localhost) gets nothing at all: SameSite=Strict keeps
// the cookie home and Fetch Metadata (Sec-Fetch-Site: cross-site) makes the server answer 403 before reading
// anything. A same-site page on another port of localhost is a different origin but the same site (ports do not
// count for SameSite): see the second test for what it can and cannot do.
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
    reply.type('text/html; charset=utf-8').send(`<!doctype html>
<title>Another site</title>
<h1>Another site</h1>
<p>This page tries <code>fetch('${target}/auth/refresh', { method: 'POST', credentials: 'include' })</code>.</p>
<p id="result">Working…</p>
<script>
  fetch('${target}/auth/refresh', { method: 'POST', credentials: 'include' })
    .then(async response => { document.getElementById('result').textContent = 'Read a response: HTTP ' + response.status + ' ' + await response.text() })
    .catch(err => { document.getElementById('result').textContent = 'No token: the browser gave this page no response (' + err.name + ': ' + err.message + ')' })
</script>`)
  })
  const address = await app.listen({ host, port: 0 })
  t.teardown(() => app.close())
  return `http://${host}:${new URL(address).port}`
}

/** A signed-in victim tab on the demo, with automatic refresh off so that every refresh below is one we cause. */
async function signedInVictim (t, demo) {
  const victim = await newPage(browser, t)
  await victim.goto(demo.url)
  t.equal((await signIn(victim)).status(), 200, 'the victim signs in')
  await waitForStatus(victim, 'Signed in as Alice Liddell')
  await victim.uncheck('#auto-refresh')
  return victim
}

/**
 * Starts listening (resolves once it does) and returns a promise of what Chromium really sent for the page's next request to /auth/refresh: the headers and the
 * cookies it considered, each with the reasons it was left out. (Read over CDP: Playwright's own view of a
 * request whose response failed CORS lacks these.)
 */
async function watchRefreshRequest (page) {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  const refreshIds = new Set()
  const extraInfo = new Map()
  const sent = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no request to /auth/refresh seen: ${[...refreshIds]} ${[...extraInfo.keys()]}`)), WAIT)
    const check = (id) => {
      if (refreshIds.has(id) && extraInfo.has(id)) {
        clearTimeout(timer)
        resolve(extraInfo.get(id))
      }
    }
    cdp.on('Network.requestWillBeSent', event => {
      if (new URL(event.request.url).pathname === '/auth/refresh') refreshIds.add(event.requestId)
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
async function visit (demo, victim, url) {
  const index = demo.completed('POST', '/auth/refresh').length
  const page = await victim.context().newPage()
  const { sent } = await watchRefreshRequest(page)
  await page.goto(url)
  await page.locator('#result').filter({ hasNotText: 'Working…' }).waitFor()
  return {
    page,
    ...(await sent),
    result: await page.textContent('#result'),
    served: await demo.waitForCompletedRequest('POST', '/auth/refresh', index)
  }
}

t.test('6. a cross-site page gets no token, and the victim\'s session is untouched', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '60', REUSE_INTERVAL: '0', LOG_LEVEL: 'info' })
  const victim = await signedInVictim(t, demo)
  const cookieBefore = await refreshCookie(victim.context(), demo.url)
  const otherSite = await startOtherSite(t, '127.0.0.1', demo.url)

  const { page, headers, cookies, result, served } = await visit(demo, victim, otherSite)
  t.equal(headers['sec-fetch-site'], 'cross-site', 'Chromium labels the request cross-site')
  t.equal(headers.cookie, undefined, 'no cookie was sent')
  t.equal(cookies.length, 1, 'Chromium considered the refresh cookie')
  t.equal(cookies[0].name, COOKIE_NAME)
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

t.test('6b. a same-site page on another port of localhost', async t => {
  const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '60', REUSE_INTERVAL: '0', LOG_LEVEL: 'info' })
  const victim = await signedInVictim(t, demo)
  const cookieBefore = await refreshCookie(victim.context(), demo.url)
  const otherPort = await startOtherSite(t, 'localhost', demo.url)

  const { page, headers, cookies, result, served } = await visit(demo, victim, otherPort)
  console.error('same-site', headers, cookies, served, result)
  const cookieAfter = await refreshCookie(victim.context(), demo.url)
  console.error('cookie changed', cookieAfter?.value !== cookieBefore.value, cookieAfter === undefined)
  const refreshed = victim.waitForResponse(isResponse('/auth/refresh'))
  await victim.click('#refresh-now')
  console.error('victim refresh', (await refreshed).status())
  await screenshot(page, '6b-same-site-page')
})
