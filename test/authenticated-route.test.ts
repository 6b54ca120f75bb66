import t from 'tap'
import { buildApp, login } from './helpers/app.js'

t.test('authenticated(): a protected route whose handler reads request.user without a check', async (t) => {
  const app = await buildApp(t, {}, (app) => {
    app.get('/whoami', app.refreshAuth.authenticated(async (request) => ({ sub: request.user.sub, sid: request.user.sid })))
  })
  const session = await login(app)
  const ok = await app.inject({ url: '/whoami', headers: { authorization: `Bearer ${session.accessToken}` } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().sub, '42')
  const refused = await app.inject({ url: '/whoami' })
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'FST_REFRESH_AUTH_NO_TOKEN')
  const forged = await app.inject({ url: '/whoami', headers: { authorization: 'Bearer forged' } })
  t.equal(forged.statusCode, 401)
  t.equal(forged.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
})
