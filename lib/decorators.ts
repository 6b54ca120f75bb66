// What the plugin adds to Fastify's own types. Imported by the entry only, for its declarations.
import type { FastifyBaseLogger, FastifyRegisterOptions, FastifyTypeProvider, RawServerBase } from 'fastify'
import type { AuthenticatedUser, AuthenticateHook } from './http/authenticate.js'
import type { FastifyRefreshAuthOptions } from './options/types.js'
import type { RefreshAuthApi, RefreshAuthPlugin } from './plugin.js'

declare module 'fastify' {
  // the type parameters must be Fastify's own to merge, though this signature needs only T
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface FastifyRegister<T, RawServer extends RawServerBase, TypeProviderDefault extends FastifyTypeProvider, LoggerDefault extends FastifyBaseLogger> {
    /**
     * Registers fastify-refresh-auth, with the login body's type (`LoginBody`) inferred from the request type
     * `verifyCredentials` declares, so that it and `rememberMe` read `request.body` with no cast.
     */
    <LoginBody = unknown>(plugin: RefreshAuthPlugin, opts?: FastifyRegisterOptions<FastifyRefreshAuthOptions<LoginBody>>): T
  }
  interface FastifyInstance {
    /** preHandler/onRequest hook that lets only requests with a valid access token through. */
    authenticate: AuthenticateHook
    /** The route factories, session management (`revokeSession`, `revokeUserSessions`, `listUserSessions`), and the scope, role and fresh sign-in guards. */
    refreshAuth: RefreshAuthApi
  }
  interface FastifyRequest {
    /**
     * The verified access-token claims once authenticated, else null. Under strict TypeScript,
     * `await request.authenticate()` reads it without the null check.
     */
    user: AuthenticatedUser | null
    /**
     * The authenticated user: on a route behind `app.authenticate`, the user it verified (nothing is
     * verified again); elsewhere it verifies the Bearer token and sets `request.user`, or rejects with a 401 error.
     */
    authenticate (): Promise<AuthenticatedUser>
  }
}
