// The events streams' cost: `npm run bench:events -- [--streams N] [--duration S] [--rounds N]`.
// The server runs in this process; the streams are held and the load is sent by child processes, so that
// neither counts in this process's heap or CPU.
// 1. Memory: heap (and external) per open GET /auth/events stream, after a full garbage collection.
// 2. CPU: the server's CPU time per authenticated request (GET /private, autocannon, 20 connections), with no
//    stream open and with N open, in alternating rounds; the medians are compared, and each round with the
//    streams against the round without them just before it (the ratio's spread).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import fastifyRefreshAuth from '../dist/esm/index.js'

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({ options: { streams: { type: 'string' }, duration: { type: 'string' }, rounds: { type: 'string' } } })
const STREAMS = Number(args.streams ?? 1000)
const DURATION = Number(args.duration ?? 5)
const ROUNDS = Number(args.rounds ?? 5)
const SECRET = 'benchmark-secret-that-is-long-enough-0123456789'

const app = Fastify()
await app.register(fastifyRefreshAuth, {
  secret: SECRET,
  accessToken: { expiresIn: '1h' },
  events: { maxStreams: STREAMS + 10 },
  verifyCredentials: async (request) => ({ id: request.body.user })
})
app.get('/private', { preHandler: app.authenticate }, async (request) => ({ sub: request.user.sub }))
const url = await app.listen({ port: 0, host: '127.0.0.1' })

async function login (user) {
  const response = await app.inject({ method: 'POST', url: '/auth/login', body: { user } })
  return response.json().access_token
}

const tokens = []
for (let i = 0; i < STREAMS; i++) tokens.push(await login(`user-${i}`))
const loadToken = await login('load')

function settle () {
  globalThis.gc()
  globalThis.gc()
  const { heapUsed, external, rss } = process.memoryUsage()
  return { heapUsed, external, rss }
}

async function holdStreams () {
  // a child process holds the streams (bench/events-holder.cjs), so that their client side is not measured here
  const child = spawn(process.execPath, [join(here, 'events-holder.cjs'), url], { stdio: ['pipe', 'pipe', 'inherit'] })
  child.stdin.write(JSON.stringify(tokens) + '\n')
  const [chunk] = await once(child.stdout, 'data')
  if (String(chunk).trim() !== 'open') throw new Error('the streams did not open')
  return async () => {
    child.stdin.write('stop\n')
    await once(child, 'exit')
  }
}

async function load () {
  const bin = join(here, '..', 'node_modules', '.bin', 'autocannon')
  const child = spawn(bin, ['-j', '-c', '20', '-d', String(DURATION), '-H', `authorization=Bearer ${loadToken}`, `${url}/private`], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  child.stdout.on('data', (chunk) => { out += chunk })
  const started = process.cpuUsage()
  await once(child, 'exit')
  const cpu = process.cpuUsage(started)
  const result = JSON.parse(out)
  const requests = result.requests.total
  return { requests, non2xx: result.non2xx, cpuMicros: cpu.user + cpu.system, cpuPerRequestMicros: (cpu.user + cpu.system) / requests, requestsPerSecond: result.requests.average }
}

// warm-up; the memory per stream; then the CPU, without and with the streams in turn (the machine's other load
// drifts: alternating rounds and their medians keep the comparison fair)
await load()
const before = settle()
let stop = await holdStreams()
const after = settle()
await stop()
const perStream = {
  heapBytes: Math.round((after.heapUsed - before.heapUsed) / STREAMS),
  externalBytes: Math.round((after.external - before.external) / STREAMS),
  rssBytes: Math.round((after.rss - before.rss) / STREAMS)
}
const without = []
const withStreams = []
for (let round = 0; round < ROUNDS; round++) {
  without.push(await load())
  stop = await holdStreams()
  withStreams.push(await load())
  await stop()
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const cpu = (runs) => median(runs.map(run => run.cpuPerRequestMicros))
const summary = (runs) => ({
  cpuPerRequestMicros: Number(cpu(runs).toFixed(1)),
  requestsPerSecond: median(runs.map(run => run.requestsPerSecond)),
  non2xx: runs.reduce((sum, run) => sum + run.non2xx, 0),
  rounds: runs.map(run => Number(run.cpuPerRequestMicros.toFixed(1)))
})
// each pair of rounds ran back to back, under about the same outside load
const pairRatios = withStreams.map((run, round) => run.cpuPerRequestMicros / without[round].cpuPerRequestMicros)
console.log(JSON.stringify({
  node: process.version,
  loadAverage: os.loadavg().map(load => Number(load.toFixed(2))),
  streams: STREAMS,
  duration: DURATION,
  rounds: ROUNDS,
  perStream,
  without: summary(without),
  withStreams: summary(withStreams),
  cpuRatio: Number((cpu(withStreams) / cpu(without)).toFixed(3)),
  pairRatios: {
    median: Number(median(pairRatios).toFixed(3)),
    min: Number(Math.min(...pairRatios).toFixed(3)),
    max: Number(Math.max(...pairRatios).toFixed(3)),
    rounds: pairRatios.map(ratio => Number(ratio.toFixed(3)))
  }
}, null, 2))
await app.close()
