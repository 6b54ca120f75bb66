import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import fastifyRefreshAuth, { MemoryStore, type SessionStore } from '../lib/index.js'
import { login, logout, refresh, SECRET, USER, verifyCredentials } from './helpers/app.js'

/** A MemoryStore whose operations can be made to fail, as a store whose database is down. */
class FlakyStore implements SessionStore {
  readonly inner = new MemoryStore()
  down = false
  async create (...args: Parameters<SessionStore['create']>) { this.#check(); return this.inner.create(...args) }
  async rotate (...args: Parameters<SessionStore['rotate']>) { this.#check(); return this.inner.rotate(...args) }
  async present (...args: Parameters<SessionStore['present']>) { this.#check(); return this.inner.present(...args) }
  async revoke (...args: Parameters<SessionStore['revoke']>) { this.#check(); return this.inner.revoke(...args) }
  async revokeUser (...args: Parameters<SessionStore['revokeUser']>) { this.#check(); return this.inner.revokeUser(...args) }
  async revokeOtherSessions (...args: Parameters<SessionStore['revokeOtherSessions']>) { this.#check(); return this.inner.revokeOtherSessions(...args) }
  async listUserSessions (...args: Parameters<SessionStore['listUserSessions']>) { this.#check(); return this.inner.listUserSessions(...args) }
  #check () { if (this.down) throw new Error('ECONNREFUSED db.internal:5432 password=hunter2') }
}

async function buildFlakyApp (t: Test) {
  const store = new FlakyStore()
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'info', stream: new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } }) } })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store })
  t.teardown(() => { store.inner.close(); return app.close() })
  return { app, store, lines }
}

const UNAVAILABLE = { statusCode: 503, code: 'FST_REFRESH_AUTH_STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'Session store unavailable, try again later' }

t.test('login fails closed when the store is down', async t => {
  const { app, store, lines } = await buildFlakyApp(t)
  store.down = true
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  t.equal(response.statusCode, 503)
  t.same(response.json(), UNAVAILABLE)
  t.equal(response.headers['set-cookie'], undefined, 'no cookie')
  t.notMatch(response.body, /ECONNREFUSED|hunter2|eyJ/, 'the store error stays out of the body')
  t.match(lines.join(''), /session store failed/, 'the store error goes to the log')
  t.notMatch(lines.join(''), /eyJ/, 'no token in the log')
  store.down = false
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: USER })).statusCode, 200, 'back once the store is')
})

t.test('refresh fails closed and the session is intact once the store is back', async t => {
  const { app, store, lines } = await buildFlakyApp(t)
  const { refreshToken } = await login(app)
  store.down = true
  const response = await refresh(app, refreshToken)
  t.equal(response.statusCode, 503)
  t.same(response.json(), UNAVAILABLE)
  t.equal(response.headers['set-cookie'], undefined, 'no new cookie, and the old one is kept')
  t.equal(response.headers['cache-control'], 'no-store')
  t.notMatch(lines.join(''), new RegExp(refreshToken.split('.')[2]), 'no token in the log')
  store.down = false
  t.equal((await refresh(app, refreshToken)).statusCode, 200, 'the same token refreshes once the store is back')
})

t.test('logout fails closed: the cookie is kept so the client can retry', async t => {
  const { app, store } = await buildFlakyApp(t)
  const { refreshToken } = await login(app)
  store.down = true
  const response = await logout(app, refreshToken)
  t.equal(response.statusCode, 503)
  t.equal(response.headers['set-cookie'], undefined)
  store.down = false
  t.equal((await logout(app, refreshToken)).statusCode, 204)
  t.equal((await refresh(app, refreshToken)).statusCode, 401)
})
