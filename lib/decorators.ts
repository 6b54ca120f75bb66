// What the plugin adds to Fastify's own types. Imported by the entry only, for its declarations.
import type { AuthenticatedUser, AuthenticateHook } from './http/authenticate.js'
import type { RefreshAuthApi } from './plugin.js'

declare module 'fastify' {
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
