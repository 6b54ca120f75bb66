// Type tests of DPoP (issue 23): the `dpop` option, the key a bound token names, the two error codes (tstyche).
import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import fastifyRefreshAuth, {
  ErrorCodes,
  InvalidDpopProofError,
  UseDpopNonceError,
  type AuthenticatedUser,
  type DpopOptions,
  type ErrorMessages,
  type RegisteredClaims
} from 'fastify-refresh-auth'
import type { SessionRecord } from 'fastify-refresh-auth/store'

const app = Fastify()
const secret = 'x'.repeat(32)
const verifyCredentials = async () => ({ id: 1 })

describe('the dpop option', () => {
  test('true, or an object of required, nonce, proofMaxAge, algorithms, origin', () => {
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, dpop: true })
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, {
      secret, verifyCredentials, dpop: { required: true, nonce: true, proofMaxAge: '30s', algorithms: ['ES256', 'EdDSA'], origin: 'https://api.example.com' }
    })
    expect(app.register).type.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, dpop: { proofMaxAge: 90 } })
    expect(app.register).type.not.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, dpop: 'yes' })
    expect(app.register).type.not.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, dpop: { required: 'yes' } })
    expect(app.register).type.not.toBeCallableWith(fastifyRefreshAuth, { secret, verifyCredentials, dpop: { proofMaxAge: '1 fortnight' } })
  })

  test('DpopOptions is the object form', () => {
    expect<DpopOptions['required']>().type.toBe<boolean | undefined>()
    expect<DpopOptions['algorithms']>().type.toBe<string[] | undefined>()
  })
})

describe('a bound token and session name their key', () => {
  test('request.user.cnf.jkt, optional: Bearer tokens have none', () => {
    expect<AuthenticatedUser['cnf']>().type.toBe<{ jkt: string } | undefined>()
    expect<RegisteredClaims['cnf']>().type.toBe<{ jkt: string } | undefined>()
  })

  test('SessionRecord.jkt for store authors', () => {
    expect<SessionRecord['jkt']>().type.toBe<string | undefined>()
  })
})

describe('the DPoP errors', () => {
  test('classes, codes, and messages a host may replace', () => {
    expect(new InvalidDpopProofError().code).type.toBe<'FST_REFRESH_AUTH_INVALID_DPOP_PROOF'>()
    expect(new UseDpopNonceError().code).type.toBe<'FST_REFRESH_AUTH_USE_DPOP_NONCE'>()
    expect(ErrorCodes.INVALID_DPOP_PROOF).type.toBe<'FST_REFRESH_AUTH_INVALID_DPOP_PROOF'>()
    expect({ FST_REFRESH_AUTH_USE_DPOP_NONCE: 'Try again' }).type.toBeAssignableTo<ErrorMessages>()
  })
})
