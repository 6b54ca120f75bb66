import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { FastifyRefreshAuthOptions } from '../lib/index.js'
import { COOKIE, USER, getPrivate, refreshCookie } from './helpers/app.js'
import { buildLoggedApp, ERROR, type LogLine } from './helpers/logs.js'

// Issue 13, findings 3 and 4: what the host's `claims` and `subject` options give goes into signed tokens.
// Only plain JSON data with safe names and a usable user id may; anything else is a coded error, logged
// with the reason for the operator, with a fixed message for the client, and nothing is issued.

const signIn = (app: FastifyInstance) => app.inject({ method: 'POST', url: '/auth/login', payload: USER })

async function appWith (t: Test, options: Partial<FastifyRefreshAuthOptions>) {
  return await buildLoggedApp(t, options)
}

function assertRefused (t: Test, response: Awaited<ReturnType<typeof signIn>>, code: string, what: string): void {
  t.equal(response.statusCode, 500, what)
  const body = response.json()
  t.equal(body.code, code, what)
  t.equal(body.message, code === 'FST_REFRESH_AUTH_INVALID_CLAIMS'
    ? 'The claims option gave data that cannot go into a token'
    : 'The subject option gave no usable user id', 'a fixed message, nothing of the data or of jsonwebtoken')
  t.equal(response.headers['set-cookie'], undefined, 'no cookie')
}

function reasonLogged (t: Test, lines: LogLine[], option: string, reason: RegExp): void {
  const line = lines.find(line => line.level === ERROR && line.option === option)
  t.ok(line, `the refusal is logged for the operator (${option})`)
  if (line?.reason !== undefined) t.match(line.reason, reason)
}

class Money { constructor (readonly cents: number) {} }
const nested = (levels: number): unknown => levels === 0 ? 'leaf' : { down: nested(levels - 1) }

t.test('claims that are not plain JSON data with safe names refuse the login', async t => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['constructor', () => ({ constructor: 'admin' }), /claims\.constructor: a name of Object.prototype/],
    ['toString', () => ({ toString: 'x' }), /claims\.toString/],
    ['valueOf', () => ({ valueOf: 1 }), /claims\.valueOf/],
    ['hasOwnProperty', () => ({ hasOwnProperty: true }), /claims\.hasOwnProperty/],
    ['__proto__ from JSON', () => JSON.parse('{"__proto__": {"isAdmin": true}}'), /claims\.__proto__/],
    ['a nested constructor', () => ({ profile: { constructor: { prototype: 1 } } }), /claims\.profile\.constructor/],
    ['a Date', () => ({ since: new Date() }), /claims\.since: an object of a class/],
    ['a Map', () => ({ grants: new Map() }), /claims\.grants/],
    ['a class instance', () => ({ balance: new Money(5) }), /claims\.balance/],
    ['a Buffer', () => ({ avatar: Buffer.from('x') }), /claims\.avatar/],
    ['a function', () => ({ check: () => true }), /claims\.check: a function/],
    ['a bigint', () => ({ big: 10n }), /claims\.big: a bigint/],
    ['a symbol', () => ({ tag: Symbol('x') }), /claims\.tag: a symbol/],
    ['NaN', () => ({ score: Number.NaN }), /claims\.score: NaN/],
    ['Infinity', () => ({ quota: Infinity }), /claims\.quota: Infinity/],
    ['undefined in an array', () => ({ roles: ['a', undefined] }), /claims\.roles\[1\]: undefined in an array/],
    ['a hole in an array', () => ({ roles: [, 'b'] }), /claims\.roles\[0\]: a hole/], // eslint-disable-line no-sparse-arrays
    ['too deep', () => ({ tree: nested(8) }), /nested more than 8 levels/],
    ['too large', () => ({ blob: 'x'.repeat(4096) }), /more than 4096 bytes/],
    ['too many values', () => ({ many: new Array(5000).fill(0) }), /more than 4096 bytes/],
    ['a cycle', () => { const a: Record<string, unknown> = {}; a.self = a; return { a } }, /nested more than 8 levels/],
    ['an array', () => ['admin'], /claims: an array is not a plain object/],
    ['null', () => null, /claims: null is not a plain object/],
    ['undefined', () => undefined, /claims: undefined is not a plain object/],
    ['a string', () => 'admin', /claims: a string/],
    ['a Date at the top', () => new Date(), /claims: an object of a class/]
  ]
  for (const [what, claims, reason] of cases) {
    const { app, lines, text } = await appWith(t, { claims: claims as FastifyRefreshAuthOptions['claims'] })
    const response = await signIn(app)
    assertRefused(t, response, 'FST_REFRESH_AUTH_INVALID_CLAIMS', what)
    t.notMatch(response.body, /validator|isValid|jsonwebtoken|\[object/, 'no internals')
    reasonLogged(t, lines, 'claims', reason)
    t.notOk(text().includes('"isAdmin"') || text().includes('xxxxxxxx'), 'the log names paths and types, never values')
    t.same(await app.refreshAuth.listUserSessions('42'), [], 'no session was started')
  }
})

t.test('getters that throw and revoked proxies are refused, not a 500 with their message', async t => {
  const revoked = Proxy.revocable({}, {})
  revoked.revoke()
  const throwing = { get roles (): string[] { throw new Error('lazy load failed at db-7') } }
  for (const [what, value] of [['a throwing getter', throwing], ['a revoked proxy inside', { roles: revoked.proxy }]] as const) {
    const { app, lines } = await appWith(t, { claims: () => value as Record<string, unknown> })
    const response = await signIn(app)
    assertRefused(t, response, 'FST_REFRESH_AUTH_INVALID_CLAIMS', what)
    t.notMatch(response.body, /db-7|revoked/)
    t.ok(lines.some(line => line.level === ERROR && line.option === 'claims' && line.err !== undefined), 'logged with what was thrown')
  }
  // a revoked proxy as the result itself already throws when awaited (its `then` is looked up)
  const { app } = await appWith(t, { claims: () => revoked.proxy })
  const response = await signIn(app)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_CALLBACK_FAILED')
  t.notMatch(response.body, /revoked/)
})

t.test('plain JSON claims are accepted, copied once, and reserved names still dropped', async t => {
  let reads = 0
  const claims = {
    roles: ['admin', 'support'],
    scope: 'orders:read orders:write',
    tenant: { id: 7, name: 'Ünïcødé ✓', flags: [true, false, null] },
    deep: nested(6),
    missing: undefined,
    sub: 'someone-else',
    exp: 1,
    ext: 'x',
    nullPrototype: Object.assign(Object.create(null) as Record<string, unknown>, { ok: 1 }),
    // read once: what was checked is what is signed
    get lazy (): unknown {
      reads++
      return reads === 1 ? 'first' : () => 'changed'
    }
  }
  const { app } = await appWith(t, { claims: () => claims })
  const response = await signIn(app)
  t.equal(response.statusCode, 200)
  const token = jwt.decode(response.json().access_token) as Record<string, unknown>
  t.same(token.roles, ['admin', 'support'])
  t.same(token.tenant, { id: 7, name: 'Ünïcødé ✓', flags: [true, false, null] })
  t.same(token.deep, nested(6))
  t.same(token.nullPrototype, { ok: 1 })
  t.equal(token.lazy, 'first')
  t.equal(reads, 1)
  t.notOk('missing' in token, 'undefined members are left out, as in JSON')
  t.equal(token.sub, '42', 'reserved names are dropped')
  t.not(token.exp, 1)
  t.notOk('ext' in token)

  const user = (await getPrivate(app, response.json().access_token)).json().user
  t.same(user.roles, ['admin', 'support'])
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=${refreshCookie(response) as string}` } })
  t.same((jwt.decode(refreshed.json().access_token) as Record<string, unknown>).tenant, token.tenant, 'kept across refreshes')
})

t.test('claims of exactly 4096 bytes as JSON are accepted', async t => {
  // {"blob":"…"} is 11 bytes around the string; é is 2 bytes: 11 + 2 × 2042 + 1 = 4096
  const { app } = await appWith(t, { claims: () => ({ blob: 'é'.repeat(2042) + 'x' }) })
  t.equal((await signIn(app)).statusCode, 200)
  const { app: over } = await appWith(t, { claims: () => ({ blob: 'é'.repeat(2043) }) })
  t.equal((await signIn(over)).json().code, 'FST_REFRESH_AUTH_INVALID_CLAIMS', 'counted in bytes, not characters')
})

t.test('object user ids no longer collapse into one identity', async t => {
  const users = [{ id: { tenant: 1, user: 2 } }, { id: { tenant: 3, user: 4 } }]
  let next = 0
  const { app, lines } = await appWith(t, { verifyCredentials: async () => users[next++ % 2] })
  for (let i = 0; i < 2; i++) {
    assertRefused(t, await signIn(app), 'FST_REFRESH_AUTH_INVALID_SUBJECT', `user ${i}`)
  }
  t.same(await app.refreshAuth.listUserSessions('[object Object]'), [], 'no shared "[object Object]" session')
  const line = lines.find(line => line.level === ERROR && line.option === 'subject')
  t.match(line, { got: 'a value of type object', msg: /subject option \(default: user\.id\)/ })
})

t.test('the subject is a non-empty string or a finite number; anything else is refused', async t => {
  const refused: Array<[string, unknown, string]> = [
    ['no id', undefined, 'undefined'],
    ['a null id', null, 'null'],
    ['an empty id', '', 'an empty string'],
    ['NaN', Number.NaN, 'NaN'],
    ['Infinity', -Infinity, '-Infinity'],
    ['a boolean', true, 'a value of type boolean'],
    ['an array', ['7'], 'a value of type object'],
    ['a bigint', 7n, 'a value of type bigint'],
    ['a too long string', 'u'.repeat(257), 'a string of 257 characters']
  ]
  for (const [what, id, got] of refused) {
    const { app, lines } = await appWith(t, { verifyCredentials: async () => ({ id }) })
    assertRefused(t, await signIn(app), 'FST_REFRESH_AUTH_INVALID_SUBJECT', what)
    t.match(lines.find(line => line.option === 'subject'), { level: ERROR, got }, what)
  }
  const { app: custom } = await appWith(t, { subject: () => ({ id: 1 }) as unknown as string })
  assertRefused(t, await signIn(custom), 'FST_REFRESH_AUTH_INVALID_SUBJECT', 'a subject option giving an object')

  const accepted: Array<[unknown, string]> = [[42, '42'], [0, '0'], [-0, '0'], [1.5, '1.5'], ['alice', 'alice'], ['u'.repeat(256), 'u'.repeat(256)]]
  for (const [id, sub] of accepted) {
    const { app } = await appWith(t, { verifyCredentials: async () => ({ id }) })
    const response = await signIn(app)
    t.equal(response.statusCode, 200, JSON.stringify(id))
    t.equal((jwt.decode(response.json().access_token) as { sub: string }).sub, sub)
  }
  const { app: numeric } = await appWith(t, { subject: () => 7 })
  t.equal((jwt.decode((await signIn(numeric)).json().access_token) as { sub: string }).sub, '7', 'the subject option may give a number')
})

t.test('the checks hold on the body transport', async t => {
  const { app } = await appWith(t, { refreshTokenTransport: 'body', claims: () => ({ constructor: 1 }) })
  assertRefused(t, await signIn(app), 'FST_REFRESH_AUTH_INVALID_CLAIMS', 'claims')
  const { app: noId } = await appWith(t, { refreshTokenTransport: 'both', verifyCredentials: async () => ({ id: {} }) })
  const response = await noId.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { 'refresh-token-transport': 'body' } })
  assertRefused(t, response, 'FST_REFRESH_AUTH_INVALID_SUBJECT', 'subject')
})
