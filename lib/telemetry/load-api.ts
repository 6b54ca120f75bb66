import type * as OpenTelemetryApi from '@opentelemetry/api'

export type OpenTelemetry = typeof OpenTelemetryApi

let loaded: Promise<OpenTelemetry | null> | undefined

/**
 * `@opentelemetry/api`, an optional peer dependency, or null when it is not installed: imported once per
 * process, so an app without it pays one failed import at its first registration.
 */
export async function loadOpenTelemetry (): Promise<OpenTelemetry | null> {
  loaded ??= importOptional(async () => await import('@opentelemetry/api'))
  return await loaded
}

/** What `load` imports, or null when it cannot be imported (an optional peer not installed). */
export async function importOptional<T> (load: () => Promise<T>): Promise<T | null> {
  try {
    return await load()
  } catch {
    return null
  }
}
