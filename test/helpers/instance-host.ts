// The child side of app-process.ts, for the instance helpers (redis-instance.ts and the others).

/** An app instance that `serveInstances` started: where it listens, and how to close it with what it opened. */
export interface ServedInstance {
  port: number
  close: () => Promise<void>
}

/**
 * Runs the app instances of this process. With a JSON config as its argument (startAppProcess), it starts that
 * instance and sends `{ port }`. As a host (appHost), each `{ id, start: config }` message starts one more and
 * is answered `{ id, port }` (or `{ id, error }`); `{ id, stop: port }` closes that one and is answered
 * `{ id }`. Any other message closes every instance and ends the IPC channel, so the process exits.
 */
export function serveInstances<Config> (start: (config: Config) => Promise<ServedInstance>): void {
  const running = new Map<number, ServedInstance>()
  process.on('message', async (message: { id?: number, start?: Config, stop?: number }) => {
    if (message?.start !== undefined) {
      try {
        const instance = await start(message.start)
        running.set(instance.port, instance)
        process.send?.({ id: message.id, port: instance.port })
      } catch (err) {
        process.send?.({ id: message.id, error: String((err as Error)?.stack ?? err) })
      }
    } else if (message?.stop !== undefined) {
      await running.get(message.stop)?.close()
      running.delete(message.stop)
      process.send?.({ id: message.id })
    } else {
      for (const instance of running.values()) await instance.close()
      running.clear()
      process.disconnect()
    }
  })
  if (process.argv[2] === undefined) return
  start(JSON.parse(process.argv[2]) as Config).then(instance => {
    running.set(instance.port, instance)
    process.send?.({ port: instance.port })
  }, (err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
