// Scenarios 1, 2, 3 and 5: one browser tab through a whole session, against the demo with 4-second access tokens.
import t from 'tap'
import {
  COOKIE_NAME, WAIT, isResponse, launchChromium, newPage, refreshCookie, screenshot, signIn, startDemo, waitForStatus
} from './helpers.mjs'

const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '4', REUSE_INTERVAL: '0' })
const browser = await launchChromium(t)
const page = await newPage(browser, t)
const context = page.context()

// a clock the test can pause (scenario 2); it runs as the real one until then
await page.clock.install()
await page.goto(demo.url)
await waitForStatus(page, 'Not signed in.')

let accessToken

t.test('1. log in: the refresh token stays out of reach of scripts, the protected call succeeds', async t => {
  const login = await signIn(page)
  t.equal(login.status(), 200, 'login answers 200')
  accessToken = (await login.json()).access_token
  await waitForStatus(page, 'Signed in as Alice Liddell')

  const cookie = await refreshCookie(context, demo.url)
  t.ok(cookie, 'Chromium stored the __Secure- refresh cookie set over http://localhost')
  t.match(cookie, { httpOnly: true, secure: true, sameSite: 'Strict', path: '/auth' }, 'with its attributes as sent')

  const seenByScript = await page.evaluate(() => ({
    cookie: document.cookie,
    storage: JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })
  }))
  t.equal(seenByScript.cookie, '', 'document.cookie is empty: the refresh cookie is HttpOnly and /auth-scoped')
  t.notOk(seenByScript.cookie.includes(COOKIE_NAME) || seenByScript.cookie.includes(cookie.value), 'no refresh token in document.cookie')
  t.notOk(seenByScript.storage.includes(accessToken), 'the access token is in no Web Storage')
  t.notOk((await context.cookies()).some(c => c.value.includes(accessToken)), 'the access token is in no cookie')

  const api = page.waitForResponse(isResponse('/api/me'))
  await page.click('#call-api')
  t.equal((await api).status(), 200, 'the protected API answers 200')
  await page.locator('#api-result').filter({ hasText: '"name": "Alice Liddell"' }).waitFor()
  await screenshot(page, '1-logged-in')
})

t.test('2. the page refreshes before expiry with no call; a call with a token expired meanwhile goes 401, refresh, retry', async t => {
  // The client refreshes on its own shortly before the access token expires (half of its 4-second life here),
  // with no call at all: the cookie is rotated and the countdown never reads "expired".
  const before = await refreshCookie(context, demo.url)
  const proactive = page.waitForResponse(isResponse('/auth/refresh'))
  t.equal((await proactive).status(), 200, 'the page refreshed on its own')
  await page.locator('#log').filter({ hasText: 'Access token refreshed silently (shortly before expiry)' }).waitFor()
  t.equal(await page.getAttribute('#countdown', 'data-expired'), 'false', 'before the access token expired')
  const after = await refreshCookie(context, demo.url)
  t.ok(after, 'a refresh cookie is still there')
  t.not(after.value, before.value, 'the silent refresh rotated the cookie')

  // A tab whose clock stood still (a laptop asleep, a tab whose timers were suspended) calls with an access
  // token that has expired on the server while the client still counts it valid: the call meets a 401, the
  // client refreshes once and retries. The page's clock (Playwright's fake clock, installed before the page
  // loaded) is paused while the client still counts its token fresh (refreshed less than 2 s ago).
  let token
  for (let tries = 0; token === undefined && tries < 10; tries++) {
    const next = page.waitForResponse(isResponse('/auth/refresh', 200))
    const exp = await page.evaluate(() => new Promise(resolve => {
      const off = window.auth.on('session', ({ expiresAt }) => { off(); resolve(expiresAt) })
    }))
    await next
    await page.clock.pauseAt(await page.evaluate(() => Date.now() + 1))
    // still fresh for the client (half of the 4 s life ahead of exp)? Else, on a slow run, the next rotation
    if (await page.evaluate((exp) => Date.now() < exp - 2000, exp)) token = await page.evaluate(() => window.auth.getAccessToken())
    else await page.clock.resume()
  }
  t.ok(token, 'the page clock paused while the client holds a fresh token')
  // the server refuses that token once it has expired (polled from here, bounded)
  const deadline = Date.now() + WAIT
  let refused
  do {
    refused = await fetch(`${demo.url}/api/me`, { headers: { authorization: `Bearer ${token}` } })
    if (refused.status !== 401) await new Promise(resolve => setTimeout(resolve, 100))
  } while (refused.status !== 401 && Date.now() < deadline)
  t.equal(refused.status, 401, 'the access token the page holds has expired on the server')

  const seen = []
  const record = (response) => {
    const { pathname } = new URL(response.url())
    if (pathname === '/api/me' || pathname === '/auth/refresh') seen.push(`${pathname} ${response.status()}`)
  }
  page.on('response', record)
  const first = page.waitForResponse(isResponse('/api/me'))
  const retried = page.waitForResponse(isResponse('/api/me', 200))
  await page.click('#call-api')
  t.equal((await first).status(), 401, 'the call with the expired token is refused')
  // the clock runs again (the client's refresh waits a moment for another tab's answer on its timers)
  await page.clock.resume()
  await retried
  page.off('response', record)
  t.same(seen, ['/api/me 401', '/auth/refresh 200', '/api/me 200'], 'expired token: 401, one refresh, the retry succeeds')
  await page.locator('#api-result').filter({ hasText: 'HTTP 200' }).waitFor()
  t.not((await refreshCookie(context, demo.url)).value, after.value, 'the refresh rotated the cookie again')
  await page.locator('#countdown[data-expired="false"]').waitFor()
  await screenshot(page, '2-silent-refresh')
})

t.test('3. a reload restores the session from the refresh cookie, without the password', async t => {
  const restored = page.waitForResponse(isResponse('/auth/refresh'))
  await page.reload()
  t.equal((await restored).status(), 200, 'the page traded the cookie for a new access token')
  await waitForStatus(page, 'Signed in as Alice Liddell')
  await page.locator('#log').filter({ hasText: 'Session restored from the refresh cookie' }).waitFor()
  t.equal(await page.inputValue('#password'), '', 'no password was typed')

  const api = page.waitForResponse(isResponse('/api/me'))
  await page.click('#call-api')
  t.equal((await api).status(), 200, 'the protected API answers 200 after the reload')
  await page.locator('#api-result').filter({ hasText: 'HTTP 200' }).waitFor()
  await screenshot(page, '3-restored-after-reload')
})

t.test('5. log out: the session is revoked, the cookie is gone, a reload shows the login form', async t => {
  const oldCookie = await refreshCookie(context, demo.url)
  const logout = page.waitForResponse(isResponse('/auth/logout'))
  await page.click('#logout')
  t.equal((await logout).status(), 204, 'logout answers 204')
  await waitForStatus(page, 'Signed out.')
  t.ok(await page.isVisible('#login-form'), 'the login form is back')
  t.notOk(await page.isVisible('#call-api'), 'the protected-call button is gone')
  t.equal(await refreshCookie(context, demo.url), undefined, 'the browser dropped the refresh cookie')

  const status = await page.evaluate(() => fetch('/api/me', { cache: 'no-store' }).then(r => r.status))
  t.equal(status, 401, 'a protected call from the page fails: it holds no access token any more')

  // The revoked session stays dead even for someone who kept a copy of the old cookie.
  const replay = await fetch(`${demo.url}/auth/refresh`, { method: 'POST', headers: { cookie: `${COOKIE_NAME}=${oldCookie.value}` } })
  t.equal(replay.status, 401, 'the refresh token from before the logout is refused')

  const restore = page.waitForResponse(isResponse('/auth/refresh'))
  await page.reload()
  t.equal((await restore).status(), 401, 'after a reload there is nothing to restore')
  await waitForStatus(page, 'Not signed in.')
  t.ok(await page.isVisible('#login-form'), 'the reload shows the login form')
  await screenshot(page, '5-logged-out')
})
