// SQL of PostgresStore. Table names come from the `table` option, validated here as identifiers and always
// double-quoted; every value travels as a bind parameter. The only numbers written into SQL text are ones this
// module or the store computed (lock keys).
//
// Guarded statements. Each statement a store operation sends carries two deadlines on the server's clock
// (ServerClock), $1 to start and $2 to take effect, in milliseconds since the epoch, and the server checks them:
// - it starts with the CTE `guard`, one row when the statement started in time and none when it arrived late;
//   every other part joins it, so a late statement reads and changes nothing, and says so (`on_time` false).
//   The guard also sets `lock_timeout` to the time left, so no lock wait outlasts the deadline;
// - it ends, once it has read all it changes or locks, by checking $2 again: past it the statement fails
//   (a division by zero, 22012), so neither it nor its transaction commits. A statement sent on its own
//   commits as it ends, so this check is its commit guard; in a transaction, the same step arms
//   `idle_in_transaction_session_timeout` to the time left, so a COMMIT that reaches the server after $2
//   finds its session terminated and the transaction rolled back.

import { createHash } from 'node:crypto'
import { InvalidOptionError } from '../errors.js'

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/
// PostgreSQL truncates identifiers past 63 bytes; the longest derived name adds 12 to the table's own.
const MAX_SCHEMA_LENGTH = 63
const MAX_TABLE_LENGTH = 51
const MAX_CHANNEL_LENGTH = 63

/** The names PostgresStore uses for one `table` option, quoted and ready for SQL text. */
export interface TableNames {
  /** The sessions table, as given (quoted). */
  sessions: string
  /** The revocation feed's table: `<table>_revocations` in the same schema (quoted). */
  revocations: string
  /** Index names (quoted, unqualified: an index lives in its table's schema). */
  userIndex: string
  expiryIndex: string
  revokedAtIndex: string
  /** Every relation `schemaSql` creates, qualified like the table, for the check that they exist. */
  relations: string[]
  /** The NOTIFY channel, as text (for `pg_notify`), and quoted (for `LISTEN`). */
  channel: string
  listenChannel: string
  /** 32-bit namespace of the per-user advisory locks, and the 64-bit key of the migration lock. */
  lockNamespace: number
  migrationLockKey: string
}

/** Validates `table` (`name` or `schema.name`) and derives every name from it; throws a TypeError otherwise. */
export function tableNames (table: unknown): TableNames {
  if (typeof table !== 'string') throw new InvalidOptionError('PostgresStore: table must be a string')
  const parts = table.split('.')
  const name = parts[parts.length - 1]
  const schema = parts.length === 2 ? parts[0] : null
  if (parts.length > 2 || !parts.every(part => IDENTIFIER.test(part)) ||
      name.length > MAX_TABLE_LENGTH || (schema !== null && schema.length > MAX_SCHEMA_LENGTH)) {
    throw new InvalidOptionError(`PostgresStore: table must be a name or schema.name of letters, digits and _ (not starting with a digit), the name at most ${MAX_TABLE_LENGTH} characters`)
  }
  const qualify = (relation: string): string => schema === null ? `"${relation}"` : `"${schema}"."${relation}"`
  // NOTIFY channels are database-wide names of at most 63 bytes: a long one is replaced by its digest
  const readable = `${schema === null ? '' : `${schema}.`}${name}_revocations`
  const digest = createHash('sha256').update(`fastify-refresh-auth ${readable}`).digest()
  const channel = readable.length <= MAX_CHANNEL_LENGTH ? readable : `refresh_auth_${digest.toString('hex').slice(0, 32)}`
  const indexes = [`${name}_user_idx`, `${name}_expiry_idx`, `${name}_rev_at_idx`]
  return {
    sessions: qualify(name),
    revocations: qualify(`${name}_revocations`),
    userIndex: `"${indexes[0]}"`,
    expiryIndex: `"${indexes[1]}"`,
    revokedAtIndex: `"${indexes[2]}"`,
    relations: [name, `${name}_revocations`, ...indexes].map(qualify),
    channel,
    listenChannel: `"${channel}"`,
    lockNamespace: digest.readInt32BE(0),
    migrationLockKey: digest.readBigInt64BE(4).toString()
  }
}

/** The server's clock in milliseconds since the epoch. */
const SERVER_NOW = 'floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint'

const GUARD = `guard AS MATERIALIZED (
  SELECT set_config('lock_timeout', greatest(1, $2::float8 - ${SERVER_NOW})::bigint::text, true) AS armed
  WHERE ${SERVER_NOW} <= $1::float8
)`

/**
 * A guarded statement: the guard, then `ctes`, then `result` (its rows), each row checked against the commit
 * deadline after it was produced, so after every lock the statement takes and every change it makes. Each row
 * also carries the server's clock, a fresh sample for ServerClock at no cost.
 */
function guarded (ctes: string, result: string): string {
  return `WITH ${GUARD},
${ctes}
SELECT r.*, 1 / (${SERVER_NOW} <= $2::float8)::int AS in_time, ${SERVER_NOW} AS server_now,
  set_config('idle_in_transaction_session_timeout', greatest(1, $2::float8 - ${SERVER_NOW})::bigint::text, true) AS idle_armed
FROM (${result}) AS r`
}

/** The one row every guarded statement's result starts from. */
const ON_TIME = '(SELECT count(*) > 0 AS on_time FROM guard) AS g'

const SESSION_COLUMNS = 'session_id, user_id, token_id, previous_token_id, generation, created_at, rotated_at, expires_at, absolute_expires_at, user_agent, ip, jkt'

const RETURNED_COLUMNS = SESSION_COLUMNS.split(', ').map(column => `s.${column}`).join(', ')

/** The DDL that `migrate()` runs, also printed in docs/postgres.md. Idempotent. */
export function schemaSql (names: TableNames): string {
  return `CREATE TABLE IF NOT EXISTS ${names.sessions} (
  session_id text PRIMARY KEY,
  user_id text NOT NULL,
  token_id text NOT NULL,
  previous_token_id text,
  generation bigint NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  rotated_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  absolute_expires_at bigint NOT NULL,
  user_agent text,
  ip text,
  jkt text
);
-- tables made before sessions had generations, and before DPoP bound them to a key
ALTER TABLE ${names.sessions} ADD COLUMN IF NOT EXISTS generation bigint NOT NULL DEFAULT 0;
ALTER TABLE ${names.sessions} ADD COLUMN IF NOT EXISTS jkt text;
CREATE INDEX IF NOT EXISTS ${names.userIndex} ON ${names.sessions} (user_id);
CREATE INDEX IF NOT EXISTS ${names.expiryIndex} ON ${names.sessions} ((least(expires_at, absolute_expires_at)));
CREATE TABLE IF NOT EXISTS ${names.revocations} (
  id bigserial PRIMARY KEY,
  session_ids text[] NOT NULL,
  user_id text,
  cause text NOT NULL,
  revoked_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS ${names.revokedAtIndex} ON ${names.revocations} (revoked_at);`
}

/** The statements of one store, built once from its table names. */
export interface Statements {
  /** Whether every table and index of `schemaSql` exists (migrate skips its locks when so). Params: none. */
  schemaExists: string
  /** `schemaSql` under the migration lock, in one transaction. Params: none. */
  migrate: string
  /** Serialises logins of one user. Params: deadlines, lock namespace, user id. */
  lockUser: string
  /** The user's sessions, locked. Params: deadlines, user id. */
  userSessionsForUpdate: string
  /**
   * The compare-and-set of a rotation; binds an unbound session to the proof's key. Params: deadlines, session
   * id, next token id, now, next expiresAt, presented token id, jkt (or null).
   */
  rotate: string
  /** A rotation decided on the locked row. Params: deadlines, session id, token id, previous token id, generation, rotatedAt, expiresAt, jkt. */
  saveRotation: string
  /** One session, locked. Params: deadlines, session id. */
  sessionForUpdate: string
  /** Deletes sessions without announcing them (expired). Params: deadlines, session ids. */
  deleteExpired: string
  /** Ends sessions (of one user) by id and announces them. Params: deadlines, channel, session ids, cause. */
  endSessions: string
  /** Ends every session of a user and announces them. Params: deadlines, channel, user id, cause. */
  endUserSessions: string
  /** Ends every session of a user but one and announces them. Params: deadlines, channel, user id, kept session id, cause. */
  endOtherSessions: string
  /**
   * A login: ends (and announces) the evicted and replaced sessions, drops the user's expired ones and saves
   * the new one. Params: deadlines, channel, ended ids, expired ids, then the session's eleven columns.
   */
  saveSession: string
  /** The user's live sessions. Params: deadlines, user id, now. */
  listUserSessions: string
  /** Deletes a batch of expired sessions. Params: deadlines, now, batch size. */
  deleteExpiredBatch: string
  /** Deletes a batch of revocations older than the retention. Params: deadlines, retention ms, batch size. */
  trimRevocations: string
  /** The feed's catch-up: revocations since a time (null: the retention before now). Params: since, retention ms. */
  catchUp: string
  /** One revocation, for a notification too long to carry its ids. Params: revocation id. */
  revocationById: string
  /** The server's clock. Params: none. */
  serverNow: string
  /** `LISTEN` on the store's channel. Params: none. */
  listen: string
  unlisten: string
}

/**
 * CTEs that announce the sessions that `ended` (a CTE of `session_id`s and their `user_id`, one user) names, with
 * what ended them (`cause`, a parameter or a literal): one revocation row, one notification.
 */
function announce (channelParam: string, cause: string, names: TableNames): string {
  // NOTIFY payloads are limited to 8000 bytes: a long list travels by its id only, and listeners read it
  return `announced AS (
  INSERT INTO ${names.revocations} (session_ids, user_id, cause, revoked_at)
  SELECT array_agg(session_id), min(user_id), ${cause}, ${SERVER_NOW} FROM ended HAVING count(*) > 0
  RETURNING id, session_ids, user_id, cause, revoked_at
),
notified AS MATERIALIZED (
  SELECT pg_notify(${channelParam}, CASE WHEN octet_length(payload.full) <= 7900 THEN payload.full ELSE payload.short END)
  FROM announced,
    LATERAL (SELECT json_build_object('id', id::text, 'at', revoked_at, 'ids', session_ids, 'u', user_id, 'c', cause)::text AS full,
                    json_build_object('id', id::text, 'at', revoked_at)::text AS short) AS payload
)`
}

const ANNOUNCED_COLUMNS = 'a.revoked_at, array_to_json(a.session_ids)::text AS session_ids, a.user_id AS ended_user_id, a.cause'
const ANNOUNCED_RESULT = `SELECT g.on_time, ${ANNOUNCED_COLUMNS}, (SELECT count(*) FROM notified) AS notified
FROM ${ON_TIME} LEFT JOIN announced AS a ON true`

function endWhere (names: TableNames, condition: string, causeParam: string): string {
  return guarded(`ended AS (DELETE FROM ${names.sessions} AS s USING guard WHERE ${condition} RETURNING s.session_id, s.user_id),
${announce('$3', `${causeParam}::text`, names)}`, ANNOUNCED_RESULT)
}

export function buildStatements (names: TableNames): Statements {
  const { sessions, revocations } = names
  const schema = schemaSql(names)
  return {
    schemaExists: `SELECT ${names.relations.map(relation => `to_regclass('${relation}') IS NOT NULL`).join(' AND ')}
  AND (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('${names.sessions}') AND attname IN ('generation', 'jkt') AND NOT attisdropped) = 2 AS ready`,
    migrate: `BEGIN;
SELECT pg_advisory_xact_lock(${names.migrationLockKey});
${schema}
COMMIT;`,
    lockUser: guarded('locked AS MATERIALIZED (SELECT pg_advisory_xact_lock($3::int, hashtext($4)) FROM guard)',
      `SELECT g.on_time, (SELECT count(*) FROM locked) AS locked FROM ${ON_TIME}`),
    userSessionsForUpdate: guarded(`mine AS (SELECT s.* FROM ${sessions} AS s, guard WHERE s.user_id = $3 FOR UPDATE OF s)`,
      `SELECT g.on_time, mine.* FROM ${ON_TIME} LEFT JOIN mine ON true`),
    rotate: guarded(`rotated AS (
  UPDATE ${sessions} AS s SET token_id = $4, previous_token_id = s.token_id, generation = s.generation + 1, rotated_at = $5, expires_at = $6,
    jkt = COALESCE(s.jkt, $8::text)
  FROM guard
  WHERE s.session_id = $3 AND s.token_id = $7 AND s.expires_at > $5 AND s.absolute_expires_at > $5
  RETURNING ${RETURNED_COLUMNS}
)`, `SELECT g.on_time, rotated.* FROM ${ON_TIME} LEFT JOIN rotated ON true`),
    saveRotation: guarded(`saved AS (
  UPDATE ${sessions} AS s SET token_id = $4, previous_token_id = $5, generation = $6, rotated_at = $7, expires_at = $8, jkt = $9::text
  FROM guard WHERE s.session_id = $3
  RETURNING ${RETURNED_COLUMNS}
)`, `SELECT g.on_time, saved.* FROM ${ON_TIME} LEFT JOIN saved ON true`),
    sessionForUpdate: guarded(`locked AS (SELECT s.* FROM ${sessions} AS s, guard WHERE s.session_id = $3 FOR UPDATE OF s)`,
      `SELECT g.on_time, locked.* FROM ${ON_TIME} LEFT JOIN locked ON true`),
    deleteExpired: guarded(`deleted AS (DELETE FROM ${sessions} AS s USING guard WHERE s.session_id = ANY($3::text[]) RETURNING 1)`,
      `SELECT g.on_time, (SELECT count(*) FROM deleted) AS deleted FROM ${ON_TIME}`),
    endSessions: endWhere(names, 's.session_id = ANY($4::text[])', '$5'),
    endUserSessions: endWhere(names, 's.user_id = $4', '$5'),
    endOtherSessions: endWhere(names, 's.user_id = $4 AND s.session_id <> $5', '$6'),
    saveSession: guarded(`ended AS (DELETE FROM ${sessions} AS s USING guard WHERE s.session_id = ANY($4::text[]) RETURNING s.session_id, s.user_id),
expired AS (DELETE FROM ${sessions} AS s USING guard WHERE s.session_id = ANY($5::text[]) RETURNING 1),
saved AS (
  INSERT INTO ${sessions} AS s (${SESSION_COLUMNS})
  SELECT $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 FROM guard
  ON CONFLICT (session_id) DO UPDATE SET user_id = excluded.user_id, token_id = excluded.token_id,
    previous_token_id = excluded.previous_token_id, generation = excluded.generation, created_at = excluded.created_at, rotated_at = excluded.rotated_at,
    expires_at = excluded.expires_at, absolute_expires_at = excluded.absolute_expires_at,
    user_agent = excluded.user_agent, ip = excluded.ip, jkt = excluded.jkt
  RETURNING 1
),
${announce('$3', "'create'", names)}`, `SELECT g.on_time, ${ANNOUNCED_COLUMNS},
  (SELECT count(*) FROM notified) AS notified, (SELECT count(*) FROM expired) AS expired, (SELECT count(*) FROM saved) AS saved
FROM ${ON_TIME} LEFT JOIN announced AS a ON true`),
    listUserSessions: guarded(`listed AS (SELECT s.* FROM ${sessions} AS s, guard WHERE s.user_id = $3 AND s.expires_at > $4 AND s.absolute_expires_at > $4)`,
      `SELECT g.on_time, listed.* FROM ${ON_TIME} LEFT JOIN listed ON true`),
    // SKIP LOCKED: instances cleaning at once take different rows, and a session being rotated is left for later
    deleteExpiredBatch: guarded(`doomed AS (
  SELECT s.session_id FROM ${sessions} AS s, guard WHERE least(s.expires_at, s.absolute_expires_at) <= $3
  LIMIT $4 FOR UPDATE OF s SKIP LOCKED
),
deleted AS (DELETE FROM ${sessions} AS s WHERE s.session_id IN (SELECT session_id FROM doomed) RETURNING 1)`,
    `SELECT g.on_time, (SELECT count(*) FROM deleted)::int AS deleted FROM ${ON_TIME}`),
    trimRevocations: guarded(`doomed AS (
  SELECT r.id FROM ${revocations} AS r, guard WHERE r.revoked_at < ${SERVER_NOW} - $3::bigint
  LIMIT $4 FOR UPDATE OF r SKIP LOCKED
),
deleted AS (DELETE FROM ${revocations} AS r WHERE r.id IN (SELECT id FROM doomed) RETURNING 1)`,
    `SELECT g.on_time, (SELECT count(*) FROM deleted)::int AS deleted FROM ${ON_TIME}`),
    catchUp: `SELECT clock.now, r.revoked_at, array_to_json(r.session_ids)::text AS session_ids, r.user_id AS ended_user_id, r.cause
FROM (SELECT ${SERVER_NOW} AS now) AS clock
LEFT JOIN ${revocations} AS r ON r.revoked_at >= coalesce($1::bigint, clock.now - $2::bigint)
ORDER BY r.revoked_at, r.id`,
    revocationById: `SELECT revoked_at, array_to_json(session_ids)::text AS session_ids, user_id AS ended_user_id, cause FROM ${revocations} WHERE id = $1::bigint`,
    serverNow: `SELECT ${SERVER_NOW} AS now`,
    listen: `LISTEN ${names.listenChannel}`,
    unlisten: `UNLISTEN ${names.listenChannel}`
  }
}
