import t from 'tap'
import { ProofReplayCache } from '../lib/tokens/dpop-replay.js'

// Issue 23: the per-instance cache of DPoP proof ids (RFC 9449 §11.1) is bounded in size and in time, so a flood
// of proofs cannot grow memory without bound. (Its use by the routes: test/dpop-protected.test.ts.)

t.test('an id is refused again until it expires, then accepted as new', async t => {
  const cache = new ProofReplayCache(10)
  t.equal(cache.claim('a', 2000, 1000), true, 'first sighting')
  t.equal(cache.claim('a', 2000, 1500), false, 'a replay before expiry')
  t.equal(cache.claim('a', 3000, 2000), true, 'at its expiry it is gone')
  t.equal(cache.claim('a', 3000, 2500), false)
})

t.test('bounded in size: past maxEntries the oldest id goes first', async t => {
  const cache = new ProofReplayCache(3)
  for (const id of ['a', 'b', 'c', 'd', 'e']) t.equal(cache.claim(id, 10_000, 1000), true, id)
  t.equal(cache.size, 3)
  t.equal(cache.claim('e', 10_000, 1000), false, 'the newest are kept')
  t.equal(cache.claim('a', 10_000, 1000), true, 'the oldest was dropped (its proof is refused anyway once its iat is stale)')
})

t.test('bounded in time: expired ids are dropped as new ones arrive, a few per arrival', async t => {
  const cache = new ProofReplayCache(1000)
  for (let i = 0; i < 10; i++) cache.claim(`old-${i}`, 2000, 1000)
  t.equal(cache.size, 10)
  cache.claim('new-1', 9000, 3000)
  t.equal(cache.size, 7, 'four expired ids dropped, one added')
  cache.claim('new-2', 9000, 3000)
  cache.claim('new-3', 9000, 3000)
  t.equal(cache.size, 3, 'every expired id gone; a live one stops the sweep')
})
