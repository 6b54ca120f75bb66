// The key layout of RedisStore, as docs/redis.md documents it: tests read and write the store's keys through it.

export interface RedisKeys {
  session: (sessionId: string) => string
  userIndex: (userId: string) => string
  logins: (userId: string) => string
  revocations: string
  epoch: string
}

/** The keys of a RedisStore made with `prefix` (its default, `refresh-auth:`, when none). */
export function redisKeys (prefix = 'refresh-auth:'): RedisKeys {
  return {
    session: (sessionId) => `${prefix}session:{${sessionId}}`,
    userIndex: (userId) => `${prefix}user:{${userId}}`,
    logins: (userId) => `${prefix}logins:{${userId}}`,
    revocations: `${prefix}{revocations}`,
    epoch: `${prefix}{revocations}:epoch`
  }
}
