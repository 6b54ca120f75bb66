// Lua scripts of RedisStore. Each runs atomically on the server and touches the keys of one cluster slot: one key,
// or (RESERVE_SESSION) the two keys of one user, which share the user's hash tag.
//
// Every script starts with the same guard: ARGV[1] is a deadline in the server's clock (milliseconds); a
// script that starts after it changes nothing and answers 'late'. This is what keeps a command that the
// caller already gave up on (ioredis' offline queue resends it after a reconnect, or a stalled connection
// delivers it late) from taking effect. Every reply starts with the server's time, which RedisStore uses
// to estimate the offset between its clock and the server's.
//
// Times in ARGV other than the deadline (and RESERVE_SESSION's `until`) are the caller's (Node's) clock, the same clock that signs the
// tokens' `exp`, so expiry is judged as the MemoryStore judges it.
//
// Session hash fields: u userId, t tokenId, p previousTokenId, c createdAt, r rotatedAt (last refresh),
// e expiresAt (idle), a absoluteExpiresAt, ua userAgent, ip, and x when the session has ended but its
// announcement on the revocation feed is not yet confirmed.
//
// Ending a session takes three steps, as the revocation stream lives in another cluster slot than the
// session: a script marks the session ended (x = 'reused' or 'ended'; rotate and present do it themselves
// when they find reuse or end a logout, END_SESSION for revoke and revokeUser), which every script treats
// as dead from then on; the store appends the announcement to the stream; then it deletes the session but
// for its mark (DELETE_SESSION), which expires a few seconds later. If
// the announcement fails, the caller is told (the operation rejects) and the mark stays: the session is
// dead, and the next script that meets it answers its end again, so that the store announces it again. If
// the delete fails, the whole session stays marked until the key expires. Ended is never undone, and never silent for
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
 * KEYS[1] session. ARGV: deadline, mark ms. The last step of ending a session, once announced: strips it to its
 * mark, kept for `mark ms` (longer than any login in flight) so that a login counting the user's sessions tells
 * an ended session from one not saved yet (RESERVE_SESSION); a bare mark (a session that did not exist yet, see
 * END_SESSION) is left to expire on its own.
 */
export const DELETE_SESSION = `${GUARD}
if redis.call('HEXISTS', KEYS[1], 'u') == 1 then
  local mark = redis.call('HGET', KEYS[1], 'x') or 'ended'
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'x', mark)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
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
 * KEYS[1] session. ARGV: deadline, now, userId. What a login counting the user's sessions needs of one: 'ended'
 * (marked), 'absent' (no key: expired, deleted, or not saved yet), 'expired' (at `now`, or not this user's), or
 * its last refresh (rotatedAt) when live.
 */
export const SESSION_STATE = `${GUARD}
local s = redis.call('HMGET', KEYS[1], 'u', 'r', 'e', 'a', 'x')
if s[5] then return { serverNow, 'ok', 'ended' } end
if not s[1] then return { serverNow, 'ok', 'absent' } end
local now = tonumber(ARGV[2])
if s[1] ~= ARGV[3] or now >= tonumber(s[3]) or now >= tonumber(s[4]) then return { serverNow, 'ok', 'expired' } end
return { serverNow, 'ok', s[2] }
`

/**
 * The first step of a login, on the user's slot: KEYS[1] the user index (a sorted set of session ids scored by
 * absolute expiry), KEYS[2] the user's logins in flight (a hash, below). ARGV: deadline, until (server clock:
 * when this login's entries expire), now (the login's time, judging expiry), prune (index entries past their
 * absolute expiry before it are dropped), limit (0: none), onLimit, the new session's id, its absoluteExpiresAt,
 * rotatedAt and expiry (idle capped by absolute), the id it replaces ('' none), then pairs (session id, its
 * SESSION_STATE) of the user's sessions as the caller read them.
 *
 * Reply: serverNow, then
 * - 'reserved', ids to end: the new id is in the index and the ids (least recently used first, then the
 *   replaced one) are this login's to end, before it saves its session;
 * - 'limit-reached' (onLimit 'refuse'): nothing changed;
 * - 'read', ids: read these (again) and call again; nothing changed. Asked for sessions the caller has not read
 *   (logins that reserved after it read included), and for logins in flight that would have to make room: a
 *   session not saved yet cannot be ended without failing its login, so this one waits for it to be saved and
 *   ends it then.
 *
 * The sessions live in other slots, so the count is made from what the caller read, checked against the
 * index here in one atomic step. The hash of logins in flight fills the gaps: each login leaves `p:until:
 * rotatedAt:expiry` for its new session (counted from it while the caller reads the session absent: not saved
 * yet), and `e:until:<its id>` for each session it is to end (counted by nobody: it is being ended). Each entry
 * expires at `until`, a timeout after its login's deadline: by then the login has ended and saved what it was
 * going to, or never will, and a session it was to end but did not is counted again. Sessions read ended, or
 * absent without a login in flight, are gone for good and leave the index. The same login again (its reply lost,
 * the command resent) answers what it reserved the first time.
 */
export const RESERVE_SESSION = `${GUARD}
local now = tonumber(ARGV[3])
local prune = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local newId = ARGV[7]
local replaceId = ARGV[11]
local function reply (outcome, ids)
  local r = { serverNow, outcome }
  for _, id in ipairs(ids) do r[#r + 1] = id end
  return r
end
-- by byte, as JavaScript compares ids (by code unit), whatever the server's locale
local function before (a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local inFlight, ending, mine = {}, {}, {}
local latest = tonumber(ARGV[2])
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local id = entries[i]
  local kind, untilText, rest = string.match(entries[i + 1], '^(%a):([^:]+):(.*)$')
  local untilTime = tonumber(untilText)
  if untilTime < serverNow then
    redis.call('HDEL', KEYS[2], id)
  else
    latest = math.max(latest, untilTime)
    if kind == 'p' then
      local rotatedAt, expiry = string.match(rest, '^([^:]+):(.*)$')
      inFlight[id] = { tonumber(rotatedAt), tonumber(expiry) }
    else
      ending[id] = true
      if rest == newId then mine[#mine + 1] = id end
    end
  end
end
if inFlight[newId] and redis.call('ZSCORE', KEYS[1], newId) then return reply('reserved', mine) end
local read = {}
for i = 12, #ARGV - 1, 2 do read[ARGV[i]] = ARGV[i + 1] end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', prune)
local counted, wanted, replaced = {}, {}, false
if limit == 0 then
  -- no count: only the replaced session matters, as the caller read it
  local score = replaceId ~= '' and not ending[replaceId] and redis.call('ZSCORE', KEYS[1], replaceId)
  replaced = score and tonumber(score) > now and read[replaceId] ~= nil and tonumber(read[replaceId]) ~= nil
else
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[3], '+inf')) do
    local state, login = read[id], inFlight[id]
    if id == newId or ending[id] then
      -- this login's own entry, or a session another login is ending
    elseif state == 'ended' or (state == 'absent' and not login) then
      redis.call('ZREM', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
    elseif state == nil then
      wanted[#wanted + 1] = id
    elseif state == 'absent' then
      if now < login[2] then counted[#counted + 1] = { id, login[1], true } end
    elseif state ~= 'expired' then
      if id == replaceId then replaced = true else counted[#counted + 1] = { id, tonumber(state), false } end
    end
  end
  if #wanted > 0 then return reply('read', wanted) end
end
local ended = {}
if limit > 0 and #counted >= limit then
  if ARGV[6] == 'refuse' then return { serverNow, 'limit-reached' } end
  table.sort(counted, function (a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return before(a[1], b[1])
  end)
  local waiting = {}
  for i = 1, #counted - limit + 1 do
    if counted[i][3] then waiting[#waiting + 1] = counted[i][1] else ended[#ended + 1] = counted[i][1] end
  end
  if #waiting > 0 then return reply('read', waiting) end
end
if replaced then ended[#ended + 1] = replaceId end
for _, id in ipairs(ended) do redis.call('HSET', KEYS[2], id, 'e:' .. ARGV[2] .. ':' .. newId) end
redis.call('HSET', KEYS[2], newId, 'p:' .. ARGV[2] .. ':' .. ARGV[9] .. ':' .. ARGV[10])
redis.call('PEXPIRE', KEYS[2], math.max(1, latest - serverNow + 1))
redis.call('ZADD', KEYS[1], ARGV[8], newId)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - prune))
return reply('reserved', ended)
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
