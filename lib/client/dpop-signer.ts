// The signer's shape, apart from both client files: the client takes one and the DPoP entry makes one.
/**
 * Signs DPoP proofs (RFC 9449) for the client: `createDpopSigner()` of `fastify-refresh-auth/client/dpop`.
 *
 * @example
 * const signer: DpopSigner = createDpopSigner()
 * const response = await fetch(url, { headers: { dpop: await signer.proof('GET', url) } })
 */
export interface DpopSigner {
  /** A proof for one request; with `accessToken`, bound to it (`ath`). Carries the newest nonce the server gave. */
  proof (method: string, url: string, accessToken?: string): Promise<string>
  /** The key's JWK thumbprint (RFC 7638): the `cnf.jkt` of the tokens bound to it. */
  thumbprint (): Promise<string>
  /**
   * Sends one request through `go`, given the `DPoP` header (and `Authorization: DPoP <accessToken>`); keeps the
   * answer's `DPoP-Nonce` and sends once more when the server asks for it (`use_dpop_nonce`).
   */
  send (method: string, url: string, accessToken: string | null, go: (headers: Record<string, string>) => Promise<Response>): Promise<Response>
}
