// Scenario 8: "Keep me signed in". Ticked, the refresh cookie outlives the browser session (an expiry about
// a week ahead); unticked, it is a browser-session cookie (no expiry: `expires === -1`), and both stay so
// across refreshes. Read from the browser context, where Playwright sees the HttpOnly cookie. Then the real
// thing: Chromium closed and started again on the same profile.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import {
  isResponse, launchChromium, launchProfile, newPage, refreshCookie, screenshot, signIn, startDemo, waitForStatus
} from './helpers.mjs'

const WEEK = 7 * 86400

const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '60', REUSE_INTERVAL: '0' })
const browser = await launchChromium(t)

/** A browser of its own (its own cookie jar) signed in as alice, with the box ticked or not. */
async function signedIn (t, remember) {
  const page = await newPage(browser, t)
  await page.goto(demo.url)
  await waitForStatus(page, 'Not signed in.')
  t.equal(await page.isChecked('#remember'), false, 'the box starts unticked')
  t.equal((await signIn(page, 'alice', 'wonderland', { remember })).status(), 200, 'signs in')
  await waitForStatus(page, 'Signed in as Alice Liddell')
  return page
}

/** Refreshes through the page's button; resolves with the new refresh cookie, checked to be a new one. */
async function refreshFromPage (t, page, before) {
  const refreshed = page.waitForResponse(isResponse('/auth/refresh'))
  await page.click('#refresh-now')
  t.equal((await refreshed).status(), 200, 'the refresh answers 200')
  const after = await refreshCookie(page.context(), demo.url)
  t.not(after.value, before.value, 'the cookie was rotated')
  return after
}

t.test('8a. ticked: a persistent cookie, about a week ahead, at sign-in and after a refresh', async t => {
  const page = await signedIn(t, true)
  const cookie = await refreshCookie(page.context(), demo.url)
  const now = Date.now() / 1000
  t.ok(cookie.expires > now + WEEK - 60 && cookie.expires <= now + WEEK + 5, `expires in about a week (${Math.round(cookie.expires - now)} s)`)
  t.match(cookie, { httpOnly: true, secure: true, sameSite: 'Strict', path: '/auth' })
  const refreshed = await refreshFromPage(t, page, cookie)
  t.ok(refreshed.expires > Date.now() / 1000 + WEEK - 60, 'still persistent after the refresh')
})

t.test('8b. unticked: a browser-session cookie at sign-in, after refreshes and after a reload', async t => {
  const page = await signedIn(t, false)
  const cookie = await refreshCookie(page.context(), demo.url)
  t.equal(cookie.expires, -1, 'a session cookie: no expiry')
  t.match(cookie, { httpOnly: true, secure: true, sameSite: 'Strict', path: '/auth' }, 'the other attributes as always')

  let current = cookie
  for (let i = 1; i <= 2; i++) {
    current = await refreshFromPage(t, page, current)
    t.equal(current.expires, -1, `still a session cookie after refresh ${i}`)
  }

  // a reload is the same browser session: the cookie is still there and restores the session
  const restored = page.waitForResponse(isResponse('/auth/refresh'))
  await page.reload()
  t.equal((await restored).status(), 200, 'the reload restores the session')
  await waitForStatus(page, 'Signed in as Alice Liddell')
  t.equal((await refreshCookie(page.context(), demo.url)).expires, -1, 'and the rotated cookie is a session cookie too')
  await screenshot(page, '8-not-remembered')
})

t.test('8c. Chromium closed and started again: only the ticked session is still signed in', async t => {
  for (const remember of [true, false]) {
    const profile = mkdtempSync(join(tmpdir(), 'fastify-refresh-auth-e2e-'))
    t.teardown(() => rmSync(profile, { recursive: true, force: true }))
    const first = await launchProfile(profile)
    const page = await first.newPage()
    await page.goto(demo.url)
    t.equal((await signIn(page, 'alice', 'wonderland', { remember })).status(), 200, `signs in (ticked: ${remember})`)
    await waitForStatus(page, 'Signed in as Alice Liddell')
    await first.close()

    const next = await launchProfile(profile)
    t.teardown(() => next.close())
    const cookie = await refreshCookie(next, demo.url)
    const reopened = await next.newPage()
    const restore = reopened.waitForResponse(isResponse('/auth/refresh'))
    await reopened.goto(demo.url)
    if (remember) {
      t.ok(cookie, 'ticked: the cookie is still there after the restart')
      t.equal((await restore).status(), 200, 'and the page restores the session from it')
      await waitForStatus(reopened, 'Signed in as Alice Liddell')
    } else {
      t.equal(cookie, undefined, 'unticked: the browser dropped the cookie with its session')
      t.equal((await restore).status(), 401, 'nothing to restore')
      await waitForStatus(reopened, 'Not signed in.')
    }
    await next.close()
  }
})
