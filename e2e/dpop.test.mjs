// DPoP in Chromium: `createAuthClient({ dpop: true })` from the package's ES module build, as a page imports it
// (the client, then its sibling dpop.js on demand), against the plugin with `dpop: { nonce: true }` and 2-second
// access tokens. The key is made by WebCrypto, non-extractable, and kept in IndexedDB: it survives a reload (same
// thumbprint, the session keeps refreshing), and tokens copied out of the browser are refused without it while
// the page goes on. Waits are on events, never on fixed sleeps.
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import fastifyRefreshAuth from 'fastify-refresh-auth'
import { createDpopSigner } from 'fastify-refresh-auth/client/dpop'
import t from 'tap'
import { COOKIE_NAME, WAIT, launchChromium, newPage, refreshCookie } from './helpers.mjs'

const clientFile = (name) => readFileSync(fileURLToPath(import.meta.resolve(`fastify-refresh-auth/${name}`)))
const PAGE = `<!doctype html><meta charset="utf-8"><title>DPoP</title>
<script type="module">
  import { createAuthClient } from '/client/index.js'
  window.auth = createAuthClient({ dpop: true })
  window.restored = window.auth.restore()
</script>`

/** The plugin on a free port of localhost, with a page, the client's two files and one protected route. */
async function startServer (t) {
  const app = Fastify()
  // every request the auth routes and the API answered: what the client sent, what it got
  const answered = []
  let reuse = 0
  app.addHook('onResponse', async (request, reply) => {
    answered.push({ method: request.method, path: request.url.split('?')[0], status: reply.statusCode, proof: request.headers.dpop !== undefined })
  })
  await app.register(fastifyRefreshAuth, {
    secret: randomBytes(32),
    accessToken: { expiresIn: 2 },
    refreshToken: { reuseInterval: 0 },
    dpop: { nonce: true },
    verifyCredentials: async (request) => request.body?.username === 'alice' && request.body?.password === 'wonderland' ? { id: '1' } : null,
    onReuseDetected: () => { reuse++ }
  })
  app.get('/api/me', { preHandler: app.authenticate }, async (request) => ({ sub: request.user.sub, jkt: request.user.cnf?.jkt }))
  app.get('/', (request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
  app.get('/blank', (request, reply) => reply.type('text/html; charset=utf-8').send('<!doctype html><title>blank</title>'))
  // the ES module build as it ships: index.js imports ./dpop.js, resolved by the browser next to it
  for (const [path, name] of [['/client/index.js', 'client'], ['/client/dpop.js', 'client/dpop']]) {
    const body = clientFile(name)
    app.get(path, (request, reply) => reply.type('text/javascript; charset=utf-8').send(body))
  }
  const address = await app.listen({ port: 0, host: 'localhost' })
  t.teardown(() => app.close())
  return { url: `http://localhost:${new URL(address).port}`, answered, reuse: () => reuse }
}

const claimsOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())

/** Resolves after the page's client has taken `count` new access tokens (refreshes). */
function refreshes (page, count) {
  return page.evaluate((count) => new Promise(resolve => {
    let seen = 0
    const off = window.auth.on('session', () => { if (++seen === count) { off(); resolve() } })
  }), count)
}

/** The key pair in the page's IndexedDB: whether its private key is extractable, and the RFC 7638 thumbprint of its public key. */
function storedKey (page) {
  return page.evaluate(async () => {
    const database = await new Promise((resolve, reject) => {
      const opening = window.indexedDB.open('fastify-refresh-auth')
      opening.onsuccess = () => resolve(opening.result)
      opening.onerror = () => reject(opening.error)
    })
    const keys = await new Promise((resolve, reject) => {
      const reading = database.transaction('dpop').objectStore('dpop').get('key')
      reading.onsuccess = () => resolve(reading.result)
      reading.onerror = () => reject(reading.error)
    })
    database.close()
    const exportRefused = await crypto.subtle.exportKey('jwk', keys.privateKey).then(() => false, error => error.name)
    const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', keys.publicKey)
    return { extractable: keys.privateKey.extractable, exportRefused, publicJwk: JSON.stringify({ crv, kty, x, y }) }
  })
}

const server = await startServer(t)
const browser = await launchChromium(t)
const page = await newPage(browser, t)
const context = page.context()
let jkt

t.test('sign in: a DPoP session, bound to a non-extractable key kept in IndexedDB', async t => {
  await page.goto(server.url)
  t.equal(await page.evaluate(() => window.restored), false, 'no session yet')
  const login = await page.evaluate(() => window.auth.login({ username: 'alice', password: 'wonderland' }))
  t.equal(login.token_type, 'DPoP')
  jkt = claimsOf(login.access_token).cnf?.jkt
  t.type(jkt, 'string', 'the access token names the key (cnf.jkt)')
  // the page's restore() was the first request: it asked for the nonce, sent again once with it (no cookie yet: 401);
  // the login then carried the nonce from the start
  t.same(server.answered.filter(a => a.path.startsWith('/auth/')).map(a => [a.path, a.status, a.proof]), [
    ['/auth/refresh', 400, true], ['/auth/refresh', 401, true], ['/auth/login', 200, true]
  ])

  const key = await storedKey(page)
  t.equal(key.extractable, false, 'the private key is not extractable')
  t.equal(key.exportRefused, 'InvalidAccessError', 'and the page cannot export it')
  t.equal(createHash('sha256').update(key.publicJwk).digest('base64url'), jkt, 'the key in IndexedDB is the one the session is bound to')
  t.same(await page.evaluate(async () => (await window.auth.fetch('/api/me')).json()), { sub: '1', jkt })
})

t.test('reload: the same key, the session restored and refreshing', async t => {
  await page.reload()
  t.equal(await page.evaluate(() => window.restored), true, 'restored from the refresh cookie, with a proof from the stored key')
  const accessToken = await page.evaluate(() => window.auth.getAccessToken())
  t.equal(claimsOf(accessToken).cnf?.jkt, jkt, 'the same key after the reload')
  await refreshes(page, 2)
  t.equal(claimsOf(await page.evaluate(() => window.auth.getAccessToken())).cnf?.jkt, jkt, 'two refreshes later, still bound to it')
  t.equal(await page.evaluate(async () => (await window.auth.fetch('/api/me')).status), 200)
})

t.test('a second tab: the same key, the same session', async t => {
  const tab = await context.newPage()
  tab.setDefaultTimeout(WAIT)
  await tab.goto(server.url)
  t.equal(await tab.evaluate(() => window.restored), true)
  t.equal(claimsOf(await tab.evaluate(() => window.auth.getAccessToken())).cnf?.jkt, jkt)
  t.equal(await tab.evaluate(async () => (await window.auth.fetch('/api/me')).status), 200)
  await tab.close()
})

t.test('two tabs of a new browser profile making their key at once keep one key', async t => {
  const fresh = await browser.newContext()
  t.teardown(() => fresh.close())
  const tabs = await Promise.all([fresh.newPage(), fresh.newPage()])
  // a page without the client, so that no key is made before the race
  await Promise.all(tabs.map(tab => tab.goto(`${server.url}/blank`)))
  const thumbprints = (await Promise.all(tabs.map(tab => tab.evaluate(async () => {
    const { createDpopSigner } = await import('/client/dpop.js')
    return await Promise.all([createDpopSigner().thumbprint(), createDpopSigner().thumbprint()])
  })))).flat()
  t.same(new Set(thumbprints).size, 1, 'four signers in two tabs, one key')
  t.not(thumbprints[0], jkt, 'another profile, another key')
})

t.test('a device whose clock is two minutes ahead signs in: the proofs take the server\'s time from its Date', async t => {
  const ahead = await browser.newContext()
  t.teardown(() => ahead.close())
  const tab = await ahead.newPage()
  tab.setDefaultTimeout(WAIT)
  // the page's clock runs on from two minutes ahead; the server allows 5 s (clockTolerance)
  await tab.clock.install({ time: Date.now() + 120_000 })
  await tab.goto(server.url)
  await tab.evaluate(() => window.restored)
  const login = await tab.evaluate(() => window.auth.login({ username: 'alice', password: 'wonderland' }))
  t.equal(login.token_type, 'DPoP')
  t.equal(await tab.evaluate(async () => (await window.auth.fetch('/api/me')).status), 200)
})

t.test('tokens copied out of the browser are refused without the key; the page goes on', async t => {
  // what an attacker with the disk or the page's memory would get: the access token, and the HttpOnly cookie
  const accessToken = await page.evaluate(() => window.auth.getAccessToken())
  const cookie = await refreshCookie(context, server.url)
  t.ok(cookie, 'the refresh cookie, read from the browser context')
  const attacker = createDpopSigner()
  const api = `${server.url}/api/me`
  const refresh = `${server.url}/auth/refresh`
  const statuses = {
    bearer: (await fetch(api, { headers: { authorization: `Bearer ${accessToken}` } })).status,
    dpopWithoutProof: (await fetch(api, { headers: { authorization: `DPoP ${accessToken}` } })).status,
    dpopWithAnotherKey: (await attacker.send('GET', api, accessToken, headers => fetch(api, { headers }))).status,
    refreshWithoutProof: (await fetch(refresh, { method: 'POST', headers: { cookie: `${COOKIE_NAME}=${cookie.value}` } })).status,
    refreshWithAnotherKey: (await attacker.send('POST', refresh, null, headers => fetch(refresh, { method: 'POST', headers: { ...headers, cookie: `${COOKIE_NAME}=${cookie.value}` } }))).status
  }
  t.same(statuses, { bearer: 401, dpopWithoutProof: 401, dpopWithAnotherKey: 401, refreshWithoutProof: 401, refreshWithAnotherKey: 401 })
  t.equal(server.reuse(), 0, 'no refresh was taken as reuse: nothing was consumed')

  await refreshes(page, 1)
  const after = await refreshCookie(context, server.url)
  t.not(after.value, cookie.value, 'the page rotated the same cookie on')
  t.equal(await page.evaluate(async () => (await window.auth.fetch('/api/me')).status), 200, 'and calls the API')
  t.equal(await page.evaluate(() => window.auth.state), 'signed-in')
})

t.setTimeout(WAIT * 4)
