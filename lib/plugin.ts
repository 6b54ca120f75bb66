import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance } from 'fastify'
import { createAuthenticator } from './authenticate.js'
import { deriveKeys } from './keys.js'
import { resolveOptions, type FastifyRefreshAuthOptions } from './options.js'
import { createRouteFactories, type RouteFactories } from './routes.js'
import { SessionPolicy, type RefreshTokenClaims, type SessionManagement } from './session.js'
import { MemoryStore } from './stores/memory.js'
import { TokenCodec, type RegisteredClaims } from './tokens.js'

// JOSE `typ` headers: access tokens per RFC 9068 §2.1; refresh tokens get their own so neither passes as the other.
const ACCESS_TOKEN_TYPE = 'at+jwt'
const REFRESH_TOKEN_TYPE = 'rt+jwt'

/** `app.refreshAuth`: the route factories and session management. */
export interface RefreshAuthApi extends RouteFactories, SessionManagement {}

export async function refreshAuth (fastify: FastifyInstance, rawOptions: FastifyRefreshAuthOptions): Promise<void> {
  const options = resolveOptions(rawOptions)

  if (!fastify.hasDecorator('parseCookie')) await fastify.register(fastifyCookie)

  const keys = deriveKeys(options.secret)
  const common = { issuer: options.issuer, audience: options.audience, clockTolerance: options.clockTolerance }
  const accessTokens = new TokenCodec<RegisteredClaims>({ ...common, key: keys.access, type: ACCESS_TOKEN_TYPE })
  const refreshTokens = new TokenCodec<RefreshTokenClaims>({ ...common, key: keys.refresh, type: REFRESH_TOKEN_TYPE })

  let store = options.store
  if (store === undefined) {
    const ownStore = new MemoryStore()
    fastify.addHook('onClose', async () => ownStore.close())
    store = ownStore
  }

  const authenticator = createAuthenticator(accessTokens, options.realm)
  fastify.decorateRequest('user', null)
  fastify.decorateRequest('authenticate', authenticator.requestAuthenticate)
  fastify.decorate('authenticate', authenticator.hook)

  const sessions = new SessionPolicy({ options, store, accessTokens, refreshTokens })
  const factories = createRouteFactories(options, sessions)
  const api: RefreshAuthApi = { ...factories, ...sessions.management(fastify.log) }
  fastify.decorate('refreshAuth', api)

  if (options.registerRoutes) {
    fastify.route(factories.loginRoute())
    fastify.route(factories.refreshRoute())
    fastify.route(factories.logoutRoute())
  }
}
