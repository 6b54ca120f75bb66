import Fastify, { type FastifyRequest } from 'fastify'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { type AuthenticatedUser } from '../lib/index.js'
import { createAuthenticator } from '../lib/http/authenticate.js'
import { freezeNested, TokenCache } from '../lib/tokens/cache.js'
import type { RegisteredClaims, TokenCodec } from '../lib/tokens/codec.js'
import { buildApp, derivedKey, getPrivate, login, SECRET, verifyCredentials } from './helpers/app.js'
import { fakeClock } from './helpers/clock.js'
import { ec, protectedApp, type KeyPair } from './helpers/keys.js'

const NOW = 1_800_000_000_000

function claimsFor (sub: string, expSeconds = NOW / 1000 + 900): AuthenticatedUser {
  return freezeNested({ sub, sid: `s-${sub}`, jti: `j-${sub}`, iat: NOW / 1000, auth_time: NOW / 1000, exp: expSeconds, iss: 'i', aud: 'a' })
}

/** Moves `Date.now()` (which jsonwebtoken reads too) by `offsetMs` until the test ends. */
function shiftClock (t: Test, offsetMs: number): void {
  const realNow = Date.now
  Date.now = () => realNow() + offsetMs
  t.teardown(() => { Date.now = realNow })
}

t.test('TokenCache', async t => {
  t.test('serves an entry until the instant its token expires, never at or past exp', async t => {
    const cache = new TokenCache(10)
    const claims = claimsFor('alice')
    cache.set('token-a', claims, NOW)
    t.equal(cache.get('token-a', NOW), claims)
    t.equal(cache.get('token-a', claims.exp * 1000 - 1), claims)
    t.equal(cache.get('token-a', claims.exp * 1000), undefined, 'refused at exp')
    t.equal(cache.size, 0, 'and dropped')
    cache.set('token-a', claims, NOW)
    t.equal(cache.get('token-a', claims.exp * 1000 + 60_000), undefined, 'refused past exp')
  })

  t.test('does not store a token that is already expired', async t => {
    const cache = new TokenCache(10)
    const claims = claimsFor('alice')
    cache.set('late', claims, claims.exp * 1000)
    t.equal(cache.size, 0)
    t.equal(cache.get('late', NOW), undefined)
  })

  t.test('holds at most maxEntries, dropping the least recently used first', async t => {
    const cache = new TokenCache(3)
    cache.set('a', claimsFor('a'), NOW)
    cache.set('b', claimsFor('b'), NOW)
    cache.set('c', claimsFor('c'), NOW)
    t.ok(cache.get('a', NOW), 'a used: b is now the least recently used')
    // full: a token is admitted on its second sighting
    cache.set('d', claimsFor('d'), NOW)
    cache.set('d', claimsFor('d'), NOW)
    t.equal(cache.size, 3)
    t.equal(cache.get('b', NOW), undefined, 'b evicted')
    t.ok(cache.get('a', NOW))
    t.ok(cache.get('c', NOW))
    t.ok(cache.get('d', NOW))
    for (let i = 0; i < 100; i++) {
      cache.set(`t${i}`, claimsFor(`t${i}`), NOW)
      cache.set(`t${i}`, claimsFor(`t${i}`), NOW)
    }
    t.equal(cache.size, 3, 'the bound holds')
    t.ok(cache.get('t99', NOW))
    t.ok(cache.get('t97', NOW))
    t.equal(cache.get('t96', NOW), undefined)
  })

  t.test('full, it admits a token only on its second sighting: a stream of new tokens leaves it untouched', async t => {
    const cache = new TokenCache(100)
    // the varying part at the end, where a real token has its signature
    const resident = Array.from({ length: 100 }, (_, i) => `${'r'.repeat(40)}.resident-${i}`)
    for (const token of resident) cache.set(token, claimsFor(token), NOW)
    t.equal(cache.size, 100)
    // 5,000 tokens that never come back: none is admitted, nothing is evicted
    let admitted = 0
    for (let i = 0; i < 5000; i++) {
      const token = `${'p'.repeat(40)}.passer-by-${i}-${(i * 2654435761) % 1000003}`
      cache.set(token, claimsFor(token), NOW)
      if (cache.get(token, NOW) !== undefined) admitted++
    }
    t.equal(admitted, 0, 'no passer-by admitted')
    t.ok(resident.every(token => cache.get(token, NOW) !== undefined), 'every resident entry is still served')
    const comeback = `${'c'.repeat(40)}.comes-back`
    cache.set(comeback, claimsFor(comeback), NOW)
    t.equal(cache.get(comeback, NOW), undefined, 'first sighting: not admitted')
    cache.set(comeback, claimsFor(comeback), NOW)
    t.ok(cache.get(comeback, NOW), 'second sighting: admitted')
    t.equal(cache.size, 100)
  })

  t.test('a cache with room admits every token at once', async t => {
    const cache = new TokenCache(10_000)
    for (let i = 0; i < 1000; i++) cache.set(`${'x'.repeat(40)}.token-${i}`, claimsFor(`u${i}`), NOW)
    t.equal(cache.size, 1000)
  })

  t.test('when every entry was used since the last eviction, the oldest still goes', async t => {
    const cache = new TokenCache(2)
    cache.set('a', claimsFor('a'), NOW)
    cache.set('b', claimsFor('b'), NOW)
    t.ok(cache.get('a', NOW))
    t.ok(cache.get('b', NOW))
    cache.set('c', claimsFor('c'), NOW)
    cache.set('c', claimsFor('c'), NOW)
    t.equal(cache.size, 2)
    t.equal(cache.get('a', NOW), undefined)
    t.ok(cache.get('b', NOW))
    t.ok(cache.get('c', NOW))
  })

  t.test('an entry answers only for its exact token, even when the ends of two tokens match', async t => {
    const cache = new TokenCache(10)
    const ending = '.' + 's'.repeat(43)
    const genuine = 'header.payload-of-alice' + ending
    const altered = 'header.payload-of-mallory' + ending
    const alice = claimsFor('alice')
    cache.set(genuine, alice, NOW)
    t.equal(cache.get(altered, NOW), undefined, 'a different token with the same signature is a miss')
    t.equal(cache.get(genuine, NOW), alice, 'and leaves the genuine entry alone')
    const other = claimsFor('other')
    cache.set(altered, other, NOW)
    t.equal(cache.size, 1, 'a second verified token with that ending takes the place of the first')
    t.equal(cache.get(altered, NOW), other)
    t.equal(cache.get(genuine, NOW), undefined)
  })

  t.test('under churn (hits, misses, re-sets, expiries, clears) it stays bounded and never answers wrongly', async t => {
    const cache = new TokenCache(50)
    const live = new Map<string, AuthenticatedUser>()
    let seed = 7
    const random = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    let wrong = 0
    for (let i = 0; i < 20_000; i++) {
      const token = `${'.'.repeat(30)}token-${random(120)}`
      const action = random(100)
      if (action < 45) {
        const claims = claimsFor(token, NOW / 1000 + 1 + random(600))
        cache.set(token, claims, NOW)
        live.set(token, claims)
      } else if (action < 99) {
        const now = NOW + random(700) * 1000
        const found = cache.get(token, now)
        const expected = live.get(token)
        if (found !== undefined && (found !== expected || now >= found.exp * 1000)) wrong++
      } else {
        cache.clear()
      }
      if (cache.size > 50) wrong++
    }
    t.equal(wrong, 0)
    t.ok(cache.size > 0)
  })

  t.test('setting a token again replaces it without evicting another', async t => {
    const cache = new TokenCache(2)
    cache.set('a', claimsFor('a'), NOW)
    cache.set('b', claimsFor('b'), NOW)
    const again = claimsFor('a2')
    cache.set('a', again, NOW)
    t.equal(cache.size, 2)
    t.equal(cache.get('a', NOW), again)
    t.ok(cache.get('b', NOW))
  })

  t.test('clear() empties it', async t => {
    const cache = new TokenCache(10)
    cache.set('a', claimsFor('a'), NOW)
    cache.set('b', claimsFor('b'), NOW)
    cache.clear()
    t.equal(cache.size, 0)
    t.equal(cache.get('a', NOW), undefined)
    t.equal(cache.get('b', NOW), undefined)
  })

  t.test('refuses a size that is not a positive integer', async t => {
    for (const size of [0, -1, 1.5, Number.NaN]) t.throws(() => new TokenCache(size), { code: 'FST_REFRESH_AUTH_INVALID_OPTION' })
  })
})

t.test('freezeNested freezes the objects and arrays inside claims, not the claims object itself', async t => {
  const value = { a: { b: [1, { c: 2 }] }, d: 'x', n: null, e: 7 }
  t.equal(freezeNested(value), value)
  t.notOk(Object.isFrozen(value), 'the top level is only ever handed out as a copy')
  t.ok(Object.isFrozen(value.a))
  t.ok(Object.isFrozen(value.a.b))
  t.ok(Object.isFrozen(value.a.b[1]))
  const frozenInner = { outer: Object.freeze({ inner: {} }) }
  freezeNested(frozenInner)
  t.notOk(Object.isFrozen(frozenInner.outer.inner), 'an already frozen object is taken as done')
})

t.test('authenticator and cache', async t => {
  /** A codec that accepts only `good` and counts how often it is asked. */
  function countingCodec (good: string, claims: RegisteredClaims) {
    const codec = {
      calls: 0,
      verify (token: string) {
        codec.calls++
        return token === good ? { ...claims } : null
      }
    }
    return codec
  }
  function request (token: string): FastifyRequest {
    return { headers: { authorization: `Bearer ${token}` }, user: null } as unknown as FastifyRequest
  }
  const claims = { sub: 'u', sid: 's', jti: 'j', iat: 0, exp: Math.floor(Date.now() / 1000) + 900, iss: 'i', aud: 'a' }

  t.test('a refused token is never cached: every attempt is verified again', async t => {
    const codec = countingCodec('good', claims)
    const cache = new TokenCache<AuthenticatedUser>(10)
    const { hook } = createAuthenticator(codec as unknown as TokenCodec<RegisteredClaims>, 'r', cache)
    for (let i = 0; i < 3; i++) await t.rejects(hook(request('bad-signature'), {} as never) as Promise<void>, { code: 'FST_REFRESH_AUTH_INVALID_TOKEN' })
    t.equal(codec.calls, 3)
    t.equal(cache.size, 0)
  })

  t.test('a verified token is verified once, then served from the cache until clear()', async t => {
    const codec = countingCodec('good', claims)
    const cache = new TokenCache<AuthenticatedUser>(10)
    const { hook } = createAuthenticator(codec as unknown as TokenCodec<RegisteredClaims>, 'r', cache)
    const first = request('good')
    const second = request('good')
    await hook(first, {} as never)
    await hook(second, {} as never)
    t.equal(codec.calls, 1)
    t.same(first.user, claims)
    t.same(second.user, claims)
    t.not(first.user, second.user, 'each request gets its own copy')
    cache.clear()
    await hook(request('good'), {} as never)
    t.equal(codec.calls, 2, 'after clear() the token is verified again')
  })
})

t.test('through the plugin', async t => {
  t.test('the cache is on by default: the same token is verified once', async t => {
    const users: Array<{ roles: string[] }> = []
    const app = await buildApp(t, { claims: () => ({ roles: ['reader'] }) }, app => {
      app.get('/capture', { preHandler: app.authenticate }, async request => { users.push(request.user as never); return {} })
    })
    const { accessToken } = await login(app)
    for (let i = 0; i < 2; i++) t.equal((await getPrivate(app, accessToken, '/capture')).statusCode, 200)
    t.not(users[0], users[1], 'each request has its own request.user')
    t.equal(users[0].roles, users[1].roles, 'built from the one cached verification')
    t.ok(Object.isFrozen(users[0].roles))
    t.notOk(Object.isFrozen(users[0]))
  })

  t.test('an expired token is refused even though it is cached', async t => {
    const app = await buildApp(t, { clockTolerance: 0 })
    const { accessToken } = await login(app)
    t.equal((await getPrivate(app, accessToken)).statusCode, 200, 'verified and cached')
    t.equal((await getPrivate(app, accessToken)).statusCode, 200, 'served from the cache')
    const { exp } = jwt.decode(accessToken) as { exp: number }
    shiftClock(t, exp * 1000 - Date.now())
    const response = await getPrivate(app, accessToken)
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
    t.match(response.headers['www-authenticate'], /error="invalid_token"/)
  })

  t.test('a handler that writes to request.user changes neither the cache nor the next request', async t => {
    const app = await buildApp(t, { claims: () => ({ roles: ['reader'], profile: { plan: 'free' } }) }, app => {
      app.get('/tamper', { preHandler: app.authenticate }, async request => {
        const user = request.user as unknown as { sub: string, roles: string[], profile: { plan: string }, extra?: boolean }
        const refused: string[] = []
        user.sub = 'mallory'
        user.extra = true
        try { user.roles.push('admin') } catch { refused.push('roles') }
        try { user.profile.plan = 'enterprise' } catch { refused.push('profile') }
        return { refused, sub: user.sub }
      })
    })
    const { accessToken } = await login(app)
    const tampered = await getPrivate(app, accessToken, '/tamper')
    t.same(tampered.json(), { refused: ['roles', 'profile'], sub: 'mallory' }, 'top-level writes are the request\'s own; nested values are frozen')
    const next = (await getPrivate(app, accessToken)).json().user
    t.equal(next.sub, '42')
    t.notOk('extra' in next)
    t.same(next.roles, ['reader'])
    t.same(next.profile, { plan: 'free' })
  })

  t.test('cacheSize 0 disables the cache: every request verifies the token again', async t => {
    const users: Array<{ roles: string[] }> = []
    const app = await buildApp(t, { accessToken: { cacheSize: 0 }, clockTolerance: 0, claims: () => ({ roles: ['reader'] }) }, app => {
      app.get('/capture', { preHandler: app.authenticate }, async request => { users.push(request.user as never); return {} })
    })
    const { accessToken } = await login(app)
    for (let i = 0; i < 2; i++) t.equal((await getPrivate(app, accessToken, '/capture')).statusCode, 200)
    t.not(users[0].roles, users[1].roles, 'two verifications')
    t.same(users[0], users[1])
    t.ok(Object.isFrozen(users[0].roles), 'nested values frozen all the same, so behaviour does not depend on the cache')
    const { exp } = jwt.decode(accessToken) as { exp: number }
    shiftClock(t, exp * 1000 - Date.now())
    t.equal((await getPrivate(app, accessToken)).statusCode, 401)
  })

  t.test('a forged or mistyped token is refused every time', async t => {
    const app = await buildApp(t)
    const { accessToken } = await login(app)
    const claims = jwt.decode(accessToken) as Record<string, unknown>
    const wrongType = jwt.sign(claims, derivedKey('access-token HS256 v1'), { header: { alg: 'HS256', typ: 'rt+jwt' } })
    const wrongKey = jwt.sign(claims, derivedKey('refresh-token HS256 v1'), { header: { alg: 'HS256', typ: 'at+jwt' } })
    for (const token of [wrongType, wrongKey, wrongType, wrongKey]) {
      t.equal((await getPrivate(app, token)).statusCode, 401)
    }
    t.equal((await getPrivate(app, accessToken)).statusCode, 200)
  })

  t.test('accessToken.cacheSize must be a non-negative integer', async t => {
    for (const cacheSize of [-1, 1.5, '100', Number.NaN, Number.POSITIVE_INFINITY]) {
      const app = Fastify()
      app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, accessToken: { cacheSize: cacheSize as number } })
      await t.rejects(async () => { await app.ready() }, { code: 'FST_REFRESH_AUTH_INVALID_OPTION', message: /accessToken\.cacheSize/ })
      await app.close()
    }
  })
})

t.test('a JWKS refetch that retires a key empties the cache: its cached tokens are refused', async t => {
  const [oldKey, newKey] = [ec(), ec()]
  const jwk = (pair: KeyPair, kid: string) => ({ ...pair.publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' })
  let published = JSON.stringify({ keys: [jwk(oldKey, 'k1')] })
  const jwksServer = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(published)
  })
  await new Promise<void>(resolve => jwksServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { jwksServer.closeAllConnections(); jwksServer.close(() => resolve()) }))
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`
  const clock = fakeClock(t)
  const app = await protectedApp(t, { routes: false, accessToken: { jwksUrl, jwksCooldown: 1 } })
  await app.ready()

  const now = Math.floor(Date.now() / 1000)
  const sign = (pair: KeyPair, kid: string) => jwt.sign(
    { iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', sub: '7', sid: 's', jti: kid, iat: now, exp: now + 600 },
    pair.privateKey, { algorithm: 'ES256', header: { alg: 'ES256', typ: 'at+jwt', kid } })
  const oldToken = sign(oldKey, 'k1')
  t.equal((await getPrivate(app, oldToken)).statusCode, 200, 'verified and cached')
  t.equal((await getPrivate(app, oldToken)).statusCode, 200, 'served from the cache')

  // the auth server retires k1; a token with an unknown kid makes the resource server refetch
  published = JSON.stringify({ keys: [jwk(newKey, 'k2')] })
  clock.advance(1)
  t.equal((await getPrivate(app, sign(newKey, 'k2'))).statusCode, 200)
  const refused = await getPrivate(app, oldToken)
  t.equal(refused.statusCode, 401, 'the cached token of the retired key is refused')
  t.equal(refused.json().code, 'FST_REFRESH_AUTH_INVALID_TOKEN')
})
