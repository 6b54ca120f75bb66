// The DPoP benchmark: `npm run bench:dpop -- [--duration s] [--rounds n] [--connections n]`.
// Two server processes, measured interleaved in one run (floor, dpop, floor, dpop, …):
//   floor: a Bearer request (the token cache hit, as any token seen again) plus one ES256 verification of a
//          proof-sized signature in a preHandler: what a DPoP request cannot avoid paying;
//   dpop:  a DPoP-bound request, `Authorization: DPoP` with a fresh proof of the token's key each time.
// The server's CPU time per response is compared (issue 23's target: dpop ≤ 1.25× floor). The proofs are made
// by this process (the load generator), so their signing never counts on the server's side.
import autocannon from 'autocannon'
import { fork, spawnSync } from 'node:child_process'
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, randomUUID, sign, verify } from 'node:crypto'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const SECRET = randomBytes(48).toString('base64')

if (process.argv[2] === 'server') await serve(process.argv[3])
else await main()

async function serve (variant) {
  const { default: Fastify } = await import('fastify')
  const { default: fastifyRefreshAuth } = await import('../dist/esm/index.js')
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret: process.env.BENCH_SECRET, verifyCredentials: async () => ({ id: 1 }), dpop: true })
  const handler = async (request) => ({ sub: request.user.sub })
  if (variant === 'floor') {
    // the one signature check a proof needs, with a key imported once, over a proof-sized input
    const { jwk, input, signature } = JSON.parse(process.env.BENCH_FLOOR)
    const key = createPublicKey({ key: jwk, format: 'jwk' })
    const data = Buffer.from(input)
    const sig = Buffer.from(signature, 'base64url')
    const verifyOnce = (_request, _reply, done) => done(verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig) ? undefined : new Error('bad'))
    app.get('/private', { preHandler: [app.authenticate, verifyOnce] }, handler)
  } else {
    app.get('/private', { preHandler: app.authenticate }, handler)
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  process.send({ type: 'ready', port: app.server.address().port })
  process.on('message', async message => {
    if (message.type === 'cpu') process.send({ type: 'cpu', usage: process.cpuUsage() })
    if (message.type === 'close') {
      await app.close()
      process.exit(0)
    }
  })
}

function proofMaker () {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' })
  const header = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })).toString('base64url')
  return {
    jwk: { kty, crv, x, y },
    proof (htm, htu, accessToken) {
      const claims = { jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) }
      if (accessToken !== undefined) claims.ath = createHash('sha256').update(accessToken).digest('base64url')
      const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
      return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
    }
  }
}

async function main () {
  const { values: args } = parseArgs({
    options: { duration: { type: 'string', default: '5' }, rounds: { type: 'string', default: '5' }, connections: { type: 'string', default: '20' } }
  })
  const duration = Number(args.duration)
  const rounds = Number(args.rounds)
  const connections = Number(args.connections)
  // as bench/run.mjs: servers on CPU 0, this load generator on CPU 1, when taskset is there
  const pinned = os.cpus().length >= 2 && spawnSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' }).status === 0

  const maker = proofMaker()
  const sample = maker.proof('GET', 'http://127.0.0.1/private', 'x'.repeat(300))
  const [h, p, s] = sample.split('.')
  const floorEnv = JSON.stringify({ jwk: maker.jwk, input: `${h}.${p}`, signature: s })

  const servers = {}
  for (const variant of ['floor', 'dpop']) {
    const child = fork(fileURLToPath(import.meta.url), ['server', variant], {
      env: { ...process.env, BENCH_SECRET: SECRET, BENCH_FLOOR: floorEnv },
      execPath: pinned ? 'taskset' : process.execPath,
      execArgv: pinned ? ['-c', '0', process.execPath] : []
    })
    const port = await new Promise(resolve => child.once('message', message => resolve(message.port)))
    const base = `http://127.0.0.1:${port}`
    const login = await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: variant === 'dpop' ? { 'content-type': 'application/json', dpop: maker.proof('POST', `${base}/auth/login`) } : { 'content-type': 'application/json' },
      body: '{}'
    })
    const { access_token: token, token_type: type } = await login.json()
    servers[variant] = { child, base, token, type, cpu: [] }
  }
  if (servers.dpop.type !== 'DPoP' || servers.floor.type !== 'Bearer') throw new Error('unexpected token types')

  const cpuOf = child => new Promise(resolve => {
    child.once('message', message => resolve(message.usage.user + message.usage.system))
    child.send({ type: 'cpu' })
  })

  async function load (variant, seconds) {
    const server = servers[variant]
    const url = `${server.base}/private`
    const before = await cpuOf(server.child)
    const result = await autocannon({
      url,
      connections,
      duration: seconds,
      requests: [{
        method: 'GET',
        setupRequest (request) {
          request.headers = variant === 'dpop'
            ? { authorization: `DPoP ${server.token}`, dpop: maker.proof('GET', url, server.token) }
            : { authorization: `Bearer ${server.token}`, dpop: maker.proof('GET', url, server.token) }
          return request
        }
      }]
    })
    const cpu = await cpuOf(server.child) - before
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${variant}: ${result.non2xx} non-2xx, ${result.errors} errors`)
    return { cpuUsPerRequest: cpu / result.requests.total, rps: result.requests.average }
  }

  const loadBefore = os.loadavg()
  for (const variant of ['floor', 'dpop']) await load(variant, 1) // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const variant of round % 2 === 0 ? ['floor', 'dpop'] : ['dpop', 'floor']) servers[variant].cpu.push(await load(variant, duration))
  }
  const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
  const floor = median(servers.floor.cpu.map(r => r.cpuUsPerRequest))
  const dpop = median(servers.dpop.cpu.map(r => r.cpuUsPerRequest))
  const roundRatios = servers.dpop.cpu.map((r, i) => r.cpuUsPerRequest / servers.floor.cpu[i].cpuUsPerRequest)
  console.log(`rounds ${rounds} × ${duration}s, ${connections} connections, pinned ${pinned}, load average before ${loadBefore.map(l => l.toFixed(2)).join(' ')}, after ${os.loadavg().map(l => l.toFixed(2)).join(' ')}`)
  console.log(`floor (Bearer + one ES256 verify): ${floor.toFixed(1)} µs CPU per request, ${median(servers.floor.cpu.map(r => r.rps)).toFixed(0)} req/s`)
  console.log(`dpop  (bound token + proof):       ${dpop.toFixed(1)} µs CPU per request, ${median(servers.dpop.cpu.map(r => r.rps)).toFixed(0)} req/s`)
  console.log(`dpop / floor: ${(dpop / floor).toFixed(3)} (median of round ratios ${median(roundRatios).toFixed(3)}); target ≤ 1.25`)
  for (const server of Object.values(servers)) server.child.send({ type: 'close' })
}
