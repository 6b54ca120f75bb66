import type { AddressInfo } from 'node:net'
import { webcrypto } from 'node:crypto'
import t, { type Test } from 'tap'
import { USER, buildApp } from './helpers/app.js'
import type { FastifyRefreshAuthOptions } from '../lib/index.js'

// Issue 23: proofs made by a third-party implementation, panva's oauth4webapi (pinned dev dependency, ESM, loaded
// with a dynamic import), accepted end to end over a real socket: login, a protected request, refresh; with and
// without server nonces (its `use_dpop_nonce` handling reads our answers). Our login and refresh take the
// grant's form body through a content-type parser of the test's app: the point is the DPoP wire format.

async function interopApp (t: Test, dpop: FastifyRefreshAuthOptions['dpop']) {
  const app = await buildApp(t, { dpop, refreshTokenTransport: 'body' }, app => {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)))
    })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

for (const [name, dpop] of [['without nonces', true], ['with server nonces', { nonce: true }]] as const) {
  t.test(`oauth4webapi's DPoP proofs: login, protected request, refresh (${name})`, async t => {
    const oauth = await import('oauth4webapi')
    const { base } = await interopApp(t, dpop)
    const options = { [oauth.allowInsecureRequests]: true }
    const client = { client_id: 'interop' }
    const login = { issuer: base, token_endpoint: `${base}/auth/login` }
    const refresh = { issuer: base, token_endpoint: `${base}/auth/refresh` }
    type KeyPair = Parameters<typeof oauth.DPoP>[1]
    const newKeyPair = async () => await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']) as unknown as KeyPair
    const DPoP = oauth.DPoP({}, await newKeyPair())

    // the library's own retry for use_dpop_nonce: it caches the nonce from the error answer
    async function withNonceRetry<T> (call: () => Promise<T>): Promise<T> {
      try {
        return await call()
      } catch (err) {
        if (!oauth.isDPoPNonceError(err)) throw err
        return await call()
      }
    }

    const tokens = await withNonceRetry(async () => await oauth.processGenericTokenEndpointResponse(login, client,
      await oauth.genericTokenEndpointRequest(login, client, oauth.None(), 'password', USER, { DPoP, ...options })))
    t.equal(tokens.token_type, 'dpop', 'oauth4webapi read token_type DPoP')
    const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString())
    t.equal(payload.cnf.jkt, await DPoP.calculateThumbprint(), "cnf.jkt is the library's thumbprint of its key")

    // a resource server's use_dpop_nonce challenge (401, WWW-Authenticate) is an error the library tells apart
    const me = await withNonceRetry(async () =>
      await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(`${base}/private?from=interop`), new Headers(), null, { DPoP, ...options }))
    t.equal(me.status, 200, 'the protected request with its proof')
    t.equal(((await me.json()) as { user: { cnf: { jkt: string } } }).user.cnf.jkt, payload.cnf.jkt)

    const refreshed = await withNonceRetry(async () => await oauth.processRefreshTokenResponse(refresh, client,
      await oauth.refreshTokenGrantRequest(refresh, client, oauth.None(), tokens.refresh_token as string, { DPoP, ...options })))
    t.equal(refreshed.token_type, 'dpop', 'refreshed, still DPoP')
    t.not(refreshed.refresh_token, tokens.refresh_token, 'rotated')

    const stranger = oauth.DPoP({}, await newKeyPair())
    const refused = await withNonceRetry(async () => await oauth.processRefreshTokenResponse(refresh, client,
      await oauth.refreshTokenGrantRequest(refresh, client, oauth.None(), refreshed.refresh_token as string, { DPoP: stranger, ...options })))
      .then(() => null, (err: unknown) => err)
    // a 401 carries WWW-Authenticate, which the library reads before the body
    t.ok(refused instanceof oauth.WWWAuthenticateChallengeError, "another key's proof is refused")
    t.match(refused, { status: 401, cause: [{ scheme: 'dpop', parameters: { error: 'invalid_dpop_proof' } }] })
  })
}
