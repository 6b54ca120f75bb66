// Issue 20 #10: a Redis failover with replication lag never ends sessions as theft, at the default options. A real
// Sentinel setup on loopback (scripts/redis-sentinel.sh): replication is held back by a TCP proxy between the
// replica and the primary, every session refreshes once (acknowledged by the primary, never replicated), the
// primary is killed and the Sentinels promote the replica, which lacks those rotations. Each client then
// refreshes with the token it holds: ahead of the store, it goes on; onReuseDetected never fires; no fork.
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisStore } from '../lib/index.js'
import { buildApp, getPrivate, login, refresh, refreshCookie } from './helpers/app.js'
import { redisUnavailable } from './helpers/redis.js'
import { sentinelSetup } from './helpers/redis-sentinel.js'

const SESSIONS = 20

t.test('a failover that loses acknowledged rotations ends no session as theft', async (t) => {
  const reason = await redisUnavailable()
  if (reason !== null) {
    t.comment(`SKIPPED: ${reason}`)
    return
  }
  const setup = await sentinelSetup(t)
  const client = new Redis({ sentinels: setup.sentinels, name: setup.name })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const reused: unknown[] = []
  const app = await buildApp(t, {
    store: new RedisStore({ client, prefix: 'fra-test:sentinel:' }),
    onReuseDetected: (event) => { reused.push(event) }
  })

  const tokens: string[] = []
  for (let i = 0; i < SESSIONS; i++) tokens.push((await login(app)).refreshToken)
  for (let i = 0; i < SESSIONS; i++) {
    const refreshed = await refresh(app, tokens[i])
    t.equal(refreshed.statusCode, 200)
    tokens[i] = refreshCookie(refreshed) as string
  }
  await setup.inSync()

  // replication held back: these rotations reach the primary and its answers reach the clients, nothing more
  setup.replication.hold()
  const behind = [...tokens]
  for (let i = 0; i < SESSIONS; i++) {
    const refreshed = await refresh(app, tokens[i])
    t.equal(refreshed.statusCode, 200, 'acknowledged by the primary')
    tokens[i] = refreshCookie(refreshed) as string
  }
  await setup.killPrimary()
  await setup.failedOver()

  // the store came back without the last rotations: each client's token is one generation ahead of it
  let answered = await refresh(app, tokens[0])
  for (let i = 0; i < 300 && answered.statusCode === 503; i++) {
    await sleep(100)
    answered = await refresh(app, tokens[0])
  }
  t.equal(answered.statusCode, 200, 'the first session refreshes once the client follows the new primary')
  tokens[0] = refreshCookie(answered) as string
  for (let i = 1; i < SESSIONS; i++) {
    const refreshed = await refresh(app, tokens[i])
    t.equal(refreshed.statusCode, 200, `session ${i}: the token from the lost rotation refreshes`)
    tokens[i] = refreshCookie(refreshed) as string
  }
  t.same(reused, [], 'onReuseDetected never fired')

  // one chain per session: the newest token goes on, and the token the store had kept as live is now behind
  for (let i = 0; i < SESSIONS; i++) {
    const next = await refresh(app, tokens[i])
    t.equal(next.statusCode, 200)
    t.equal((await getPrivate(app, next.json().access_token)).statusCode, 200)
  }
  t.equal((await refresh(app, behind[0])).statusCode, 401, 'a token from behind the store is refused')
  t.equal(reused.length, 1, 'as reuse, as any rotated token is')
})
