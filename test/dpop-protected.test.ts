import jwt from 'jsonwebtoken'
import t from 'tap'
import { USER, buildApp, derivedKey } from './helpers/app.js'
import { htu, makeProof, type ProofKeyPair } from './helpers/dpop.js'
import { protectedRouteCases } from './helpers/dpop-cases.js'

// Issue 23: the protected routes of an auth server with `dpop: true` (RFC 9449 §4.3, §7). The same cases run on
// a resource server in test/dpop-resource-server.test.ts.

protectedRouteCases(t, async t => {
  const app = await buildApp(t, { dpop: true })
  async function token (headers: Record<string, string>): Promise<string> {
    const response = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers })
    if (response.statusCode !== 200) throw new Error(`login: ${response.statusCode} ${response.body}`)
    return response.json().access_token
  }
  return {
    app,
    boundToken: (key: ProofKeyPair) => token({ dpop: makeProof(key, { htu: htu('/auth/login') }) }),
    bearerToken: () => token({})
  }
})

t.test('RFC 9449 §6.1: an access token whose cnf cannot be read is refused, never taken as unbound', async t => {
  const app = await buildApp(t, { dpop: true })
  const now = Math.floor(Date.now() / 1000)
  const claims = { iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', sub: '42', sid: 's', jti: 'j', iat: now, exp: now + 60 }
  // signed with the plugin's own access-token key: only the cnf claim is wrong
  const sign = (cnf: unknown) => jwt.sign({ ...claims, cnf }, derivedKey('access-token HS256 v1'), { algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } })
  t.equal((await app.inject({ url: '/private', headers: { authorization: `Bearer ${jwt.sign(claims, derivedKey('access-token HS256 v1'), { algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } })}` } })).statusCode,
    200, 'the same token without cnf passes')
  for (const cnf of ['key', null, {}, { jkt: '' }, { jkt: 42 }]) {
    const response = await app.inject({ url: '/private', headers: { authorization: `Bearer ${sign(cnf)}` } })
    t.equal(response.statusCode, 401, `cnf ${JSON.stringify(cnf)}`)
    t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
  }
})
