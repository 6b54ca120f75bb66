import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { COOKIE } from './app.js'

/** What an instance answered: the status, and the tokens it issued, if any. */
export interface ProcessAnswer {
  status: number
  refreshToken: string | undefined
  accessToken: string | undefined
}

/** An app instance in a process of its own, spoken to over HTTP. */
export interface AppProcess {
  name: string
  post (path: string, refreshToken?: string, body?: unknown): Promise<ProcessAnswer>
  /** The status of `GET /private` (behind app.authenticate) with this access token. */
  private (accessToken: string): Promise<number>
}

/**
 * Forks `script` (an instance helper run with `serveInstances`, see instance-host.ts) with `config` as its JSON
 * argument: a process of its own for one instance; stopped when the test ends.
 */
export async function startAppProcess (t: Test, name: string, script: string, config: unknown): Promise<AppProcess> {
  const child: ChildProcess = fork(script, [JSON.stringify(config)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  t.teardown(() => endProcess(child))
  const [message] = await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => { throw new Error(`instance ${name} exited with ${code}`) })
  ]) as [{ port: number }]
  return appAt(name, message.port)
}

/** Starts app instances, each in the one process of this host, and stops each when its test ends. */
export interface AppHost {
  start (t: Test, config: unknown): Promise<AppProcess>
}

/**
 * One process of `script` (an instance helper run with `serveInstances`, see instance-host.ts) for every app
 * instance a file starts on that side: a process start under tap's loaders costs about two seconds of CPU, a
 * Fastify app a few milliseconds. Forked at the first start; ended when `t` (the file's) ends.
 */
export function appHost (t: Test, name: string, script: string): AppHost {
  let child: ChildProcess | null = null
  let requests = 0
  const answer = (id: number) => new Promise<{ id: number, port?: number, error?: string }>((resolve, reject) => {
    const host = child as ChildProcess
    const onMessage = (message: { id?: number }) => {
      if (message?.id !== id) return
      host.off('message', onMessage)
      host.off('exit', onExit)
      resolve(message as { id: number, port?: number, error?: string })
    }
    const onExit = (code: number | null) => reject(new Error(`instance host ${name} exited with ${code}`))
    host.on('message', onMessage)
    host.once('exit', onExit)
  })
  return {
    async start (test, config) {
      if (child === null) {
        const forked = fork(script, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
        t.teardown(() => endProcess(forked))
        child = forked
      }
      const host = child
      const id = ++requests
      const started = answer(id)
      host.send({ id, start: config })
      const { port, error } = await started
      if (port === undefined) throw new Error(`instance ${name} did not start: ${error}`)
      test.teardown(async () => {
        if (host.exitCode !== null) return
        const stopId = ++requests
        const stopped = answer(stopId)
        host.send({ id: stopId, stop: port })
        await stopped
      })
      return appAt(name, port)
    }
  }
}

async function endProcess (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = once(child, 'exit')
  child.send('close')
  const timer = setTimeout(() => child.kill(), 5000)
  await exited
  clearTimeout(timer)
}

function appAt (name: string, port: number): AppProcess {
  const base = `http://127.0.0.1:${port}`
  return {
    name,
    async post (path, refreshToken, body) {
      const headers: Record<string, string> = {}
      if (refreshToken !== undefined) headers.cookie = `${COOKIE}=${refreshToken}`
      if (body !== undefined) headers['content-type'] = 'application/json'
      const response = await fetch(base + path, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) })
      const text = await response.text()
      const cookie = response.headers.getSetCookie().find(line => line.startsWith(`${COOKIE}=`))
      const value = cookie === undefined ? '' : decodeURIComponent(cookie.slice(COOKIE.length + 1).split(';')[0])
      const accessToken = response.status === 200 ? (JSON.parse(text) as { access_token?: string }).access_token : undefined
      return { status: response.status, refreshToken: value === '' ? undefined : value, accessToken }
    },
    async private (accessToken) {
      const response = await fetch(`${base}/private`, { headers: { authorization: `Bearer ${accessToken}` } })
      await response.arrayBuffer()
      return response.status
    }
  }
}

/** Polls `check` until it answers true; false if it never did within `withinMs` (a bound, never a measure). */
export async function eventually (check: () => Promise<boolean>, withinMs = 3000): Promise<boolean> {
  const end = Date.now() + withinMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > end) return false
    await sleep(20)
  }
}
