import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { FastifyRefreshAuthOptions, LoginUser } from '../lib/index.js'
import { USER } from './helpers/app.js'
import { buildLoggedApp, ERROR } from './helpers/logs.js'

// Issue 13, finding 9: whatever a host callback throws without a 4xx status reaches the log whole and
// the client as a generic 500 with a code of ours; an error with a 4xx status is the host's answer.

const signIn = (app: FastifyInstance, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers })

const GENERIC = { statusCode: 500, code: 'FST_REFRESH_AUTH_CALLBACK_FAILED', error: 'Internal Server Error', message: 'The server could not complete the request' }

async function expectGeneric500 (t: Test, options: Partial<FastifyRefreshAuthOptions>, callback: string, logged: RegExp, headers: Record<string, string> = {}) {
  const { app, lines } = await buildLoggedApp(t, options)
  const response = await signIn(app, headers)
  t.same(response.json(), GENERIC, `${callback}: a generic 500`)
  t.equal(response.headers['set-cookie'], undefined, 'nothing issued')
  t.same(await app.refreshAuth.listUserSessions('42'), [], 'no session started')
  const line = lines.find(line => line.level === ERROR && line.callback === callback)
  t.ok(line, `${callback}: logged`)
  const err = line?.err as { message?: string, stack?: string } | undefined
  t.match(err?.message ?? String(line?.err), logged, 'the whole error, for the operator')
  return { response, line }
}

t.test("the README's scopes example, for a user without scopes: a generic 500, the TypeError in the log", async t => {
  const claims = (user: LoginUser) => ({ scope: (user as { scopes?: string[] }).scopes!.join(' ') })
  const { response, line } = await expectGeneric500(t, { claims }, 'claims', /Cannot read properties of undefined \(reading 'join'\)/)
  t.notMatch(response.body, /join|undefined|properties/)
  t.match((line?.err as { stack?: string }).stack, /host-callbacks\.test\.ts/, 'with its stack')
})

t.test('verifyCredentials, claims and subject: thrown, rejected, and non-Error failures', async t => {
  const dbDown = () => { throw new Error('connect ECONNREFUSED 10.0.0.5:5432') }
  await expectGeneric500(t, { verifyCredentials: dbDown }, 'verifyCredentials', /ECONNREFUSED 10\.0\.0\.5/)
  await expectGeneric500(t, { verifyCredentials: async () => { throw new Error('pool exhausted') } }, 'verifyCredentials', /pool exhausted/)
  await expectGeneric500(t, { claims: async () => { throw new Error('roles service down') } }, 'claims', /roles service down/)
  await expectGeneric500(t, { subject: () => { throw new Error('no tenant') } }, 'subject', /no tenant/)
  await expectGeneric500(t, { verifyCredentials: () => { throw 'a string, not an Error' } }, 'verifyCredentials', /a string, not an Error/) // eslint-disable-line no-throw-literal
  await expectGeneric500(t, { verifyCredentials: () => { throw null } }, 'verifyCredentials', /null/) // eslint-disable-line no-throw-literal
  const unavailable = Object.assign(new Error('LDAP unreachable'), { statusCode: 503 })
  await expectGeneric500(t, { verifyCredentials: async () => { throw unavailable } }, 'verifyCredentials', /LDAP unreachable/)
  const success = Object.assign(new Error('odd status'), { statusCode: 200, status: 'x' })
  await expectGeneric500(t, { verifyCredentials: async () => { throw success } }, 'verifyCredentials', /odd status/)
})

t.test('an error with a 4xx status is answered as it is', async t => {
  const cases: Array<[Error, number, string]> = [
    [Object.assign(new Error('Malformed credentials'), { statusCode: 400 }), 400, 'Malformed credentials'],
    [Object.assign(new Error('Account locked'), { statusCode: 423, code: 'ACCOUNT_LOCKED' }), 423, 'Account locked'],
    [Object.assign(new Error('Unprocessable'), { status: 422 }), 422, 'Unprocessable'],
    [Object.assign(new Error('Status wins over a bad statusCode'), { statusCode: 200, status: 409 }), 409, 'Status wins over a bad statusCode']
  ]
  for (const [error, status, message] of cases) {
    const { app, lines } = await buildLoggedApp(t, { verifyCredentials: async () => { throw error } })
    const response = await signIn(app)
    t.equal(response.statusCode, status)
    t.equal(response.json().message, message)
    t.notOk(lines.some(line => line.callback === 'verifyCredentials'), 'not logged as a failure')
  }
  const { app } = await buildLoggedApp(t, { claims: () => { throw Object.assign(new Error('Tenant suspended'), { statusCode: 403 }) } })
  const response = await signIn(app)
  t.equal(response.statusCode, 403)
  t.equal(response.json().message, 'Tenant suspended')
})

t.test('the same on the body transport', async t => {
  await expectGeneric500(t, { refreshTokenTransport: 'body', claims: () => { throw new TypeError('x is undefined') } }, 'claims', /x is undefined/)
  await expectGeneric500(t, { refreshTokenTransport: 'both', verifyCredentials: () => { throw new Error('boom') } }, 'verifyCredentials', /boom/, { 'refresh-token-transport': 'body' })
})
