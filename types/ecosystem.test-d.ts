// Type tests of the guards, the OpenAPI helpers, error codes and messages (tstyche).
import type {} from '@fastify/swagger' // its types add `security` to route schemas
import Fastify, { type preHandlerAsyncHookHandler } from 'fastify'
import { describe, expect, test } from 'tstyche'
import {
  BEARER_SCHEME,
  DPOP_SCHEME,
  ErrorCodes,
  REFRESH_COOKIE_SCHEME,
  openApiBearerSecurity,
  openApiSecuritySchemes,
  type ClaimGuard,
  type ErrorMessages,
  type OpenApiSecuritySchemes,
  type RefreshAuthErrorCode,
  type RefreshTokenTransport
} from 'fastify-refresh-auth'

const app = Fastify()

describe('scope and role guards', () => {
  test('are preHandlers, usable next to app.authenticate', () => {
    const guard = app.refreshAuth.requireScopes(['orders:read'], { match: 'any', claim: 'scp' })
    expect(guard).type.toBe<ClaimGuard>()
    expect<preHandlerAsyncHookHandler>().type.toBeAssignableFrom(app.refreshAuth.requireRoles('admin'))
    app.get('/orders', { preHandler: [app.authenticate, guard], schema: { security: openApiBearerSecurity } }, async () => 'ok')
  })

  test('take strings, and a match of all or any', () => {
    expect(app.refreshAuth.requireScopes).type.not.toBeCallableWith(42)
    expect(app.refreshAuth.requireRoles).type.not.toBeCallableWith('admin', { match: 'some' })
  })
})

describe('OpenAPI helpers', () => {
  test('name the two schemes', () => {
    expect(BEARER_SCHEME).type.toBe<'bearerAuth'>()
    expect(REFRESH_COOKIE_SCHEME).type.toBe<'refreshCookie'>()
    expect(openApiSecuritySchemes({ cookieName: 'rt' })).type.toBe<OpenApiSecuritySchemes>()
    expect(openApiSecuritySchemes().bearerAuth.scheme).type.toBe<'bearer'>()
  })

  test('name the DPoP scheme, declared on demand', () => {
    expect(DPOP_SCHEME).type.toBe<'dpopAuth'>()
    expect(openApiSecuritySchemes({ dpop: true }).dpopAuth?.scheme).type.toBe<'dpop' | undefined>()
    expect(openApiSecuritySchemes).type.not.toBeCallableWith({ dpop: 'yes' })
  })
})

describe('error codes and messages', () => {
  test('the codes are literals', () => {
    expect(ErrorCodes.INSUFFICIENT_SCOPE).type.toBe<'FST_REFRESH_AUTH_INSUFFICIENT_SCOPE'>()
    expect<RefreshAuthErrorCode>().type.toBeAssignableFrom(ErrorCodes.NO_TOKEN)
    expect<RefreshAuthErrorCode>().type.not.toBeAssignableFrom('FST_REFRESH_AUTH_TYPO')
  })

  test('messages replace only what a client sees', () => {
    expect<ErrorMessages>().type.toBeAssignableFrom({ FST_REFRESH_AUTH_INVALID_CREDENTIALS: 'Wrong e-mail or password' })
    expect<ErrorMessages>().type.not.toBeAssignableFrom({ FST_REFRESH_AUTH_INVALID_OPTION: 'x' })
    expect<ErrorMessages>().type.not.toBeAssignableFrom({ FST_REFRESH_AUTH_STORE_TIMEOUT: 'x' })
    expect<ErrorMessages>().type.not.toBeAssignableFrom({ FST_REFRESH_AUTH_INVALID_ARGUMENT: 'x' })
    expect<ErrorMessages>().type.not.toBeAssignableFrom({ FST_REFRESH_AUTH_JWKS_FETCH_FAILED: 'x' })
    expect<ErrorMessages>().type.toBeAssignableFrom({
      FST_REFRESH_AUTH_DUPLICATE_COOKIE: 'Sign in again',
      FST_REFRESH_AUTH_INVALID_CLAIMS: 'x',
      FST_REFRESH_AUTH_INVALID_SUBJECT: 'x',
      FST_REFRESH_AUTH_CALLBACK_FAILED: 'Try again later'
    })
  })

  test('the refresh-token transports', () => {
    expect<RefreshTokenTransport>().type.toBe<'cookie' | 'body' | 'both'>()
  })
})
