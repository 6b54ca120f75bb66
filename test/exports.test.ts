import t from 'tap'
import { runNode as run } from './helpers/run-node.js'

t.test('require() returns the plugin itself, with the named exports', async t => {
  const result = run(['-e', `
    const plugin = require('fastify-refresh-auth')
    const { fastifyRefreshAuth, MemoryStore, InvalidTokenError } = require('fastify-refresh-auth')
    console.log(JSON.stringify({
      type: typeof plugin,
      sameAsNamed: plugin === fastifyRefreshAuth,
      sameAsDefault: plugin === plugin.default,
      memoryStore: typeof MemoryStore,
      errorCode: new InvalidTokenError().code,
      name: plugin[Symbol.for('plugin-meta')].name
    }))`])
  t.same(result, { type: 'function', sameAsNamed: true, sameAsDefault: true, memoryStore: 'function', errorCode: 'FST_REFRESH_AUTH_INVALID_TOKEN', name: 'fastify-refresh-auth' })
})

t.test('import gives the plugin as default and the named exports', async t => {
  const result = run(['--input-type=module', '-e', `
    import plugin, { fastifyRefreshAuth, MemoryStore, StoreUnavailableError } from 'fastify-refresh-auth'
    console.log(JSON.stringify({
      type: typeof plugin,
      sameAsNamed: plugin === fastifyRefreshAuth,
      memoryStore: typeof MemoryStore,
      errorCode: new StoreUnavailableError().code
    }))`])
  t.same(result, { type: 'function', sameAsNamed: true, memoryStore: 'function', errorCode: 'FST_REFRESH_AUTH_STORE_UNAVAILABLE' })
})

t.test('the built plugin works end to end from both module systems', async t => {
  const script = (load: string) => `
    ${load}
    const app = Fastify()
    await app.register(plugin, { secret: 'an-export-test-secret-of-32-bytes-or-more', verifyCredentials: async () => ({ id: 7 }) })
    app.get('/me', { preHandler: app.authenticate }, async (request) => ({ sub: request.user.sub }))
    const login = await app.inject({ method: 'POST', url: '/auth/login' })
    const me = await app.inject({ url: '/me', headers: { authorization: 'Bearer ' + login.json().access_token } })
    console.log(JSON.stringify(me.json()))
    await app.close()`
  t.same(run(['--input-type=module', '-e', script("import Fastify from 'fastify'; import plugin from 'fastify-refresh-auth'")]), { sub: '7' })
  t.same(run(['-e', `(async () => { ${script("const Fastify = require('fastify'); const plugin = require('fastify-refresh-auth')")} })()`]), { sub: '7' })
})
