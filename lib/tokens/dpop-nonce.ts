import { createHmac, type KeyObject } from 'node:crypto'

// 128 bits of the HMAC: a nonce cannot be guessed for a slot to come.
const NONCE_LENGTH = 22

/**
 * Server-provided DPoP nonces (RFC 9449 §8, §9) that every instance agrees on without sharing state: the
 * nonce of a time slot is an HMAC of the slot's number under a key derived from the plugin's secret. A
 * nonce is accepted in its own slot and the next one, so it lives between one and two slots.
 */
export class DpopNonces {
  readonly #key: KeyObject
  readonly #slotMs: number
  #slot = Number.NaN
  #current = ''
  #previous = ''

  constructor (key: KeyObject, slotMs: number) {
    this.#key = key
    this.#slotMs = slotMs
  }

  /** The nonce to hand out now. */
  current (nowMs: number): string {
    this.#advance(nowMs)
    return this.#current
  }

  /** Whether a proof's nonce is the current or the previous slot's. */
  accepts (nonce: string | undefined, nowMs: number): boolean {
    this.#advance(nowMs)
    return nonce === this.#current || nonce === this.#previous
  }

  #advance (nowMs: number): void {
    const slot = Math.floor(nowMs / this.#slotMs)
    if (slot === this.#slot) return
    this.#previous = slot === this.#slot + 1 ? this.#current : this.#nonceOf(slot - 1)
    this.#current = this.#nonceOf(slot)
    this.#slot = slot
  }

  #nonceOf (slot: number): string {
    return createHmac('sha256', this.#key).update(String(slot)).digest('base64url').slice(0, NONCE_LENGTH)
  }
}
