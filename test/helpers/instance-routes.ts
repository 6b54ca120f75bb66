import type { FastifyInstance } from 'fastify'

/**
 * The routes every test instance serves besides the plugin's: `GET /private` behind app.authenticate, and
 * `POST /admin/revoke-user` `{ userId }` (revokeUserSessions), answering 204.
 */
export function instanceRoutes (app: FastifyInstance): void {
  app.get('/private', { preHandler: app.authenticate }, async (request) => ({ sub: request.user?.sub }))
  app.post('/admin/revoke-user', async (request, reply) => {
    await app.refreshAuth.revokeUserSessions((request.body as { userId: string }).userId)
    return reply.code(204).send()
  })
}
