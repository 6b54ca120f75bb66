import { connect, createServer, type Server, type Socket } from 'node:net'

type Mode = 'pass' | 'cut' | 'blackhole'

/**
 * A TCP proxy between the app and a server (Redis, PostgreSQL) that a test controls: `cut()` closes every
 * connection and refuses new ones; `blackhole()` keeps the sockets open but holds back all traffic, both ways,
 * a connection closed by one side included (as a network partition would hold its FIN); `restore()` delivers
 * what was held (late), then the held closes, and lets traffic through again.
 */
export class TcpProxy {
  #mode: Mode = 'pass'
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  // null: the other side closed; end this one once what came before is delivered
  readonly #held: Array<[Socket, Buffer | null]> = []
  port = 0

  constructor (readonly targetHost: string, readonly targetPort: number) {
    this.#server = createServer(client => this.#accept(client))
  }

  async listen (): Promise<this> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', resolve))
    this.port = (this.#server.address() as { port: number }).port
    return this
  }

  cut (): void {
    this.#mode = 'cut'
    for (const socket of this.#sockets) socket.destroy()
  }

  blackhole (): void {
    this.#mode = 'blackhole'
  }

  restore (): void {
    this.#mode = 'pass'
    for (const [to, data] of this.#held.splice(0)) {
      if (to.destroyed) continue
      if (data === null) to.end()
      else to.write(data)
    }
  }

  async close (): Promise<void> {
    this.cut()
    await new Promise(resolve => this.#server.close(resolve))
  }

  #accept (client: Socket): void {
    if (this.#mode === 'cut') {
      client.destroy()
      return
    }
    const upstream = connect(this.targetPort, this.targetHost)
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      this.#sockets.add(from)
      from.on('data', (data: Buffer) => {
        if (this.#mode === 'blackhole') this.#held.push([to, data])
        else to.write(data)
      })
      from.on('error', () => {})
      from.on('close', () => {
        this.#sockets.delete(from)
        if (this.#mode === 'blackhole') this.#held.push([to, null])
        else to.destroy()
      })
    }
  }
}
