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
  #loseReplyTo: ((request: Buffer) => boolean) | null = null
  // upstream sockets whose next reply is to be lost
  readonly #losing = new Set<Socket>()
  #holdRequestsFrom: ((request: Buffer) => boolean) | null = null
  // client sockets whose requests are held, from the first that matched, until restore()
  readonly #holding = new Set<Socket>()
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

  /**
   * Arms a lost reply: the next request from a client that `matches` reaches the server, but the connection
   * is cut as its reply comes back (the reply is dropped), and new connections are refused until `restore()`.
   * The command took effect; the client never hears of it.
   */
  loseReplyTo (matches: (request: Buffer) => boolean): void {
    this.#loseReplyTo = matches
  }

  /**
   * Holds back what a client sends from its first request that `matches` (a link slow one way): the requests
   * reach the server late, at `restore()`; replies still flow.
   */
  holdRequestsFrom (matches: (request: Buffer) => boolean): void {
    this.#holdRequestsFrom = matches
  }

  restore (): void {
    this.#mode = 'pass'
    this.#loseReplyTo = null
    this.#holdRequestsFrom = null
    this.#holding.clear()
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
        if (this.#losing.has(from)) {
          // the reply of the armed request: dropped, and the connection with it
          this.#losing.delete(from)
          this.cut()
          return
        }
        if (from === client && (this.#holding.has(client) || this.#holdRequestsFrom?.(data) === true)) this.#holding.add(client)
        if (this.#mode === 'blackhole' || this.#holding.has(from)) this.#held.push([to, data])
        else to.write(data)
        if (from === client && this.#loseReplyTo?.(data) === true) {
          this.#loseReplyTo = null
          this.#losing.add(upstream)
        }
      })
      from.on('error', () => {})
      from.on('close', () => {
        this.#sockets.delete(from)
        if (this.#mode === 'blackhole' || this.#holding.has(from)) this.#held.push([to, null])
        else to.destroy()
      })
    }
  }
}
