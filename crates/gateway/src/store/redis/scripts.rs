//! The Lua scripts behind every atomic step. Each touches only keys of one hash slot (the
//! checkout's `{chk_…}` tag, or a single key), so each runs unchanged on Redis Cluster.
//!
//! Redis runs a script to completion before any other command, so "read, compare, write and set
//! the TTLs" in one script can never interleave with a racer's writes.

use ::redis::Script;

/// KEYS: checkout, events. ARGV: checkout JSON, first event JSON, retention in ms.
/// Returns 1 when inserted, 0 when the checkout exists already (nothing written).
const INSERT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'version', 1)
-- An events list cannot outlive its checkout (same TTL, refreshed together), but if one ever
-- did, it belongs to a previous life of this id and must not prefix the new history.
redis.call('DEL', KEYS[2])
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"#;

/// KEYS: checkout, history, events, deliveries, outbox.
/// ARGV: expected version, checkout JSON, retention in ms, history entry JSON or '', delivery due
/// time in ms or '' (not queued), the new delivery's JSON (or ''), then pairs of event id and
/// event JSON. Returns the new version when applied, 0 on a version conflict, -1 when there is no
/// checkout. The record, its history, its merchant events and its outbox change together or not
/// at all: no crash between a transition and its event can lose the event (design §12).
const COMPARE_AND_SET: &str = r#"
local current = redis.call('HGET', KEYS[1], 'version')
if not current then
  return -1
end
if current ~= ARGV[1] then
  return 0
end
local next_version = tonumber(current) + 1
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'version', next_version)
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4])
end
for i = 7, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[6])
    redis.call('ZADD', KEYS[5], ARGV[5], ARGV[i])
  end
end
-- Refresh every TTL even without a new event, so that history, events and their deliveries
-- live exactly as long as the record (PEXPIRE on a key that does not exist does nothing).
for k = 1, 5 do
  redis.call('PEXPIRE', KEYS[k], ARGV[3])
end
return next_version
"#;

/// KEYS: key. ARGV: value, ttl in ms.
/// Returns `{1, nil}` when the key was free and now holds the value, else `{0, current value}`.
/// One script rather than `SET NX` then `GET`, so that a key expiring between the two steps
/// cannot come back as "nothing there and not ours either".
const CLAIM: &str = r#"
local current = redis.call('GET', KEYS[1])
if current then
  return {0, current}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, false}
"#;

/// KEYS: key. ARGV: expected value, new value, ttl in ms.
/// Replaces the value only if it is still exactly the expected one. Returns 1 or 0.
const REPLACE_IF_EQUAL: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"#;

/// KEYS: key. ARGV: expected value. Deletes the key only if it still holds exactly that value
/// (an owner token, or an idempotency record): the atomic form of GET-then-DEL. Returns 1 or 0.
const DELETE_IF_EQUAL: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// KEYS: sync-due. ARGV: score, member, ttl in ms. ZADD and refresh the index's TTL together.
const SCHEDULE: &str = r#"
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"#;

/// The scripts, hashed once; `invoke_async` loads a script on `NOSCRIPT` (a restarted or new node).
pub(super) struct Scripts {
    pub insert: Script,
    pub compare_and_set: Script,
    pub claim: Script,
    pub replace_if_equal: Script,
    pub delete_if_equal: Script,
    pub schedule: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            insert: Script::new(INSERT),
            compare_and_set: Script::new(COMPARE_AND_SET),
            claim: Script::new(CLAIM),
            replace_if_equal: Script::new(REPLACE_IF_EQUAL),
            delete_if_equal: Script::new(DELETE_IF_EQUAL),
            schedule: Script::new(SCHEDULE),
        }
    }
}
