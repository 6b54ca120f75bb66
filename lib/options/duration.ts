import ms from 'ms'
import { refuseOption } from '../errors.js'

// Duration strings are read by `ms`, the parser jsonwebtoken uses. What differs is ours to say: a
// string without a unit is seconds, as a number is (ms and jsonwebtoken read it as milliseconds), and
// a lifetime is never negative.
const UNITLESS = /^\d+(?:\.\d+)?$/

/**
 * Reads a lifetime: a number is seconds; a string is a count with a unit that `ms` knows ('15m', '7d',
 * '30 days', '1.5h'), or a count of seconds without one ('600'). Returns whole seconds (rounded down),
 * or NaN for anything else: a negative, NaN or infinite value, or a string `ms` cannot read.
 */
export function parseDuration (value: unknown): number {
  const seconds = typeof value === 'number' ? value : typeof value === 'string' ? stringSeconds(value.trim()) : NaN
  return Number.isFinite(seconds) && seconds >= 0 ? Math.floor(seconds) : NaN
}

function stringSeconds (text: string): number {
  if (UNITLESS.test(text)) return Number(text)
  // ms throws on an empty string and returns undefined for one it cannot read
  const milliseconds: number | undefined = text === '' ? undefined : ms(text as ms.StringValue)
  return milliseconds === undefined ? NaN : milliseconds / 1000
}

/** A duration option in seconds, or the option refused with a message that names it. */
export function durationOption (value: unknown, fallback: number | string, name: string, allowZero = false): number {
  const seconds = parseDuration(value ?? fallback)
  if (Number.isNaN(seconds) || (!allowZero && seconds < 1)) {
    refuseOption(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number of seconds or a duration string such as '15m'`)
  }
  return seconds
}
