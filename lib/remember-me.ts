import type { FastifyRequest } from 'fastify'
import type { FastifyRefreshAuthOptions } from './options.js'
import type { LoginUser } from './user.js'

/**
 * The host's "keep me signed in" answer for a login: true without the option. Anything but a boolean
 * is the host's bug; it is not guessed at (a truthy string could keep a cookie the user asked to drop):
 * logged, and the login fails before a session is saved.
 */
export async function hostRememberMe (rememberMe: FastifyRefreshAuthOptions['rememberMe'], user: LoginUser, request: FastifyRequest): Promise<boolean> {
  if (rememberMe === undefined) return true
  const answer: unknown = await rememberMe(user, request)
  if (typeof answer === 'boolean') return answer
  request.log.error({ option: 'rememberMe', got: answer === null ? 'null' : typeof answer },
    'fastify-refresh-auth: the rememberMe option must answer true or false; login refused')
  throw new Error('fastify-refresh-auth: the rememberMe option must answer true or false')
}
