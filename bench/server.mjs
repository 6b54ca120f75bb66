// One server variant in its own process: `node bench/server.mjs <variant> <settings JSON>`.
// Reports `{ port, load }` (or `{ skip }`) to the harness over IPC, answers `{ type: 'cpu' }` with its
// CPU usage, and closes on `{ type: 'close' }`.
import { diagnostics, variants } from './variants.mjs'

const [name, settingsJson = '{}'] = process.argv.slice(2)
const build = variants[name] ?? diagnostics[name]
if (build === undefined) throw new Error(`unknown variant ${name}`)

const built = await build(JSON.parse(settingsJson))
if (built.skip !== undefined) {
  process.send({ type: 'skip', reason: built.skip })
  process.disconnect()
} else {
  const { app, load } = built
  await app.listen({ host: '127.0.0.1', port: 0 })
  process.send({ type: 'ready', port: app.server.address().port, load })
  process.on('message', async message => {
    // CPU time this process has used: the harness divides its growth by the requests served
    if (message?.type === 'cpu') process.send({ type: 'cpu', usage: process.cpuUsage() })
    if (message?.type !== 'close') return
    await app.close()
    // a normal exit, so that --cpu-prof writes its profile
    process.exit(0)
  })
}
