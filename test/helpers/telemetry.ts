import { context, metrics, trace, type Attributes } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  AggregationTemporality, DataPointType, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader,
  type MetricData
} from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'

/** A data point as a test reads it: its attributes and its value (a sum, or a histogram's count, sum and min). */
export interface Point {
  attributes: Attributes
  value: number
  count?: number
  min?: number
}

/**
 * The host's OpenTelemetry setup, as a test makes it: global meter and tracer providers with in-memory
 * exporters, and the AsyncLocalStorage context manager (what the Node SDK registers) for child spans.
 */
export class TelemetryCapture {
  readonly #metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  readonly #reader = new PeriodicExportingMetricReader({ exporter: this.#metricExporter, exportIntervalMillis: 3_600_000 })
  readonly #spanExporter = new InMemorySpanExporter()
  readonly #meterProvider = new MeterProvider({ readers: [this.#reader] })
  readonly #tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.#spanExporter)] })
  readonly #contextManager = new AsyncLocalStorageContextManager()

  constructor () {
    metrics.setGlobalMeterProvider(this.#meterProvider)
    trace.setGlobalTracerProvider(this.#tracerProvider)
    context.setGlobalContextManager(this.#contextManager.enable())
  }

  /** Every metric collected now. */
  async metrics (): Promise<MetricData[]> {
    this.#metricExporter.reset()
    await this.#reader.forceFlush()
    return this.#metricExporter.getMetrics().flatMap(resource => resource.scopeMetrics.flatMap(scope => scope.metrics))
  }

  /** The points of one metric, or an empty list when it was never recorded. */
  async points (name: string): Promise<Point[]> {
    const metric = (await this.metrics()).find(m => m.descriptor.name === name)
    if (metric === undefined) return []
    return metric.dataPoints.map(point => {
      const value = point.value
      if (typeof value === 'number') return { attributes: point.attributes, value }
      return { attributes: point.attributes, value: value.sum ?? 0, count: value.count, min: value.min }
    })
  }

  /** The value of one metric's point with these attributes (0 when none). */
  async value (name: string, attributes: Attributes): Promise<number> {
    const points = await this.points(name)
    const point = points.find(p => JSON.stringify(p.attributes) === JSON.stringify(attributes))
    return point?.value ?? 0
  }

  /** How a metric is exported: its point type (a sum, a gauge, a histogram), unit, and for a sum, whether monotonic. */
  async shape (name: string): Promise<{ unit: string, dataPointType: DataPointType, isMonotonic?: boolean } | undefined> {
    const metric = (await this.metrics()).find(m => m.descriptor.name === name)
    if (metric === undefined) return undefined
    const shape = { unit: metric.descriptor.unit, dataPointType: metric.dataPointType }
    return metric.dataPointType === DataPointType.SUM ? { ...shape, isMonotonic: metric.isMonotonic } : shape
  }

  spans (): ReadableSpan[] {
    return this.#spanExporter.getFinishedSpans()
  }

  resetSpans (): void {
    this.#spanExporter.reset()
  }

  async shutdown (): Promise<void> {
    await this.#meterProvider.shutdown()
    await this.#tracerProvider.shutdown()
    this.#contextManager.disable()
    metrics.disable()
    trace.disable()
    context.disable()
  }
}
