'use strict'
// Sign and verify cost of an access token per algorithm, through the plugin's own codec (kid lookup,
// pinned algorithm, claim checks included). Not part of `npm test`.
// Run: npm run build && node bench/algorithms.js [operations per round] [rounds]
const { generateKeyPairSync, randomUUID } = require('node:crypto')
const { createAccessKeySet, deriveKeys, KeySet } = require('../dist/cjs/tokens/keys.js')
const { TokenCodec } = require('../dist/cjs/tokens/codec.js')

const iterations = Number(process.argv[2] ?? 200)
const rounds = Number(process.argv[3] ?? 25)
const common = { type: 'at+jwt', issuer: 'https://auth.example', audience: 'api', clockTolerance: 0 }

const keySets = {
  HS256: KeySet.fromSecretKey(deriveKeys('bench-secret-that-is-long-enough-0123456789').access),
  RS256: createAccessKeySet('RS256', [{ kid: 'rsa', privateKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey }]),
  PS256: createAccessKeySet('PS256', [{ kid: 'rsa', privateKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey }]),
  ES256: createAccessKeySet('ES256', [{ kid: 'ec', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }])
}

function claims () {
  const iat = Math.floor(Date.now() / 1000)
  return { sub: '42', sid: randomUUID(), jti: randomUUID(), iat, exp: iat + 900 }
}

// Best of many short rounds: on a shared machine the minimum is the figure least disturbed by other load.
function measure (run) {
  for (let i = 0; i < Math.min(200, iterations); i++) run(i) // warm-up
  let best = Infinity
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) run(i)
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1000 / iterations)
  }
  return { microseconds: best, perSecond: 1e6 / best }
}

const rows = []
for (const [algorithm, keys] of Object.entries(keySets)) {
  const codec = new TokenCodec({ ...common, keys })
  const tokens = Array.from({ length: 100 }, () => codec.sign(claims(), { roles: ['user'] }))
  if (tokens.some(token => codec.verify(token) === null)) throw new Error(`${algorithm}: a token did not verify`)
  const sign = measure(() => codec.sign(claims(), { roles: ['user'] }))
  const verify = measure(i => codec.verify(tokens[i % tokens.length]))
  rows.push({
    algorithm,
    'sign µs/op': sign.microseconds.toFixed(1),
    'sign ops/s': Math.round(sign.perSecond),
    'verify µs/op': verify.microseconds.toFixed(1),
    'verify ops/s': Math.round(verify.perSecond),
    'token bytes': tokens[0].length
  })
}
console.log(`node ${process.version}, best of ${rounds} rounds of ${iterations} operations`)
console.table(rows)
