import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { COOKIE, USER, buildApp, refreshCookie, setCookies } from './helpers/app.js'
import { htu, makeProof, proofKey, type ProofKeyPair } from './helpers/dpop.js'
import { shippedStores } from './helpers/shipped-stores.js'

// SECURITY 35 on every store: a session bound by a refresh (not at login) is bound in the store, in the same
// step as the rotation, so every later use of it needs the key: its next refresh, and the unbound parent that
// the reuse interval would otherwise answer with the live token (then unbound: a way around the key).

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
const proof = (key: ProofKeyPair) => makeProof(key, { htu: htu('/auth/refresh') })

function refreshWith (app: FastifyInstance, refreshToken: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/refresh', headers: { ...headers, cookie: `${COOKIE}=${refreshToken}` } })
}

function assertRefused (t: Test, response: LightMyRequestResponse, message: string): void {
  t.equal(response.statusCode, 401, message)
  t.match(response.json(), { error: 'invalid_dpop_proof', code: 'FST_REFRESH_AUTH_INVALID_DPOP_PROOF' }, `${message}: the code`)
  t.match(response.headers['www-authenticate'], /^DPoP error="invalid_dpop_proof"/, `${message}: the challenge`)
  t.same(setCookies(response), [], `${message}: the cookie is left as it is`)
}

for (const [name, makeStore] of shippedStores(__filename)) {
  t.test(`${name}: a refresh with a proof binds an unbound session in the store for good`, async t => {
    const store = await makeStore(t)
    if (store === null) return
    // a reuse interval far longer than the test: the parent below is within it however slow the machine
    const app = await buildApp(t, { dpop: true, store, refreshToken: { reuseInterval: 600 } })
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
    t.equal(login.json().token_type, 'Bearer', 'a login without a proof is unbound')
    const parent = refreshCookie(login) as string
    const key = proofKey()

    const binding = await refreshWith(app, parent, { dpop: proof(key) })
    t.equal(binding.statusCode, 200)
    t.equal(binding.json().token_type, 'DPoP', 'the refresh with a proof binds')
    t.same(payloadOf(binding.json().access_token).cnf, { jkt: key.jkt })
    const bound = refreshCookie(binding) as string

    assertRefused(t, await refreshWith(app, bound), 'the bound token without a proof')
    assertRefused(t, await refreshWith(app, bound, { dpop: proof(proofKey()) }), 'the bound token with another key')
    assertRefused(t, await refreshWith(app, parent), 'the unbound parent within the reuse interval, without a proof')
    assertRefused(t, await refreshWith(app, parent, { dpop: proof(proofKey()) }), 'the unbound parent with another key')
    t.equal((await app.refreshAuth.listUserSessions('42')).length, 1, 'the session is alive')

    // the parent with the key: the binding refresh retried, answered with the live token, bound
    const retried = await refreshWith(app, parent, { dpop: proof(key) })
    t.equal(retried.statusCode, 200, 'the parent with the key is a retry')
    t.same(payloadOf(retried.json().access_token).cnf, { jkt: key.jkt }, 'answered bound')
    t.equal(payloadOf(refreshCookie(retried) as string).jti, payloadOf(bound).jti, 'with the live token: the refusals consumed nothing')

    // a login carrying the unbound parent replaces the bound session only with its key: without it, a session more
    const login2 = await app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { cookie: `${COOKIE}=${parent}` } })
    t.equal(login2.statusCode, 200)
    t.equal((await app.refreshAuth.listUserSessions('42')).length, 2, 'a login with the unbound parent and no proof ends nothing')

    // nor can the unbound parent sign the bound session out, nor its other sessions
    for (const body of [{}, { others: true }, { all: true }]) {
      const logout = await app.inject({ method: 'POST', url: '/auth/logout', payload: body, headers: { cookie: `${COOKIE}=${parent}` } })
      t.equal(logout.statusCode, 401, `a logout ${JSON.stringify(body)} with the unbound parent and no proof`)
      t.match(logout.json(), { error: 'invalid_dpop_proof' })
    }
    t.equal((await app.refreshAuth.listUserSessions('42')).length, 2, 'both sessions are alive')

    const next = await refreshWith(app, bound, { dpop: proof(key) })
    t.equal(next.statusCode, 200, 'the key still refreshes the session')
    t.same(payloadOf(next.json().access_token).cnf, { jkt: key.jkt })
  })
}
