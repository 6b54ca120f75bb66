import t from 'tap'
import { PostgresStore } from '../lib/index.js'
import { runSessionModel } from '../lib/testing/session-model.js'
import { postgresPool, requirePostgres, testSchema } from './helpers/postgres.js'

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file

// what each longer run must have done, so a change to the generator cannot quietly stop testing a part
const EXERCISED = [
  'create', 'create ended sessions', 'create limit-reached', 'rotate', 'present', 'revoke', 'revokeUser', 'revokeOtherSessions'
]

t.test('PostgresStore follows the reference model of rotation, reuse, revocation and limits', async (t) => {
  if (!await requirePostgres(t)) return
  const schema = await testSchema(t, __filename)
  const store = new PostgresStore({ pool: postgresPool(t), table: `${schema}.refresh_auth_sessions`, cleanupInterval: 0 })
  await store.migrate()
  t.teardown(() => store.close())
  for (const seed of [1, 2, 3, 20261201]) {
    t.test(`seed ${seed}`, async (t) => {
      const tally = await runSessionModel({ store, seed, steps: 250 })
      t.same(EXERCISED.filter(what => !(tally[what] > 0)), [], `every kind of operation ran: ${JSON.stringify(tally)}`)
    })
  }
})
