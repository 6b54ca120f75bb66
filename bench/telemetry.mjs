// What OpenTelemetry costs (issue 22): login + refresh with telemetry on (the SDK's meter and tracer
// providers registered, spans sent to an exporter that drops them) against `telemetry: false`, and
// `authenticate` with `countAuthentications` on against off. In process, through app.inject; the variants
// run interleaved, round by round, so a busy moment of the machine hits both alike. Prints the median of
// the round-by-round ratios, in operations per CPU second.
import { context, metrics, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base'
import Fastify from 'fastify'
import fastifyRefreshAuth from '../dist/esm/index.js'

const ROUNDS = Number(process.env.ROUNDS ?? 15)
const ROUND_MS = Number(process.env.ROUND_MS ?? 400)
const secret = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
const verifyCredentials = async () => ({ id: 'alice' })

// the host's SDK, as the Node SDK would set it up; spans are batched and dropped
const dropSpans = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} }
metrics.setGlobalMeterProvider(new MeterProvider({
  readers: [new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(0), exportIntervalMillis: 1000 })]
}))
// SAMPLE=0.1 records a tenth of the traces, as a host's ParentBased(TraceIdRatio) sampler would; every one by default
const sampler = new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(Number(process.env.SAMPLE ?? 1)) })
if (process.env.METRICS_ONLY === undefined) {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ sampler, spanProcessors: [new BatchSpanProcessor(dropSpans)] }))
}
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())

async function app (telemetry) {
  const app = Fastify()
  await app.register(fastifyRefreshAuth, { secret, verifyCredentials, telemetry })
  app.get('/private', { preHandler: app.authenticate }, async () => 'ok')
  await app.ready()
  return app
}

/** One login and one refresh of its cookie. */
async function loginAndRefresh (app) {
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: {} })
  const cookie = login.headers['set-cookie'].split(';')[0]
  await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie } })
}

// Operations per second of this process's CPU time, not of the wall clock: other jobs on the machine take
// the CPU away from both variants unevenly, but not the CPU time each operation costs.
async function opsPerSecond (run) {
  const end = performance.now() + ROUND_MS
  const before = process.cpuUsage()
  let ops = 0
  while (performance.now() < end) {
    await run()
    ops++
  }
  const { user, system } = process.cpuUsage(before)
  return ops / ((user + system) / 1e6)
}

async function compare (name, off, on) {
  await off(); await on() // warm up
  const ratios = []
  const rates = { off: [], on: [] }
  for (let round = 0; round < ROUNDS; round++) {
    const a = await opsPerSecond(off)
    const b = await opsPerSecond(on)
    rates.off.push(a)
    rates.on.push(b)
    ratios.push(b / a)
  }
  const median = values => values.slice().sort((x, y) => x - y)[Math.floor(values.length / 2)]
  const ratio = median(ratios)
  console.log(`${name}: off ${median(rates.off).toFixed(0)} ops/s, on ${median(rates.on).toFixed(0)} ops/s, ` +
    `on/off ${ratio.toFixed(3)} (cost ${((1 - ratio) * 100).toFixed(1)}%)`)
}

const quiet = await app(false)
const reported = await app(process.env.AA === undefined)
await compare('login + refresh, telemetry', () => loginAndRefresh(quiet), () => loginAndRefresh(reported))

const counted = await app({ countAuthentications: true })
const token = (await reported.inject({ method: 'POST', url: '/auth/login', payload: {} })).json().access_token
const authorization = `Bearer ${token}`
const get = target => target.inject({ url: '/private', headers: { authorization } })
await compare('authenticate, countAuthentications', () => get(reported), () => get(counted))
for (const target of [quiet, reported, counted]) await target.close()
process.exit(0)
