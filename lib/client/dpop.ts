// DPoP for the client (RFC 9449): `fastify-refresh-auth/client/dpop`, also what `createAuthClient({ dpop: true })`
// loads on demand. An entry of its own so that the client without DPoP stays within its budget. Platform
// functions only (WebCrypto, IndexedDB where it exists); the one import is a type, gone from the build.
import type { DpopSigner } from './dpop-signer.js'

export type { DpopSigner }

/**
 * A key pair as WebCrypto makes it (a `CryptoKeyPair`): the private key is never extractable.
 *
 * @example
 * const keys: DpopKeyPair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
 */
export interface DpopKeyPair { publicKey: object, privateKey: object }

/**
 * Where the signer keeps its key pair. The default is IndexedDB where it exists (browsers), else memory.
 *
 * @example
 * let kept: DpopKeyPair | undefined
 * const keyStore: DpopKeyStore = { get: () => kept, add: (keys) => (kept ??= keys) }
 */
export interface DpopKeyStore {
  /** The stored key pair, if any. */
  get (): Promise<DpopKeyPair | null | undefined> | DpopKeyPair | null | undefined
  /** Stores `keys` unless a pair is stored already (another tab made one first), and returns the pair kept. */
  add (keys: DpopKeyPair): Promise<DpopKeyPair> | DpopKeyPair
}

/**
 * The options of `createDpopSigner`, every one optional.
 *
 * @example
 * const options: DpopSignerOptions = { keyStore: indexedDbKeyStore('my-app') }
 */
export interface DpopSignerOptions {
  /** Where the key pair is kept (default: IndexedDB where it exists, else memory). */
  keyStore?: DpopKeyStore
}

const subtle = (): typeof globalThis.crypto.subtle => globalThis.crypto.subtle
// the web platform's globals, which Node's types do not declare (IndexedDB, location)
const web = globalThis as any

function base64url (bytes: ArrayBuffer | Uint8Array): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

const encode = (value: string): Uint8Array => new TextEncoder().encode(value)
const json = (value: object): string => base64url(encode(JSON.stringify(value)))
const sha256 = async (value: string): Promise<string> => base64url(await subtle().digest('SHA-256', encode(value)))

// an IndexedDB request (or transaction) as a promise
function request<T> (operation: any): Promise<T> {
  return new Promise((resolve, reject) => {
    if ('objectStore' in operation) operation.oncomplete = () => resolve(undefined as T)
    else operation.onsuccess = () => resolve(operation.result)
    operation.onerror = () => reject(operation.error)
  })
}

/**
 * The key pair in IndexedDB (database `name`, default `'fastify-refresh-auth'`), where the browser keeps it
 * across reloads. A structured clone of a non-extractable key stays non-extractable: script can sign with it,
 * never read it.
 *
 * @example
 * const signer = createDpopSigner({ keyStore: indexedDbKeyStore('my-app') })
 */
export function indexedDbKeyStore (name = 'fastify-refresh-auth'): DpopKeyStore {
  let database: Promise<any> | undefined
  const open = (): Promise<any> => (database ??= (() => {
    const opening = web.indexedDB.open(name, 1)
    opening.onupgradeneeded = () => opening.result.createObjectStore('dpop')
    return request(opening)
  })())
  const store = async (mode: 'readonly' | 'readwrite'): Promise<any> => (await open()).transaction('dpop', mode).objectStore('dpop')
  return {
    get: async () => await request((await store('readonly')).get('key')),
    // one transaction reads and writes: two tabs making a key at once keep the same one
    async add (keys) {
      const keyStore = await store('readwrite')
      const kept = await request<DpopKeyPair | undefined>(keyStore.get('key'))
      if (kept !== undefined) return kept
      keyStore.put(keys, 'key')
      await request(keyStore.transaction)
      return keys
    }
  }
}

function memoryKeyStore (): DpopKeyStore {
  let kept: DpopKeyPair | undefined
  return { get: () => kept, add: (keys) => (kept ??= keys) }
}

// The DPoP error of an answer: in the body of a 400 on the auth routes (RFC 9449 §5, §8), in the challenge of
// a 401 elsewhere (§7.1, §9).
async function dpopError (response: Response): Promise<unknown> {
  if (response.status === 401) return /error="(\w+)"/.exec(response.headers.get('www-authenticate') ?? '')?.[1]
  return response.status === 400 && (await response.clone().json().catch(() => null) as { error?: unknown } | null)?.error
}

// `htm` is the method as it goes out: fetch upper-cases these six only (a `patch` stays `patch`).
const asFetchSends = (method: string): string => /^(delete|get|head|options|post|put)$/i.test(method) ? method.toUpperCase() : method

/**
 * Makes the DPoP signer that `createAuthClient({ dpop })` uses: a non-extractable P-256 key, made once and kept
 * in the key store, and a proof for every request. Needs WebCrypto (`crypto.subtle`): browsers on https or
 * localhost, Node 20, React Native with a WebCrypto polyfill.
 *
 * @example
 * import { createAuthClient } from 'fastify-refresh-auth/client'
 * import { createDpopSigner } from 'fastify-refresh-auth/client/dpop'
 * const auth = createAuthClient({ dpop: createDpopSigner() })
 */
export function createDpopSigner (options: DpopSignerOptions = {}): DpopSigner {
  const keyStore = options.keyStore ?? (web.indexedDB === undefined ? memoryKeyStore() : indexedDbKeyStore())
  // the newest nonce each server gave
  const nonces = new Map<string, string>()
  // the seconds each server's clock is ahead of this device's, from the Date of its answers: proofs carry the
  // server's time in iat, so a device whose clock is wrong still gets in (servers allow a few seconds only)
  const skews = new Map<string, number>()
  let loading: Promise<{ keys: any, jwk: object }> | undefined

  const load = (): Promise<{ keys: any, jwk: object }> => (loading ??= (async () => {
    const keys: any = await keyStore.get() ??
      await keyStore.add(await subtle().generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']))
    // the public members only, in the order RFC 7638 hashes them
    const { crv, kty, x, y } = await subtle().exportKey('jwk', keys.publicKey)
    return { keys, jwk: { crv, kty, x, y } }
  })().catch(error => {
    loading = undefined
    throw error
  }))

  async function proof (method: string, url: string, accessToken?: string): Promise<string> {
    const { keys, jwk } = await load()
    const target = new URL(url, web.location?.href)
    const nonce = nonces.get(target.origin)
    const signed = json({ typ: 'dpop+jwt', alg: 'ES256', jwk }) + '.' + json({
      jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
      htm: asFetchSends(method),
      htu: target.origin + target.pathname,
      iat: Math.floor(Date.now() / 1000) + (skews.get(target.origin) ?? 0),
      ...(accessToken !== undefined && { ath: await sha256(accessToken) }),
      ...(nonce !== undefined && { nonce })
    })
    const signature = await subtle().sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, encode(signed))
    return signed + '.' + base64url(signature)
  }

  return {
    proof,
    thumbprint: async () => await sha256(JSON.stringify((await load()).jwk)),
    async send (method, url, accessToken, go) {
      const origin = new URL(url, web.location?.href).origin
      const attempt = async (): Promise<{ response: Response, again: boolean }> => {
        const presented = nonces.get(origin)
        const skew = skews.get(origin) ?? 0
        const response = await go({
          dpop: await proof(method, url, accessToken ?? undefined),
          ...(accessToken !== null && { authorization: 'DPoP ' + accessToken })
        })
        const nonce = response.headers.get('dpop-nonce')
        if (nonce !== null) nonces.set(origin, nonce)
        // Date has whole seconds and arrives a moment late: a clock is wrong when it is off by more than that
        const ahead = Date.parse(response.headers.get('date') ?? '') / 1000 - Date.now() / 1000
        const corrected = Math.abs(ahead - skew) > 2
        if (corrected) skews.set(origin, Math.round(ahead))
        const error = await dpopError(response)
        // again with a new nonce (the one just presented would be refused again), or with the clock set right
        return { response, again: (error === 'use_dpop_nonce' && nonce !== null && nonce !== presented) || (error === 'invalid_dpop_proof' && corrected) }
      }
      const first = await attempt()
      // once: a server that asks again after the retry gets no third request
      return first.again ? (await attempt()).response : first.response
    }
  }
}
