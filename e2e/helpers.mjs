// Shared pieces of the end-to-end tests: the demo server in a child process, Debian's Chromium, screenshots.
import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

export const COOKIE_NAME = '__Secure-refresh_token'
/** Screenshots go here; git ignores the folder. */
export const OUTPUT_DIR = fileURLToPath(new URL('./output/', import.meta.url))
const SERVER = fileURLToPath(new URL('../example/server.mjs', import.meta.url))
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** Generous: the machine may be busy. Waits are for events (text, responses), never fixed sleeps. */
export const WAIT = 30_000

/**
 * Starts the demo (example/server.mjs, which imports the built package) on a free port.
 * Resolves once it has printed its URL; stopped at the end of the test `t`.
 */
export function startDemo (t, env = {}) {
  const child = spawn(process.execPath, [SERVER], {
    // DPoP off unless a test turns it on: the scenarios that check tokens and cookies from outside the page speak Bearer
    env: { ...process.env, PORT: '0', HOST: 'localhost', LOG_LEVEL: 'warn', DPOP: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const waiters = []
  const onData = (chunk) => {
    output += chunk
    for (const waiter of [...waiters]) waiter()
  }
  child.stdout.setEncoding('utf8').on('data', onData)
  child.stderr.setEncoding('utf8').on('data', onData)
  const exited = new Promise(resolve => child.once('exit', resolve))
  // should this test process end without its teardown (a timeout, say), the server must not outlive it
  const killOnExit = () => child.kill('SIGTERM')
  process.once('exit', killOnExit)
  t.teardown(async () => {
    process.off('exit', killOnExit)
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
  })

  /** Resolves with the first truthy value of `check(output)`, checked on each new output of the server. */
  function waitFor (check, what, timeout = WAIT) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`the demo server did not print ${what} within ${timeout} ms:\n${output}`)), timeout)
      const test = () => {
        const found = check(output)
        if (found) done(null, found)
      }
      let settled = false
      const done = (err, found) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        waiters.splice(waiters.indexOf(test), 1)
        if (err) reject(err); else resolve(found)
      }
      waiters.push(test)
      exited.then(code => done(new Error(`the demo server exited (${code}):\n${output}`)))
      test()
    })
  }

  /** Resolves with the first match of `pattern` in the server's output (stdout and stderr). */
  function waitForOutput (pattern) {
    return waitFor(text => pattern.exec(text), pattern)
  }

  /**
   * With LOG_LEVEL=info: resolves with the server's own record of the `index`-th (from 0) request to
   * `method url` once it has completed: `{ statusCode, errorCode }`. Lets a test see the status of a response
   * that the browser hid from the page (CORS) and from Playwright.
   */
  function waitForCompletedRequest (method, url, index = 0) {
    return waitFor(() => completed(method, url)[index], `request ${index} to ${method} ${url}`)
  }

  /** The completed requests to `method url` so far, from the server's log (LOG_LEVEL=info). */
  function completed (method, url) {
    return completedRequests(output).filter(r => r.method === method && r.url === url)
  }

  return waitForOutput(/fastify-refresh-auth demo: (http:\/\/localhost:\d+)/)
    .then(match => ({ url: match[1], waitForOutput, waitForCompletedRequest, completed, output: () => output }))
}

/** Requests in a Fastify (pino) JSON log: method and url from "incoming request", status and error code when done. */
function completedRequests (log) {
  const requests = new Map()
  const completed = []
  const lines = log.split('\n')
  lines.pop() // the last one is not complete yet (or empty)
  for (const line of lines) {
    if (!line.startsWith('{')) continue
    const entry = JSON.parse(line)
    if (entry.reqId === undefined) continue
    if (entry.req !== undefined) requests.set(entry.reqId, { method: entry.req.method, url: entry.req.url, errorCode: undefined })
    const request = requests.get(entry.reqId)
    if (request === undefined) continue
    if (entry.err?.code !== undefined) request.errorCode = entry.err.code
    if (entry.msg === 'request completed') completed.push({ ...request, statusCode: entry.res.statusCode })
  }
  return completed
}

const LAUNCH = {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu']
}

/** Debian's Chromium, headless. Playwright gives each launch a fresh temporary --user-data-dir and removes it. */
export async function launchChromium (t) {
  const browser = await chromium.launch(LAUNCH)
  t.teardown(() => browser.close())
  return browser
}

/**
 * Chromium on a profile folder the caller owns, as a user's browser keeps one from run to run: closing the
 * context ends the browser (and its session), launching again on the same folder starts the next one.
 */
export async function launchProfile (userDataDir) {
  const context = await chromium.launchPersistentContext(userDataDir, { ...LAUNCH, viewport: { width: 900, height: 1000 } })
  context.setDefaultTimeout(WAIT)
  return context
}

export async function newPage (browser, t) {
  const context = await browser.newContext({ viewport: { width: 900, height: 1000 } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT)
  return page
}

export async function screenshot (page, name) {
  mkdirSync(OUTPUT_DIR, { recursive: true })
  await page.screenshot({ path: `${OUTPUT_DIR}${name}.png`, fullPage: true })
}

/**
 * The refresh cookie as the browser would send it to the auth routes of `origin`
 * (Playwright can see HttpOnly cookies; the page cannot).
 */
export async function refreshCookie (context, origin) {
  return (await context.cookies(`${origin}/auth/refresh`)).find(cookie => cookie.name === COOKIE_NAME)
}

/** Waits for the page's status line to read `text` (a string or RegExp). */
export async function waitForStatus (page, text) {
  await page.locator('#status').filter({ hasText: text }).waitFor({ timeout: WAIT })
}

/** Signs in through the form; `remember` ticks "Keep me signed in" (unticked by default, as the page has it). */
export async function signIn (page, username = 'alice', password = 'wonderland', { remember = false } = {}) {
  await page.locator('#login-form').waitFor({ state: 'visible' })
  await page.fill('#username', username)
  await page.fill('#password', password)
  await page.setChecked('#remember', remember)
  const response = page.waitForResponse(r => r.url().endsWith('/auth/login'))
  await page.click('#login-button')
  return response
}

export function isResponse (path, status) {
  return (response) => new URL(response.url()).pathname === path && (status === undefined || response.status() === status)
}
