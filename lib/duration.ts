const UNIT_SECONDS: Record<string, number> = {
  s: 1,
  sec: 1,
  secs: 1,
  second: 1,
  seconds: 1,
  m: 60,
  min: 60,
  mins: 60,
  minute: 60,
  minutes: 60,
  h: 3600,
  hr: 3600,
  hrs: 3600,
  hour: 3600,
  hours: 3600,
  d: 86400,
  day: 86400,
  days: 86400,
  w: 604800,
  week: 604800,
  weeks: 604800
}

const DURATION = /^(\d+(?:\.\d+)?)\s*([a-z]+)?$/i

/**
 * Reads a lifetime: a number is seconds, a string is a count with a unit ('15m', '7d', '30 days').
 * Returns whole seconds, or NaN when the value is not a duration.
 */
export function parseDuration (value: unknown): number {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.floor(value) : NaN
  }
  if (typeof value !== 'string') return NaN
  const match = DURATION.exec(value.trim())
  if (match === null) return NaN
  const unit = match[2] === undefined ? 1 : UNIT_SECONDS[match[2].toLowerCase()]
  if (unit === undefined) return NaN
  return Math.floor(Number(match[1]) * unit)
}
