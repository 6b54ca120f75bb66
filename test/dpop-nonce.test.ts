import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { COOKIE, USER, buildApp, refreshCookie } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { htu, makeProof, proofKey, type ProofKeyPair } from './helpers/dpop.js'
import { MemoryStore } from '../lib/index.js'

// Issue 23, RFC 9449 §8 and §9: server-provided nonces with `dpop.nonce`. Two instances (two apps sharing the
// store and the secret) accept each other's nonces without sharing anything else; nonces rotate with the clock
// (proofMaxAge / 2 a slot, the current and the previous slot accepted).

async function twoInstances (t: Test, dpop: object = { nonce: true }) {
  const store = new MemoryStore()
  const a = await buildApp(t, { store, dpop })
  const b = await buildApp(t, { store, dpop })
  return { a, b }
}

function assertNonceAsked (t: Test, response: LightMyRequestResponse, status: 400 | 401, message: string): string {
  t.equal(response.statusCode, status, message)
  t.equal(response.json().code, 'FST_REFRESH_AUTH_USE_DPOP_NONCE', `${message}: the code`)
  const nonce = response.headers['dpop-nonce']
  t.match(nonce, /^[\w-]{22}$/, `${message}: a DPoP-Nonce header`)
  return nonce as string
}

/** Moves the fake clock to just after the start of a nonce slot: the test then has the whole slot of real time. */
function startOfSlot (clock: ReturnType<typeof fakeClock>, slotSeconds: number): void {
  const intoSlot = Date.now() % (slotSeconds * 1000)
  clock.advance((slotSeconds * 1000 - intoSlot + 1) / 1000)
}

const login = (app: FastifyInstance, key: ProofKeyPair, nonce?: string) =>
  app.inject({ method: 'POST', url: '/auth/login', payload: USER, headers: { dpop: makeProof(key, { htu: htu('/auth/login'), nonce }) } })
const privateGet = (app: FastifyInstance, key: ProofKeyPair, token: string, nonce?: string) =>
  app.inject({ url: '/private', headers: { authorization: `DPoP ${token}`, dpop: makeProof(key, { htm: 'GET', htu: htu('/private'), accessToken: token, nonce }) } })

t.test('RFC 9449 §8: the auth routes answer 400 use_dpop_nonce with a DPoP-Nonce, which the other instance accepts too', async t => {
  const { a, b } = await twoInstances(t)
  const key = proofKey()
  const asked = await login(a, key)
  const nonce = assertNonceAsked(t, asked, 400, 'login on A without a nonce')
  t.equal(asked.json().error, 'use_dpop_nonce', '§8: the OAuth error in the body')
  t.equal(asked.headers['www-authenticate'], undefined, 'the auth routes answer in the body')
  assertNonceAsked(t, await login(a, key, 'made-up-nonce-of-22-ch'), 400, 'a nonce of our own making')

  const signedIn = await login(b, key, nonce)
  t.equal(signedIn.statusCode, 200, "B accepts A's nonce")
  t.equal(signedIn.headers['dpop-nonce'], nonce, 'the current nonce comes with the answer')
  const token = signedIn.json().access_token as string

  const refreshed = await a.inject({
    method: 'POST', url: '/auth/refresh', headers: { cookie: `${COOKIE}=${refreshCookie(signedIn) as string}`, dpop: makeProof(key, { htu: htu('/auth/refresh'), nonce }) }
  })
  t.equal(refreshed.statusCode, 200, 'refresh on A')
  t.equal((await privateGet(b, key, token, nonce)).statusCode, 200, 'a protected route on B')
})

t.test('RFC 9449 §9: protected routes answer 401 with WWW-Authenticate: DPoP error="use_dpop_nonce" and a DPoP-Nonce', async t => {
  const { a, b } = await twoInstances(t)
  const key = proofKey()
  const nonce = assertNonceAsked(t, await login(a, key), 400, 'login')
  const token = (await login(a, key, nonce)).json().access_token as string
  const asked = await privateGet(b, key, token)
  assertNonceAsked(t, asked, 401, 'a protected route without the nonce')
  t.match(asked.headers['www-authenticate'], /^DPoP error="use_dpop_nonce"/)
  t.equal(asked.headers['dpop-nonce'], nonce, 'the same nonce from either instance')
  const invalid = await b.inject({ url: '/private', headers: { authorization: `DPoP ${token}`, dpop: 'x' } })
  t.equal(invalid.statusCode, 401)
  t.match(invalid.headers['www-authenticate'], /^DPoP error="invalid_dpop_proof"/, 'an invalid proof is invalid, nonce or not')
  t.equal(invalid.headers['dpop-nonce'], nonce, 'and gets the nonce to use')
  t.equal((await b.inject({ url: '/private', headers: { authorization: `DPoP ${token}` } })).headers['dpop-nonce'], undefined,
    'no proof, no nonce')
})

t.test('nonces rotate: the previous slot is still accepted (with a fresh nonce sent), the one before is not', async t => {
  const clock = fakeClock(t)
  const { a, b } = await twoInstances(t, { nonce: true, proofMaxAge: '60s' })
  startOfSlot(clock, 30)
  const key = proofKey()
  const first = assertNonceAsked(t, await login(a, key), 400, 'login')
  const token = (await login(a, key, first)).json().access_token as string
  clock.advance(30)
  const next = await privateGet(a, key, token, first)
  t.equal(next.statusCode, 200, 'one slot later, the nonce still passes')
  const second = next.headers['dpop-nonce'] as string
  t.not(second, first, 'with the new nonce in the answer')
  clock.advance(30)
  assertNonceAsked(t, await privateGet(b, key, token, first), 401, 'two slots later, the first nonce is refused')
  t.equal((await privateGet(b, key, token, second)).statusCode, 200, 'the second one passes, on the other instance too')
})

t.test('replay across instances: a proof seen by A is refused again by A; B accepts it only while its nonce lives', async t => {
  const clock = fakeClock(t)
  const { a, b } = await twoInstances(t, { nonce: true, proofMaxAge: '60s' })
  startOfSlot(clock, 30)
  const key = proofKey()
  const nonce = assertNonceAsked(t, await login(a, key), 400, 'login')
  const token = (await login(a, key, nonce)).json().access_token as string
  const proof = makeProof(key, { htm: 'GET', htu: htu('/private'), accessToken: token, nonce })
  const send = (app: FastifyInstance) => app.inject({ url: '/private', headers: { authorization: `DPoP ${token}`, dpop: proof } })
  t.equal((await send(a)).statusCode, 200)
  t.equal((await send(a)).statusCode, 401, 'the replay cache of A')
  t.equal((await send(b)).statusCode, 200, 'B has not seen it: accepted within the nonce slot (the documented bound)')
  t.equal((await send(b)).statusCode, 401, 'once only')
  // two slots on: the nonce is gone for sure, while the proof's iat (60s old) is still within proofMaxAge and the tolerance
  clock.advance(60)
  const c = await buildApp(t, { dpop: { nonce: true, proofMaxAge: '60s' } })
  assertNonceAsked(t, await send(c), 401, 'a third instance, once the nonce is gone: asked for a new nonce')
})

t.test('an instance idle for several slots still accepts the nonce another instance gave out in the previous slot', async t => {
  const clock = fakeClock(t)
  const { a, b } = await twoInstances(t, { nonce: true, proofMaxAge: '60s' })
  startOfSlot(clock, 30)
  const key = proofKey()
  const nonce = assertNonceAsked(t, await login(a, key), 400, 'A hands out a nonce')
  const token = (await login(a, key, nonce)).json().access_token as string
  clock.advance(5 * 30)
  const fresh = assertNonceAsked(t, await privateGet(b, key, token), 401, 'five slots later, B hands out the nonce of its slot')
  clock.advance(30)
  t.equal((await privateGet(a, key, token, fresh)).statusCode, 200, "A, idle all along, takes B's nonce of the previous slot")
})
