import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { createAuthClient, type EndEvent } from '../lib/client/index.js'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../lib/index.js'
import { SECRET, USER, verifyCredentials } from './helpers/app.js'
import { until } from './helpers/client.js'

// The client in Node against the plugin on a real server (port 0): the body transport with a storage, a
// refresh whose answer is lost, and the session-ended push.

async function server (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}) {
  const app = Fastify()
  const reused: string[] = []
  await app.register(fastifyRefreshAuth, {
    secret: SECRET, verifyCredentials, refreshTokenTransport: 'body', onReuseDetected: (event) => { reused.push(event.sessionId) }, ...options
  } as FastifyRefreshAuthOptions)
  app.get('/api/me', { preHandler: app.authenticate }, async (request) => ({ sub: request.user?.sub, sid: request.user?.sid }))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, url, reused }
}

function memoryStorage () {
  let value: string | null = null
  return { get: () => value, set: (token: string) => { value = token }, remove: () => { value = null }, get value () { return value } }
}

// real timers (backoff, token lifetimes of seconds): more than the default 30 s on a busy machine

t.test('body transport: sign in, call the API, refresh, restore from the storage in a new client, log out', async t => {
  const { url, reused } = await server(t)
  const storage = memoryStorage()
  const auth = createAuthClient({ baseUrl: url, transport: 'body', storage, live: false })
  t.teardown(() => auth.close())
  await auth.login(USER)
  t.ok(storage.value, 'the refresh token is in the storage')
  const me = await (await auth.fetch(url + '/api/me')).json() as { sub: string, sid: string }
  t.equal(me.sub, '42')
  const before = storage.value
  t.equal(await auth.refresh(), true)
  t.not(storage.value, before, 'rotated')
  const reopened = createAuthClient({ baseUrl: url, transport: 'body', storage, live: false })
  t.teardown(() => reopened.close())
  t.equal(await reopened.restore(), true, 'an app started again restores from its storage')
  t.equal((await reopened.fetch(url + '/api/me')).status, 200)
  const ends: EndEvent[] = []
  auth.on('end', event => ends.push(event))
  await reopened.logout()
  t.equal(storage.value, null)
  t.equal(await auth.refresh(), false)
  t.same(reused, [], 'no reuse')
})

t.test('a lost answer: the refresh reached the server, its answer did not; the retry with the same token keeps the session', async t => {
  const { url, reused } = await server(t)
  const storage = memoryStorage()
  let lose = 0
  const fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const response = await globalThis.fetch(input, init)
    if (input.endsWith('/refresh') && lose > 0) {
      lose--
      await response.arrayBuffer()
      throw new TypeError('fetch failed: the connection dropped')
    }
    return response
  }
  const auth = createAuthClient({ baseUrl: url, transport: 'body', storage, live: false, fetch })
  t.teardown(() => auth.close())
  await auth.login(USER)
  const presented = storage.value
  lose = 1
  t.equal(await auth.refresh(), true)
  t.not(storage.value, presented)
  t.equal((await auth.fetch(url + '/api/me')).status, 200)
  t.equal(await auth.refresh(), true, 'and the chain goes on')
  t.same(reused, [], 'the retry was not reuse')
})

t.test('the push: a session revoked on the server ends the client at once, with reason revoked', async t => {
  const { app, url } = await server(t)
  let streaming = false
  const fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const response = await globalThis.fetch(input, init)
    if (input.endsWith('/events') && response.status === 200) streaming = true
    return response
  }
  const auth = createAuthClient({ baseUrl: url, transport: 'body', storage: memoryStorage(), fetch })
  t.teardown(() => auth.close())
  const ends: EndEvent[] = []
  auth.on('end', event => ends.push(event))
  await auth.login(USER)
  const { sid } = await (await auth.fetch(url + '/api/me')).json() as { sid: string }
  await until(() => streaming, 'the stream')
  await app.refreshAuth.revokeSession(sid)
  // until() bounds the wait; the push's latency is bench/push.mjs's to measure
  await until(() => ends.length === 1, 'the end')
  t.same(ends, [{ reason: 'revoked' }], 'told by the stream (a refused refresh would say unknown)')
})
