// A revocation listener that records what it hears, and a bounded wait for what it should hear: for tests
// of a store's revocation feed.
import { strict as assert } from 'node:assert'
import { setTimeout as sleep } from 'node:timers/promises'
import type { RevocationFeedStatus, RevocationListener } from '../../lib/index.js'

/** Waits until `condition` holds, polling; fails after `ms` (a bound, not a measure). */
export async function until (condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!condition()) {
    if (Date.now() > end) assert.fail(`not within ${ms}ms: ${what}`)
    await sleep(10)
  }
}

/** A listener that records the sessions it hears ended, each call, and the statuses. */
export function recorder () {
  const revoked = new Set<string>()
  const statuses: RevocationFeedStatus[] = []
  const calls: Array<{ sessionIds: readonly string[], revokedAt: number }> = []
  const listener: RevocationListener = {
    revoked (sessionIds, revokedAt) {
      calls.push({ sessionIds, revokedAt })
      for (const id of sessionIds) revoked.add(id)
    },
    status (status) { statuses.push(status) }
  }
  return { listener, revoked, statuses, calls }
}
