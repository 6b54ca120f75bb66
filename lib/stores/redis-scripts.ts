// Lua scripts of RedisStore. Each runs atomically on the server and touches one key (so one cluster slot).
//
// Every script starts with the same guard: ARGV[1] is a deadline in the server's clock (milliseconds); a
// script that starts after it changes nothing and answers 'late'. This is what keeps a command that the
// caller already gave up on (ioredis' offline queue resends it after a reconnect, or a stalled connection
// delivers it late) from taking effect. Every reply starts with the server's time, which RedisStore uses
// to estimate the offset between its clock and the server's.
//
// Times in ARGV other than the deadline are the caller's (Node's) clock, the same clock that signs the
// tokens' `exp`, so expiry is judged as the MemoryStore judges it.
//
// Session hash fields: u userId, t tokenId, p previousTokenId, c createdAt, r rotatedAt (last refresh),
// e expiresAt (idle), a absoluteExpiresAt, ua userAgent, ip, and x when the session has ended but its
// announcement on the revocation feed is not yet confirmed.
//
// Ending a session takes three steps, as the revocation stream lives in another cluster slot than the
// session: a script marks the session ended (x = 'reused' or 'ended'; rotate and present do it themselves
// when they find reuse or end a logout, END_SESSION for revoke and revokeUser), which every script treats
// as dead from then on; the store appends the announcement to the stream; then it deletes the session. If
// the announcement fails, the caller is told (the operation rejects) and the mark stays: the session is
// dead, and the next script that meets it answers its end again, so that the store announces it again. If
// the delete fails, the mark stays too, until the key expires. Ended is never undone, and never silent for
// longer than an operation that failed.

const GUARD = `
local time = redis.call('TIME')
local serverNow = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if serverNow > tonumber(ARGV[1]) then return { serverNow, 'late' } end
`

/**
 * KEYS[1] session. ARGV: deadline, userId, tokenId, createdAt, rotatedAt, expiresAt, absoluteExpiresAt, ttl ms,
 * userAgent, ip ('' = none). Answers 'ended' and saves nothing over the mark a revocation left (below).
 */
export const CREATE_SESSION = `${GUARD}
if redis.call('HEXISTS', KEYS[1], 'x') == 1 then return { serverNow, 'ended' } end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'u', ARGV[2], 't', ARGV[3], 'c', ARGV[4], 'r', ARGV[5], 'e', ARGV[6], 'a', ARGV[7])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'ua', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'ip', ARGV[10]) end
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return { serverNow, 'ok' }
`

// The session's fields; one that has ended already (its announcement unconfirmed) answers its end again.
const READ_LIVE = `
local s = redis.call('HMGET', KEYS[1], 'u', 't', 'p', 'c', 'r', 'e', 'a', 'ua', 'ip', 'x')
if not s[1] then return { serverNow, 'not-found' } end
if s[10] then return { serverNow, s[10], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9] } end
`

/**
 * KEYS[1] session. ARGV: deadline, presented token id, next token id, now, next expiresAt, reuse interval ms.
 * Reply: serverNow, outcome (rotated, grace, reused; ended: ended earlier, its announcement unconfirmed;
 * not-found), then the session (u t p c r e a ua ip) unless not-found. Reuse marks the session ended.
 */
export const ROTATE_SESSION = `${GUARD}${READ_LIVE}
local now = tonumber(ARGV[4])
local absolute = tonumber(s[7])
if now >= tonumber(s[6]) or now >= absolute then
  redis.call('DEL', KEYS[1])
  return { serverNow, 'not-found' }
end
local presented = ARGV[2]
if presented == s[2] then
  redis.call('HSET', KEYS[1], 't', ARGV[3], 'p', presented, 'r', ARGV[4], 'e', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[5]), absolute) - now)
  return { serverNow, 'rotated', s[1], ARGV[3], presented, s[4], ARGV[4], ARGV[5], s[7], s[8], s[9] }
end
if presented == s[3] then
  -- the same request again (its reply was lost): answer it again rather than call it reuse
  if s[2] == ARGV[3] then return { serverNow, 'rotated', s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9] } end
  if now - tonumber(s[5]) < tonumber(ARGV[6]) then
    return { serverNow, 'grace', s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9] }
  end
end
redis.call('HSET', KEYS[1], 'x', 'reused')
return { serverNow, 'reused', s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9] }
`

/**
 * KEYS[1] session. ARGV: deadline, presented token id, now, reuse interval ms, end ('1' or '0').
 * Reply as ROTATE_SESSION's, with 'live' for the live token (or its parent within the interval). Reuse marks
 * the session ended, and so does end on a live token.
 */
export const PRESENT_SESSION = `${GUARD}${READ_LIVE}
local now = tonumber(ARGV[3])
if now >= tonumber(s[6]) or now >= tonumber(s[7]) then
  redis.call('DEL', KEYS[1])
  return { serverNow, 'not-found' }
end
local presented = ARGV[2]
local outcome = 'reused'
if presented == s[2] or (presented == s[3] and now - tonumber(s[5]) < tonumber(ARGV[4])) then outcome = 'live' end
if outcome == 'reused' then redis.call('HSET', KEYS[1], 'x', 'reused')
elseif ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'x', 'ended') end
return { serverNow, outcome, s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9] }
`

/**
 * KEYS[1] session. ARGV: deadline. The last step of ending a session, once announced: deletes it, but leaves a
 * bare mark (a session that did not exist yet, see END_SESSION) to expire on its own.
 */
export const DELETE_SESSION = `${GUARD}
if redis.call('HEXISTS', KEYS[1], 'u') == 1 then redis.call('DEL', KEYS[1]) end
return { serverNow, 'ok' }
`

/**
 * KEYS[1] session. ARGV: deadline, mark ms. The first step of ending a session: marks it ended (dead to every
 * script from now on). One that does not exist (yet) gets the mark for `mark ms`, so that a login still
 * saving it (its id already listed by a revokeUser) cannot create it afterwards.
 */
export const END_SESSION = `${GUARD}
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'x', 'ended')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif not redis.call('HGET', KEYS[1], 'x') then
  redis.call('HSET', KEYS[1], 'x', 'ended')
end
return { serverNow, 'ok' }
`

/** KEYS[1] session. ARGV: deadline. Reply: serverNow, 'ok', then u t p c r e a ua ip (all nil when gone or ended). */
export const READ_SESSION = `${GUARD}
local s = redis.call('HMGET', KEYS[1], 'u', 't', 'p', 'c', 'r', 'e', 'a', 'ua', 'ip', 'x')
if s[10] then return { serverNow, 'ok', false } end
return { serverNow, 'ok', s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9] }
`

/**
 * KEYS[1] user index, a sorted set of session ids scored by their absolute expiry. ARGV: deadline, session id,
 * its absoluteExpiresAt, now. Drops the entries past their absolute expiry, so the index never outgrows
 * the sessions of the last absolute lifetime, and lets the key itself expire with its last entry.
 */
export const INDEX_SESSION = `${GUARD}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - tonumber(ARGV[4])))
return { serverNow, 'ok' }
`

/** KEYS[1] user index. ARGV: deadline, now. Reply: serverNow, 'ok', then the ids of sessions not yet past their absolute expiry. */
export const USER_SESSION_IDS = `${GUARD}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')
table.insert(ids, 1, 'ok')
table.insert(ids, 1, serverNow)
return ids
`

/**
 * KEYS[1] the revocation stream. ARGV: deadline, retention ms, session ids (a JSON array), revokedAt. Appends
 * one entry and trims, approximately, the entries older than the retention (by their ids: the server's time).
 * Each entry carries its number in the stream (n, one more than the last entry's), so a reader that finds a
 * number missing knows that entries it never read were trimmed.
 */
export const ANNOUNCE_REVOCATION = `${GUARD}
local since = string.format('%d', serverNow - tonumber(ARGV[2]))
local n = 1
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if last[1] then
  local fields = last[1][2]
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'n' then n = (tonumber(fields[i + 1]) or 0) + 1 end
  end
end
redis.call('XADD', KEYS[1], 'MINID', '~', since, '*', 'ids', ARGV[3], 'at', ARGV[4], 'n', string.format('%d', n))
return { serverNow, 'ok' }
`
