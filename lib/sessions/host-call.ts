import type { FastifyBaseLogger } from 'fastify'
import { CallbackFailedError, CallbackTimeoutError } from '../errors.js'
import { settleWithin } from '../stores/timing.js'

/**
 * Calls a host callback (`verifyCredentials`, `claims`, `subject`, `loadUser`, `rememberMe`) so that what
 * it throws cannot leak. An error with a 4xx `statusCode` (or `status`) is the host's own answer (a 400 for
 * a malformed body, say) and passes unchanged. Anything else (a bug, a database error, a non-Error) is
 * logged whole for the operator and becomes a generic 500 `CallbackFailedError`, so the client never sees
 * its message. With `failure`, every throw (4xx included) is logged and becomes what `failure` makes:
 * `loadUser` answers 503, as a store failure does.
 *
 * A callback that has not settled after `timeout` seconds (`callbackTimeout`) fails the request with a 503
 * `CallbackTimeoutError`; the request goes no further, so whatever the callback settles to later is ignored.
 *
 * @param name - the option's name, for the log
 */
export async function callHost<T> (
  name: string, log: FastifyBaseLogger, timeout: number, callback: () => T | Promise<T>, failure?: () => Error
): Promise<T> {
  try {
    const result = callback()
    // a synchronous answer needs no timer
    if (typeof (result as Partial<PromiseLike<T>> | null | undefined)?.then !== 'function') return result as T
    return await settleWithin(Promise.resolve(result), timeout * 1000, () => new CallbackTimeoutError())
  } catch (err) {
    if (err instanceof CallbackTimeoutError) {
      log.error({ callback: name }, `fastify-refresh-auth: the ${name} callback did not settle within callbackTimeout (${timeout}s)`)
      throw err
    }
    if (failure === undefined && isClientError(err)) throw err
    log.error({ err, callback: name }, `fastify-refresh-auth: the ${name} callback failed`)
    throw failure === undefined ? new CallbackFailedError() : failure()
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
