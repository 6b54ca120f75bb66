import { createServer } from 'node:net'
import { join } from 'node:path'
import { Cluster } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisStore } from '../lib/index.js'
import { storeContract } from '../lib/testing/store-contract.js'
import { USER, buildApp, login, refresh } from './helpers/app.js'
import { eventually, startAppProcess } from './helpers/app-process.js'
import { uniquePrefix } from './helpers/redis.js'
import { CLUSTER_NODES, clusterClient, primaryOf, requireCluster } from './helpers/redis-cluster.js'
import { redisKeys } from './helpers/redis-keys.js'

// real servers, on a machine shared with other test runs: more than tap's default 30 s per file

const INSTANCE = join(__dirname, 'helpers', 'redis-cluster-instance.ts')

/** The battery's tests as tap subtests: the battery throws (node:assert) on failure. */
function tapTest (parent: Test) {
  return (name: string, fn: () => Promise<void>) => parent.test(name, async (t) => {
    await fn()
    t.pass('the store keeps the contract')
  })
}

/** A port nothing listens on. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

function sessionIdOf (token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid
}

t.test('RedisStore on a three-primary Redis Cluster', async (t) => {
  if (!await requireCluster(t)) return
  const prefix = uniquePrefix(__filename)
  const client = clusterClient(t, prefix)
  const primaries = await client.cluster('SLOTS') as unknown[]
  t.equal(primaries.length, 3, 'three primaries share the slots')

  t.test('the store contract battery through an ioredis Cluster client', async (t) => {
    const deadClients: Cluster[] = []
    t.teardown(() => { for (const dead of deadClients) dead.disconnect() })
    const deadPort = await closedPort()
    storeContract({
      test: tapTest(t),
      createStore: () => new RedisStore({ client, prefix: `${prefix}contract:` }),
      isStored: async (_store, session) => await client.exists(redisKeys(`${prefix}contract:`).session(session.sessionId)) === 1,
      // another instance of the app: its own Cluster client on the same nodes
      createPeer: () => new RedisStore({ client: clusterClient(t, null), prefix: `${prefix}contract:` }),
      // ioredis' defaults: offline queue on, reconnecting forever; the store's own timeout must answer
      createFailingStore: () => {
        const dead = new Cluster([{ host: '127.0.0.1', port: deadPort }])
        dead.on('error', () => {})
        deadClients.push(dead)
        return new RedisStore({ client: dead, prefix, timeout: 200 })
      }
    })
  })

  t.test('one user\'s sessions on different primaries: listUserSessions and revokeUserSessions reach them all', async (t) => {
    const store = new RedisStore({ client, prefix: `${prefix}app:` })
    const app = await buildApp(t, { store })
    // logins until the user's sessions sit on every primary (random ids: a handful are enough)
    const tokens: string[] = []
    const nodes = new Set<string>()
    for (let i = 0; i < 60 && nodes.size < 3; i++) {
      const { refreshToken } = await login(app)
      tokens.push(refreshToken)
      nodes.add(await primaryOf(client, redisKeys(`${prefix}app:`).session(sessionIdOf(refreshToken))))
    }
    t.equal(nodes.size, 3, `${tokens.length} sessions of one user on the primaries ${[...nodes].join(', ')}`)
    t.not(await primaryOf(client, redisKeys(`${prefix}app:`).userIndex('42')), undefined, 'the user index lives in one slot')

    const listed = await app.refreshAuth.listUserSessions('42')
    t.same(listed.map(s => s.sessionId).sort(), tokens.map(sessionIdOf).sort(), 'every session is listed, whichever node holds it')

    const refreshed = await refresh(app, tokens[0])
    t.equal(refreshed.statusCode, 200, 'a session refreshes on the cluster')
    await app.refreshAuth.revokeUserSessions('42')
    t.same(await app.refreshAuth.listUserSessions('42'), [])
    for (const token of tokens.slice(1)) t.equal((await refresh(app, token)).statusCode, 401, 'revoked on its node')
    for (const token of tokens) t.same(await client.hgetall(redisKeys(`${prefix}app:`).session(sessionIdOf(token))), { x: 'revoke-user' }, 'its key is gone but for its mark')
  })

  t.test('two instances in separate processes share sessions through the cluster', async (t) => {
    const shared = `${prefix}shared:`
    const [a, b] = await Promise.all([
      // strict: reuse is what this test is about
      startAppProcess(t, 'A', INSTANCE, { prefix: shared, nodes: CLUSTER_NODES, options: { refreshToken: { reuseInterval: 0 } } }),
      startAppProcess(t, 'B', INSTANCE, { prefix: shared, nodes: CLUSTER_NODES, options: { refreshToken: { reuseInterval: 0 } } })
    ])

    const first = await a.post('/auth/login', undefined, USER)
    t.equal(first.status, 200)
    const refreshed = await b.post('/auth/refresh', first.refreshToken)
    t.equal(refreshed.status, 200, 'login on A, refresh on B')
    t.equal((await a.post('/auth/refresh', first.refreshToken)).status, 401, 'the replay on A is detected')
    t.equal((await b.post('/auth/refresh', refreshed.refreshToken)).status, 401, 'and the family is revoked everywhere')

    const raced = await a.post('/auth/login', undefined, USER)
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).post('/auth/refresh', raced.refreshToken)))
    t.equal(results.filter(r => r.status === 200).length, 1, '50 concurrent refreshes over A and B: one success')
    t.equal(results.filter(r => r.status === 401).length, 49)

    const second = await a.post('/auth/login', undefined, USER)
    t.equal(await a.private(second.accessToken as string), 200)
    t.equal((await b.post('/auth/logout', second.refreshToken)).status, 204)
    t.equal((await a.post('/auth/refresh', second.refreshToken)).status, 401, 'logout on B ends the session for A')
    t.ok(await eventually(async () => await a.private(second.accessToken as string) === 401), 'and A refuses its access token within a couple of seconds')
  })
})
