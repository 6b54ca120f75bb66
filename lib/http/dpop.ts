import type { FastifyReply, FastifyRequest } from 'fastify'
import { ErrorCodes, InvalidDpopProofError, InvalidTokenError, UseDpopNonceError, type ErrorMessages } from '../errors.js'
import type { DpopSettings } from '../options/types.js'
import { accessTokenHash, ProofVerifier, type VerifiedProof } from '../tokens/dpop-proof.js'
import { ProofReplayCache } from '../tokens/dpop-replay.js'
import type { DpopNonces } from '../tokens/dpop-nonce.js'

// Proof ids remembered per instance: a minute of proofs at well over a thousand requests a second.
const MAX_REMEMBERED_PROOFS = 100_000

const NONCE_HEADER = 'dpop-nonce'

/** An error of the DPoP checks: its OAuth `error` code goes in the body (auth routes) or the challenge. */
type DpopError = (InvalidDpopProofError | UseDpopNonceError) & { headers: Record<string, string> }

/**
 * DPoP for one plugin instance (RFC 9449): the proofs of the auth routes (§5) and of protected routes (§7),
 * each checked for its signature and claims, against this instance's replay cache and, with `dpop.nonce`,
 * the shared nonces. Whether a token or session needs a proof is the caller's rule; this says whether the
 * request's proof holds.
 */
export class DpopGate {
  readonly required: boolean
  readonly #verifier: ProofVerifier
  readonly #replays = new ProofReplayCache(MAX_REMEMBERED_PROOFS)
  readonly #nonces: DpopNonces | null
  readonly #origin: string | null
  // how long a proof id is kept: as long as its `iat` can be accepted
  readonly #windowSeconds: number
  readonly #algs: string

  constructor (settings: DpopSettings, clockTolerance: number) {
    this.required = settings.required
    this.#verifier = new ProofVerifier({ algorithms: settings.algorithms, maxAge: settings.proofMaxAge, clockTolerance })
    this.#nonces = settings.nonces
    this.#origin = settings.origin
    this.#windowSeconds = settings.proofMaxAge + 2 * clockTolerance
    this.#algs = settings.algorithms.join(' ')
  }

  /** The `DPoP algs="…"` challenge of a protected route that got no token. */
  get challenge (): string {
    return `DPoP algs="${this.#algs}"`
  }

  /** The challenge of a 401 for a missing or refused proof. */
  get invalidProofChallenge (): string {
    return `DPoP error="invalid_dpop_proof", algs="${this.#algs}"`
  }

  /**
   * Login, refresh and logout: the key of the request's valid proof, or undefined when it has none (which
   * `dpop.required` refuses). An invalid proof throws a 400 (§5), as does a missing or stale nonce.
   */
  tokenEndpointKey (request: FastifyRequest): string | undefined {
    const proof = request.headers.dpop
    if (proof === undefined && !this.required) return undefined
    const checked = this.#check(request, proof, undefined, 400)
    if (checked instanceof Error) throw checked
    return checked.jkt
  }

  /** A protected route given a token bound to `jkt`: null when the request's proof is from that key and valid, else the 401. */
  resourceRefusal (request: FastifyRequest, token: string, jkt: string): DpopError | null {
    const checked = this.#check(request, request.headers.dpop, accessTokenHash(token), 401)
    if (checked instanceof Error) return checked
    return checked.jkt === jkt ? null : this.#refusal(request, 401, 'proof from another key')
  }

  /** The 401 for a token that may not come as it came (a bound token as Bearer, an unbound one as DPoP) or is invalid. */
  invalidToken (): Error {
    return Object.assign(new InvalidTokenError(), { headers: { 'www-authenticate': `DPoP error="invalid_token", algs="${this.#algs}"` } })
  }

  /** The current nonce on the answer (§8.2), so a client whose nonce is about to go gets the next one in time. */
  sendNonce (request: FastifyRequest, reply: FastifyReply): void {
    if (this.#nonces !== null && request.headers.dpop !== undefined) reply.header(NONCE_HEADER, this.#nonces.current(Date.now()))
  }

  /** Whether nonces are on: the plugin then adds the nonce to the answers of requests with a proof. */
  get noncesOn (): boolean {
    return this.#nonces !== null
  }

  #check (request: FastifyRequest, proof: string | string[] | undefined, ath: string | undefined, status: 400 | 401): VerifiedProof | DpopError {
    // §4.3: exactly one DPoP header; Node joins repeated ones with a comma, which no compact JWS holds
    if (typeof proof !== 'string') return this.#refusal(request, status, 'no proof')
    const nowMs = Date.now()
    const verified = this.#verifier.verify(proof, { method: request.method, uri: this.#requestUri(request), accessTokenHash: ath, now: nowMs / 1000 })
    if (typeof verified === 'string') return this.#refusal(request, status, verified)
    if (this.#nonces !== null && !this.#nonces.accepts(verified.nonce, nowMs)) return this.#nonceChallenge(status, nowMs)
    if (!this.#replays.claim(`${verified.jkt}.${verified.jti}`, (verified.iat + this.#windowSeconds) * 1000, nowMs)) {
      return this.#refusal(request, status, 'jti replayed')
    }
    return verified
  }

  // The request's URI as the client saw it, without query: `htu` names it (§4.2).
  #requestUri (request: FastifyRequest): string {
    const url = request.url
    const query = url.indexOf('?')
    const path = query === -1 ? url : url.slice(0, query)
    return `${this.#origin ?? `${request.protocol}://${request.host}`}${path}`
  }

  #refusal (request: FastifyRequest, status: 400 | 401, reason: string): DpopError {
    request.log.debug({ reason }, 'fastify-refresh-auth: DPoP proof refused')
    const error = Object.assign(new InvalidDpopProofError(), { statusCode: status, headers: {} as Record<string, string> })
    if (status === 401) error.headers['www-authenticate'] = this.invalidProofChallenge
    return error
  }

  #nonceChallenge (status: 400 | 401, nowMs: number): DpopError {
    const headers: Record<string, string> = { [NONCE_HEADER]: (this.#nonces as DpopNonces).current(nowMs) }
    // §9: the resource server's challenge; the auth routes answer in the body (§8)
    if (status === 401) headers['www-authenticate'] = 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"'
    return Object.assign(new UseDpopNonceError(), { statusCode: status, headers })
  }
}

const OAUTH_ERRORS: Record<string, string> = {
  [ErrorCodes.INVALID_DPOP_PROOF]: 'invalid_dpop_proof',
  [ErrorCodes.USE_DPOP_NONCE]: 'use_dpop_nonce'
}

/**
 * The auth routes answer DPoP errors as OAuth token errors (RFC 9449 §5, §8; RFC 6749 §5.2): the OAuth code
 * in `error`, beside the plugin's `code`; a 401 (a bound session without its key) challenges with `DPoP`.
 * Anything else is thrown on to the error handler. `gate` is null where `dpop` is off: a session bound
 * before it was turned off still needs its key. The host's `messages` apply, as they do to thrown errors.
 */
export async function answeringDpopErrors (
  reply: FastifyReply, gate: DpopGate | null, messages: ErrorMessages | null, run: () => Promise<unknown>
): Promise<unknown> {
  try {
    return await run()
  } catch (err) {
    const oauthError = OAUTH_ERRORS[(err as { code?: string }).code as string]
    if (oauthError === undefined) throw err
    const { statusCode, code, headers } = err as DpopError
    const message = messages?.[code] ?? (err as DpopError).message
    if (headers !== undefined) reply.headers(headers)
    if (statusCode === 401) reply.header('www-authenticate', gate === null ? 'DPoP error="invalid_dpop_proof"' : gate.invalidProofChallenge)
    return reply.code(statusCode as number).send({ statusCode, code, error: oauthError, error_description: message, message })
  }
}
