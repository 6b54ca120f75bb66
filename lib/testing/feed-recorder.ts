// For tests of a store's revocation feed: a listener that records what it hears, and a bounded wait for it.
import { strict as assert } from 'node:assert'
import { setTimeout as sleep } from 'node:timers/promises'
import type { RevocationFeedStatus, RevocationListener, SessionEndNotice } from '../stores/store.js'

/** What a recorder heard: every session id announced (with the notice last heard for it), each call, and each status. */
export interface FeedRecord {
  listener: RevocationListener
  revoked: Map<string, SessionEndNotice>
  statuses: RevocationFeedStatus[]
  calls: Array<{ sessionIds: readonly string[], revokedAt: number, notice: SessionEndNotice }>
}

/**
 * Waits until `condition` holds, polling every 10 ms; fails (node:assert) after `ms`, a bound, not a measure.
 *
 * @example
 * await until(() => heard.revoked.has(sessionId), 'the peer hears the logout')
 */
export async function until (condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!condition()) {
    if (Date.now() > end) assert.fail(`not within ${ms}ms: ${what}`)
    await sleep(10)
  }
}

/**
 * A revocation listener that records what it hears.
 *
 * @example
 * const heard = recorder()
 * const watch = store.watchRevocations(heard.listener, { retentionMs: 60_000 })
 */
export function recorder (): FeedRecord {
  const revoked = new Map<string, SessionEndNotice>()
  const statuses: RevocationFeedStatus[] = []
  const calls: FeedRecord['calls'] = []
  const listener: RevocationListener = {
    revoked (sessionIds, revokedAt, notice) {
      calls.push({ sessionIds, revokedAt, notice })
      for (const id of sessionIds) revoked.set(id, notice)
    },
    status (status) { statuses.push(status) }
  }
  return { listener, revoked, statuses, calls }
}
