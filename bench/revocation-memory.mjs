// Heap per entry of the revoked-session set: `npm run bench:revocation-memory -- [--entries N]`
// (node --expose-gc). Each instance keeps the sessions that ended for one access-token lifetime (plus the
// clock tolerance and a minute); this measures what one such entry costs, after a full garbage collection:
// with its session id (as the feed delivers it: a string of its own) and without (the map structure alone).
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { SessionRevocations } from '../dist/esm/sessions/revocation.js'

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc (npm run bench:revocation-memory does)')

const { values: args } = parseArgs({ options: { entries: { type: 'string' } } })
const ENTRIES = Number(args.entries ?? 100_000)
const log = { info () {}, warn () {} }

function settle () {
  globalThis.gc()
  globalThis.gc()
  return process.memoryUsage().heapUsed
}

/** A session id as the feed hands it over: a flat string of its own (randomUUID builds a rope). */
function sessionId () {
  return JSON.parse(JSON.stringify(randomUUID()))
}

function measure (ids) {
  const set = new SessionRevocations({ failClosed: false, feedTolerance: 10, tokenLifetime: 900, fed: true, log })
  const before = settle()
  const now = Date.now()
  for (let i = 0; i < ids.length; i++) set.revoked([ids[i] ?? sessionId()], now)
  const after = settle()
  if (set.size !== ids.length) throw new Error(`expected ${ids.length} entries, got ${set.size}`)
  return { bytes: (after - before) / ids.length }
}

// with the id: the set is the only holder of each session id, as with ids read from the feed
const withIds = measure(new Array(ENTRIES).fill(undefined))
// without: the ids are made (and kept) beforehand, so only the Map's own cost is counted
const ids = Array.from({ length: ENTRIES }, sessionId)
const structure = measure(ids)
console.log(`revoked-session set, ${ENTRIES} entries on ${process.version}:`)
console.log(`  ${withIds.bytes.toFixed(0)} bytes per entry with its 36-character session id, ${structure.bytes.toFixed(0)} bytes for the Map entry alone`)
console.log(`  at 100 sessions ended per second, one 15-minute lifetime holds ${(96_000 * withIds.bytes / 1048576).toFixed(1)} MB`)
