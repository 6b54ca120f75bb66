// The demo's user directory: passwords kept as scrypt hashes, compared in constant time.
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

const scryptAsync = promisify(scrypt)
const KEY_LENGTH = 32

function hashPassword (password, salt = randomBytes(16)) {
  return { salt, hash: scryptSync(password, salt, KEY_LENGTH) }
}

/**
 * @param {{ id: string, username: string, name: string, password: string }[]} accounts
 */
export function createUserDirectory (accounts) {
  const byUsername = new Map(accounts.map(({ password, ...user }) => [user.username, { user, ...hashPassword(password) }]))
  const byId = new Map(accounts.map(({ password, ...user }) => [user.id, user]))
  // An unknown username still costs one scrypt, so its answer takes as long as a wrong password's.
  const dummy = hashPassword(randomBytes(16).toString('hex'))

  return {
    /** Resolves to the user for the right password, else null (the same for an unknown username). */
    async verify (username, password) {
      const entry = byUsername.get(username)
      const { salt, hash } = entry ?? dummy
      const candidate = await scryptAsync(password, salt, KEY_LENGTH)
      return entry !== undefined && timingSafeEqual(candidate, hash) ? entry.user : null
    },
    byId (id) {
      return byId.get(id)
    }
  }
}
