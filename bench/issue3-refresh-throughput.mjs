// Quick measurement of refresh throughput, MemoryStore against RedisStore, in one run on one machine.
// Not the benchmark harness: one server process per store, and a load loop where each connection holds its own
// session and presents the refresh token the previous answer set (every request is a real rotation).
//
//   npm run build && node bench/issue3-refresh-throughput.mjs [seconds=10] [connections=16]
//
// REDIS_URL overrides redis://127.0.0.1:6379. Keys go under a prefix of their own and are deleted afterwards.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { Agent, request } from 'node:http'
import { fileURLToPath } from 'node:url'

const SECRET = 'bench-secret-that-is-long-enough-0123456789'
const COOKIE = '__Secure-refresh_token'
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

async function server (storeName) {
  const { default: Fastify } = await import('fastify')
  const { default: plugin, RedisStore } = await import('../dist/esm/index.js')
  let client
  let store
  const prefix = `bench-issue3:${process.pid}:`
  if (storeName === 'redis') {
    const { Redis } = await import('ioredis')
    client = new Redis(REDIS_URL)
    store = new RedisStore({ client, prefix })
  }
  const app = Fastify()
  await app.register(plugin, { secret: SECRET, verifyCredentials: async (req) => ({ id: req.headers['x-user'] }), store })
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.send({ port: app.server.address().port })
  process.on('message', async () => {
    await app.close()
    if (client !== undefined) {
      const keys = await client.keys(`${prefix}*`)
      if (keys.length > 0) await client.del(...keys)
      await client.quit()
    }
    process.disconnect()
  })
}

function post (agent, port, path, headers) {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
      res.resume()
      res.on('end', () => {
        const cookie = (res.headers['set-cookie'] ?? []).find(line => line.startsWith(`${COOKIE}=`))
        resolve({ status: res.statusCode, token: cookie?.slice(COOKIE.length + 1).split(';')[0] })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

async function measure (storeName, seconds, connections) {
  const child = fork(fileURLToPath(import.meta.url), ['server', storeName], { stdio: 'inherit' })
  const [{ port }] = await once(child, 'message')
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  let done = 0
  let failed = 0
  const end = Date.now() + seconds * 1000
  await Promise.all(Array.from({ length: connections }, async (_, i) => {
    let { token } = await post(agent, port, '/auth/login', { 'x-user': `user-${i}` })
    while (Date.now() < end) {
      const answer = await post(agent, port, '/auth/refresh', { cookie: `${COOKIE}=${token}` })
      if (answer.status !== 200) { failed++; break }
      token = answer.token
      done++
    }
  }))
  agent.destroy()
  child.send('close')
  await once(child, 'exit')
  return { store: storeName, refreshes: done, failed, perSecond: Math.round(done / seconds) }
}

if (process.argv[2] === 'server') {
  await server(process.argv[3])
} else {
  const seconds = Number(process.argv[2] ?? 10)
  const connections = Number(process.argv[3] ?? 16)
  console.log(`refresh throughput, ${seconds}s per store, ${connections} connections, Node ${process.version}`)
  for (const store of ['memory', 'redis']) console.log(JSON.stringify(await measure(store, seconds, connections)))
}
