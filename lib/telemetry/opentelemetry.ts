import type { Attributes, Counter, Histogram, Meter, Span, Tracer } from '@opentelemetry/api'
import { InvalidCredentialsError, SessionLimitError } from '../errors.js'
import type { OpenTelemetry } from './load-api.js'
import type { AuthenticationOutcome, LoginOutcome, Reported, SessionEndReason, SessionTelemetry } from './session-telemetry.js'

const SCOPE = 'fastify-refresh-auth'

/**
 * The plugin's instruments on the host's global providers (`metrics.getMeter`, `trace.getTracer`); it
 * registers none itself. Attributes are fixed words (outcomes, reasons, operation and store names): never
 * an id, a token, a cookie or anything the client sent.
 */
export class OpenTelemetrySessions implements SessionTelemetry {
  readonly #api: OpenTelemetry
  readonly #tracer: Tracer
  readonly #meter: Meter
  readonly #logins: Counter
  readonly #refreshes: Counter
  readonly #sessionsEnded: Counter
  readonly #revocationLag: Histogram
  readonly #storeDuration: Histogram

  constructor (api: OpenTelemetry) {
    this.#api = api
    this.#tracer = api.trace.getTracer(SCOPE)
    const meter = this.#meter = api.metrics.getMeter(SCOPE)
    this.#logins = meter.createCounter('refresh_auth.logins', { description: 'Logins, by outcome' })
    this.#refreshes = meter.createCounter('refresh_auth.refreshes', { description: 'Refreshes, by outcome' })
    this.#sessionsEnded = meter.createCounter('refresh_auth.sessions.ended', { description: 'Sessions ended, by the onLogout reason' })
    this.#revocationLag = meter.createHistogram('refresh_auth.revocation.lag', {
      description: 'Time from a session\'s end to this instance refusing its tokens', unit: 'ms'
    })
    this.#storeDuration = meter.createHistogram('refresh_auth.store.duration', {
      description: 'Session store calls, by operation and store', unit: 'ms'
    })
  }

  async login<T>(run: () => Promise<T>): Promise<T> {
    return await this.#inSpan('refresh_auth.login', async span => {
      try {
        const value = await run()
        this.#ended(span, this.#logins, 'success', false)
        return value
      } catch (err) {
        const outcome = loginOutcome(err)
        this.#ended(span, this.#logins, outcome, outcome === 'error')
        throw err
      }
    })
  }

  async refresh<T>(run: () => Promise<Reported<string, T>>): Promise<T> {
    return await this.#reported('refresh_auth.refresh', this.#refreshes, run)
  }

  async logout<T>(run: () => Promise<Reported<string, T>>): Promise<T> {
    return await this.#reported('refresh_auth.logout', null, run)
  }

  /** Counts a session's end under its `onLogout` reason. */
  sessionEnded (reason: SessionEndReason): void {
    this.#sessionsEnded.add(1, { reason })
  }

  /** A session this instance now refuses the tokens of, which ended at `endedAt` (ms since the epoch). */
  revocationHeard (endedAt: number): void {
    if (Number.isFinite(endedAt)) this.#revocationLag.record(Math.max(0, Date.now() - endedAt))
  }

  /**
   * Runs a store call, and records its duration; a child span of the login, refresh or logout being traced
   * (none outside one, or when no tracer records: the span would go nowhere). The store span has no children,
   * so it is started, not made active: no context switch around the call. `attributes` are the call's
   * `{ operation, store }`, made once per store and operation by the caller.
   */
  storeCall<T>(attributes: StoreCallAttributes, run: () => Promise<T>): Promise<T> {
    const parent = this.#api.trace.getActiveSpan()
    const span = parent === undefined || !parent.isRecording()
      ? null
      : this.#tracer.startSpan(`refresh_auth.store.${attributes.operation}`, { attributes })
    const started = performance.now()
    return run().then(value => {
      this.#storeCallEnded(attributes, span, started, false)
      return value
    }, (err: unknown) => {
      this.#storeCallEnded(attributes, span, started, true)
      throw err
    })
  }

  #storeCallEnded (attributes: StoreCallAttributes, span: Span | null, started: number, failed: boolean): void {
    this.#storeDuration.record(performance.now() - started, attributes)
    if (span === null) return
    if (failed) span.setStatus({ code: this.#api.SpanStatusCode.ERROR })
    span.end()
  }

  /** `refresh_auth.sessions.active`: what `count` answers at each collection. */
  observeActiveSessions (count: () => number): void {
    this.#meter.createObservableGauge('refresh_auth.sessions.active', { description: 'Live sessions in this MemoryStore' })
      .addCallback(result => result.observe(count()))
  }

  /** Turns on `refresh_auth.authentications` (one count per `authenticate`, the hot path). */
  countAuthentications (): (outcome: AuthenticationOutcome) => void {
    const counter = this.#meter.createCounter('refresh_auth.authentications', {
      description: 'Access tokens checked by authenticate, by outcome'
    })
    const success = { outcome: 'success' }
    const refused = { outcome: 'refused' }
    return outcome => counter.add(1, outcome === 'success' ? success : refused)
  }

  async #reported<T>(name: string, counter: Counter | null, run: () => Promise<Reported<string, T>>): Promise<T> {
    return await this.#inSpan(name, async span => {
      try {
        const { outcome, value } = await run()
        this.#ended(span, counter, outcome, false)
        return value
      } catch (err) {
        this.#ended(span, counter, 'unavailable', true)
        throw err
      }
    })
  }

  async #inSpan<T>(name: string, run: (span: Span) => Promise<T>): Promise<T> {
    const span = this.#tracer.startSpan(name)
    // a span that records nothing (no SDK, or not sampled) parents no store span: no context switch to pay for
    if (!span.isRecording()) return await run(span)
    const { context, trace } = this.#api
    return await context.with(trace.setSpan(context.active(), span), run, undefined, span)
  }

  #ended (span: Span, counter: Counter | null, outcome: string, failed: boolean): void {
    const attributes = outcomeAttributes(outcome)
    counter?.add(1, attributes)
    span.setAttributes(attributes)
    if (failed) span.setStatus({ code: this.#api.SpanStatusCode.ERROR })
    span.end()
  }
}

/** The `{ operation, store }` of a store call's span and duration. */
export interface StoreCallAttributes extends Attributes {
  readonly operation: string
  readonly store: string
}

// One attributes object per outcome, made once: the outcomes are a few fixed words.
const outcomes = new Map<string, Attributes>()

function outcomeAttributes (outcome: string): Attributes {
  let attributes = outcomes.get(outcome)
  if (attributes === undefined) {
    attributes = Object.freeze({ outcome })
    outcomes.set(outcome, attributes)
  }
  return attributes
}

function loginOutcome (err: unknown): LoginOutcome {
  if (err instanceof InvalidCredentialsError) return 'invalid_credentials'
  return err instanceof SessionLimitError ? 'limit_refused' : 'error'
}
