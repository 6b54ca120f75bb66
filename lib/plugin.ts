import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { createAuthenticator, type AuthenticatedUser } from './http/authenticate.js'
import { createAuthenticatedRouteFactory, type AuthenticatedRouteFactory } from './http/authenticated-route.js'
import { checkRefreshCookiePath } from './http/cookie.js'
import { messageReplacer } from './errors.js'
import { createJwksRouteFactory, JwksClient, type JwksRouteFactory } from './http/jwks.js'
import { bearerSecurityMarker } from './http/openapi.js'
import { resolveOptions } from './options/resolve.js'
import type { FastifyRefreshAuthOptions, ResolvedOptions } from './options/types.js'
import { SessionRevocations } from './sessions/revocation.js'
import { SessionEnds, type SessionEndListener } from './sessions/ends.js'
import { registerEventsRoute } from './http/events.js'
import { DpopGate } from './http/dpop.js'
import { createRouteFactories, resourceServerRouteFactories, type RouteFactories } from './http/routes.js'
import { createSessionsRouteFactories, type SessionsRouteFactories } from './http/sessions-routes.js'
import { createSessionManagement, createUserSessionControls, SessionPolicy, type RefreshTokenClaims, type SessionManagement } from './sessions/policy.js'
import { createClaimGuards, type ClaimGuards } from './http/scopes.js'
import { createFreshAuthGuards, type FreshAuthGuards } from './http/fresh-auth.js'
import { PLUGIN_STATE, type PluginState } from './http/standalone-guards.js'
import { MemoryStore } from './stores/memory.js'
import type { SessionEndNotice, SessionStore } from './stores/store.js'
import { TokenCache } from './tokens/cache.js'
import { TokenCodec, type RegisteredClaims } from './tokens/codec.js'
import { startTelemetry, type PluginTelemetry } from './telemetry/setup.js'
import { lagRecordingListener } from './telemetry/timed-store.js'

// JOSE `typ` headers: access tokens per RFC 9068 §2.1; refresh tokens get their own so neither passes as the other.
const ACCESS_TOKEN_TYPE = 'at+jwt'
const REFRESH_TOKEN_TYPE = 'rt+jwt'

/**
 * `app.refreshAuth`: the route factories, session management, and the scope, role and fresh sign-in guards.
 *
 * @example
 * app.get('/devices', { preHandler: app.authenticate }, async (request) => {
 *   const user = await request.authenticate() // the user app.authenticate verified, never null
 *   return app.refreshAuth.listUserSessions(user.sub)
 * })
 */
export interface RefreshAuthApi extends RouteFactories, SessionsRouteFactories, JwksRouteFactory, SessionManagement, ClaimGuards, FreshAuthGuards, AuthenticatedRouteFactory {
  /**
   * Calls `listener` for every session that ends, on any instance (through the store's revocation feed; without
   * one, the ends of this instance only), once per session, with `{ sessionId, userId, reason }`: close the
   * websockets held for that session. Returns the function that removes the listener.
   *
   * @example
   * const stop = app.refreshAuth.onSessionEnd(({ sessionId, reason }) => sockets.get(sessionId)?.close(4001, reason))
   * app.addHook('onClose', async () => stop())
   */
  onSessionEnd (listener: SessionEndListener): () => void
}

/** Tells this plugin apart for `app.register`'s overload that infers the login body's type (lib/decorators.ts). */
export const REFRESH_AUTH_PLUGIN: unique symbol = Symbol.for('fastify-refresh-auth.plugin') as never

/**
 * The plugin as `app.register` takes it: the options' `LoginBody` is inferred at each registration from the
 * request type `verifyCredentials` declares.
 *
 * @example
 * const plugin: RefreshAuthPlugin = fastifyRefreshAuth
 */
export type RefreshAuthPlugin = FastifyPluginAsync<FastifyRefreshAuthOptions> & { readonly [REFRESH_AUTH_PLUGIN]: true }

export async function refreshAuth (fastify: FastifyInstance, rawOptions: FastifyRefreshAuthOptions): Promise<void> {
  const options = resolveOptions(rawOptions)
  const { role } = options

  const { accessCacheSize, ...common } = options.tokens
  const accessTokens = new TokenCodec<RegisteredClaims>({ ...common, keys: role.accessKeys, type: ACCESS_TOKEN_TYPE })

  const jwksClient = role.kind === 'resource-server' && role.remoteJwks !== null
    ? new JwksClient({ ...role.remoteJwks, keySet: role.accessKeys, log: fastify.log })
    : undefined
  if (jwksClient !== undefined) {
    // the first load is awaited so a healthy app starts with keys; a failed one only logs (503 until loaded)
    fastify.addHook('onReady', async () => {
      await jwksClient.refresh()
      jwksClient.start()
    })
    fastify.addHook('onClose', async () => jwksClient.stop())
  }

  const givenStore = options.store ?? new MemoryStore()
  const telemetry = await startTelemetry(rawOptions.telemetry, givenStore, options.hooks.onLogout,
    givenStore instanceof MemoryStore ? () => givenStore.size : null)
  const store = telemetry?.store ?? givenStore
  const hooks = telemetry === null ? options.hooks : { ...options.hooks, onLogout: telemetry.onLogout }
  // the store stops what it started (timers, feeds), whoever made it; the host's client or pool stays open
  fastify.addHook('onClose', async () => store.close?.())
  const ends = new SessionEnds()
  const revocations = watchRevocations(fastify, options, store, ends, telemetry)

  // A verified token stays trusted only while the keys that verified it do: a new key set (a JWKS
  // refetch, which drops retired keys) empties the cache, or it would accept their tokens until exp.
  const accessTokenCache = accessCacheSize === 0 ? null : new TokenCache<AuthenticatedUser>(accessCacheSize)
  if (accessTokenCache !== null) role.accessKeys.onChange(() => accessTokenCache.clear())
  // one gate per app: its replay cache sees the proofs of the auth routes and the protected ones
  const dpop = options.dpop === null ? null : new DpopGate(options.dpop, options.tokens.clockTolerance)
  if (dpop?.noncesOn === true) fastify.addHook('onSend', async (request, reply) => dpop.sendNonce(request, reply))
  const authenticator = createAuthenticator(accessTokens, options.realm, accessTokenCache, jwksClient, revocations,
    telemetry?.countAuthentication ?? null, dpop)
  fastify.decorateRequest('user', null)
  fastify.decorateRequest('authenticate', authenticator.requestAuthenticate)
  fastify.decorate('authenticate', authenticator.hook)

  // Only an auth server, which signs both token types, has sessions; a resource server's factories refuse.
  const routeFactories = role.kind === 'resource-server'
    ? resourceServerRouteFactories()
    : createRouteFactories({ routes: options.routes, cookie: options.cookie, hooks, messages: options.messages }, new SessionPolicy({
      settings: options.sessions,
      hooks,
      store,
      accessTokens,
      refreshTokens: new TokenCodec<RefreshTokenClaims>({ ...common, keys: role.refreshKeys, type: REFRESH_TOKEN_TYPE }),
      revocations,
      ends,
      telemetry: telemetry?.sessions
    }), dpop)
  const factories = {
    ...routeFactories,
    ...createJwksRouteFactory(role.publicKeys, options.jwks),
    ...createSessionsRouteFactories(options.routes.prefix, createUserSessionControls(store, revocations, ends, hooks.onLogout), authenticator.hook)
  }
  const guards = { ...createClaimGuards(options.realm), ...createFreshAuthGuards(options.realm) }
  const api: RefreshAuthApi = {
    ...factories,
    ...createSessionManagement(store, fastify.log, revocations, ends),
    ...guards,
    onSessionEnd: (listener) => ends.on(listener),
    ...createAuthenticatedRouteFactory(authenticator.hook)
  }
  fastify.decorate('refreshAuth', api)
  // what the standalone `authenticate` and guards find at request time
  const state: PluginState = { authenticate: authenticator.hook, guards }
  fastify.decorate(PLUGIN_STATE, state)

  // OpenAPI: routes behind app.authenticate are documented as Bearer-protected
  fastify.addHook('onRoute', bearerSecurityMarker(authenticator.hook))
  // refresh and logout must be mounted where the browser sends the refresh cookie
  fastify.addHook('onRoute', checkRefreshCookiePath)
  if (options.messages !== null) fastify.addHook('onError', messageReplacer(options.messages))

  if (options.jwks.serve) fastify.route(factories.jwksRoute())
  if (options.routes.register) {
    fastify.route(factories.loginRoute())
    fastify.route(factories.refreshRoute())
    fastify.route(factories.logoutRoute())
    if (options.routes.sessions) {
      fastify.route(factories.listSessionsRoute())
      fastify.route(factories.endSessionRoute())
    }
    // the push needs to hear of ends on every instance: without a feed there is no route (404)
    const events = options.routes.events
    if (events !== null && revocations !== null && !revocations.recordsLocally) {
      registerEventsRoute(fastify, options.routes.prefix, events, ends, revocations, authenticator.hook)
    }
  }
}

/**
 * The sessions this instance refuses the access tokens of (`accessToken.revocation`), fed by the store's
 * revocation feed, or null when turned off. A resource server given no store has nothing to watch.
 */
function watchRevocations (
  fastify: FastifyInstance, options: ResolvedOptions, store: SessionStore, ends: SessionEnds, telemetry: PluginTelemetry | null
): SessionRevocations | null {
  const settings = options.revocation
  if (settings === null) return null
  if (options.role.kind === 'resource-server' && options.store === undefined) {
    fastify.log.warn('fastify-refresh-auth: this resource server has no session store, so it cannot refuse the access tokens of ' +
      'sessions that ended: give it the auth server\'s store (accessToken.revocation: false silences this)')
    return null
  }
  const watchFeed = store.watchRevocations
  const fed = typeof watchFeed === 'function'
  const tokenLifetime = options.sessions.accessExpiresIn + options.tokens.clockTolerance
  const revocations = new SessionRevocations({ ...settings, tokenLifetime, fed, log: fastify.log })
  revocations.start()
  fastify.addHook('onClose', async () => revocations.stop())
  if (typeof watchFeed !== 'function') {
    fastify.log.warn('fastify-refresh-auth: the session store has no revocation feed (watchRevocations): an ended session\'s ' +
      'access tokens are refused only by the instance that ended it')
    return revocations
  }
  // the ends announced since this instance started are told to onSessionEnd and the events streams too
  const since = Date.now()
  const heard = telemetry === null ? revocations : lagRecordingListener(revocations, telemetry.sessions)
  const listener = {
    revoked (sessionIds: readonly string[], revokedAt: number, notice: SessionEndNotice) {
      heard.revoked(sessionIds, revokedAt, notice)
      if (revokedAt >= since) ends.ended(sessionIds, notice)
    },
    status: revocations.status.bind(revocations)
  }
  const watch = watchFeed.call(store, listener, { retentionMs: revocations.keepMs })
  // like the JWKS: a healthy app starts with what the feed holds loaded
  fastify.addHook('onReady', async () => revocations.firstCatchUp())
  fastify.addHook('onClose', async () => watch.close())
  return revocations
}
