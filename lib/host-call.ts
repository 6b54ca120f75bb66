import type { FastifyBaseLogger } from 'fastify'
import { CallbackFailedError } from './errors.js'

/**
 * Calls a host callback (`verifyCredentials`, `claims`, `subject`, and any later one such as `loadUser`
 * or `rememberMe`) so that what it throws cannot leak. An error with a 4xx `statusCode` (or `status`) is
 * the host's own answer (a 400 for a malformed body, say) and passes unchanged. Anything else (a bug, a
 * database error, a non-Error) is logged whole for the operator and becomes a generic 500
 * `CallbackFailedError`, so the client never sees its message.
 *
 * @param name - the option's name, for the log
 */
export async function callHost<T> (name: string, log: FastifyBaseLogger, callback: () => T | Promise<T>): Promise<T> {
  try {
    return await callback()
  } catch (err) {
    if (isClientError(err)) throw err
    log.error({ err, callback: name }, `fastify-refresh-auth: the ${name} callback failed`)
    throw new CallbackFailedError()
  }
}

// The status Fastify would answer with (its `statusCode`, else its `status`, when in 400–599) is a 4xx.
function isClientError (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { statusCode, status } = err as { statusCode?: unknown, status?: unknown }
  const answered = isErrorStatus(statusCode) ? statusCode : status
  return isErrorStatus(answered) && answered < 500
}

function isErrorStatus (status: unknown): status is number {
  return typeof status === 'number' && status >= 400 && status <= 599
}
