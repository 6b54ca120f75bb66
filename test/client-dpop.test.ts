import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { createDpopSigner, type DpopKeyPair, type DpopKeyStore } from '../lib/client/dpop.js'
import { createAuthClient, type DpopSigner } from '../lib/client/index.js'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../lib/index.js'
import { SECRET, USER, verifyCredentials } from './helpers/app.js'
import { until } from './helpers/client.js'
import { claimsOf, readProof, tokenHash } from './helpers/read-dpop-proof.js'

// The client with DPoP in Node (WebCrypto, no IndexedDB) against the plugin with `dpop` on a real server
// (port 0): sessions bound to the client's key, the proofs it sends, the server's nonces.

interface Sent { method: string, url: string, proof: ReadProof | null, authorization: string | null, status: number }
type ReadProof = ReturnType<typeof readProof>

async function server (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}) {
  const app = Fastify()
  const reused: string[] = []
  await app.register(fastifyRefreshAuth, {
    secret: SECRET, verifyCredentials, dpop: true, onReuseDetected: (event) => { reused.push(event.sessionId) }, ...options
  } as FastifyRefreshAuthOptions)
  app.get('/api/me', { preHandler: app.authenticate }, async (request) => ({ sub: request.user?.sub, jkt: (request.user as any)?.cnf?.jkt }))
  app.post('/api/items', { preHandler: app.authenticate }, async (request) => ({ got: request.body }))
  app.put('/api/items/1', { preHandler: app.authenticate }, async (request) => ({ method: request.method }))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, url, reused }
}

/** The global fetch, recording each request's proof (checked with node:crypto) and the answer's status. */
function recordingFetch () {
  const sent: Sent[] = []
  const fetch = async (input: any, init: any = {}): Promise<Response> => {
    const request = new Request(input, init)
    const proof = request.headers.get('dpop')
    const response = await globalThis.fetch(request)
    sent.push({ method: request.method, url: request.url, proof: proof === null ? null : readProof(proof), authorization: request.headers.get('authorization'), status: response.status })
    return response
  }
  return Object.assign(fetch, { sent, to: (path: string) => sent.filter(s => new URL(s.url).pathname === path) })
}

function memoryStorage () {
  let value: string | null = null
  return { get: () => value, set: (token: string) => { value = token }, remove: () => { value = null }, get value () { return value } }
}

function memoryKeyStore (): DpopKeyStore {
  let kept: DpopKeyPair | undefined
  return { get: () => kept, add: (keys) => (kept ??= keys) }
}

/** The session's tokens bound to `signer`'s key: the access token names its thumbprint. */
async function boundTo (t: Test, accessToken: string | null, signer: DpopSigner): Promise<void> {
  t.equal(claimsOf(accessToken as string).cnf?.jkt, await signer.thumbprint(), 'the access token is bound to the client\'s key')
}

// real timers and real crypto: more than the default 30 s on a busy machine

for (const transport of ['cookie', 'body'] as const) {
  t.test(`${transport} transport: login, fetch and refresh bound to the key; the tokens refused without it`, async t => {
    const { url, reused } = await server(t, transport === 'body' ? { refreshTokenTransport: 'body' } : {})
    const fetch = recordingFetch()
    const signer = createDpopSigner()
    // Node's fetch keeps no cookies: the cookie transport's jar is the test's
    let cookie = ''
    const withCookies = async (input: any, init: any = {}): Promise<Response> => {
      const headers = new Headers(init.headers)
      if (cookie !== '') headers.set('cookie', cookie)
      const response = await fetch(input, { ...init, headers })
      const set = response.headers.getSetCookie().map(line => line.split(';')[0]).find(pair => !pair.endsWith('='))
      if (set !== undefined) cookie = set
      return response
    }
    const storage = memoryStorage()
    const auth = createAuthClient({ baseUrl: url, transport, storage, live: false, dpop: signer, fetch: transport === 'cookie' ? withCookies : fetch })
    t.teardown(() => auth.close())
    const login = await auth.login(USER)
    t.equal(login.token_type, 'DPoP', 'the server bound the session')
    await boundTo(t, login.access_token, signer)

    const me = await auth.fetch(url + '/api/me?x=1')
    t.equal(me.status, 200)
    t.equal((await me.json() as { jkt: string }).jkt, await signer.thumbprint())
    const call = fetch.to('/api/me')[0]
    t.equal(call.authorization, `DPoP ${login.access_token}`)
    t.match(call.proof?.payload, { htm: 'GET', htu: `${url}/api/me`, ath: tokenHash(login.access_token) })

    const posted = await auth.fetch(new Request(url + '/api/items', { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } }))
    t.same(await posted.json(), { got: { a: 1 } }, 'a Request: its method in htm, its body sent')
    t.equal(fetch.to('/api/items')[0].proof?.payload.htm, 'POST')
    // fetch sends `put` as PUT: htm says what goes out
    t.same(await (await auth.fetch(url + '/api/items/1', { method: 'put' })).json(), { method: 'PUT' })

    const before = await auth.getAccessToken()
    t.equal(await auth.refresh(), true)
    const after = await auth.getAccessToken()
    t.not(after, before, 'rotated')
    await boundTo(t, after, signer)
    for (const path of ['/auth/login', '/auth/refresh']) {
      const proof = fetch.to(path)[0].proof
      t.match(proof?.payload, { htm: 'POST', htu: url + path }, `${path}: a proof`)
      t.notOk('ath' in (proof?.payload ?? {}), `${path}: no ath`)
    }
    t.equal(new Set(fetch.sent.map(s => s.proof?.jkt)).size, 1, 'every proof from the one key')
    t.equal(new Set(fetch.sent.map(s => s.proof?.payload.jti)).size, fetch.sent.length, 'a jti per proof')

    // the tokens copied out and used without the key
    const bearer = await globalThis.fetch(url + '/api/me', { headers: { authorization: `Bearer ${after}` } })
    t.equal(bearer.status, 401, 'the access token as a bearer token: refused')
    const refreshWithoutKey = await globalThis.fetch(url + '/auth/refresh', transport === 'cookie'
      ? { method: 'POST', headers: { cookie } }
      : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: storage.value }) })
    t.equal(refreshWithoutKey.status, 401, 'the refresh token without a proof: refused')
    // (a storage of its own: refused, the other client forgets what it holds)
    const copied = memoryStorage()
    if (storage.value !== null) copied.set(storage.value)
    const other = createAuthClient({ baseUrl: url, transport, storage: copied, live: false, dpop: createDpopSigner(), fetch: transport === 'cookie' ? withCookies : fetch })
    t.teardown(() => other.close())
    t.equal(await other.restore(), false, 'the refresh token with another key\'s proof: refused')
    t.equal(await auth.refresh(), true, 'and nothing was consumed: the client goes on')
    t.equal((await auth.fetch(url + '/api/me')).status, 200)
    await auth.logout()
    t.equal(fetch.to('/auth/logout')[0].status, 204)
    t.ok(fetch.to('/auth/logout')[0].proof, 'logout with a proof')
    t.same(reused, [])
  })
}

t.test('nonces: the client retries once with the server\'s nonce, then keeps using the newest', async t => {
  const { url } = await server(t, { refreshTokenTransport: 'body', dpop: { nonce: true } } as Partial<FastifyRefreshAuthOptions>)
  const fetch = recordingFetch()
  const auth = createAuthClient({ baseUrl: url, transport: 'body', live: false, dpop: createDpopSigner(), fetch })
  t.teardown(() => auth.close())
  await auth.login(USER)
  t.same(fetch.to('/auth/login').map(s => [s.status, s.proof?.payload.nonce]), [[400, undefined], [200, fetch.sent[1].proof?.payload.nonce]])
  t.type(fetch.sent[1].proof?.payload.nonce, 'string', 'the retry carries the nonce')
  t.equal((await auth.fetch(url + '/api/me')).status, 200)
  t.equal(await auth.refresh(), true)
  t.same(fetch.sent.slice(2).map(s => s.status), [200, 200], 'the nonce kept: no more retries')
  t.ok(fetch.sent.slice(2).every(s => typeof s.proof?.payload.nonce === 'string'))
})

t.test('a server that asks for a nonce again after the retry: the answer is the caller\'s, no loop', async t => {
  const { url } = await server(t, { refreshTokenTransport: 'body', dpop: { nonce: true } } as Partial<FastifyRefreshAuthOptions>)
  // something on the way that drops the nonce from every proof (signed again with the client's key, by a signer
  // that never heard of a nonce): the server asks each time
  const keyStore = memoryKeyStore()
  const fetch = recordingFetch()
  let strip = true
  const stripping = async (input: any, init: any = {}): Promise<Response> => {
    const request = new Request(input, init)
    const accessToken = request.headers.get('authorization')?.replace(/^DPoP /, '')
    if (strip) request.headers.set('dpop', await createDpopSigner({ keyStore }).proof(request.method, request.url, accessToken))
    return await fetch(request)
  }
  const auth = createAuthClient({ baseUrl: url, transport: 'body', live: false, dpop: createDpopSigner({ keyStore }), fetch: stripping })
  t.teardown(() => auth.close())
  await t.rejects(auth.login(USER), { status: 400, code: 'FST_REFRESH_AUTH_USE_DPOP_NONCE' })
  t.same(fetch.sent.map(s => s.status), [400, 400], 'two tries, not more')
  strip = false
  await auth.login(USER)
  t.same(fetch.sent.slice(2).map(s => s.status), [200], 'the nonce of the last answer was kept')
  const since = fetch.sent.length
  strip = true
  const response = await auth.fetch(url + '/api/me')
  t.equal(response.status, 401)
  t.match(response.headers.get('www-authenticate'), /use_dpop_nonce/)
  t.same(fetch.sent.slice(since).map(s => s.status), [401], 'asked for the nonce it has just sent: not sent again')
})

t.test('a nonce that expired: a protected request is sent once more with the new one', async t => {
  // nonces live one to two slots of half the proof age: 2 to 4 s here
  const { url } = await server(t, { refreshTokenTransport: 'body', dpop: { nonce: true, proofMaxAge: 4 } } as Partial<FastifyRefreshAuthOptions>)
  const fetch = recordingFetch()
  const auth = createAuthClient({ baseUrl: url, transport: 'body', live: false, dpop: createDpopSigner(), fetch })
  t.teardown(() => auth.close())
  await auth.login(USER)
  const held = fetch.sent.at(-1)?.proof?.payload.nonce
  // past the longest life of that nonce (waiting longer only makes it surer)
  await new Promise(resolve => setTimeout(resolve, 4500))
  const since = fetch.sent.length
  t.equal((await auth.fetch(url + '/api/me')).status, 200)
  const tries = fetch.sent.slice(since)
  t.same(tries.map(s => s.status), [401, 200])
  t.equal(tries[0].proof?.payload.nonce, held, 'first with the nonce it had')
  t.not(tries[1].proof?.payload.nonce, held, 'then with the new one')
})

t.test('one key store, two clients (an app started again): the same key, the session goes on', async t => {
  const { url, reused } = await server(t, { refreshTokenTransport: 'body' })
  const keyStore = memoryKeyStore()
  const storage = memoryStorage()
  const first = createAuthClient({ baseUrl: url, transport: 'body', storage, live: false, dpop: createDpopSigner({ keyStore }) })
  await first.login(USER)
  const jkt = claimsOf(await first.getAccessToken() as string).cnf.jkt
  first.close()
  const signer = createDpopSigner({ keyStore })
  const second = createAuthClient({ baseUrl: url, transport: 'body', storage, live: false, dpop: signer })
  t.teardown(() => second.close())
  t.equal(await second.restore(), true)
  t.equal(await signer.thumbprint(), jkt)
  await boundTo(t, await second.getAccessToken(), signer)
  t.equal((await second.fetch(url + '/api/me')).status, 200)
  t.same(reused, [])
})

t.test('dpop: true loads the signer on first use; dpop: false sends bearer tokens', async t => {
  const { url } = await server(t, { refreshTokenTransport: 'body' })
  const fetch = recordingFetch()
  const auth = createAuthClient({ baseUrl: url, transport: 'body', dpop: true, fetch })
  t.teardown(() => auth.close())
  t.equal((await auth.login(USER)).token_type, 'DPoP')
  t.equal((await auth.fetch(url + '/api/me')).status, 200)
  // the events stream, too, is a protected request: with a proof
  await until(() => fetch.to('/auth/events').length > 0, 'the events stream')
  t.match(fetch.to('/auth/events')[0], { status: 200, authorization: /^DPoP / })
  t.match(fetch.to('/auth/events')[0].proof?.payload, { htm: 'GET', htu: `${url}/auth/events` })

  const plain = recordingFetch()
  const bearer = createAuthClient({ baseUrl: url, transport: 'body', live: false, dpop: false, fetch: plain })
  t.teardown(() => bearer.close())
  t.equal((await bearer.login(USER)).token_type, 'Bearer')
  t.equal((await bearer.fetch(url + '/api/me')).status, 200)
  t.ok(plain.sent.every(s => s.proof === null), 'no proof')
  t.match(plain.to('/api/me')[0].authorization, /^Bearer /)
})
