import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { COOKIE, USER } from './helpers/app.js'
import { REDIS_URL, deleteKeys, redisClient, requireRedis, uniquePrefix } from './helpers/redis.js'

// two forked app processes on a machine shared with other test runs: more than tap's default 30 s
t.setTimeout(120_000)

interface Instance {
  name: string
  post (path: string, refreshToken?: string, body?: unknown): Promise<{ status: number, refreshToken: string | undefined }>
}

/** Starts one app instance in its own Node process; stopped when the test ends. */
async function startInstance (t: Test, name: string, prefix: string): Promise<Instance> {
  const child: ChildProcess = fork(join(__dirname, 'helpers', 'redis-instance.ts'), [JSON.stringify({ prefix, redisUrl: REDIS_URL })], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  t.teardown(async () => {
    if (child.exitCode !== null) return
    const exited = once(child, 'exit')
    child.send('close')
    const timer = setTimeout(() => child.kill(), 5000)
    await exited
    clearTimeout(timer)
  })
  const [message] = await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => { throw new Error(`instance ${name} exited with ${code}`) })
  ]) as [{ port: number }]
  const base = `http://127.0.0.1:${message.port}`
  return {
    name,
    async post (path, refreshToken, body) {
      const headers: Record<string, string> = {}
      if (refreshToken !== undefined) headers.cookie = `${COOKIE}=${refreshToken}`
      if (body !== undefined) headers['content-type'] = 'application/json'
      const response = await fetch(base + path, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) })
      await response.arrayBuffer()
      const cookie = response.headers.getSetCookie().find(line => line.startsWith(`${COOKIE}=`))
      const value = cookie === undefined ? '' : decodeURIComponent(cookie.slice(COOKIE.length + 1).split(';')[0])
      return { status: response.status, refreshToken: value === '' ? undefined : value }
    }
  }
}

t.test('two instances in separate processes share sessions through Redis', async (t) => {
  if (!await requireRedis(t)) return
  const prefix = uniquePrefix(__filename)
  const client = redisClient(t, null)
  t.teardown(() => deleteKeys(client, prefix))
  const [a, b] = await Promise.all([startInstance(t, 'A', prefix), startInstance(t, 'B', prefix)])

  t.test('login on A, refresh on B, replay on A is detected', async (t) => {
    const login = await a.post('/auth/login', undefined, USER)
    t.equal(login.status, 200)
    const refreshed = await b.post('/auth/refresh', login.refreshToken)
    t.equal(refreshed.status, 200)
    t.ok(refreshed.refreshToken)
    const replay = await a.post('/auth/refresh', login.refreshToken)
    t.equal(replay.status, 401, 'the rotated token is refused on A')
    t.equal((await b.post('/auth/refresh', refreshed.refreshToken)).status, 401, 'and its family is revoked everywhere')
  })

  t.test('50 concurrent refreshes of one token over A and B: exactly one succeeds', async (t) => {
    const login = await a.post('/auth/login', undefined, USER)
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).post('/auth/refresh', login.refreshToken)))
    const statuses = results.map(result => result.status)
    t.equal(statuses.filter(status => status === 200).length, 1, 'one success')
    t.equal(statuses.filter(status => status === 401).length, 49, 'the others are refused')
  })

  t.test('logout on B ends the session for A; logout everywhere on B ends the sessions started on A', async (t) => {
    const first = await a.post('/auth/login', undefined, USER)
    t.equal((await b.post('/auth/logout', first.refreshToken)).status, 204)
    t.equal((await a.post('/auth/refresh', first.refreshToken)).status, 401)

    const second = await a.post('/auth/login', undefined, USER)
    const third = await a.post('/auth/login', undefined, USER)
    t.equal((await b.post('/auth/logout', second.refreshToken, { all: true })).status, 204)
    t.equal((await a.post('/auth/refresh', third.refreshToken)).status, 401)
  })
})
