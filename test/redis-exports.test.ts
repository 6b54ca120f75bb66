import { execFileSync } from 'node:child_process'
import t from 'tap'
import { projectRoot as root, runNode as run } from './helpers/run-node.js'

t.test('RedisStore is exported, and loading the package never loads ioredis', async t => {
  const result = run(['-e', `
    const { RedisStore, MemoryStore } = require('fastify-refresh-auth')
    const { StoreTimeoutError } = require('fastify-refresh-auth/store')
    console.log(JSON.stringify({
      redisStore: typeof RedisStore,
      memoryStore: typeof MemoryStore,
      timeoutCode: new StoreTimeoutError('x').code,
      ioredisLoaded: Object.keys(require.cache).some(file => file.includes('ioredis'))
    }))`])
  t.same(result, { redisStore: 'function', memoryStore: 'function', timeoutCode: 'FST_REFRESH_AUTH_STORE_TIMEOUT', ioredisLoaded: false })
})

t.test('the store contract battery is a subpath export, for require and import', async t => {
  t.same(run(['-e', `
    const { storeContract } = require('fastify-refresh-auth/store-contract')
    console.log(JSON.stringify(typeof storeContract))`]), 'function')
  t.same(run(['--input-type=module', '-e', `
    import { storeContract } from 'fastify-refresh-auth/store-contract'
    import { RedisStore } from 'fastify-refresh-auth'
    console.log(JSON.stringify([typeof storeContract, typeof RedisStore]))`]), ['function', 'function'])
})

t.test('a host runs the battery against its own store with node:test', async t => {
  // MemoryStore stands in for the host's store; node:test reports in TAP and exits non-zero on a failure
  const output = execFileSync(process.execPath, ['--test-reporter=tap', '--input-type=module', '-e', `
    import { test } from 'node:test'
    import { MemoryStore } from 'fastify-refresh-auth'
    import { storeContract } from 'fastify-refresh-auth/store-contract'
    storeContract({
      test,
      createStore: () => new MemoryStore(),
      destroyStore: (store) => store.close(),
      isStored: async (store, session) => (await store.listUserSessions(session.userId, 0)).some(s => s.sessionId === session.sessionId),
      sweep: async (store) => { store.prune() },
      concurrency: 20
    })`],
  { cwd: root, encoding: 'utf8' })
  const count = (what: string) => Number(new RegExp(`# ${what} (\\d+)\\n`).exec(output)?.[1])
  t.ok(count('tests') >= 33, `the whole battery ran: ${count('tests')} tests`)
  t.equal(count('pass'), count('tests'), 'every test passed')
  t.equal(count('fail'), 0)
})
