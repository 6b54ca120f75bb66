// The demo page, on fastify-refresh-auth/client (served at /client.js from the package's built ES module, no
// bundler): the client keeps the access token in memory, refreshes it once for every open tab, and hears at once
// when the session ends. The refresh token is an HttpOnly cookie scoped to /auth that this script cannot read.
import { createAuthClient } from '/client.js'
import { dpop } from '/demo-config.js'

const $ = (id) => document.getElementById(id)
// dpop: a non-extractable key in IndexedDB signs a proof for every request; the session is bound to it
const auth = createAuthClient({ prefix: '/auth', dpop })
// for the end-to-end tests, which drive the client from several tabs
window.auth = auth

let lifetimeMs = 0
let expiresAt = 0
let refreshCount = 0
let refreshReason = null

// ---- rendering ---------------------------------------------------------------------------------------------

function log (message) {
  const item = document.createElement('li')
  const time = document.createElement('time')
  time.textContent = new Date().toLocaleTimeString()
  item.append(time, message)
  $('log').prepend(item)
  while ($('log').children.length > 50) $('log').lastChild.remove()
}

function showError (message) {
  $('error').textContent = message
  $('error').hidden = false
  log(`Error: ${message}`)
}

function clearError () {
  $('error').hidden = true
  $('error').textContent = ''
}

function setStatus (state, text) {
  $('status').dataset.state = state
  $('status').textContent = text
}

// For display only: the server verifies every token; the page never trusts these claims for anything.
function readClaims (token) {
  const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(payload), c => c.charCodeAt(0))))
}

function renderSignedIn (claims) {
  $('user-name').textContent = claims.name ?? claims.sub
  $('user-id').textContent = claims.sub
  $('session-id').textContent = claims.sid
  $('refresh-count').textContent = String(refreshCount)
  setStatus('signed-in', `Signed in as ${claims.name ?? claims.sub}`)
  $('login-form').hidden = true
  $('session').hidden = false
  renderCountdown()
}

function renderSignedOut (message) {
  $('session').hidden = true
  $('sessions').hidden = true
  $('login-form').hidden = false
  $('api-result').textContent = 'No call yet.'
  setStatus('signed-out', message)
}

function renderCountdown () {
  if (auth.state !== 'signed-in') return
  const left = expiresAt - Date.now()
  const expired = left <= 0
  $('countdown').dataset.expired = String(expired)
  $('countdown').textContent = expired ? 'expired (the next call refreshes it)' : `expires in ${Math.ceil(left / 1000)} s`
  $('lifetime').value = Math.max(0, left / lifetimeMs)
}

setInterval(renderCountdown, 250)

// ---- what the client tells ---------------------------------------------------------------------------------

let signedIn = false
auth.on('session', ({ accessToken, expiresAt: at }) => {
  lifetimeMs = Math.max(1, at - Date.now())
  expiresAt = at
  if (signedIn) {
    refreshCount++
    log(`Access token refreshed silently (${refreshReason ?? 'shortly before expiry'})`)
  }
  refreshReason = null
  signedIn = true
  renderSignedIn(readClaims(accessToken))
})

const END_MESSAGES = {
  logout: 'Signed out.',
  revoked: 'Your session was ended elsewhere (revoked). Please sign in again.',
  reuse: 'Your session was ended because its refresh token was used twice. Please sign in again.',
  expired: 'Your session expired. Please sign in again.',
  unknown: 'Your session has ended (it expired, was revoked, or its refresh token was used twice). Please sign in again.'
}
auth.on('end', ({ reason }) => {
  signedIn = false
  renderSignedOut('Signed out.')
  if (reason === 'logout') log('Logged out: session revoked, cookie cleared')
  else showError(END_MESSAGES[reason])
  log(`Session ended (${reason})`)
})

// ---- actions -----------------------------------------------------------------------------------------------

async function signIn (event) {
  event.preventDefault()
  clearError()
  $('login-button').disabled = true
  try {
    signedIn = false
    refreshCount = 0
    await auth.login({ username: $('username').value, password: $('password').value, remember: $('remember').checked })
    $('password').value = ''
    log('Signed in: access token in memory, refresh token in an HttpOnly cookie')
    loadSessions()
  } catch (err) {
    const messages = {
      400: 'Please enter a username and a password.',
      401: 'Wrong username or password.',
      429: 'Too many attempts; wait a moment and try again.',
      503: 'The session store is unavailable; try again in a moment.'
    }
    showError(messages[err.status] ?? (err.status ? `Sign-in failed (HTTP ${err.status}).` : 'Cannot reach the server. Is the demo still running?'))
  } finally {
    $('login-button').disabled = false
  }
}

async function callApi () {
  clearError()
  let response
  try {
    response = await auth.fetch('/api/me', { cache: 'no-store' })
  } catch {
    return showError('Cannot reach the server. Is the demo still running?')
  }
  if (!response.ok) {
    $('api-result').textContent = `HTTP ${response.status}`
    return showError(`The protected API refused the call (HTTP ${response.status}).`)
  }
  $('api-result').textContent = `HTTP ${response.status}\n${JSON.stringify(await response.json(), null, 2)}`
  log('Protected API call succeeded')
}

async function logOut (everywhere) {
  clearError()
  try {
    await auth.logout({ all: everywhere })
    if (everywhere) log('Logged out everywhere: every session of this user is revoked')
  } catch (err) {
    showError(`Logging out failed (${err.status ? `HTTP ${err.status}` : 'network'}); you are still signed in.`)
  }
}

// The list of this user's sessions (GET /auth/sessions, the plugin's devices route), each but this one with a
// button to end it: browser, OS and kind of device as the server read them from the User-Agent, and when last seen.
async function loadSessions () {
  if (auth.state !== 'signed-in') return
  const response = await auth.fetch('/auth/sessions').catch(() => null)
  if (!response?.ok) return
  const list = $('session-list')
  list.replaceChildren()
  const { sessions } = await response.json()
  for (const session of sessions) {
    const item = document.createElement('li')
    item.className = session.current ? 'current' : 'other'
    const lastSeen = new Date(session.lastSeenAt).toLocaleTimeString()
    item.textContent = `${session.current ? 'This browser' : 'Another browser'}: ${describeDevice(session.device)}, ` +
      `last seen at ${lastSeen}${session.ip ? ` from ${session.ip}` : ''}`
    if (!session.current) {
      const revoke = document.createElement('button')
      revoke.type = 'button'
      revoke.className = 'secondary'
      revoke.textContent = 'Sign out'
      revoke.addEventListener('click', () => revokeSession(session.sessionId))
      item.append(revoke)
    }
    list.append(item)
  }
  $('sessions').hidden = false
}

function describeDevice ({ browser, os, type }) {
  return `${browser ?? 'an unknown browser'} on ${os ?? 'an unknown system'}${type ? ` (${type})` : ''}`
}

async function revokeSession (sessionId) {
  const response = await auth.fetch(`/auth/sessions/${encodeURIComponent(sessionId)}`, { method: 'DELETE' }).catch(() => null)
  if (!response?.ok) return showError('Signing that session out failed.')
  log('Signed another session out')
  loadSessions()
}

$('login-form').addEventListener('submit', signIn)
$('call-api').addEventListener('click', callApi)
$('refresh-now').addEventListener('click', async () => {
  clearError()
  refreshReason = 'on request'
  if (!await auth.refresh() && auth.state === 'signed-in') showError('Refreshing failed for now; the client tries again.')
})
$('logout').addEventListener('click', () => logOut(false))
$('logout-all').addEventListener('click', () => logOut(true))
$('reload-sessions').addEventListener('click', () => loadSessions())

if (await auth.restore()) {
  log('Session restored from the refresh cookie (no password needed)')
  loadSessions()
} else {
  renderSignedOut('Not signed in.')
  log('No session to restore: please sign in')
}
