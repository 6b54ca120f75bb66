import type { webcrypto } from 'node:crypto'
import t, { type Test } from 'tap'
import { createDpopSigner, indexedDbKeyStore, type DpopKeyPair, type DpopKeyStore } from '../lib/client/dpop.js'
import { json } from './helpers/client.js'
import { readProof, tokenHash } from './helpers/read-dpop-proof.js'

// The DPoP signer of `fastify-refresh-auth/client/dpop` on its own: the proofs it signs (read with node:crypto),
// where its key lives, and when it sends a request again for the server's nonce.

const g = globalThis as any

// an IndexedDB in memory, new for each test (an ES module: imported, not required)
const newIndexedDb = async (): Promise<any> => new (await import('fake-indexeddb')).IDBFactory()

/** Puts `name` on globalThis for the test, and takes it away after. */
function withGlobal (t: Test, name: string, value: unknown): void {
  g[name] = value
  t.teardown(() => { delete g[name] })
}

/** A key store in memory that counts the pairs offered to it. */
function countingKeyStore (): DpopKeyStore & { added: number } {
  let kept: DpopKeyPair | undefined
  return {
    added: 0,
    get: () => kept,
    add (keys) {
      this.added++
      kept ??= keys
      return kept
    }
  }
}

t.test('a proof: ES256 with the public key only, the method and the URL without query, a fresh jti, iat now; ath with a token', async t => {
  const signer = createDpopSigner()
  const before = Math.floor(Date.now() / 1000)
  const login = readProof(await signer.proof('post', 'http://127.0.0.1:8080/auth/login?next=%2F#top'))
  t.same(Object.keys(login.header).sort(), ['alg', 'jwk', 'typ'])
  t.match(login.header, { typ: 'dpop+jwt', alg: 'ES256' })
  t.same(Object.keys(login.header.jwk).sort(), ['crv', 'kty', 'x', 'y'], 'the public members only')
  t.match(login.header.jwk, { kty: 'EC', crv: 'P-256' })
  t.match(login.payload, { htm: 'POST', htu: 'http://127.0.0.1:8080/auth/login' })
  t.ok(login.payload.iat >= before && login.payload.iat <= Math.ceil(Date.now() / 1000), 'iat: now, in seconds')
  t.notOk('ath' in login.payload, 'no ath without a token')
  t.notOk('nonce' in login.payload, 'no nonce before the server gave one')
  t.equal(await signer.thumbprint(), login.jkt, 'the thumbprint is RFC 7638\'s')

  const call = readProof(await signer.proof('GET', 'http://127.0.0.1:8080/api/me', 'the-access-token'))
  t.equal(call.payload.ath, tokenHash('the-access-token'))
  // the method as fetch sends it: it upper-cases DELETE, GET, HEAD, OPTIONS, POST and PUT only
  t.equal(readProof(await signer.proof('delete', 'http://127.0.0.1:8080/api/me')).payload.htm, 'DELETE')
  t.equal(readProof(await signer.proof('patch', 'http://127.0.0.1:8080/api/me')).payload.htm, 'patch')
  t.equal(call.jkt, login.jkt, 'one key')
  t.match(login.payload.jti, /^[\w-]{22}$/)
  t.not(call.payload.jti, login.payload.jti, 'a jti per proof')
})

t.test('a URL relative to the page', async t => {
  withGlobal(t, 'location', { href: 'https://app.example.com/account/settings?tab=1' })
  const signer = createDpopSigner()
  const proof = readProof(await signer.proof('GET', '/api/me?fields=name'))
  t.equal(proof.payload.htu, 'https://app.example.com/api/me')
  let sent: Record<string, string> = {}
  await signer.send('POST', '/auth/refresh', null, async (headers) => {
    sent = headers
    return json(200, {})
  })
  t.equal(readProof(sent.dpop).payload.htu, 'https://app.example.com/auth/refresh', 'and what it sends')
})

t.test('the key: made once, non-extractable, shared by the signers of one key store', async t => {
  const keyStore = countingKeyStore()
  const first = createDpopSigner({ keyStore })
  const [a, b] = await Promise.all([first.thumbprint(), first.proof('GET', 'http://localhost/')])
  t.equal(readProof(b).jkt, a)
  t.equal(keyStore.added, 1, 'concurrent proofs made one key')
  const keys = await keyStore.get() as webcrypto.CryptoKeyPair
  t.equal(keys.privateKey.extractable, false, 'the private key cannot be read')
  t.same(keys.privateKey.usages, ['sign'])
  t.equal(await createDpopSigner({ keyStore }).thumbprint(), a, 'another signer (a new client, a reload) on the store: the same key')
  t.equal(keyStore.added, 1)
  t.not(await createDpopSigner().thumbprint(), a, 'without IndexedDB or a store of its own, each signer has its own key in memory')
})

t.test('a key store that fails: the proof is refused, the next one tries again', async t => {
  let fail = true
  const keyStore = countingKeyStore()
  const signer = createDpopSigner({
    keyStore: {
      get: async () => {
        if (fail) throw new Error('storage unavailable')
        return await keyStore.get()
      },
      add: (keys) => keyStore.add(keys)
    }
  })
  await t.rejects(signer.proof('GET', 'http://localhost/'), { message: 'storage unavailable' })
  fail = false
  t.equal(readProof(await signer.proof('GET', 'http://localhost/')).jkt, await signer.thumbprint())
})

t.test('IndexedDB: where it exists the key is kept there, one for every signer of the page, non-extractable', async t => {
  withGlobal(t, 'indexedDB', await newIndexedDb())
  const signers = [createDpopSigner(), createDpopSigner()]
  const [a, b] = await Promise.all(signers.map(signer => signer.thumbprint()))
  t.equal(a, b, 'two signers making a key at once (two tabs) keep the same one')
  t.equal(await createDpopSigner().thumbprint(), a, 'after a reload: the same key')
  const stored = await indexedDbKeyStore().get() as webcrypto.CryptoKeyPair
  t.equal(stored.privateKey.extractable, false, 'still non-extractable once cloned into the database')
  t.not(await createDpopSigner({ keyStore: indexedDbKeyStore('another-app') }).thumbprint(), a, 'another database, another key')
})

t.test('IndexedDB refusing to open: the proof is refused', async t => {
  const factory = await newIndexedDb()
  withGlobal(t, 'indexedDB', factory)
  // a database at a later version than the key store's (another version of the app): open(name, 1) fails
  await new Promise((resolve, reject) => {
    const opening = factory.open('newer', 2)
    opening.onsuccess = () => { opening.result.close(); resolve(undefined) }
    opening.onerror = () => reject(opening.error)
  })
  await t.rejects(createDpopSigner({ keyStore: indexedDbKeyStore('newer') }).proof('GET', 'http://localhost/'), { name: 'VersionError' })
})

t.test('send: the headers, the newest nonce, one more try when the server asks for its nonce', async t => {
  const signer = createDpopSigner()
  const url = 'http://127.0.0.1:8080/auth/refresh'
  const sent: Array<Record<string, string>> = []
  const answering = (...answers: Response[]) => async (headers: Record<string, string>) => {
    sent.push(headers)
    return answers.shift() as Response
  }
  const nonceOf = (i: number): string | undefined => readProof(sent[i].dpop).payload.nonce
  const askForNonce = (nonce: string) => json(400, { error: 'use_dpop_nonce' }, { 'dpop-nonce': nonce })

  t.test('400 use_dpop_nonce on an auth route: again with the nonce', async t => {
    sent.length = 0
    const response = await signer.send('POST', url, null, answering(askForNonce('n1'), json(200, {})))
    t.equal(response.status, 200)
    t.equal(sent.length, 2)
    t.same(Object.keys(sent[0]), ['dpop'], 'no authorization without a token')
    t.same([nonceOf(0), nonceOf(1)], [undefined, 'n1'])
  })

  t.test('401 with the use_dpop_nonce challenge on a protected route: again with the nonce, token bound', async t => {
    sent.length = 0
    const challenge = json(401, {}, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n2' })
    const response = await signer.send('GET', 'http://127.0.0.1:8080/api/me', 'token-1', answering(challenge, json(200, {})))
    t.equal(response.status, 200)
    t.equal(sent.length, 2)
    t.equal(sent[1].authorization, 'DPoP token-1')
    t.same([nonceOf(0), nonceOf(1)], ['n1', 'n2'], 'the newest nonce of this server')
    t.equal(readProof(sent[1].dpop).payload.ath, tokenHash('token-1'))
  })

  t.test('asked again after the retry: that answer is the caller\'s, no loop; its nonce is kept', async t => {
    sent.length = 0
    const response = await signer.send('POST', url, null, answering(askForNonce('n3'), askForNonce('n4'), json(200, {})))
    t.equal(response.status, 400)
    t.equal((await response.json() as { error: string }).error, 'use_dpop_nonce', 'the body is still there to read')
    t.equal(sent.length, 2)
    await signer.send('POST', url, null, answering(json(200, {})))
    t.equal(nonceOf(2), 'n4')
  })

  t.test('no retry: another error, an answer that is no JSON, a nonce already presented, no nonce given', async t => {
    for (const answer of [
      json(400, { error: 'invalid_dpop_proof' }, { 'dpop-nonce': 'n5' }),
      new Response('use_dpop_nonce', { status: 400, headers: { 'dpop-nonce': 'n6' } }),
      askForNonce('n6'),
      json(400, { error: 'use_dpop_nonce' }),
      json(401, {}, { 'www-authenticate': 'DPoP error="invalid_token"', 'dpop-nonce': 'n7' }),
      json(401, {}, { 'dpop-nonce': 'n7b' }),
      json(403, {}, { 'dpop-nonce': 'n8' })
    ]) {
      sent.length = 0
      t.equal((await signer.send('POST', url, 'token', answering(answer, json(200, {})))).status, answer.status)
      t.equal(sent.length, 1, `${answer.status} ${answer.headers.get('dpop-nonce')}: one request`)
    }
  })

  t.test('a device clock that is wrong: set right from the server\'s Date, and a refused proof sent once more', async t => {
    sent.length = 0
    const other = 'http://127.0.0.1:9090/auth/login'
    const at = (offsetSeconds: number) => ({ date: new Date(Date.now() + offsetSeconds * 1000).toUTCString() })
    const refusedProof = json(400, { error: 'invalid_dpop_proof' }, at(120))
    const response = await signer.send('POST', other, null, answering(refusedProof, json(200, {}, at(120))))
    t.equal(response.status, 200)
    t.equal(sent.length, 2)
    const [first, second] = sent.map(headers => readProof(headers.dpop).payload.iat)
    t.ok(second - first >= 115 && second - first <= 125, `the server's time in iat: ${second - first} s later than the device's`)
    // the clock stays set: the next proof to that server too, and a protected route's 401 is sent again once
    const challenge = json(401, {}, { 'www-authenticate': 'DPoP error="invalid_dpop_proof"', ...at(-60) })
    t.equal((await signer.send('GET', other, 'token', answering(challenge, json(200, {})))).status, 200)
    const [third, fourth] = sent.slice(2).map(headers => readProof(headers.dpop).payload.iat)
    t.ok(third - first >= 115, 'still the server\'s time')
    t.ok(Math.abs(fourth - (third - 180)) <= 5, 'then set to its new Date')
    sent.length = 0
    const agreeing = json(400, { error: 'invalid_dpop_proof' }, at(-60))
    t.equal((await signer.send('POST', other, null, answering(agreeing, json(200, {})))).status, 400, 'a clock already right: no retry')
    t.equal(sent.length, 1)
    t.ok(readProof(await signer.proof('GET', url)).payload.iat <= Math.ceil(Date.now() / 1000), 'another server: the device\'s own time')
  })

  t.test('a nonce belongs to its server', async t => {
    sent.length = 0
    await signer.send('GET', 'http://other.example:8080/api', null, answering(json(200, {})))
    t.equal(nonceOf(0), undefined, 'not the nonce of 127.0.0.1:8080')
    await signer.send('GET', url, null, answering(json(200, {})))
    t.equal(nonceOf(1), 'n8')
  })
})
