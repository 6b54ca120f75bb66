import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import t from 'tap'
import fastifyRefreshAuth, { InvalidOptionError, MemoryStore, type FastifyRefreshAuthOptions } from '../lib/index.js'
import { buildApp, login, SECRET, setCookies, verifyCredentials } from './helpers/app.js'

async function register (options: unknown) {
  const app = Fastify()
  try {
    await app.register(fastifyRefreshAuth, options as FastifyRefreshAuthOptions)
    await app.ready()
  } finally {
    await app.close()
  }
}

const valid = { secret: SECRET, verifyCredentials }

const refused: Array<[string, unknown, RegExp]> = [
  ['a missing secret', { verifyCredentials }, /secret is required: it signs the tokens/],
  ['an undefined secret (an unset environment variable)', { secret: undefined, verifyCredentials }, /secret is required/],
  ['a secret of the wrong type', { ...valid, secret: 12345 }, /secret must be a string or a Buffer/],
  ['a short string secret', { ...valid, secret: 'x'.repeat(31) }, /secret must be at least 32 bytes/],
  ['a short Buffer secret', { ...valid, secret: Buffer.alloc(16, 1) }, /secret must be at least 32 bytes/],
  ['no verifyCredentials with routes on', { secret: SECRET }, /verifyCredentials is required/],
  ['a verifyCredentials that is no function', { ...valid, verifyCredentials: 'yes' }, /verifyCredentials must be a function/],
  ['routes of the wrong type', { ...valid, routes: 'yes' }, /routes must be a boolean or an object/],
  ['a prefix without a slash', { ...valid, routes: { prefix: 'auth' } }, /routes.prefix must be a path/],
  ['a prefix with a trailing slash', { ...valid, routes: { prefix: '/auth/' } }, /routes.prefix must be a path/],
  ['an empty prefix', { ...valid, routes: { prefix: '' } }, /routes.prefix must be a non-empty string/],
  ['a store without rotate', { ...valid, store: { create () {}, revoke () {} } }, /store must implement/],
  ['a store that is no object', { ...valid, store: 'redis' }, /store must implement/],
  ['a null store', { ...valid, store: null }, /store must implement/],
  ['an access lifetime that is no duration', { ...valid, accessToken: { expiresIn: 'soon' } }, /accessToken.expiresIn must be a positive/],
  ['an unknown unit', { ...valid, accessToken: { expiresIn: '15 fortnights' } }, /accessToken.expiresIn/],
  ['a negative duration string', { ...valid, refreshToken: { expiresIn: '-7d' } }, /refreshToken.expiresIn must be a positive/],
  ['a lifetime under a second', { ...valid, accessToken: { expiresIn: '500ms' } }, /accessToken.expiresIn must be a positive/],
  ['an empty duration string', { ...valid, accessToken: { expiresIn: '' } }, /accessToken.expiresIn must be a positive/],
  ['a NaN lifetime', { ...valid, accessToken: { expiresIn: NaN } }, /accessToken.expiresIn must be a positive/],
  ['a zero access lifetime', { ...valid, accessToken: { expiresIn: 0 } }, /accessToken.expiresIn must be a positive/],
  ['a negative lifetime', { ...valid, refreshToken: { expiresIn: -5 } }, /refreshToken.expiresIn must be a positive/],
  ['an infinite lifetime', { ...valid, refreshToken: { expiresIn: Infinity } }, /refreshToken.expiresIn/],
  ['a lifetime of the wrong type', { ...valid, refreshToken: { expiresIn: true } }, /refreshToken.expiresIn/],
  ['a refresh lifetime not longer than the access one', { ...valid, accessToken: { expiresIn: '1h' }, refreshToken: { expiresIn: 3600 } }, /refreshToken.expiresIn must be longer than accessToken.expiresIn/],
  ['an absolute lifetime shorter than the idle one', { ...valid, refreshToken: { expiresIn: '7d', absoluteExpiresIn: '1d' } }, /absoluteExpiresIn must not be shorter/],
  ['a negative reuse interval', { ...valid, refreshToken: { reuseInterval: -1 } }, /reuseInterval must be a non-negative/],
  ['a reuse interval as long as the refresh lifetime', { ...valid, refreshToken: { expiresIn: '1h', reuseInterval: '1h' } }, /reuseInterval must be shorter/],
  ['a cookie option that is no object', { ...valid, cookie: 'yes' }, /cookie must be an object/],
  ['a bad cookie name', { ...valid, cookie: { name: 'a b;c' } }, /cookie.name must be a valid cookie name/],
  ['an empty cookie name', { ...valid, cookie: { name: '' } }, /cookie.name must be a non-empty string/],
  ['a bad cookie path', { ...valid, cookie: { path: 'auth;x' } }, /cookie.path must be a path/],
  ['a non-boolean secure', { ...valid, cookie: { secure: 'no' } }, /cookie.secure must be a boolean/],
  ['an insecure __Secure- cookie', { ...valid, cookie: { secure: false } }, /__Secure- needs cookie.secure/],
  ['a sameSite of none', { ...valid, cookie: { sameSite: 'none' } }, /cookie.sameSite must be 'strict' or 'lax'/],
  ['a realm with a quote', { ...valid, realm: 'a"b' }, /realm must be printable ASCII/],
  ['a negative clock tolerance', { ...valid, clockTolerance: -1 }, /clockTolerance must be a non-negative/],
  ['a clock tolerance of the wrong type', { ...valid, clockTolerance: '5' }, /clockTolerance must be a non-negative/],
  ['an issuer that is no string', { ...valid, issuer: 42 }, /issuer must be a non-empty string/],
  ['an empty audience', { ...valid, audience: '' }, /audience must be a non-empty string/],
  ['a subject that is no function', { ...valid, subject: 'id' }, /subject must be a function/],
  ['claims that are no function', { ...valid, claims: { role: 'admin' } }, /claims must be a function/],
  ['trustedOrigins that is no array', { ...valid, trustedOrigins: 'https://a.example' }, /trustedOrigins must be an array/],
  ['trustedOrigins with a non-string', { ...valid, trustedOrigins: [1] }, /trustedOrigins must be an array/],
  // finding 8 of issue 13: without a floor, every request with an unknown kid could trigger a JWKS fetch
  ['a JWKS cooldown of 0', { routes: false, accessToken: { jwksUrl: 'http://127.0.0.1:9/jwks.json', jwksCooldown: 0 } }, /accessToken.jwksCooldown must be at least 1 second/],
  ['a JWKS cooldown under a second', { routes: false, accessToken: { jwksUrl: 'http://127.0.0.1:9/jwks.json', jwksCooldown: 0.5 } }, /accessToken.jwksCooldown must be at least 1 second/],
  ['a JWKS cooldown of 0s', { routes: false, accessToken: { jwksUrl: 'http://127.0.0.1:9/jwks.json', jwksCooldown: '0s' } }, /accessToken.jwksCooldown must be at least 1 second/]
]

for (const [what, options, message] of refused) {
  t.test(`refuses ${what}`, async t => {
    const error = await register(options).then(() => null, (err: Error) => err)
    t.ok(error instanceof InvalidOptionError, 'an InvalidOptionError')
    t.equal((error as InvalidOptionError).code, 'FST_REFRESH_AUTH_INVALID_OPTION')
    t.match((error as Error).message, message)
    if (typeof (options as { secret?: unknown } | null)?.secret === 'string') {
      t.notMatch((error as Error).message, SECRET, 'the secret is not echoed')
    }
  })
}

t.test('accepts the documented forms', async t => {
  const accepted: unknown[] = [
    valid,
    { ...valid, secret: randomBytes(32) },
    { secret: SECRET, routes: false },
    { ...valid, routes: true },
    { ...valid, routes: { prefix: '/api/v1/session' } },
    { ...valid, routes: {} },
    { ...valid, store: new MemoryStore() },
    { ...valid, accessToken: { expiresIn: 300 }, refreshToken: { expiresIn: '2 hours', absoluteExpiresIn: '1w', reuseInterval: '10s' } },
    { ...valid, accessToken: { expiresIn: '1.5m' }, refreshToken: { expiresIn: '36H' } },
    { ...valid, cookie: { name: 'rt', secure: false, sameSite: 'lax', path: '/' } },
    { ...valid, realm: 'example api', clockTolerance: 5, issuer: 'https://id.example', audience: 'api' },
    { ...valid, subject: () => 'u', claims: () => ({}), trustedOrigins: ['https://app.example'] }
  ]
  for (const options of accepted) {
    await t.resolves(register(options), JSON.stringify(options, (_k, v) => typeof v === 'function' ? 'fn' : v))
  }
})

t.test('registers @fastify/cookie only when the host has not', async t => {
  const app = Fastify()
  await app.register(import('@fastify/cookie'))
  await app.register(fastifyRefreshAuth, valid)
  await t.resolves(async () => { await app.ready() }, 'no duplicate decorator error')
  await app.close()
})

t.test('lifetimes are whole seconds: a number, a string with a unit, or a string without one', async t => {
  const cases: Array<[unknown, number]> = [[90, 90], [90.9, 90], ['1.5m', 90], ['90', 90], [' 2 min ', 120], ['1h', 3600], ['1.5 hours', 5400]]
  for (const [expiresIn, seconds] of cases) {
    const app = await buildApp(t, { accessToken: { expiresIn: expiresIn as number } })
    t.equal((await login(app)).response.json().expires_in, seconds, `accessToken.expiresIn ${JSON.stringify(expiresIn)}`)
  }
  const app = await buildApp(t, { refreshToken: { expiresIn: '2 weeks', absoluteExpiresIn: '1y' } })
  const [cookie] = setCookies((await login(app)).response)
  t.equal(cookie.attributes['max-age'], String(14 * 86400), 'refreshToken.expiresIn 2 weeks')
})
