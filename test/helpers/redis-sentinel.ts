// A throwaway Sentinel setup on loopback: a primary reached through a proxy the test controls (which can hold
// replication back), a replica, and three Sentinels, all on spare ports, in a temporary directory, killed when
// the test ends. Started by scripts/redis-sentinel.sh, which .ci/run also runs.
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { sparePort } from './redis-server.js'

const run = promisify(execFile)
const SCRIPT = join(__dirname, '..', '..', 'scripts', 'redis-sentinel.sh')

export interface SentinelSetup {
  name: string
  primaryPort: number
  replicaPort: number
  sentinels: Array<{ host: string, port: number }>
  /** In front of the primary: `hold()` holds replication back, every other connection passes. */
  replication: ReplicationProxy
  /** Kills the primary (SIGKILL: nothing saved, nothing more sent). */
  killPrimary: () => Promise<void>
  /** Resolves once the Sentinels name the replica as the primary (bounded: 30 s). */
  failedOver: () => Promise<void>
  /** Resolves once the replica has everything the primary wrote (bounded: 10 s). */
  inSync: () => Promise<void>
}

export async function sentinelSetup (t: Test): Promise<SentinelSetup> {
  const dir = await mkdtemp(join(tmpdir(), 'fra-sentinel-'))
  const [primaryPort, replicaPort, ...sentinelPorts] = await Promise.all(Array.from({ length: 5 }, async () => await sparePort()))
  const primary = new Redis({ port: primaryPort, lazyConnect: true })
  const replication = await new ReplicationProxy(primaryPort).listen()
  t.teardown(async () => {
    primary.disconnect()
    await run('bash', [SCRIPT, 'stop', dir]).catch(() => {})
    replication.close()
    await rm(dir, { recursive: true, force: true })
  })
  await run('bash', [SCRIPT, 'start', dir, String(primaryPort), String(replicaPort), String(replication.port), ...sentinelPorts.map(String)])
  primary.on('error', () => {})
  const sentinels = sentinelPorts.map(port => ({ host: '127.0.0.1', port }))
  const name = 'fra-primary'
  const replica = new Redis({ port: replicaPort })
  replica.on('error', () => {})
  t.teardown(() => replica.disconnect())
  return {
    name,
    primaryPort,
    replicaPort,
    sentinels,
    replication,
    killPrimary: async () => { await run('bash', [SCRIPT, 'kill-primary', dir]) },
    failedOver: async () => {
      const sentinel = new Redis({ port: sentinelPorts[0] })
      sentinel.on('error', () => {})
      try {
        for (let i = 0; i < 300; i++) {
          const [, port] = await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as [string, string]
          if (Number(port) === replicaPort && (await replica.call('ROLE') as string[])[0] === 'master') return
          await sleep(100)
        }
        throw new Error('the Sentinels did not fail over within 30 s')
      } finally {
        sentinel.disconnect()
      }
    },
    inSync: async () => {
      await primary.connect().catch(() => {})
      for (let i = 0; i < 100; i++) {
        const offset = Number(/master_repl_offset:(\d+)/.exec(await primary.info('replication'))?.[1])
        const acked = /slave0:.*offset=(\d+)/.exec(await primary.info('replication'))?.[1]
        if (acked !== undefined && Number(acked) >= offset) return
        await sleep(100)
      }
      throw new Error('the replica did not catch up within 10 s')
    }
  }
}

/**
 * A TCP proxy in front of the primary for everyone (the Sentinels and the app find the primary at its port):
 * every connection passes, but once `hold()` is called, whatever the replica's link (the connection that sent
 * PSYNC or SYNC) carries is dropped, both ways, and its close too: the replica keeps waiting, as behind a lagging
 * network, and never gets the writes made since.
 */
export class ReplicationProxy {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  #held = false
  port = 0

  constructor (readonly targetPort: number) {
    this.#server = createServer(client => this.#accept(client))
  }

  async listen (): Promise<this> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', resolve))
    this.port = (this.#server.address() as { port: number }).port
    return this
  }

  hold (): void {
    this.#held = true
  }

  close (): void {
    for (const socket of this.#sockets) socket.destroy()
    this.#server.close()
  }

  #accept (client: Socket): void {
    const upstream = connect(this.targetPort, '127.0.0.1')
    let replication = false
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      this.#sockets.add(from)
      from.on('data', (data: Buffer) => {
        if (from === client && /^(PSYNC|SYNC)\b|\$(5|4)\r\n(PSYNC|SYNC)\r\n/im.test(data.toString('latin1', 0, 64))) replication = true
        if (replication && this.#held) return
        to.write(data)
      })
      from.on('error', () => {})
      from.on('close', () => {
        this.#sockets.delete(from)
        if (!(replication && this.#held)) to.destroy()
      })
    }
  }
}
