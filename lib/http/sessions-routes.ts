import type { RouteOptions } from 'fastify'
import { SessionNotFoundError } from '../errors.js'
import type { UserSession } from '../sessions/devices.js'
import type { UserSessionControls } from '../sessions/policy.js'
import type { AuthenticateHook } from './authenticate.js'
import type { RouteOverrides } from './routes.js'
import { errorResponseSchema, type RouteSchema } from './schemas.js'

// The plugin's session ids are UUIDs: anything else is refused by the schema (400) before a store is asked.
const SESSION_ID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

const nullableString = { type: ['string', 'null'] } as const

/** One entry of `GET {prefix}/sessions`. */
interface ListedSession {
  sessionId: string
  /** The session of the access token that asked. */
  current: boolean
  createdAt: number
  lastSeenAt: number
  ip: string | null
  userAgent: string | null
  device: UserSession['device']
}

const listedSessionSchema = {
  type: 'object',
  required: ['sessionId', 'current', 'createdAt', 'lastSeenAt', 'ip', 'userAgent', 'device'],
  properties: {
    sessionId: { type: 'string', description: 'The `sid` of the session\'s access tokens' },
    current: { type: 'boolean', description: 'The session of the access token that asked' },
    createdAt: { type: 'integer', description: 'Sign-in, milliseconds since the epoch' },
    lastSeenAt: { type: 'integer', description: 'The last refresh (sign-in if none yet), milliseconds since the epoch' },
    ip: { ...nullableString, description: 'The address the session signed in from (`request.ip`, so behind `trustProxy` the client\'s)' },
    userAgent: { ...nullableString, description: 'The User-Agent of the sign-in' },
    device: {
      type: 'object',
      required: ['browser', 'os', 'type'],
      properties: {
        browser: { ...nullableString, description: 'Chrome, Safari, Firefox…; null when unknown' },
        os: { ...nullableString, description: 'Windows, macOS, iOS, Android…; null when unknown' },
        type: { type: ['string', 'null'], enum: ['desktop', 'mobile', 'tablet', 'tv', 'bot', null] }
      },
      additionalProperties: false
    }
  },
  additionalProperties: false
} as const

const errorResponses = { '4xx': errorResponseSchema, '5xx': errorResponseSchema }

const listSchema: RouteSchema = {
  tags: ['auth'],
  summary: 'List the signed-in user\'s sessions',
  description: 'The live sessions of the access token\'s user, for an "active devices" page: the caller\'s own has `current: true`.',
  response: {
    200: { type: 'object', required: ['sessions'], properties: { sessions: { type: 'array', items: listedSessionSchema } }, additionalProperties: false },
    ...errorResponses
  }
}

const endSchema: RouteSchema = {
  tags: ['auth'],
  summary: 'End one of the signed-in user\'s sessions',
  description: 'Ends a session of the access token\'s user everywhere (its refresh token and access tokens are refused on every ' +
    'instance). 404 for a session that is not the user\'s, unknown or already ended alike.',
  params: {
    type: 'object',
    required: ['sessionId'],
    properties: { sessionId: { type: 'string', pattern: SESSION_ID_PATTERN, description: 'A `sessionId` of `GET {prefix}/sessions`' } }
  },
  response: { 204: { type: 'null', description: 'Ended' }, ...errorResponses }
}

/** Most recently seen first, the caller's own at the top. */
function listed (sessions: UserSession[], currentSessionId: string): ListedSession[] {
  return sessions
    .map(session => ({
      sessionId: session.sessionId,
      current: session.sessionId === currentSessionId,
      createdAt: session.createdAt,
      lastSeenAt: session.lastSeenAt,
      ip: session.ip ?? null,
      userAgent: session.userAgent ?? null,
      device: session.device
    }))
    .sort((a, b) => Number(b.current) - Number(a.current) || b.lastSeenAt - a.lastSeenAt)
}

/**
 * The devices routes' factories, behind `app.refreshAuth`: with `routes: false`, or to add hooks or move them,
 * mount them yourself. `overrides` change anything but the handler; the access-token check stays first of the
 * `onRequest` hooks, yours after it; a `schema` merges with ours as for the auth routes.
 *
 * @example
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, routes: false })
 * app.route(app.refreshAuth.listSessionsRoute({ url: '/api/devices' }))
 * app.route(app.refreshAuth.endSessionRoute({ url: '/api/devices/:sessionId' }))
 */
export interface SessionsRouteFactories {
  /** `GET {prefix}/sessions`: the signed-in user's sessions, the caller's own with `current: true`. */
  listSessionsRoute (overrides?: RouteOverrides): RouteOptions
  /** `DELETE {prefix}/sessions/:sessionId`: ends one of them everywhere; 404 for a session that is not the user's. */
  endSessionRoute (overrides?: RouteOverrides): RouteOptions
}

/** Ours, then the host's overrides; authentication stays first, whatever `onRequest` the host adds. */
function withOverrides (route: RouteOptions, overrides: RouteOverrides): RouteOptions {
  const ownSchema = route.schema as RouteSchema
  const hostSchema: RouteSchema = overrides.schema ?? {}
  const hostOnRequest = overrides.onRequest === undefined ? [] : [overrides.onRequest].flat()
  return {
    ...route,
    ...overrides,
    onRequest: [route.onRequest as AuthenticateHook, ...hostOnRequest],
    schema: { ...ownSchema, ...hostSchema, response: { ...ownSchema.response as object, ...hostSchema.response as object } },
    handler: route.handler
  }
}

/**
 * `GET {prefix}/sessions` and `DELETE {prefix}/sessions/:sessionId` (registered with `routes: { sessions: true }`):
 * the devices page of the user of the access token. Bearer-authenticated, so they take no cookie and need no CSRF check.
 */
export function createSessionsRouteFactories (
  prefix: string, controls: UserSessionControls, authenticate: AuthenticateHook
): SessionsRouteFactories {
  return {
    listSessionsRoute: (overrides = {}) => withOverrides({
      method: 'GET',
      url: `${prefix}/sessions`,
      onRequest: authenticate,
      schema: listSchema,
      async handler (request, reply) {
        const user = await request.authenticate() // verified by the hook already: not again
        const sessions = await controls.listUserSessions(user.sub, request)
        reply.header('cache-control', 'no-store')
        return { sessions: listed(sessions, user.sid) }
      }
    }, overrides),

    endSessionRoute: (overrides = {}) => withOverrides({
      method: 'DELETE',
      url: `${prefix}/sessions/:sessionId`,
      onRequest: authenticate,
      schema: endSchema,
      async handler (request, reply) {
        const user = await request.authenticate()
        const { sessionId } = request.params as { sessionId: string }
        const ended = await controls.endUserSession(user.sub, sessionId, request)
        if (!ended) throw new SessionNotFoundError()
        return reply.code(204).send()
      }
    }, overrides)
  }
}
