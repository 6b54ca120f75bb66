import Fastify, { type FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import fastifyRefreshAuth from '../lib/index.js'
import { SECRET } from './helpers/app.js'

// Issue 22, typed bodies: `routes.loginBody` is the JSON schema the login route checks its body with, so the
// `LoginBody` that verifyCredentials and rememberMe declare holds at run time.

interface LoginBody { username: string, password: string, remember?: boolean }

const loginBody = {
  type: 'object',
  required: ['username', 'password'],
  properties: { username: { type: 'string', maxLength: 64 }, password: { type: 'string', maxLength: 256 }, remember: { type: 'boolean' } },
  additionalProperties: false
}

async function appWithBody (t: Test, checked: LoginBody[]) {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, {
    secret: SECRET,
    routes: { loginBody },
    verifyCredentials: async (request: FastifyRequest<{ Body: LoginBody }>) => {
      checked.push(request.body)
      return request.body.username === 'alice' && request.body.password === 'wonderland' ? { id: 1 } : null
    },
    rememberMe: (_user, request) => request.body.remember === true
  })
  await app.ready()
  t.teardown(() => app.close())
  return app
}

t.test('a body the schema refuses is a 400 before verifyCredentials runs; a valid one reaches it typed', async t => {
  const checked: LoginBody[] = []
  const app = await appWithBody(t, checked)
  for (const payload of [{ username: 'alice' }, { username: ['alice', 'bob'], password: 'wonderland' }, ['alice', 'wonderland']]) {
    const refused = await app.inject({ method: 'POST', url: '/auth/login', payload, headers: { 'content-type': 'application/json' } })
    t.equal(refused.statusCode, 400, JSON.stringify(payload))
    t.equal(refused.json().code, 'FST_ERR_VALIDATION')
    t.equal(refused.headers['set-cookie'], undefined, 'no session')
  }
  t.same(checked, [], 'verifyCredentials never saw them')
  // Fastify's own Ajv settings make a body fit rather than refuse it: a number becomes a string, an unknown property goes
  const fitted = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 5, password: 'wonderland', admin: true } })
  t.equal(fitted.statusCode, 401)
  t.same(checked.splice(0), [{ username: '5', password: 'wonderland' }], 'what reached verifyCredentials is a LoginBody')

  const remembered = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'wonderland', remember: true } })
  t.equal(remembered.statusCode, 200)
  t.match(String(remembered.headers['set-cookie']), /Max-Age=\d+/, 'remember me: a persistent cookie')
  const forgotten = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'wonderland' } })
  t.notMatch(String(forgotten.headers['set-cookie']), /Max-Age/, 'not remembered: a browser-session cookie')
  t.same(checked, [{ username: 'alice', password: 'wonderland', remember: true }, { username: 'alice', password: 'wonderland' }])
})

t.test('routes.loginBody must be a schema object', async t => {
  for (const bad of ['object', ['username'], 42]) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(fastifyRefreshAuth, { secret: SECRET, routes: { loginBody: bad as never }, verifyCredentials: async () => null }) },
      { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /routes\.loginBody must be a JSON schema/ })
    await app.close()
  }
})
