import { basename } from 'node:path'
import { Redis, type RedisOptions } from 'ioredis'
import type { Test } from 'tap'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * Null when a Redis server answers at REDIS_URL, else why not. Never null-and-skip in CI: when the CI
 * environment variable is set, a missing Redis is an error, not a skip.
 */
export async function redisUnavailable (): Promise<string | null> {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 1000, maxRetriesPerRequest: 0 })
  let socketError: Error | undefined
  probe.on('error', (err: Error) => { socketError ??= err })
  try {
    await probe.connect()
    await probe.ping()
    return null
  } catch (err) {
    const reason = `no Redis answers at ${REDIS_URL} (${(socketError ?? err as Error).message}); start redis-server or set REDIS_URL`
    if (process.env.CI) throw new Error(`Redis is required in CI: ${reason}`)
    return reason
  } finally {
    probe.disconnect()
  }
}

/**
 * Skips the whole file (saying why) when no Redis answers; returns true when the tests can run.
 */
export async function requireRedis (t: Test): Promise<boolean> {
  const reason = await redisUnavailable()
  if (reason === null) return true
  t.comment(`SKIPPED: the Redis tests of ${basename(t.name)} did not run: ${reason}`)
  t.plan(0, `Redis tests skipped: ${reason}`)
  return false
}

/** A key prefix of its own for a test file, so files running at once never meet. */
export function uniquePrefix (file: string): string {
  return `fra-test:${basename(file).replace(/\W/g, '-')}:${process.pid}:`
}

/** A client on REDIS_URL, closed (and the prefix's keys deleted) when the test ends. */
export function redisClient (t: Test, prefix: string | null, options: RedisOptions = {}): Redis {
  const client = new Redis(REDIS_URL, options)
  t.teardown(async () => {
    if (prefix !== null) await deleteKeys(client, prefix)
    client.disconnect()
  })
  return client
}

export async function deleteKeys (client: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    if (keys.length > 0) await client.del(...keys)
    cursor = next
  } while (cursor !== '0')
}

/** Whether a property of an ioredis client is RedisStore's script `what` (registered as `refreshAuth_<what>_<digest>`). */
export function isScript (name: string | symbol, what: string): boolean {
  return typeof name === 'string' && name.startsWith(`refreshAuth_${what}_`)
}
