import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { Test } from 'tap'
import { COOKIE } from './app.js'

/** An app instance in a process of its own, spoken to over HTTP. */
export interface AppProcess {
  name: string
  post (path: string, refreshToken?: string, body?: unknown): Promise<{ status: number, refreshToken: string | undefined }>
}

/**
 * Forks `script` (an instance helper that sends `{ port }` over IPC once listening and closes on any message)
 * with `config` as its JSON argument; stopped when the test ends.
 */
export async function startAppProcess (t: Test, name: string, script: string, config: unknown): Promise<AppProcess> {
  const child: ChildProcess = fork(script, [JSON.stringify(config)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
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
