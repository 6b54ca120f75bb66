// The interfaces hosts augment with `declare module 'fastify-refresh-auth'`. They live in a module of
// their own, which imports nothing, so every other module can use them without importing the entry:
// an augmentation merges through the entry's named re-export (TypeScript 3.9 and later).

/**
 * What `verifyCredentials` resolves to for a known user: any object. Only its `id` is read (as the
 * tokens' `sub`) unless `subject` says otherwise. Augment it to type your user in `subject` and `claims`.
 *
 * @example
 * declare module 'fastify-refresh-auth' {
 *   interface LoginUser { id: number, email: string, roles: string[] }
 * }
 */
export interface LoginUser {}

/**
 * Claims a host adds through the `claims` option. Augment it to type them on `request.user`; the
 * `claims` option must then return them.
 *
 * @example
 * declare module 'fastify-refresh-auth' {
 *   interface RefreshAuthUser { roles: string[] }
 * }
 * await app.register(fastifyRefreshAuth, { secret, verifyCredentials, claims: (user) => ({ roles: user.roles }) })
 */
export interface RefreshAuthUser {}
