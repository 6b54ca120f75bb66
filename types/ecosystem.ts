// Type-level tests of the ecosystem helpers, as a consumer sees them (checked by `npm run typecheck`).
import type {} from '@fastify/swagger' // its types add `security` to route schemas
import Fastify, { type preHandlerAsyncHookHandler } from 'fastify'
import fastifyRefreshAuth, {
  BEARER_SCHEME,
  ErrorCodes,
  REFRESH_COOKIE_SCHEME,
  openApiBearerSecurity,
  openApiSecuritySchemes,
  type ClaimGuard,
  type ErrorMessages,
  type FastifyRefreshAuthOptions,
  type RefreshAuthErrorCode,
  type RefreshTokenTransport
} from 'fastify-refresh-auth'

export async function ecosystemTypes (): Promise<void> {
  const app = Fastify()
  const transport: RefreshTokenTransport = 'both'
  const messages: ErrorMessages = { FST_REFRESH_AUTH_INVALID_CREDENTIALS: 'Wrong e-mail or password' }
  const options: FastifyRefreshAuthOptions = { secret: 'x'.repeat(32), verifyCredentials: () => null, refreshTokenTransport: transport, messages }
  await app.register(fastifyRefreshAuth, options)

  const guard: ClaimGuard = app.refreshAuth.requireScopes(['orders:read'], { match: 'any', claim: 'scp' })
  const hook: preHandlerAsyncHookHandler = app.refreshAuth.requireRoles('admin')
  app.get('/orders', { preHandler: [app.authenticate, guard, hook], schema: { security: openApiBearerSecurity } }, async () => 'ok')

  const bearer: 'bearerAuth' = BEARER_SCHEME
  const cookie: 'refreshCookie' = REFRESH_COOKIE_SCHEME
  const name: string = openApiSecuritySchemes({ cookieName: 'rt' }).refreshCookie.name
  const code: RefreshAuthErrorCode = ErrorCodes.INSUFFICIENT_SCOPE
  console.log(bearer, cookie, name, code)

  // @ts-expect-error not a transport
  const wrongTransport: RefreshTokenTransport = 'header'
  // @ts-expect-error the option error is thrown at registration; no client sees its message
  const wrongMessages: ErrorMessages = { FST_REFRESH_AUTH_INVALID_OPTION: 'x' }
  // @ts-expect-error match is 'all' or 'any'
  app.refreshAuth.requireRoles('admin', { match: 'some' })
  // @ts-expect-error argument errors are thrown at the host's own calls; no client sees them
  const argumentMessages: ErrorMessages = { FST_REFRESH_AUTH_INVALID_ARGUMENT: 'x' }
  const clientMessages: ErrorMessages = { FST_REFRESH_AUTH_DUPLICATE_COOKIE: 'Clear your cookies', FST_REFRESH_AUTH_CALLBACK_FAILED: 'Try again' }
  const numericSubject: FastifyRefreshAuthOptions = { secret: 'x'.repeat(32), verifyCredentials: () => null, subject: () => 42 }
  // @ts-expect-error a subject is a string or a number
  const objectSubject: FastifyRefreshAuthOptions = { secret: 'x'.repeat(32), verifyCredentials: () => null, subject: () => ({ id: 1 }) }
  console.log(wrongTransport, wrongMessages, argumentMessages, clientMessages, numericSubject, objectSubject)
}
