// The demo page. The access token lives in a variable of this module: memory only, never localStorage,
// sessionStorage or a cookie, so a reload loses it and the page asks POST /auth/refresh for a new one.
// The refresh token is an HttpOnly cookie scoped to /auth: this script can neither read nor send it elsewhere.

const $ = (id) => document.getElementById(id)

let accessToken = null
let lifetimeMs = 0
let expiresAt = 0 // on this browser's clock: when the token was received plus expires_in
let refreshTimer = null
let refreshInFlight = null // one refresh at a time per tab: callers share it
let refreshCount = 0

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
  if (accessToken === null) return
  const left = expiresAt - Date.now()
  const expired = left <= 0
  $('countdown').dataset.expired = String(expired)
  $('countdown').textContent = expired
    ? 'expired (the next call refreshes it)'
    : `expires in ${Math.ceil(left / 1000)} s`
  $('lifetime').value = Math.max(0, left / lifetimeMs)
}

setInterval(renderCountdown, 250)

// ---- tokens ------------------------------------------------------------------------------------------------

function acceptTokens (body) {
  accessToken = body.access_token
  lifetimeMs = body.expires_in * 1000
  expiresAt = Date.now() + lifetimeMs
  renderSignedIn(readClaims(accessToken))
  scheduleRefresh()
}

function forgetTokens () {
  accessToken = null
  clearTimeout(refreshTimer)
}

// Silent refresh a little before expiry: a fifth of the lifetime ahead, between 2 and 60 seconds.
function scheduleRefresh () {
  clearTimeout(refreshTimer)
  if (accessToken === null || !$('auto-refresh').checked) return
  const lead = Math.min(60_000, Math.max(2_000, lifetimeMs / 5))
  refreshTimer = setTimeout(() => refresh('shortly before expiry'), Math.max(0, expiresAt - lead - Date.now()))
}

async function send (url, init) {
  try {
    return await fetch(url, { ...init, cache: 'no-store' })
  } catch {
    return null // the network failed or the server is down: callers say so
  }
}

async function errorCode (response) {
  try { return (await response.json()).code ?? '' } catch { return '' }
}

/** Resolves to true with a new access token, or false (signed out, or an error shown). */
function refresh (reason) {
  refreshInFlight ??= runRefresh(reason).finally(() => { refreshInFlight = null })
  return refreshInFlight
}

async function runRefresh (reason) {
  const restoring = reason === 'restore'
  const response = await send('/auth/refresh', { method: 'POST' })
  if (response === null) {
    showError('Cannot reach the server to refresh the session. Is the demo still running?')
    return false
  }
  if (response.ok) {
    refreshCount += restoring ? 0 : 1
    acceptTokens(await response.json())
    log(restoring ? 'Session restored from the refresh cookie (no password needed)' : `Access token refreshed silently (${reason})`)
    if (restoring) loadSessions()
    return true
  }
  if (response.status === 401) {
    forgetTokens()
    if (restoring) {
      renderSignedOut('Not signed in.')
      log('No session to restore: please sign in')
    } else {
      renderSignedOut('Signed out.')
      showError('Your session has ended (it expired, was revoked, or its refresh token was used twice). Please sign in again.')
    }
    return false
  }
  if (restoring) renderSignedOut('Not signed in.')
  const code = await errorCode(response)
  showError(response.status === 503
    ? 'The session store is unavailable; try again in a moment.'
    : `Refreshing the session failed (HTTP ${response.status}${code ? ` ${code}` : ''}).`)
  return false
}

// ---- actions -----------------------------------------------------------------------------------------------

async function signIn (event) {
  event.preventDefault()
  clearError()
  $('login-button').disabled = true
  try {
    const response = await send('/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: $('username').value, password: $('password').value, remember: $('remember').checked })
    })
    if (response === null) return showError('Cannot reach the server. Is the demo still running?')
    if (!response.ok) {
      const messages = {
        400: 'Please enter a username and a password.',
        401: 'Wrong username or password.',
        429: 'Too many attempts; wait a moment and try again.',
        503: 'The session store is unavailable; try again in a moment.'
      }
      return showError(messages[response.status] ?? `Sign-in failed (HTTP ${response.status}).`)
    }
    $('password').value = ''
    refreshCount = 0
    acceptTokens(await response.json())
    log('Signed in: access token in memory, refresh token in an HttpOnly cookie')
    loadSessions()
  } finally {
    $('login-button').disabled = false
  }
}

function callProtected (url, init = {}) {
  return send(url, { ...init, headers: { ...init.headers, authorization: `Bearer ${accessToken}` } })
}

/** A protected call; on a 401 one refresh and one retry. Null: the network failed; undefined: that refresh failed (and said why). */
async function callWithRefresh (url, init) {
  const response = await callProtected(url, init)
  if (response?.status !== 401) return response
  log('Protected API answered 401 (access token expired or revoked): refreshing once, then retrying')
  return (await refresh('after a 401')) ? callProtected(url, init) : undefined
}

async function callApi () {
  clearError()
  const response = await callWithRefresh('/api/me')
  if (response === undefined) return // signed out: refresh() said why
  if (response === null) return showError('Cannot reach the server. Is the demo still running?')
  if (!response.ok) {
    $('api-result').textContent = `HTTP ${response.status}`
    return showError(`The protected API refused the call (HTTP ${response.status}).`)
  }
  $('api-result').textContent = `HTTP ${response.status}\n${JSON.stringify(await response.json(), null, 2)}`
  log('Protected API call succeeded')
}

async function logOut (everywhere) {
  clearError()
  const response = await send('/auth/logout', everywhere
    ? { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` }, body: '{"all":true}' }
    : { method: 'POST' })
  if (response === null) return showError('Cannot reach the server to log out. Is the demo still running?')
  if (!response.ok) return showError(`Logging out failed (HTTP ${response.status}); you are still signed in.`)
  forgetTokens()
  renderSignedOut(everywhere ? 'Signed out on every device.' : 'Signed out.')
  log(everywhere ? 'Logged out everywhere: every session of this user is revoked' : 'Logged out: session revoked, cookie cleared')
}

// The list of this user's sessions (GET /api/sessions), each but this one with a button to revoke it.
async function loadSessions () {
  if (accessToken === null) return
  const response = await callWithRefresh('/api/sessions')
  if (!response?.ok) return
  const list = $('session-list')
  list.replaceChildren()
  for (const session of await response.json()) {
    const item = document.createElement('li')
    const created = new Date(session.createdAt).toLocaleTimeString()
    const refreshed = session.lastRefreshedAt ? `, last refreshed ${new Date(session.lastRefreshedAt).toLocaleTimeString()}` : ''
    item.className = session.current ? 'current' : 'other'
    item.textContent = `${session.current ? 'This browser' : 'Another browser'}: signed in at ${created}${refreshed}` +
      `${session.userAgent ? `, ${describeAgent(session.userAgent)}` : ''}`
    if (!session.current) {
      const revoke = document.createElement('button')
      revoke.type = 'button'
      revoke.className = 'secondary'
      revoke.textContent = 'Revoke'
      revoke.addEventListener('click', () => revokeSession(session.sessionId))
      item.append(revoke)
    }
    list.append(item)
  }
  $('sessions').hidden = false
}

function describeAgent (userAgent) {
  return /HeadlessChrome/.test(userAgent) ? 'headless Chromium' : /Chrome\//.test(userAgent) ? 'Chrome' : /Firefox\//.test(userAgent) ? 'Firefox' : 'a browser'
}

async function revokeSession (sessionId) {
  const response = await callWithRefresh(`/api/sessions/${encodeURIComponent(sessionId)}`, { method: 'DELETE' })
  if (response === undefined) return
  if (!response?.ok) return showError('Revoking that session failed.')
  log('Revoked another session')
  loadSessions()
}

$('login-form').addEventListener('submit', signIn)
$('call-api').addEventListener('click', callApi)
$('refresh-now').addEventListener('click', () => { clearError(); refresh('on request') })
$('logout').addEventListener('click', () => logOut(false))
$('logout-all').addEventListener('click', () => logOut(true))
$('reload-sessions').addEventListener('click', () => loadSessions())
$('auto-refresh').addEventListener('change', () => {
  scheduleRefresh()
  log($('auto-refresh').checked ? 'Silent refresh before expiry: on' : 'Silent refresh before expiry: off (a call after expiry gets a 401, then refreshes)')
})

refresh('restore')
