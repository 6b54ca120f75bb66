import type { FastifyRequest } from 'fastify'
import { InvalidClaimsError, InvalidSubjectError } from '../errors.js'
import { callHost } from './host-call.js'
import type { LoginUser } from '../types.js'
import { RESERVED_CLAIMS } from '../tokens/codec.js'

// Tokens over 8 KiB are refused by verification: the subject and the claims must leave room for the rest.
const MAX_SUBJECT_LENGTH = 256
const MAX_CLAIMS_BYTES = 4096
// Levels of objects and arrays, the claims object itself included.
const MAX_CLAIMS_DEPTH = 8
// `constructor`, `__proto__`, `toString`, `hasOwnProperty`…: jsonwebtoken looks claim names up in plain
// objects of its own (a `constructor` claim makes it throw), and so may any code that reads `request.user`.
const UNSAFE_NAMES: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype))

/**
 * The tokens' `sub` for a user: what `subject` gives, if it is a non-empty string or a finite number
 * (stringified). Anything else (an object id would make every such user `[object Object]`, one identity)
 * is logged and refused with `InvalidSubjectError`.
 */
export async function hostSubject (subject: (user: LoginUser) => unknown, user: LoginUser, request: FastifyRequest, timeout: number): Promise<string> {
  const value = await callHost('subject', request.log, timeout, () => subject(user))
  const sub = userIdOf(value)
  if (sub !== null) return sub
  request.log.error({ option: 'subject', got: describeSubject(value) },
    'fastify-refresh-auth: the subject option (default: user.id) must give a non-empty string of at most 256 characters or a finite number; login refused')
  throw new InvalidSubjectError()
}

/**
 * A user id as tokens carry it in `sub`: a non-empty string of at most 256 characters, or a finite
 * number made a string; else null.
 */
export function userIdOf (id: unknown): string | null {
  if (typeof id === 'string') return id.length > 0 && id.length <= MAX_SUBJECT_LENGTH ? id : null
  return typeof id === 'number' && Number.isFinite(id) ? String(id) : null
}

// Only `typeof`: nothing here may throw, whatever the host gave (a revoked Proxy, say).
function describeSubject (value: unknown): string {
  if (typeof value === 'string') return value.length === 0 ? 'an empty string' : `a string of ${value.length} characters`
  if (typeof value === 'number') return String(value)
  if (value === null) return 'null'
  return typeof value === 'undefined' ? 'undefined' : `a value of type ${typeof value}`
}

/**
 * The host's extra claims for a user, copied as plain JSON data with reserved names dropped. A copy, so
 * that what is checked is what is signed (no getter or later change can slip something in). Anything
 * that cannot go into a token is logged with the reason (a path and a type, never a value) and refused
 * with `InvalidClaimsError`.
 */
export async function hostClaims (
  claims: (user: LoginUser, request: FastifyRequest) => unknown,
  user: LoginUser,
  request: FastifyRequest,
  timeout: number
): Promise<Record<string, unknown>> {
  const value = await callHost('claims', request.log, timeout, () => claims(user, request))
  let copy: Record<string, unknown> | Refusal
  try {
    copy = copyClaims(value)
  } catch (err) {
    // a getter or a Proxy that throws while being read
    request.log.error({ err, option: 'claims' }, 'fastify-refresh-auth: reading the claims threw; login refused')
    throw new InvalidClaimsError()
  }
  if (!(copy instanceof Refusal) && Buffer.byteLength(JSON.stringify(copy)) > MAX_CLAIMS_BYTES) {
    copy = new Refusal(`claims: more than ${MAX_CLAIMS_BYTES} bytes as JSON`)
  }
  if (copy instanceof Refusal) {
    request.log.error({ option: 'claims', reason: copy.reason }, 'fastify-refresh-auth: the claims option gave data that cannot go into a token; login refused')
    throw new InvalidClaimsError()
  }
  return copy
}

/** Why some claims were refused; returned rather than thrown, as nothing outside this module sees it. */
class Refusal {
  constructor (readonly reason: string) {}
}

function copyClaims (value: unknown): Record<string, unknown> | Refusal {
  if (!isPlainObject(value)) return new Refusal(`claims: ${describe(value)} is not a plain object`)
  // every value costs at least a byte of JSON: counting them stops a huge structure early
  const budget = { values: MAX_CLAIMS_BYTES }
  const copy: Record<string, unknown> = {}
  for (const name of Object.keys(value)) {
    if (RESERVED_CLAIMS.has(name)) continue
    const claim = copyValue(value, name, `claims.${name}`, 1, budget)
    if (claim instanceof Refusal) return claim
    if (claim !== undefined) copy[name] = claim
  }
  return copy
}

/** `container[key]` as plain JSON data; undefined object members are left out, as JSON does. */
function copyValue (container: Record<string, unknown> | unknown[], key: string | number, path: string, depth: number, budget: { values: number }): unknown {
  if (typeof key === 'string' && UNSAFE_NAMES.has(key)) return new Refusal(`${path}: a name of Object.prototype`)
  const value = (container as Record<string | number, unknown>)[key]
  if (--budget.values < 0) return new Refusal(`claims: more than ${MAX_CLAIMS_BYTES} bytes as JSON`)
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : new Refusal(`${path}: ${String(value)} is not a JSON number`)
  if (value === undefined) return Array.isArray(container) ? new Refusal(`${path}: undefined in an array`) : undefined
  if (depth >= MAX_CLAIMS_DEPTH) return new Refusal(`${path}: nested more than ${MAX_CLAIMS_DEPTH} levels deep`)
  if (Array.isArray(value) && Object.getPrototypeOf(value) === Array.prototype) {
    const items: unknown[] = []
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) return new Refusal(`${path}[${i}]: a hole in an array`)
      const item = copyValue(value, i, `${path}[${i}]`, depth + 1, budget)
      if (item instanceof Refusal) return item
      items.push(item)
    }
    return items
  }
  if (isPlainObject(value)) {
    const members: Record<string, unknown> = {}
    for (const name of Object.keys(value)) {
      const member = copyValue(value, name, `${path}.${name}`, depth + 1, budget)
      if (member instanceof Refusal) return member
      if (member !== undefined) members[name] = member
    }
    return members
  }
  return new Refusal(`${path}: ${describe(value)} is not plain JSON data`)
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

/** A type, never a value: claims may be personal data. */
function describe (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object of a class (a Date, Map, Buffer…)'
  return typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`
}
