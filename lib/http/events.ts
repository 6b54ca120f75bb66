import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'
import { EventStreamsFullError } from '../errors.js'
import type { SessionEnds } from '../sessions/ends.js'
import type { SessionRevocations } from '../sessions/revocation.js'
import type { AuthenticateHook } from './authenticate.js'
import type { EventStreamsSettings } from '../options/types.js'

// setTimeout's longest delay (about 24.8 days): an access token that lives longer closes its stream then
const MAX_DELAY_MS = 2 ** 31 - 1

/**
 * `GET {prefix}/events`: a Server-Sent Events stream for the session of the access token in `Authorization`.
 * It sends `event: session-ended` with `data: {"reason": …}` when the session ends on any instance, and
 * closes then, or when the access token expires (the client comes back with the next one). A comment every
 * `heartbeatMs` keeps it open through proxies. One Map lookup per session end, whatever the number of streams.
 */
export function registerEventsRoute (
  fastify: FastifyInstance,
  prefix: string,
  settings: EventStreamsSettings,
  ends: SessionEnds,
  revocations: SessionRevocations,
  authenticate: AuthenticateHook
): void {
  // session id → the functions that close its streams with an event
  const streams = new Map<string, Set<(reason: string) => void>>()
  let open = 0
  const closeAll = new Set<() => void>()

  ends.on(({ sessionId, reason }) => {
    for (const close of streams.get(sessionId) ?? []) close(reason)
  })
  // the server waits for open connections: streams are ended before it closes
  fastify.addHook('preClose', async () => {
    for (const close of [...closeAll]) close()
  })

  const route: RouteOptions = {
    method: 'GET',
    url: `${prefix}/events`,
    onRequest: authenticate,
    schema: {
      tags: ['auth'],
      summary: 'Session events',
      description: 'A Server-Sent Events stream: `event: session-ended` when the session of the access token ends, on any instance.'
    } as NonNullable<RouteOptions['schema']>,
    handler (request: FastifyRequest, reply) {
      const user = request.user as NonNullable<FastifyRequest['user']>
      if (open >= settings.maxStreams) throw new EventStreamsFullError()
      open++
      reply.hijack()
      const raw = reply.raw
      raw.writeHead(200, {
        ...reply.getHeaders() as Record<string, string>,
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        // HTTP/1.1: the connection goes with the stream, so none lingers idle after it (a closing server waits for those)
        ...(request.raw.httpVersionMajor === 1 ? { connection: 'close' } : {})
      })
      raw.write(': open\n\n')

      const sessionStreams = streams.get(user.sid) ?? new Set()
      streams.set(user.sid, sessionStreams)
      const forget = ends.know(user.sid, user.sub)
      const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), settings.heartbeatMs)
      const expiry = setTimeout(() => close(), Math.min(Math.max(user.exp * 1000 - Date.now(), 0), MAX_DELAY_MS))
      let closed = false
      function close (reason?: string): void {
        if (closed) return
        closed = true
        open--
        clearInterval(heartbeat)
        clearTimeout(expiry)
        forget()
        sessionStreams.delete(close)
        if (sessionStreams.size === 0 && streams.get(user.sid) === sessionStreams) streams.delete(user.sid)
        closeAll.delete(close)
        if (reason !== undefined) raw.write(`event: session-ended\ndata: ${JSON.stringify({ reason })}\n\n`)
        raw.end()
      }
      sessionStreams.add(close)
      closeAll.add(close)
      raw.once('close', () => close())
      // ended between the authentication and now (a host's hook may have taken a while): told now
      if (revocations.has(user.sid)) close('revoked')
    }
  }
  fastify.route(route)
}
