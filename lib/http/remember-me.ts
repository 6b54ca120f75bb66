import type { FastifyRequest } from 'fastify'
import { CallbackFailedError } from '../errors.js'
import { callHost } from '../sessions/host-call.js'
import type { HostCallbacks } from '../options/types.js'
import type { LoginUser } from '../types.js'

/**
 * The host's "keep me signed in" answer for a login: true without the option. A throw is handled as for
 * every host callback (`callHost`). Anything but a boolean is the host's bug and is not guessed at (a
 * truthy string could keep a cookie the user asked to drop): logged, and the login fails with the same
 * generic `CallbackFailedError`, before a session is saved.
 */
export async function hostRememberMe (
  rememberMe: HostCallbacks['rememberMe'], user: LoginUser, request: FastifyRequest, timeout: number
): Promise<boolean> {
  if (rememberMe === undefined) return true
  const answer: unknown = await callHost('rememberMe', request.log, timeout, () => rememberMe(user, request))
  if (typeof answer === 'boolean') return answer
  // a type, never the value: it may be anything the host had at hand
  request.log.error({ callback: 'rememberMe', got: answer === null ? 'null' : typeof answer },
    'fastify-refresh-auth: the rememberMe callback must answer true or false; login refused')
  throw new CallbackFailedError()
}
