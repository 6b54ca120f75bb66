import { basename } from 'node:path'
import { Cluster, type ClusterOptions } from 'ioredis'
import type { Test } from 'tap'

/** The throwaway cluster that scripts/redis-cluster.sh starts (and .ci/run with it). */
export const CLUSTER_NODES: Array<{ host: string, port: number }> = (process.env.REDIS_CLUSTER_NODES ?? '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003')
  .split(',').map(node => {
    const [host, port] = node.split(':')
    return { host, port: Number(port) }
  })

/**
 * Null when a Redis Cluster with every slot served answers at CLUSTER_NODES, else why not. When the CI
 * environment variable is set, a missing cluster is an error, not a skip.
 */
export async function clusterUnavailable (): Promise<string | null> {
  const probe = new Cluster(CLUSTER_NODES, { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy: () => null, redisOptions: { connectTimeout: 1000 } })
  probe.on('error', () => {})
  try {
    await probe.connect()
    const info = await probe.cluster('INFO')
    if (!/cluster_state:ok/.test(info)) throw new Error(`cluster_state is not ok: ${info.split('\r\n')[0]}`)
    return null
  } catch (err) {
    const reason = `no Redis Cluster answers at ${CLUSTER_NODES.map(n => `${n.host}:${n.port}`).join(',')} (${(err as Error).message}); run scripts/redis-cluster.sh or set REDIS_CLUSTER_NODES`
    if (process.env.CI) throw new Error(`Redis Cluster is required in CI: ${reason}`)
    return reason
  } finally {
    probe.disconnect()
  }
}

/** Skips the whole file (saying why) when no cluster answers; returns true when the tests can run. */
export async function requireCluster (t: Test): Promise<boolean> {
  const reason = await clusterUnavailable()
  if (reason === null) return true
  t.comment(`SKIPPED: the Redis Cluster tests of ${basename(t.name)} did not run: ${reason}`)
  t.plan(0, `Redis Cluster tests skipped: ${reason}`)
  return false
}

/** A Cluster client, closed (and the prefix's keys deleted on every primary) when the test ends. */
export function clusterClient (t: Test, prefix: string | null, options: ClusterOptions = {}): Cluster {
  const client = new Cluster(CLUSTER_NODES, options)
  t.teardown(async () => {
    if (prefix !== null) await deleteClusterKeys(client, prefix)
    client.disconnect()
  })
  return client
}

export async function deleteClusterKeys (client: Cluster, prefix: string): Promise<void> {
  for (const node of client.nodes('master')) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      // one DEL per key: keys of different slots cannot go in one command
      for (const key of keys) await node.del(key)
      cursor = next
    } while (cursor !== '0')
  }
}

/** The primary (`host:port`) that serves a key's slot. */
export async function primaryOf (client: Cluster, key: string): Promise<string> {
  const slot = await client.cluster('KEYSLOT', key) as number
  const ranges = await client.cluster('SLOTS') as unknown as Array<[number, number, [string, number]]>
  const range = ranges.find(([start, end]) => slot >= start && slot <= end)
  if (range === undefined) throw new Error(`slot ${slot} is served by no node`)
  return `${range[2][0]}:${range[2][1]}`
}
