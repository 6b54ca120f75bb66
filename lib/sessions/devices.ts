import Bowser from 'bowser'
import type { SessionInfo } from '../stores/store.js'

/**
 * A live session as `listUserSessions` and `GET {prefix}/sessions` show it, for an "active devices" page:
 * when it was last seen, and what device it is.
 *
 * @example
 * const sessions: UserSession[] = await app.refreshAuth.listUserSessions(userId)
 * const rows = sessions.map(({ device, lastSeenAt }) => `${device.browser} on ${device.os}, ${new Date(lastSeenAt).toISOString()}`)
 */
export interface UserSession extends SessionInfo {
  /** Milliseconds since the epoch: the last refresh (login if none yet), as `lastRefreshedAt`. */
  lastSeenAt: number
  /** What the User-Agent of the login says of the device. */
  device: SessionDevice
}

/**
 * What a session's User-Agent says of the device, read with bowser (MIT): null where it does not say.
 *
 * @example
 * const { device } = (await app.refreshAuth.listUserSessions(userId))[0]
 * // { browser: 'Firefox', os: 'macOS', type: 'desktop' }
 */
export interface SessionDevice {
  /** The browser's name: `'Chrome'`, `'Safari'`, `'Firefox'`… */
  browser: string | null
  /** The operating system's name: `'Windows'`, `'macOS'`, `'iOS'`, `'Android'`, `'Linux'`… */
  os: string | null
  /** The kind of device. */
  type: DeviceType | null
}

/**
 * The kinds of device bowser tells apart.
 *
 * @example
 * const icon: Record<DeviceType, string> = { desktop: '🖥', mobile: '📱', tablet: '📱', tv: '📺', bot: '🤖' }
 */
export type DeviceType = 'desktop' | 'mobile' | 'tablet' | 'tv' | 'bot'

const DEVICE_TYPES: ReadonlySet<string> = new Set<DeviceType>(['desktop', 'mobile', 'tablet', 'tv', 'bot'])

/**
 * Parsed when sessions are listed, not at login: a login stays as cheap as it was, and a better parser
 * (a later bowser) tells old sessions apart too. About 20 µs per User-Agent (bench/README.md, "devices").
 */
export function parseDevice (userAgent: string | undefined): SessionDevice {
  // bowser throws on an empty string
  if (userAgent === undefined || userAgent === '') return { browser: null, os: null, type: null }
  const { browser, os, platform } = Bowser.parse(userAgent)
  return {
    browser: nonEmpty(browser.name),
    os: nonEmpty(os.name),
    type: isDeviceType(platform.type) ? platform.type : null
  }
}

function isDeviceType (type: string | undefined): type is DeviceType {
  return type !== undefined && DEVICE_TYPES.has(type)
}

function nonEmpty (name: string | undefined): string | null {
  return name === undefined || name === '' ? null : name
}

/** A store's view of a session, with when it was last seen and its device. */
export function describeSession (session: SessionInfo): UserSession {
  return { ...session, lastSeenAt: session.lastRefreshedAt, device: parseDevice(session.userAgent) }
}
