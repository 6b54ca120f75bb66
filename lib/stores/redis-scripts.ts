import { createHash } from 'node:crypto'
import type { SessionEndCause, SessionRecord } from './store.js'

// The Lua of RedisStore: one script per operation, each atomic on the server and touching the keys of one cluster
// slot (a session's key; a user's two keys; the revocation stream and its epoch). Each takes its arguments as one
// JSON object (ARGV[1], read with cjson into `arg`), and answers `{ serverNow, outcome, ... }`, read back by
// the script's own decoder.
//
// Every script starts with the same guard: `arg.deadline` is in the server's clock (milliseconds); a script that
// starts after it changes nothing and answers 'late'. This keeps a command the caller already gave up on
// (ioredis resending it after a reconnect, a stalled connection delivering it late) from taking effect.
// The server's time in every reply lets RedisStore estimate the offset between its clock and the server's.
// Other times in `arg` are Node's clock, the one that signs the tokens' `exp`.
//
// Session hash fields: u userId, t tokenId, p previousTokenId, g generation, c createdAt, r rotatedAt, e
// expiresAt (idle), a absoluteExpiresAt, ua userAgent, ip, k jkt (the DPoP key the session is bound to), and x once
// the session has ended but its announcement on the revocation stream is not yet confirmed: what ended it (a
// SessionEndCause), for an announcement made again.
//
// Ending a session takes three steps, as the stream lives in another slot: a script marks the session ended
// (x; rotate and present do it themselves on reuse or a logout, markSessionEnded for the revocations), which every
// script treats as dead from then on; the store appends the announcement to the stream; then it strips the
// session to its mark (stripEndedSession), which expires a few seconds later. A failed announcement leaves the
// mark: the next script that meets the session answers 'ended', and the store announces it again. Ended is never
// undone, and never silent for longer than an operation that failed.

/** A script reply as ioredis gives it: `[serverNow, outcome, ...]`. */
export type ScriptReply = Array<string | number | null>

/** One Lua script: its name for `defineCommand`, its keys, and the decoder of its reply (after the guard). */
export interface RedisScript<Reply> {
  /** Carries a digest of the Lua: two versions of the package sharing one client never run each other's script. */
  readonly name: string
  readonly lua: string
  readonly keys: number
  readonly readOnly: boolean
  /** `id`: the session id of a session script's key, for the record it decodes. */
  readonly decode: (reply: ScriptReply, id: string) => Reply
}

const PRELUDE = `
local arg = cjson.decode(ARGV[1])
local time = redis.call('TIME')
local serverNow = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if serverNow > arg.deadline then return { serverNow, 'late' } end
`

// A session's fields in the order the reply carries them (decodeSession), then its end mark.
const READ_SESSION_FIELDS = `
local s = redis.call('HMGET', KEYS[1], 'u', 't', 'p', 'g', 'c', 'r', 'e', 'a', 'ua', 'ip', 'x', 'k')
local function answer (outcome) return { serverNow, outcome, s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[12] } end
`

// What a presented token is: judgeToken of lib/sessions/decisions.ts, which the model-based test holds this to.
const JUDGE = `
local function judge ()
  local now = arg.now
  if now >= tonumber(s[7]) or now >= tonumber(s[8]) then return 'expired' end
  if arg.presented == s[2] then return 'live' end
  if arg.presented == s[3] then
    if arg.next == s[2] then return 'retry' end
    if now - tonumber(s[6]) < arg.reuseIntervalMs then return 'grace' end
  end
  if arg.generation and arg.generation > (tonumber(s[4]) or 0) then return 'ahead' end
  return 'reused'
end
`

// How rotate and present begin: a session that is gone answers for itself ('not-found', or 'ended' with what
// to announce again; an expired one is deleted first); a live one gets the presented token's `verdict`.
const VERDICT = `
if not s[1] then return { serverNow, 'not-found' } end
if s[11] then return { serverNow, 'ended', s[1], s[11] } end
${JUDGE}
local verdict = judge()
if verdict == 'expired' then
  redis.call('DEL', KEYS[1])
  return { serverNow, 'not-found' }
end`

// The epoch of the revocation history (KEYS[1] stream, KEYS[2] epoch): when the stream's history begins, made
// when missing (a new store, or one that lost its data) from the oldest entry left, else the server's time.
const ENSURE_EPOCH = `
local function ensureEpoch ()
  local epoch = redis.call('GET', KEYS[2])
  if epoch then return tonumber(epoch) end
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  epoch = first and tonumber(string.match(first[1], '^(%d+)')) or serverNow
  redis.call('SET', KEYS[2], string.format('%d', epoch))
  return epoch
end
`

function script<Reply> (name: string, lua: string, decode: (reply: ScriptReply, id: string) => Reply, { keys = 1, readOnly = false } = {}): RedisScript<Reply> {
  const digest = createHash('sha1').update(lua).digest('hex').slice(0, 12)
  return { name: `refreshAuth_${name}_${digest}`, lua, keys, readOnly, decode }
}

/** A session's record from `answer`'s fields (third element on), or null when the reply carries none. */
function decodeSession (sessionId: string, reply: ScriptReply): SessionRecord | null {
  const u = reply[2]
  if (u === null || u === undefined) return null
  const record: SessionRecord = {
    sessionId,
    userId: String(u),
    tokenId: String(reply[3]),
    previousTokenId: reply[4] === null ? null : String(reply[4]),
    // null (0) for a session saved before generations were kept
    generation: Number(reply[5]),
    createdAt: Number(reply[6]),
    rotatedAt: Number(reply[7]),
    expiresAt: Number(reply[8]),
    absoluteExpiresAt: Number(reply[9])
  }
  if (reply[10] !== null) record.userAgent = String(reply[10])
  if (reply[11] !== null) record.ip = String(reply[11])
  if (reply[12] != null) record.jkt = String(reply[12])
  return record
}

const outcomeOf = <T extends string>(reply: ScriptReply): T => reply[1] as T
const idsOf = (reply: ScriptReply): string[] => reply.slice(2) as string[]
const nothing = (): void => {}

/**
 * What a session script answers: an outcome and, but for 'not-found' and 'ended', the session as it now is;
 * 'ended' (marked, its announcement unconfirmed) with the user and what ended it, to announce it again.
 */
export type SessionReply<Outcome extends string> =
  | { outcome: Outcome, session: SessionRecord }
  | { outcome: 'not-found', session: null }
  | { outcome: 'ended', session: null, userId: string, cause: SessionEndCause }

function sessionReply<Outcome extends string> (reply: ScriptReply, sessionId: string): SessionReply<Outcome> {
  const outcome = outcomeOf(reply)
  if (outcome === 'ended') return { outcome, session: null, userId: String(reply[2]), cause: reply[3] as SessionEndCause }
  return { outcome, session: decodeSession(sessionId, reply) } as SessionReply<Outcome>
}

/**
 * KEYS[1] session. arg: session (the SessionRecord), ttl (ms). Answers 'ended' and saves nothing over the mark a
 * revocation left (markSessionEnded) for a session whose login was still in flight.
 */
export const createSession = script('createSession', `${PRELUDE}
if redis.call('HEXISTS', KEYS[1], 'x') == 1 then return { serverNow, 'ended' } end
local session = arg.session
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'u', session.userId, 't', session.tokenId, 'g', session.generation or 0, 'c', session.createdAt,
  'r', session.rotatedAt, 'e', session.expiresAt, 'a', session.absoluteExpiresAt)
if session.userAgent then redis.call('HSET', KEYS[1], 'ua', session.userAgent) end
if session.ip then redis.call('HSET', KEYS[1], 'ip', session.ip) end
if session.jkt then redis.call('HSET', KEYS[1], 'k', session.jkt) end
redis.call('PEXPIRE', KEYS[1], arg.ttl)
return { serverNow, 'created' }
`, outcomeOf<'created' | 'ended'>)

/**
 * KEYS[1] session. arg: presented, next (token ids), generation (the presented token's, when it has one), now,
 * nextExpiresAt, reuseIntervalMs, jkt (the proof's key, when it has one). Outcomes: rotated (the live token, or one ahead of the store: the session goes on
 * from it; or the same request again), grace, reused (the session is marked ended), ended (marked earlier, its
 * announcement unconfirmed), not-found (none, or expired: deleted).
 */
export const rotateSession = script('rotateSession', `${PRELUDE}${READ_SESSION_FIELDS}${VERDICT}
if verdict == 'live' or verdict == 'ahead' then
  local generation = (verdict == 'ahead' and arg.generation or (tonumber(s[4]) or 0)) + 1
  redis.call('HSET', KEYS[1], 't', arg.next, 'p', arg.presented, 'g', generation, 'r', arg.now, 'e', arg.nextExpiresAt)
  redis.call('PEXPIRE', KEYS[1], math.min(arg.nextExpiresAt, tonumber(s[8])) - arg.now)
  s[2], s[3], s[4], s[6], s[7] = arg.next, arg.presented, generation, arg.now, arg.nextExpiresAt
  -- binds an unbound session to the proof's key; a bound one never changes key
  if arg.jkt and not s[12] then
    redis.call('HSET', KEYS[1], 'k', arg.jkt)
    s[12] = arg.jkt
  end
  return answer('rotated')
end
if verdict == 'retry' then return answer('rotated') end
if verdict == 'grace' then return answer('grace') end
redis.call('HSET', KEYS[1], 'x', 'reuse')
return answer('reused')
`, sessionReply<'rotated' | 'grace' | 'reused'>)

/**
 * KEYS[1] session. arg: presented, generation, now, reuseIntervalMs, end (boolean). Outcomes as rotateSession's,
 * with 'live' for the live token (its parent within the interval, one ahead of the store). Reuse marks the
 * session ended, and so does `end` on a live token.
 */
export const presentSession = script('presentSession', `${PRELUDE}${READ_SESSION_FIELDS}${VERDICT}
if verdict == 'reused' then
  redis.call('HSET', KEYS[1], 'x', 'reuse')
  return answer('reused')
end
if arg['end'] then redis.call('HSET', KEYS[1], 'x', 'logout') end
return answer('live')
`, sessionReply<'live' | 'reused'>)

/**
 * KEYS[1] session. arg: markMs, cause (what ends it). The first step of ending a session: marks it ended (dead to
 * every script from now on). One that does not exist (yet) gets the mark for `markMs`, so that a login still saving
 * it (its id already listed by a revokeUser) cannot create it afterwards. Answers the session's user, if it has one.
 */
export const markSessionEnded = script('markSessionEnded', `${PRELUDE}
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'x', arg.cause)
  redis.call('PEXPIRE', KEYS[1], arg.markMs)
elseif not redis.call('HGET', KEYS[1], 'x') then
  redis.call('HSET', KEYS[1], 'x', arg.cause)
end
return { serverNow, 'marked', redis.call('HGET', KEYS[1], 'u') }
`, (reply): string | null => reply[2] === null || reply[2] === undefined ? null : String(reply[2]))

/**
 * KEYS[1] session. arg: markMs. The last step of ending a session, once announced: strips it to its mark, kept
 * for `markMs` (longer than any login in flight) so that a login counting the user's sessions tells an ended
 * session from one not saved yet (reserveLogin); a bare mark is left to expire on its own.
 */
export const stripEndedSession = script('stripEndedSession', `${PRELUDE}
if redis.call('HEXISTS', KEYS[1], 'u') == 1 then
  local mark = redis.call('HGET', KEYS[1], 'x') or 'revoke'
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'x', mark)
  redis.call('PEXPIRE', KEYS[1], arg.markMs)
end
return { serverNow, 'stripped' }
`, nothing)

/** KEYS[1] session. Outcomes: 'found' with the session, 'not-found' (none, or ended). */
export const readSession = script('readSession', `${PRELUDE}${READ_SESSION_FIELDS}
if not s[1] or s[11] then return { serverNow, 'not-found' } end
return answer('found')
`, sessionReply<'found'>, { readOnly: true })

/**
 * What a login counting the user's sessions needs to know of one (KEYS[1] session; arg: now, userId):
 * 'ended' (marked), 'absent' (no key: expired, deleted, or not saved yet), 'expired' (at `now`, or not this
 * user's), or its last refresh (rotatedAt) when live.
 */
export const sessionState = script('sessionState', `${PRELUDE}
local s = redis.call('HMGET', KEYS[1], 'u', 'r', 'e', 'a', 'x')
if s[5] then return { serverNow, 'ended' } end
if not s[1] then return { serverNow, 'absent' } end
if s[1] ~= arg.userId or arg.now >= tonumber(s[3]) or arg.now >= tonumber(s[4]) then return { serverNow, 'expired' } end
return { serverNow, s[2] }
`, (reply): string => String(reply[1]))

/** One login's reservation: see reserveLogin. */
export type Reservation =
  | { outcome: 'reserved', ended: string[] }
  | { outcome: 'limit-reached' }
  | { outcome: 'read', sessionIds: string[] }

/**
 * The first step of a login, on the user's slot: KEYS[1] the user index (a sorted set of session ids scored by
 * absolute expiry), KEYS[2] the user's logins in flight (a hash of session id to a JSON entry). arg: until (server
 * clock: when this login's entries expire), now (the login's time, judging expiry), prune (index entries past
 * their absolute expiry before it are dropped), limit (0: none), onLimit, session (the new session's id,
 * absoluteExpiresAt, rotatedAt and expiry: idle capped by absolute), replace (the id it replaces, or none), states
 * (session id → its sessionState, as the caller read them).
 *
 * Outcomes:
 * - 'reserved', ids to end: the new id is in the index and the ids (least recently used first, then the
 *   replaced one) are this login's to end, before it saves its session;
 * - 'limit-reached' (onLimit 'refuse'): nothing changed;
 * - 'read', ids: read these (again) and call again; nothing changed. Asked for sessions the caller has not read
 *   (logins that reserved after it read included), and for logins in flight that would have to make room: a
 *   session not saved yet cannot be ended without failing its login, so this one waits for it to be saved.
 *
 * The sessions live in other slots, so the count is made from what the caller read, checked against the index
 * here in one atomic step. The logins in flight fill the gaps: each login leaves `{ until, rotatedAt, expiry }`
 * for its new session (counted from it while the caller reads the session absent: not saved yet), and
 * `{ until, endingFor }` for each session it is to end (counted by nobody: it is being ended). Each entry expires
 * at `until`, a timeout after its login's deadline: by then the login has ended and saved what it was going to,
 * or never will. Sessions read ended, or absent without a login in flight, are gone for good and leave the index.
 * The same login again (its reply lost, the command resent) answers what it reserved the first time.
 */
export const reserveLogin = script('reserveLogin', `${PRELUDE}
local session, states = arg.session, arg.states
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
local latest = arg['until']
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local id, entry = entries[i], cjson.decode(entries[i + 1])
  if entry['until'] < serverNow then
    redis.call('HDEL', KEYS[2], id)
  else
    latest = math.max(latest, entry['until'])
    if entry.endingFor then
      ending[id] = true
      if entry.endingFor == session.id then mine[#mine + 1] = id end
    else
      inFlight[id] = entry
    end
  end
end
if inFlight[session.id] and redis.call('ZSCORE', KEYS[1], session.id) then return reply('reserved', mine) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', arg.prune)
local replace = arg.replace
local counted, wanted, replaced = {}, {}, false
if arg.limit == 0 then
  -- no count: only the replaced session matters, as the caller read it
  local score = replace and not ending[replace] and redis.call('ZSCORE', KEYS[1], replace)
  replaced = score and tonumber(score) > arg.now and tonumber(states[replace]) ~= nil
else
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', arg.now), '+inf')) do
    local state, login = states[id], inFlight[id]
    if id == session.id or ending[id] then
      -- this login's own entry, or a session another login is ending
    elseif state == 'ended' or (state == 'absent' and not login) then
      redis.call('ZREM', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
    elseif state == nil then
      wanted[#wanted + 1] = id
    elseif state == 'absent' then
      if arg.now < login.expiry then counted[#counted + 1] = { id, login.rotatedAt, true } end
    elseif state ~= 'expired' then
      if id == replace then replaced = true else counted[#counted + 1] = { id, tonumber(state), false } end
    end
  end
  if #wanted > 0 then return reply('read', wanted) end
end
local ended = {}
if arg.limit > 0 and #counted >= arg.limit then
  if arg.onLimit == 'refuse' then return { serverNow, 'limit-reached' } end
  table.sort(counted, function (a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return before(a[1], b[1])
  end)
  local waiting = {}
  for i = 1, #counted - arg.limit + 1 do
    if counted[i][3] then waiting[#waiting + 1] = counted[i][1] else ended[#ended + 1] = counted[i][1] end
  end
  if #waiting > 0 then return reply('read', waiting) end
end
if replaced then ended[#ended + 1] = replace end
for _, id in ipairs(ended) do redis.call('HSET', KEYS[2], id, cjson.encode({ ['until'] = arg['until'], endingFor = session.id })) end
redis.call('HSET', KEYS[2], session.id, cjson.encode({ ['until'] = arg['until'], rotatedAt = session.rotatedAt, expiry = session.expiry }))
redis.call('PEXPIRE', KEYS[2], math.max(1, latest - serverNow + 1))
redis.call('ZADD', KEYS[1], session.absoluteExpiresAt, session.id)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - arg.prune))
return reply('reserved', ended)
`, (reply): Reservation => {
  const outcome = outcomeOf<Reservation['outcome']>(reply)
  if (outcome === 'limit-reached') return { outcome }
  if (outcome === 'read') return { outcome, sessionIds: idsOf(reply) }
  return { outcome, ended: idsOf(reply) }
}, { keys: 2 })

/** KEYS[1] user index. arg: now. Outcome 'listed', then the ids of sessions not yet past their absolute expiry. */
export const userSessionIds = script('userSessionIds', `${PRELUDE}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', arg.now), '+inf')
table.insert(ids, 1, 'listed')
table.insert(ids, 1, serverNow)
return ids
`, idsOf)

/**
 * KEYS[1] the revocation stream, KEYS[2] its epoch. arg: sessionIds, revokedAt, userId (or none), cause,
 * retentionMs. Appends one entry (`ids` a JSON array, `at`, `u` the sessions' user when known, `c` what ended
 * them, `n` its number in the stream: one more than the last entry's, so that a reader who finds one missing
 * knows entries were trimmed unread; `e` the epoch) and trims the entries older than the retention,
 * approximately (stream ids are the server's times).
 */
export const announceRevocation = script('announceRevocation', `${PRELUDE}${ENSURE_EPOCH}
local epoch = ensureEpoch()
local n = 1
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last then
  local fields = last[2]
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'n' then n = (tonumber(fields[i + 1]) or 0) + 1 end
  end
end
local user = {}
if type(arg.userId) == 'string' then user = { 'u', arg.userId } end
redis.call('XADD', KEYS[1], 'MINID', '~', string.format('%d', serverNow - arg.retentionMs), '*',
  'ids', cjson.encode(arg.sessionIds), 'at', string.format('%d', arg.revokedAt), 'c', arg.cause, 'n', string.format('%d', n),
  'e', string.format('%d', epoch), unpack(user))
return { serverNow, 'announced' }
`, nothing, { keys: 2 })

/**
 * KEYS[1] the revocation stream. arg: retentionMs. Drops the entries older than the retention, exactly: run on a
 * timer, so the stream shrinks while no revocation is written.
 */
export const trimRevocations = script('trimRevocations', `${PRELUDE}
redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', serverNow - arg.retentionMs))
return { serverNow, 'trimmed' }
`, nothing)

/**
 * KEYS[1] the revocation stream, KEYS[2] its epoch: the epoch (ms, server clock), made when missing. Run by the
 * revocation feed with EVAL on its own connection, so it has no deadline: it changes nothing but a missing epoch.
 */
export const READ_EPOCH = `
local time = redis.call('TIME')
local serverNow = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
${ENSURE_EPOCH}
return ensureEpoch()
`

export const SCRIPTS: ReadonlyArray<RedisScript<unknown>> = [
  createSession, rotateSession, presentSession, markSessionEnded, stripEndedSession, readSession, sessionState,
  reserveLogin, userSessionIds, announceRevocation, trimRevocations
]
