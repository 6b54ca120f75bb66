// The stubs that documentation code blocks may name (see test/docs.test.ts for the convention).
// A block lists the ones it uses in its `<!-- docs-test: stubs=… -->` line; the text around the block
// names them for the reader ("with `users`, your own user lookup, …"). Keep each one small and plain:
// it stands for the reader's own code, and a stub that does clever things hides a broken example.
import Fastify from 'fastify'

/** A user as the examples' own user directory holds it. */
export interface User {
  id: number
  name: string
  roles: string[]
  /** OAuth-style grants; bob has none, so an example that assumes them fails on him. */
  scopes?: string[]
}

const directory: Array<User & { password: string }> = [
  { id: 1, name: 'alice', password: 'wonderland', roles: ['admin'], scopes: ['orders:read', 'orders:write'] },
  { id: 2, name: 'bob', password: 'can-we-fix-it', roles: [] }
]

function publicUser ({ password: _password, ...user }: User & { password: string }): User {
  return user
}

/** Your user directory: `verify` resolves to the user for a right username and password, else null. */
export const users = {
  async verify (username: unknown, password: unknown): Promise<User | null> {
    const found = directory.find(user => user.name === username)
    // the examples' password check; a real app compares a password hash in constant time
    return found !== undefined && found.password === password ? publicUser(found) : null
  },
  async findById (id: string | number): Promise<User | null> {
    const found = directory.find(user => String(user.id) === String(id))
    return found === undefined ? null : publicUser(found)
  }
}

/** A ready-made `verifyCredentials`: `{ username, password }` in a JSON body, checked with `users.verify`. */
export async function verifyCredentials (request: { body: unknown }): Promise<User | null> {
  const { username, password } = (request.body ?? {}) as { username?: unknown, password?: unknown }
  return users.verify(username, password)
}

/** A random secret of 48 bytes (base64), as `openssl rand -base64 48` makes one. */
export const secret: string = process.env.AUTH_SECRET as string

/**
 * A Fastify app without the plugin, for blocks that show a fragment of an app. The test makes it
 * ready after the block (so a route that cannot be added fails the block) and closes it.
 */
export const app = Fastify()
