// A throwaway redis-server of a test's own, on a spare loopback port, with no persistence: stopping it loses its
// data, as a restart without persistence does. Never the shared server on 6379.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { Test } from 'tap'

/** A port the system just gave out and took back: free for a server started right after. */
export async function sparePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

export class ThrowawayRedis {
  #process: ChildProcess | null = null

  constructor (readonly port: number, readonly args: readonly string[] = []) {}

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Starts the server and resolves once it answers PING (bounded: 10 s). */
  async start (): Promise<this> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.args], { stdio: 'ignore' })
    this.#process = child
    const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false })
    probe.on('error', () => {})
    try {
      for (let i = 0; i < 200; i++) {
        if (child.exitCode !== null) throw new Error(`redis-server on ${this.port} exited (${child.exitCode})`)
        try {
          await probe.connect()
          await probe.ping()
          return this
        } catch {
          probe.disconnect()
          await sleep(50)
        }
      }
      throw new Error(`redis-server on ${this.port} did not answer within 10 s`)
    } finally {
      probe.disconnect()
    }
  }

  /** Kills the server (SIGKILL: no chance to save anything) and resolves once it is gone. */
  async kill (): Promise<void> {
    const child = this.#process
    this.#process = null
    if (child === null || child.exitCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }

  /** The server killed and started again empty, on the same port. */
  async restartEmpty (): Promise<void> {
    await this.kill()
    await this.start()
  }
}

/** A throwaway server, killed when the test ends; null (with a skip comment) when redis-server is not installed. */
export async function throwawayRedis (t: Test, args: readonly string[] = []): Promise<ThrowawayRedis> {
  const server = await new ThrowawayRedis(await sparePort(), args).start()
  t.teardown(() => server.kill())
  return server
}
