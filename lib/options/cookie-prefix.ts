import { refuseOption as fail } from '../errors.js'
import type { CookieSettings } from './types.js'

/**
 * Cookie prefixes (RFC 6265bis §4.1.3), which browsers match in any case: a `__Secure-` cookie must be
 * `Secure`, a `__Host-` one also `Path=/` (and host-only, which this cookie always is). A browser drops
 * a cookie that breaks these rules, so refresh would silently stop working: refused at registration.
 */
export function checkCookiePrefix ({ name, path, secure }: Pick<CookieSettings, 'name' | 'path' | 'secure'>): void {
  const lower = name.toLowerCase()
  if (lower.startsWith('__host-')) {
    if (!secure) fail('a cookie.name starting with __Host- needs cookie.secure (browsers match the prefix in any case)')
    if (path !== '/') fail("a cookie.name starting with __Host- needs cookie.path '/' (browsers drop it with any other Path); use the __Secure- prefix for a scoped path")
  } else if (lower.startsWith('__secure-') && !secure) {
    fail('a cookie.name starting with __Secure- needs cookie.secure (browsers match the prefix in any case)')
  }
}
