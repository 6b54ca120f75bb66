import type { AuditHook, LogoutEvent } from '../audit.js'
import type { SessionStore } from '../stores/store.js'
import { loadOpenTelemetry } from './load-api.js'
import { OpenTelemetrySessions } from './opentelemetry.js'
import type { AuthenticationOutcome } from './session-telemetry.js'
import { timedStore } from './timed-store.js'

/** What the plugin reports to: the instruments, the timed store, and the authenticate counter when asked for. */
export interface PluginTelemetry {
  sessions: OpenTelemetrySessions
  store: SessionStore
  /** `onLogout` counting each end under its reason before calling the host's. */
  onLogout: AuditHook<LogoutEvent>
  countAuthentication: ((outcome: AuthenticationOutcome) => void) | null
}

/**
 * The plugin's telemetry, or null when turned off or `@opentelemetry/api` is not installed. `activeSessions`
 * counts the store's live sessions where that is free (a MemoryStore).
 */
export async function startTelemetry (
  option: boolean | { countAuthentications?: boolean } | undefined,
  store: SessionStore,
  onLogout: AuditHook<LogoutEvent> | undefined,
  activeSessions: (() => number) | null
): Promise<PluginTelemetry | null> {
  if (option === false) return null
  const api = await loadOpenTelemetry()
  if (api === null) return null
  const sessions = new OpenTelemetrySessions(api)
  if (activeSessions !== null) sessions.observeActiveSessions(activeSessions)
  return {
    sessions,
    store: timedStore(store, sessions),
    onLogout: (event, request) => {
      sessions.sessionEnded(event.reason)
      return onLogout?.(event, request)
    },
    countAuthentication: typeof option === 'object' && option.countAuthentications === true ? sessions.countAuthentications() : null
  }
}
