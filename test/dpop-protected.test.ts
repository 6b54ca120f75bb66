import t from 'tap'
import { USER, buildApp } from './helpers/app.js'
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
