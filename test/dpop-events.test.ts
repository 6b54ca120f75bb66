import t from 'tap'
import { makeProof, proofKey } from './helpers/dpop.js'
import { ENDED, listen, openStream, reasonOf } from './helpers/event-stream.js'
import { USER } from './helpers/app.js'

// SECURITY 34 on the events stream: GET {prefix}/events goes through authenticate, so a DPoP-bound access token
// opens it only as `Authorization: DPoP` with a proof of its key for this request (htm GET, htu of the stream, ath).

t.test('a bound token opens the events stream with a proof of its key, and is refused without one', async t => {
  const { app, url } = await listen(t, { dpop: true })
  const key = proofKey()
  const login = await fetch(url + '/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', dpop: makeProof(key, { htu: `${url}/auth/login` }) },
    body: JSON.stringify(USER)
  })
  const { access_token: accessToken, token_type: tokenType } = await login.json() as { access_token: string, token_type: string }
  t.equal(tokenType, 'DPoP', 'the session is bound')
  const events = `${url}/auth/events`
  const proof = (overrides: { htm?: string, htu?: string } = {}) => makeProof(key, { htm: 'GET', htu: events, accessToken, ...overrides })

  const refusals: Array<[string, Record<string, string>]> = [
    ['as DPoP without a proof', { authorization: `DPoP ${accessToken}` }],
    ['as Bearer', { authorization: `Bearer ${accessToken}` }],
    ['as Bearer, with a proof', { authorization: `Bearer ${accessToken}`, dpop: proof() }],
    ['with a proof of another key', { authorization: `DPoP ${accessToken}`, dpop: makeProof(proofKey(), { htm: 'GET', htu: events, accessToken }) }],
    ['with a proof made for POST', { authorization: `DPoP ${accessToken}`, dpop: proof({ htm: 'POST' }) }],
    ['with a proof made for another URL', { authorization: `DPoP ${accessToken}`, dpop: proof({ htu: `${url}/auth/refresh` }) }]
  ]
  for (const [name, headers] of refusals) {
    const refused = await openStream(t, url, accessToken, headers)
    t.equal(refused.response.status, 401, name)
    t.match(refused.response.headers.get('www-authenticate'), /^DPoP /, `${name}: the DPoP challenge`)
    t.not(refused.response.headers.get('content-type'), 'text/event-stream', `${name}: no stream`)
    refused.cancel()
  }

  const stream = await openStream(t, url, accessToken, { authorization: `DPoP ${accessToken}`, dpop: proof() })
  t.equal(stream.response.status, 200, 'with the proof: the stream opens')
  t.match(stream.response.headers.get('content-type'), /^text\/event-stream/)
  // what the stream is for: the end of its session reaches it
  await app.refreshAuth.revokeUserSessions('42')
  const { text } = await stream.until(ENDED)
  t.equal(reasonOf(text), 'revoked', 'the stream tells its session ended')
  stream.cancel()
})
