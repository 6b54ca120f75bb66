import Fastify, { type FastifyServerOptions } from 'fastify'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { MemoryStore, type SessionStore } from '../lib/index.js'
import { COOKIE, SECRET, USER, refreshCookie, verifyCredentials } from './helpers/app.js'

interface LogLine { level: number, msg: string, reqId?: string, [key: string]: unknown }

/** A store that fails on demand, as a Redis outage would. */
class FlakyStore implements SessionStore {
  readonly inner = new MemoryStore()
  failing = false
  async create (...args: Parameters<SessionStore['create']>) { this.#check(); return this.inner.create(...args) }
  async rotate (request: Parameters<SessionStore['rotate']>[0]) { this.#check(); return this.inner.rotate(request) }
  async present (request: Parameters<SessionStore['present']>[0]) { this.#check(); return this.inner.present(request) }
  async revoke (sessionId: string) { this.#check(); return this.inner.revoke(sessionId) }
  async revokeUser (userId: string) { this.#check(); return this.inner.revokeUser(userId) }
  async revokeOtherSessions (userId: string, keepSessionId: string) { this.#check(); return this.inner.revokeOtherSessions(userId, keepSessionId) }
  async listUserSessions (userId: string, now: number) { this.#check(); return this.inner.listUserSessions(userId, now) }
  #check () { if (this.failing) throw new Error('connection to the session store lost') }
}

async function loggedApp (t: Test, logger: Exclude<FastifyServerOptions['logger'], boolean | undefined> = {}) {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(line => line.length > 0))
      callback()
    }
  })
  const store = new FlakyStore()
  const app = Fastify({ logger: { level: 'trace', stream, ...logger } })
  // strict, so that presenting the first token again is reuse
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, store, refreshToken: { reuseInterval: 0 } })
  app.get('/private', { preHandler: app.authenticate }, async request => ({ sub: request.user?.sub }))
  await app.ready()
  t.teardown(() => { store.inner.close(); return app.close() })
  return { app, store, lines, parsed: () => lines.map(line => JSON.parse(line) as LogLine) }
}

/** Everything a client sends or gets that must never reach a log line, in whole or in part. */
async function exerciseEveryPath (app: Awaited<ReturnType<typeof loggedApp>>['app'], store: FlakyStore) {
  const secrets: string[] = [SECRET, USER.password, 'wrong-password-7']
  const remember = (token: string | undefined) => {
    if (token === undefined) return
    secrets.push(token, ...token.split('.').filter(part => part.length > 20))
  }
  const cookie = (token: string) => ({ cookie: `${COOKIE}=${token}` })

  const signedIn = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  const first = refreshCookie(signedIn) as string
  remember(first)
  remember(signedIn.json().access_token)
  await app.inject({ method: 'POST', url: '/auth/login', payload: { username: USER.username, password: 'wrong-password-7' } })
  await app.inject({ url: '/private', headers: { authorization: `Bearer ${signedIn.json().access_token as string}` } })
  await app.inject({ url: '/private', headers: { authorization: `Bearer ${signedIn.json().access_token as string}x` } })

  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: cookie(first) })
  remember(refreshCookie(refreshed))
  remember(refreshed.json().access_token)
  const reuse = await app.inject({ method: 'POST', url: '/auth/refresh', headers: cookie(first) })

  const again = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  remember(refreshCookie(again))
  remember(again.json().access_token)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: cookie(refreshCookie(again) as string) })
  await app.inject({ method: 'POST', url: '/auth/refresh', headers: cookie('forged.token.value') })

  const live = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  remember(refreshCookie(live))
  remember(live.json().access_token)
  store.failing = true
  const outage = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  const outageRefresh = await app.inject({ method: 'POST', url: '/auth/refresh', headers: cookie(refreshCookie(live) as string) })
  store.failing = false
  return { secrets, statuses: [reuse.statusCode, outage.statusCode, outageRefresh.statusCode] }
}

t.test('login, refresh, reuse, logout and failures log through request.log and never a token or secret', async t => {
  const { app, store, lines, parsed } = await loggedApp(t)
  const { secrets, statuses } = await exerciseEveryPath(app, store)
  t.same(statuses, [401, 503, 503])

  t.ok(lines.length > 20, 'requests were logged')
  for (const secret of secrets) {
    const leaks = lines.filter(line => line.includes(secret))
    t.same(leaks, [], `not logged: ${secret.slice(0, 6)}…`)
  }

  const entries = parsed()
  const reuse = entries.filter(entry => entry.level === 40 && /refresh token reuse detected/.test(entry.msg))
  t.equal(reuse.length, 1, 'reuse is logged once, at warn')
  t.type(reuse[0]?.reqId, 'string', 'through request.log')
  t.type(reuse[0]?.sessionId, 'string', 'with the session id, not the token')

  const storeFailures = entries.filter(entry => entry.level === 50 && /session store failed/.test(entry.msg))
  t.equal(storeFailures.length, 2, 'each store failure is logged at error')
  t.ok(storeFailures.every(entry => typeof entry.reqId === 'string'), 'through request.log')
  t.match(storeFailures[0], { err: { message: 'connection to the session store lost' } }, 'the operator sees the cause')
})

t.test('the docs/recipes.md recipe: logging request headers with authorization and the refresh cookie redacted', async t => {
  const { app, store, lines } = await loggedApp(t, {
    // a host that logs request headers, as many do
    serializers: {
      req: request => ({ method: request.method, url: request.url, headers: request.headers })
    },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' }
  })
  const { secrets } = await exerciseEveryPath(app, store)
  const withHeaders = lines.filter(line => line.includes('"headers"'))
  t.ok(withHeaders.length > 5, 'headers are logged')
  t.ok(lines.some(line => line.includes('"authorization":"[redacted]"')))
  t.ok(lines.some(line => line.includes('"cookie":"[redacted]"')))
  for (const secret of secrets) {
    t.same(lines.filter(line => line.includes(secret)), [], `not logged: ${secret.slice(0, 6)}…`)
  }
})
