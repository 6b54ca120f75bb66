import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import t from 'tap'
import fastifyRefreshAuth, { type FastifyRefreshAuthOptions } from '../lib/index.js'
import { SECRET, verifyCredentials } from './helpers/app.js'

// Issue 13, finding 6: secrets of the right length that are obviously not random are refused at
// registration, with a message that says how to make a good one.

async function register (secret: string | Buffer): Promise<void> {
  const app = Fastify()
  try {
    await app.register(fastifyRefreshAuth, { secret, verifyCredentials } as FastifyRefreshAuthOptions)
    await app.ready()
  } finally {
    await app.close()
  }
}

t.test('secrets of few distinct bytes or one repeated pattern are refused', async t => {
  const weak: Array<[string, string | Buffer, RegExp]> = [
    ["'a' 32 times", 'a'.repeat(32), /too few distinct bytes/],
    ['32 zero bytes', Buffer.alloc(32), /too few distinct bytes/],
    ['one byte 64 times', Buffer.alloc(64, 7), /too few distinct bytes/],
    ["'changeme' 4 times", 'changeme'.repeat(4), /repeats one pattern/],
    ["'changeme' 4½ times", 'changeme'.repeat(4) + 'chan', /repeats one pattern/],
    ["'password1' 4 times", 'password1'.repeat(4), /repeats one pattern/],
    ['two hex halves', '0123456789abcdef'.repeat(2), /repeats one pattern/],
    ['a random half, twice', randomBytes(16).toString('hex').repeat(2), /repeats one pattern/],
    ["'ab' 16 times", 'ab'.repeat(16), /too few distinct bytes/],
    ['mostly one character', 'a'.repeat(24) + 'k3J9x!Qz', /too few distinct bytes/],
    ['bytes 0 to 31', Buffer.from([...Array(32).keys()]), /evenly spaced/],
    ['every other character', Buffer.from(Array.from({ length: 32 }, (_, i) => 65 + 2 * i)).toString(), /evenly spaced/]
  ]
  for (const [what, secret, reason] of weak) {
    const error = await register(secret).then(() => null, (err: Error & { code?: string }) => err)
    t.equal(error?.code, 'FST_REFRESH_AUTH_INVALID_OPTION', what)
    t.match(error?.message, reason, what)
    t.match(error?.message, /secret does not look random .*openssl rand -base64 48/, 'says how to make one')
    t.notOk(error?.message.includes(secret.toString()), 'never echoes the secret')
  }
})

t.test('random secrets in every usual encoding pass, and so do the project\'s own', async t => {
  const known = [
    SECRET,
    'w/WtaagI6Kurz1h7AdFiXPvBHkY/ZSLtCTtrgnmKYp3yQiRf', // the perf referee's
    'another-secret-that-is-long-enough-0123',
    'a-secret-of-at-least-thirty-two-bytes!!',
    'an-export-test-secret-of-32-bytes-or-more',
    'bench-secret-that-is-long-enough-0123456789',
    'benchmark-secret-that-is-long-enough-0123456789'
  ]
  for (const secret of known) await t.resolves(register(secret), secret)
  // openssl rand -hex 32 (only 16 distinct characters), -hex 16, -base64 32 and 48, raw bytes. (Checked
  // offline on 100,000 of each kind: none refused. Each registration costs an app, so a few here.)
  for (let i = 0; i < 8; i++) {
    await t.resolves(register(randomBytes(32).toString('hex')))
    await t.resolves(register(randomBytes(16).toString('hex')))
    await t.resolves(register(randomBytes(32).toString('base64')))
    await t.resolves(register(randomBytes(48).toString('base64')))
    await t.resolves(register(randomBytes(32)))
  }
})
