// Type tests of the client's DPoP option and the signer of `fastify-refresh-auth/client/dpop` (tstyche).
import { webcrypto } from 'node:crypto'
import { describe, expect, test } from 'tstyche'
import { createAuthClient, type AuthClientOptions, type DpopSigner } from 'fastify-refresh-auth/client'
import { createDpopSigner, indexedDbKeyStore, type DpopKeyPair, type DpopKeyStore, type DpopSignerOptions } from 'fastify-refresh-auth/client/dpop'

describe('createAuthClient({ dpop })', () => {
  test('true (the signer loaded on demand), false, or a signer', () => {
    expect(createAuthClient).type.toBeCallableWith({ dpop: true })
    expect(createAuthClient).type.toBeCallableWith({ dpop: false, transport: 'body' as const })
    expect(createAuthClient).type.toBeCallableWith({ dpop: createDpopSigner() })
    expect(createAuthClient).type.not.toBeCallableWith({ dpop: 'ES256' })
    expect(createAuthClient).type.not.toBeCallableWith({ dpop: { nonce: true } })
    expect<AuthClientOptions['dpop']>().type.toBe<boolean | DpopSigner | undefined>()
  })
})

describe('createDpopSigner', () => {
  test('makes a signer, with or without a key store', () => {
    expect(createDpopSigner()).type.toBe<DpopSigner>()
    expect(createDpopSigner({ keyStore: indexedDbKeyStore('my-app') })).type.toBe<DpopSigner>()
    expect(createDpopSigner).type.not.toBeCallableWith({ keyStore: 'indexeddb' })
    expect<DpopSignerOptions>().type.toBe<{ keyStore?: DpopKeyStore }>()
  })

  test('the signer signs proofs, names its key, and sends', async () => {
    const signer = createDpopSigner()
    expect(await signer.proof('GET', 'https://api.example.com/me', 'access-token')).type.toBe<string>()
    expect(signer.proof).type.not.toBeCallableWith('GET')
    expect(await signer.thumbprint()).type.toBe<string>()
    const response = signer.send('GET', 'https://api.example.com/me', null, async (headers) => {
      expect(headers).type.toBe<Record<string, string>>()
      return new Response()
    })
    expect(response).type.toBe<Promise<Response>>()
  })

  test('a key store of your own keeps WebCrypto key pairs, sync or async', () => {
    let kept: webcrypto.CryptoKeyPair | undefined
    expect<DpopKeyStore>().type.toBeAssignableFrom({ get: () => kept, add: (keys: webcrypto.CryptoKeyPair) => (kept ??= keys) })
    expect<DpopKeyStore>().type.toBeAssignableFrom({ get: async () => null, add: async (keys: DpopKeyPair) => keys })
    expect<DpopKeyStore>().type.not.toBeAssignableFrom({ get: () => kept })
    expect<DpopKeyStore>().type.not.toBeAssignableFrom({ get: () => 'key', add: (keys: DpopKeyPair) => keys })
  })
})
