// Session management in the page: the list of a user's sessions, revoking another one, and "log out everywhere",
// with the MemoryStore and with Redis (REDIS_URL, default redis://127.0.0.1:6379).
import { randomUUID } from 'node:crypto'
import t from 'tap'
import {
  isResponse, launchChromium, newPage, screenshot, signIn, startDemo, waitForStatus
} from './helpers.mjs'

// a Redis prefix of its own, so that no other session of user 1 in this Redis shows up in the list
const prefix = `fastify-refresh-auth-e2e-${randomUUID()}:`
const stores = [
  { name: 'MemoryStore', env: {} },
  { name: 'RedisStore', env: { REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', REDIS_PREFIX: prefix } }
]

const browser = await launchChromium(t)

/** One browser (its own cookie jar: another device) signed in as alice. */
async function device (t, demo) {
  const page = await newPage(browser, t)
  await page.goto(demo.url)
  const login = await signIn(page)
  t.equal(login.status(), 200, 'signs in')
  t.equal((await login.json()).token_type, 'DPoP', 'its session bound to the page\'s key')
  await waitForStatus(page, 'Signed in as Alice Liddell')
  return page
}

/**
 * A POST /auth/refresh from the page with its cookie, outside the client but with a proof of the page's key (the
 * demo runs with DPoP here): a 401 is the session's end, not a missing proof. The status.
 */
function rawRefresh (page) {
  return page.evaluate(async () => {
    const { createDpopSigner } = await import('/dpop.js')
    const dpop = await createDpopSigner().proof('POST', new URL('/auth/refresh', window.location.href).href)
    return fetch('/auth/refresh', { method: 'POST', credentials: 'include', headers: { dpop } }).then(response => response.status)
  })
}

for (const { name, env } of stores) {
  t.test(`7. the session list, revoking another session and logging out everywhere (${name})`, async t => {
    const demo = await startDemo(t, { ACCESS_TOKEN_TTL: '60', REUSE_INTERVAL: '0', DPOP: '1', ...env })
    t.equal((await demo.waitForOutput(/Store: (\w+)/))[1], name, `the demo uses the ${name}`)
    t.equal((await fetch(`${demo.url}/auth/sessions`)).status, 401, 'GET /auth/sessions is protected')

    const laptop = await device(t, demo)
    const phone = await device(t, demo)
    await laptop.click('#reload-sessions')
    await laptop.locator('#session-list li.other').waitFor()
    t.equal(await laptop.locator('#session-list li').count(), 2, 'the laptop lists both sessions')
    t.equal(await laptop.locator('#session-list li.current').count(), 1, 'one of them marked as this browser')
    t.match(await laptop.locator('#session-list li.current').textContent(), /^This browser: .+ on Linux \(desktop\), last seen at .+ from 127\.0\.0\.1/,
      'its browser, OS, kind of device, when last seen and from where, as the devices route read them')
    await screenshot(laptop, `7-sessions-${name}`)

    // Revoke the phone's session from the laptop: the phone's page hears it on its events stream and signs
    // out, and its refresh cookie (still in its jar) is refused.
    const revoked = laptop.waitForResponse(response => response.request().method() === 'DELETE')
    await laptop.click('#session-list li.other button')
    t.equal((await revoked).status(), 204, 'the laptop revokes the other session')
    await laptop.locator('#session-list li.other').waitFor({ state: 'detached' })
    await waitForStatus(phone, 'Signed out.')
    await phone.locator('#error').filter({ hasText: 'Your session was ended elsewhere (revoked)' }).waitFor()
    t.equal(await rawRefresh(phone), 401, 'the phone\'s session is over: its refresh cookie is refused')

    // Sign the phone in again, then log out everywhere from the laptop: both end signed out.
    t.equal((await signIn(phone)).status(), 200, 'the phone signs in again')
    await waitForStatus(phone, 'Signed in as Alice Liddell')
    const logout = laptop.waitForResponse(isResponse('/auth/logout'))
    await laptop.click('#logout-all')
    t.equal((await logout).status(), 204, 'log out everywhere answers 204')
    await waitForStatus(laptop, 'Signed out.')
    await laptop.locator('#log').filter({ hasText: 'Logged out everywhere' }).waitFor()
    await waitForStatus(phone, 'Signed out.')
    await phone.locator('#error').filter({ hasText: 'Your session was ended elsewhere (revoked)' }).waitFor()
    t.equal(await rawRefresh(phone), 401, 'the phone is signed out too: its refresh cookie is refused')
    await screenshot(laptop, `7-logged-out-everywhere-${name}`)
  })
}
