import { createHmac, randomUUID } from 'node:crypto'
import jwt from 'jsonwebtoken'
import t from 'tap'
import { TokenCodec } from '../lib/tokens/codec.js'
import { Hs256 } from '../lib/tokens/hs256.js'
import { KeySet } from '../lib/tokens/keys.js'
import { buildApp, derivedKey, getPrivate, login, refresh, refreshCookie } from './helpers/app.js'

// The one-pass HS256 path of secret-derived keys: its tokens are jsonwebtoken's, and it is stricter.
const accessKey = derivedKey('access-token HS256 v1')
const INVALID_CHALLENGE = 'Bearer realm="fastify-refresh-auth", error="invalid_token"'

function now () { return Math.floor(Date.now() / 1000) }
function claims (overrides: Record<string, unknown> = {}) {
  return { iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', sub: '42', sid: randomUUID(), jti: randomUUID(), iat: now(), exp: now() + 600, ...overrides }
}
function b64 (value: string) { return Buffer.from(value).toString('base64url') }
/** Signs any header and payload text with the plugin's real access key. */
function signRaw (header: string, payload: string) {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${createHmac('sha256', accessKey).update(input).digest('base64url')}`
}

t.test('tokens are byte for byte what jsonwebtoken signs, and each verifies the other', async t => {
  const codec = new Hs256(accessKey, 'at+jwt')
  for (let i = 0; i < 20; i++) {
    const payload = claims({ roles: ['a', `r${i}`], name: `ünïcödé ${i}` })
    const ours = codec.signJson(JSON.stringify(payload))
    const theirs = jwt.sign(payload, accessKey, { algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } })
    t.equal(ours, theirs)
    t.same(codec.verify(theirs), payload)
  }
})

t.test('the codec writes the payload JSON itself: byte for byte what jsonwebtoken signs of the same claims', async t => {
  const codec = new TokenCodec({ keys: KeySet.fromSecretKey(accessKey), type: 'at+jwt', issuer: 'fastify-refresh-auth', audience: 'fastify-refresh-auth', clockTolerance: 0 })
  const registered = { sub: '42 "quoted" ünï', sid: randomUUID(), jti: randomUUID(), iat: now(), exp: now() + 600 }
  for (const [extra, authTime] of [[undefined, undefined], [{}, 1_700_000_000], [{ gen: 3, ext: { roles: ['a'], name: 'ünïcödé "x"' } }, undefined]] as const) {
    const withAuthTime = authTime === undefined ? registered : { ...registered, auth_time: authTime }
    const theirs = jwt.sign({ ...extra, iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', ...withAuthTime }, accessKey, { algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } })
    t.equal(codec.sign(withAuthTime, extra), theirs, JSON.stringify(extra))
  }
})

t.test('through the plugin: a token jsonwebtoken signed passes, so tokens issued before keep working', async t => {
  const app = await buildApp(t)
  const token = jwt.sign(claims(), accessKey, { algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } })
  t.equal((await getPrivate(app, token)).statusCode, 200)
})

t.test('through the plugin: correctly signed tokens that are not exactly ours are refused', async t => {
  const app = await buildApp(t)
  const payload = JSON.stringify(claims())
  const { accessToken } = await login(app)
  const [header, body, mac] = accessToken.split('.')
  const swapped = mac.endsWith('A') ? `${mac.slice(0, -1)}B` : `${mac.slice(0, -1)}A`
  const cases: Array<[string, string]> = [
    ['a jku header member, signed with the right key', signRaw('{"alg":"HS256","typ":"at+jwt","jku":"http://127.0.0.1:9/keys"}', payload)],
    ['a kid header member', signRaw('{"alg":"HS256","typ":"at+jwt","kid":"x"}', payload)],
    ['the header members in another order', signRaw('{"typ":"at+jwt","alg":"HS256"}', payload)],
    ['a header with spaces', signRaw('{"alg": "HS256", "typ": "at+jwt"}', payload)],
    ['a payload that is not JSON', signRaw('{"alg":"HS256","typ":"at+jwt"}', 'not json')],
    ['the audience as an array', signRaw('{"alg":"HS256","typ":"at+jwt"}', JSON.stringify(claims({ aud: ['fastify-refresh-auth'] })))],
    ['a MAC one character short', `${header}.${body}.${mac.slice(0, -1)}`],
    ['a MAC one character long', `${header}.${body}.${mac}A`],
    ['a MAC with its last character changed', `${header}.${body}.${swapped}`],
    ['a fourth segment', `${accessToken}.${mac}`],
    ['no dot after the header', `${header}${body}${mac}`]
  ]
  for (const [what, token] of cases) {
    const response = await getPrivate(app, token)
    t.equal(response.statusCode, 401, what)
    t.equal(response.headers['www-authenticate'], INVALID_CHALLENGE, what)
  }
  t.equal((await getPrivate(app, signRaw('{"alg":"HS256","typ":"at+jwt"}', payload))).statusCode, 200, 'control: the same payload under our header passes')
})

t.test('refresh tokens go the same way: rotation works and a tampered refresh token is refused', async t => {
  const app = await buildApp(t)
  const { refreshToken } = await login(app)
  const [header, body, mac] = refreshToken.split('.')
  const decoded = JSON.parse(Buffer.from(body, 'base64url').toString())
  t.equal((await refresh(app, `${header}.${b64(JSON.stringify({ ...decoded, sub: '1' }))}.${mac}`)).statusCode, 401)
  const rotated = await refresh(app, refreshToken)
  t.equal(rotated.statusCode, 200)
  t.type(refreshCookie(rotated), 'string')
})

t.test('the MAC is compared as the characters sent: another spelling of its bytes, or a wide character, is refused', async t => {
  const codec = new Hs256(accessKey, 'at+jwt')
  const token = codec.signJson(JSON.stringify(claims()))
  const mac = token.slice(token.lastIndexOf('.') + 1)
  const body = token.slice(0, token.lastIndexOf('.') + 1)
  t.ok(codec.verify(token), 'control: the token as signed')
  // 43 characters carry 258 bits for 256: the last character's two spare bits do not change the bytes
  const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const index = last.indexOf(mac[42])
  const respelled = mac.slice(0, 42) + last[index ^ 1]
  t.same(Buffer.from(respelled, 'base64url'), Buffer.from(mac, 'base64url'), 'the same bytes, spelled differently')
  t.equal(codec.verify(body + respelled), null)
  // a character whose low byte is the expected one, and a multi-byte one: refused, never a thrown RangeError
  const wide = String.fromCharCode(0x100 + mac.charCodeAt(0)) + mac.slice(1)
  t.equal(codec.verify(body + wide), null)
  t.equal(codec.verify(body + 'é' + mac.slice(1)), null)
})
