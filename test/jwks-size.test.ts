import { generateKeyPairSync } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import jwt from 'jsonwebtoken'
import t, { type Test } from 'tap'
import fastifyRefreshAuth from '../lib/index.js'
import { captureLogs, WARN } from './helpers/logs.js'

// Issue 13, finding 5: a resource server read a JWKS answer whole, error statuses included, before
// checking its 256 KiB cap (in characters). It must count bytes while streaming, stop past the cap,
// and never read the body of an error status.

const CAP = 256 * 1024
const CHUNK = 64 * 1024
const HUGE = 48 * 1024 * 1024
// What the server manages to send before the client hangs up: what the client read, plus what the kernel's
// socket buffers took (up to a few MiB on loopback). Reading the answer whole means all 48 MiB.
const MAX_SENT = 16 * 1024 * 1024

const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const jwk = { ...signer.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }
const now = () => Math.floor(Date.now() / 1000)
const token = () => jwt.sign({ iss: 'fastify-refresh-auth', aud: 'fastify-refresh-auth', sub: '7', sid: 's', jti: 'j', iat: now(), exp: now() + 60 },
  signer.privateKey, { algorithm: 'ES256', header: { alg: 'ES256', typ: 'at+jwt', kid: 'k1' } })

interface Stream { sent: number, closed: Promise<void> }

/**
 * A JWKS server whose answer is `size` bytes sent in 64 KiB chunks, one per turn of the event loop and
 * only as fast as the client reads (backpressure): `sent` counts what left for the client.
 */
async function slowServer (t: Test, status: number, size: number, headers: Record<string, string> = {}) {
  const streams: Stream[] = []
  const server = createServer((_request: IncomingMessage, response: ServerResponse) => {
    const stream: Stream = { sent: 0, closed: new Promise(resolve => response.on('close', resolve)) }
    streams.push(stream)
    response.writeHead(status, { 'content-type': 'application/json', ...headers })
    response.write('{"keys":[' + JSON.stringify(jwk) + '],"padding":"')
    const chunk = Buffer.alloc(CHUNK, 'x')
    const next = (): void => {
      if (response.destroyed) return
      if (stream.sent >= size) { response.end('"}'); return }
      stream.sent += CHUNK
      if (response.write(chunk)) setImmediate(next)
      else response.once('drain', next)
    }
    setImmediate(next)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`, streams }
}

async function resourceServer (t: Test, jwksUrl: string) {
  const logs = captureLogs()
  const app = Fastify({ logger: logs.logger })
  await app.register(fastifyRefreshAuth, { routes: false, accessToken: { jwksUrl, jwksTimeout: 30, jwksCooldown: '1h' } })
  app.get('/private', { preHandler: app.authenticate }, async () => 'ok')
  // ready() waits for the first fetch: it has ended, one way or the other
  await app.ready()
  t.teardown(() => app.close())
  return { app, ...logs }
}

async function assertRefusedEarly (t: Test, jwksUrl: string, streams: Stream[], reason: RegExp) {
  const rssBefore = process.memoryUsage().rss
  const { app, lines } = await resourceServer(t, jwksUrl)
  const response = await app.inject({ url: '/private', headers: { authorization: `Bearer ${token()}` } })
  t.equal(response.statusCode, 503, 'no key set was loaded')
  const failure = lines.find(line => line.level === WARN && /JWKS fetch failed/.test(line.msg))
  t.match(failure?.err, { code: 'FST_REFRESH_AUTH_JWKS_FETCH_FAILED', message: reason }, 'logged with a code and the reason')
  t.equal(streams.length, 1)
  await streams[0].closed
  t.ok(streams[0].sent <= MAX_SENT, `the download stopped after ${streams[0].sent} bytes of ${HUGE}`)
  t.comment(`rss grew by ${Math.round((process.memoryUsage().rss - rssBefore) / 1024 / 1024)} MiB (not asserted)`)
}

t.test('a huge JWKS answer is cut off past 256 KiB while streaming', async t => {
  const { url, streams } = await slowServer(t, 200, HUGE)
  await assertRefusedEarly(t, url, streams, /larger than 262144 bytes/)
})

t.test('the body of an error status is never read', async t => {
  const { url, streams } = await slowServer(t, 500, HUGE)
  await assertRefusedEarly(t, url, streams, /HTTP status 500/)
})

t.test('a Content-Length above the cap is refused before reading', async t => {
  const { url, streams } = await slowServer(t, 200, HUGE, { 'content-length': String(HUGE + 1024) })
  await assertRefusedEarly(t, url, streams, /larger than 262144 bytes/)
})

async function fixedServer (t: Test, status: number, body: string | Buffer) {
  const server = createServer((_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json' })
    response.end(body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`
}

t.test('the cap counts bytes, not characters', async t => {
  // 200,000 characters, 400,000 bytes: under the cap in characters, over it in bytes
  const multibyte = JSON.stringify({ keys: [jwk], padding: 'é'.repeat(200_000) })
  const { app } = await resourceServer(t, await fixedServer(t, 200, multibyte))
  t.equal((await app.inject({ url: '/private', headers: { authorization: `Bearer ${token()}` } })).statusCode, 503)

  const underCap = JSON.stringify({ keys: [jwk], padding: 'x'.repeat(CAP - 1024) })
  const { app: accepted } = await resourceServer(t, await fixedServer(t, 200, underCap))
  t.equal((await accepted.inject({ url: '/private', headers: { authorization: `Bearer ${token()}` } })).statusCode, 200, 'just under the cap: loaded')
})

t.test('empty and not-modified answers load nothing', async t => {
  for (const status of [204, 304]) {
    const { app, lines } = await resourceServer(t, await fixedServer(t, status, ''))
    t.equal((await app.inject({ url: '/private', headers: { authorization: `Bearer ${token()}` } })).statusCode, 503, String(status))
    t.ok(lines.some(line => (line.err as { code?: string } | undefined)?.code === 'FST_REFRESH_AUTH_JWKS_FETCH_FAILED'), 'logged with its code')
  }
})
