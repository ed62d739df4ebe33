//! The Lua scripts behind every atomic step. Each touches only keys of one hash slot (the
//! checkout's `{chk_…}` tag, or a single key), so each runs unchanged on Redis Cluster.
//!
//! Redis runs a script to completion before any other command, so "read, compare, write and set
//! the TTLs" in one script can never interleave with a racer's writes.

use ::redis::Script;

use super::timeline::IndexWrite;

/// Runs the index writes packed in `ARGV[from..=to]` (see [`pack`]): `+ key score member ttl`
/// is `ZADD` then `PEXPIRE`, `- key member` is `ZREM`, `= key value ttl` is `SET … PX`,
/// `< key value last ttl` is `LPUSH`, then `LTRIM 0 last` once the list is more than twice
/// `last + 1` long (readers read its first `last + 1`: trimming in batches saves a command
/// per push), then `PEXPIRE` (none when `ttl` is ''), `# key field by ttl` is `HINCRBY`,
/// `PEXPIRE` (none when `ttl` is ''), with `run` (`redis.call`: an error
/// stops the script; `redis.pcall`: an error is skipped, and counted in the number returned).
/// Values only: the command names are
/// here, not in every call's arguments, each of which Redis turns into a Lua string. Only a
/// single node is given any: their keys are not the checkout's hash slot, which Redis Cluster
/// refuses in one script; there the same writes go as their own commands.
const RUN_WRITES: &str = r#"
local function run_writes(run, from, to)
  local failed = 0
  local function call(...)
    local reply = run(...)
    if type(reply) == 'table' and reply.err then
      failed = failed + 1
    end
    return reply
  end
  local i = from
  while i <= to do
    if ARGV[i] == '+' then
      call('ZADD', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
      call('PEXPIRE', ARGV[i + 1], ARGV[i + 4])
      i = i + 5
    elseif ARGV[i] == '=' then
      call('SET', ARGV[i + 1], ARGV[i + 2], 'PX', ARGV[i + 3])
      i = i + 4
    elseif ARGV[i] == '<' then
      local length = call('LPUSH', ARGV[i + 1], ARGV[i + 2])
      local keep = tonumber(ARGV[i + 3]) + 1
      if type(length) == 'number' and length > 2 * keep then
        call('LTRIM', ARGV[i + 1], 0, keep - 1)
      end
      if ARGV[i + 4] ~= '' then
        call('PEXPIRE', ARGV[i + 1], ARGV[i + 4])
      end
      i = i + 5
    elseif ARGV[i] == '#' then
      call('HINCRBY', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
      if ARGV[i + 4] ~= '' then
        call('PEXPIRE', ARGV[i + 1], ARGV[i + 4])
      end
      i = i + 5
    else
      call('ZREM', ARGV[i + 1], ARGV[i + 2])
      i = i + 3
    end
  end
  return failed
end
"#;

/// KEYS: checkout, events. ARGV: checkout JSON, first event JSON, retention in ms, the length
/// `n` of the packed writes to run first (the listing entries), those `n` arguments, then
/// packed writes to run once inserted (the reconciler's index).
/// Returns 1 when inserted, 0 when the checkout exists already (nothing of it written).
/// The listing entries are written before the record; with everything in one
/// script, nobody sees one without the other anyway.
const INSERT: &str = r#"
local before_end = 4 + tonumber(ARGV[4])
run_writes(redis.call, 5, before_end)
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
run_writes(redis.call, before_end + 1, #ARGV)
return 1
"#;

/// KEYS: checkout, history, events, deliveries, outbox, the console's MSP call log and
/// notification log (whose TTLs follow the record's).
/// ARGV: expected version, checkout JSON, retention in ms, history entry JSON or '', delivery due
/// time in ms or '' (not queued), the new delivery's JSON (or '': queued for the webhook
/// endpoints only, no `webhooks.url` delivery), the checkout's event id
/// prefix (`evt_` and its 32 hex digits), the number `n` of merchant events, `n` pairs of event
/// id and event JSON, then packed writes to run once applied (the listing's status move and
/// the reconciler's unschedule: hints, whose errors are ignored).
/// Returns the new version when applied, -1 when there is no checkout, and on a version
/// conflict `{version, data}` of the checkout as it is: the state the caller decides again on,
/// without a read of its own. The record, its history, its merchant events and its outbox
/// change together or not at all: no crash between a transition and its event can lose the
/// event.
///
/// Merchant events are written without the checkout they show: it is the record this script
/// writes. Before the record moves on, the events of the version it leaves (ids `prefix`,
/// version, position 0, 1, …) get that record spliced in as their `checkout`, so that each
/// event keeps the checkout as it was right after its change, stored once while it is the
/// newest (see `outbox::EventHead`). A refund's event carries its refund (`"object":`) and is
/// left as it is: spliced, each would hold every refund of the checkout.
const COMPARE_AND_SET: &str = r#"
local current = redis.call('HGET', KEYS[1], 'version')
if not current then
  return -1
end
if current ~= ARGV[1] then
  return {tonumber(current), redis.call('HGET', KEYS[1], 'data')}
end
local leaving = ARGV[7] .. string.format('%08x', tonumber(current) % 4294967296)
local old_data
for position = 0, 255 do
  local id = leaving .. string.format('%02x', position)
  local event = redis.call('HGET', KEYS[3], id)
  if not event then
    break
  end
  if not string.find(event, '"checkout":', 1, true) and not string.find(event, '"object":', 1, true)
      and string.sub(event, -1) == '}' then
    old_data = old_data or redis.call('HGET', KEYS[1], 'data')
    redis.call('HSET', KEYS[3], id, string.sub(event, 1, -2) .. ',"checkout":' .. old_data .. '}')
  end
end
local next_version = tonumber(current) + 1
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'version', next_version)
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4])
end
local events_end = 8 + 2 * tonumber(ARGV[8])
for i = 9, events_end, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  if ARGV[5] ~= '' then
    if ARGV[6] ~= '' then
      redis.call('HSET', KEYS[4], ARGV[i], ARGV[6])
    end
    redis.call('ZADD', KEYS[5], ARGV[5], ARGV[i])
  end
end
run_writes(redis.pcall, events_end + 1, #ARGV)
-- Refresh every TTL even without a new event, so that history, events, their deliveries and
-- the console's logs (pushed just above, without a TTL of their own) live exactly as long as
-- the record (PEXPIRE on a key that does not exist does nothing).
for k = 1, 7 do
  redis.call('PEXPIRE', KEYS[k], ARGV[3])
end
return next_version
"#;

/// KEYS: checkout, the console's MSP call log and notification log. ARGV: the length `n` of
/// the packed writes that follow for the checkout (its log entries), those `n` arguments, then
/// packed writes for the hour (its counters): the console's records of what led to this read.
/// Returns the checkout's `{data, version}` (both nil when there is none) and how many writes
/// Redis refused. The checkout's writes run only while it exists, and its logs then take the
/// record's remaining TTL, so that they expire with it; the hour's always; a refused write
/// stops nothing (hints). A read that records, in
/// one round trip. A single node only (the counters are another slot); Redis Cluster reads and
/// records apart.
const GET_RECORDING: &str = r#"
local record = redis.call('HMGET', KEYS[1], 'data', 'version')
local logs_end = 1 + tonumber(ARGV[1])
local failed = 0
if record[2] then
  failed = run_writes(redis.pcall, 2, logs_end)
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
    redis.call('PEXPIRE', KEYS[3], ttl)
  end
end
failed = failed + run_writes(redis.pcall, logs_end + 1, #ARGV)
return {record[1], record[2], failed}
"#;

/// KEYS: a pay session. ARGV: the checkout key's text before and after the checkout id.
/// Returns nil when there is no session, else `{session, data, version}` of its checkout
/// (`data` and `version` nil when it is gone, or when the session names no checkout id). The
/// checkout's key is not the session's slot: a single node only (Redis Cluster reads the two
/// one after the other).
const PAY_SESSION_AND_CHECKOUT: &str = r#"
local session = redis.call('GET', KEYS[1])
if not session then
  return false
end
local ok, decoded = pcall(cjson.decode, session)
if not ok or type(decoded) ~= 'table' or type(decoded.checkout_id) ~= 'string' then
  return {session, false, false}
end
local record = redis.call('HMGET', ARGV[1] .. decoded.checkout_id .. ARGV[2], 'data', 'version')
return {session, record[1], record[2]}
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

/// KEYS: an idempotency key. ARGV: owner token, response status, response body, ttl in ms.
/// Completes the record with the response if it is still a processing claim of that owner (the
/// record's other fields stay as they are). Returns 1 when completed, 0 when the key is gone,
/// -1 when it is not that owner's claim any more (completed, taken over, or unreadable).
/// One script rather than a read and a compare-and-set on the bytes read: one round trip.
const COMPLETE_IDEMPOTENCY: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local ok, record = pcall(cjson.decode, current)
if not ok or type(record) ~= 'table' or record.state ~= 'processing' or record.owner ~= ARGV[1] then
  return -1
end
record.state = 'completed'
record.response = {status = tonumber(ARGV[2]), body = ARGV[3]}
redis.call('SET', KEYS[1], cjson.encode(record), 'PX', ARGV[4])
return 1
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

/// Appends `writes` to a script call as `RUN_WRITES` reads them.
pub(super) fn pack(call: &mut ::redis::ScriptInvocation<'_>, writes: &[IndexWrite]) {
    for write in writes {
        match write {
            IndexWrite::Add {
                key,
                score,
                member,
                ttl_ms,
            } => call.arg("+").arg(key).arg(score).arg(member).arg(ttl_ms),
            IndexWrite::Remove { key, member } => call.arg("-").arg(key).arg(member),
            IndexWrite::Set { key, value, ttl_ms } => call.arg("=").arg(key).arg(value).arg(ttl_ms),
            IndexWrite::Push {
                key,
                value,
                keep,
                ttl_ms,
            } => call
                .arg("<")
                .arg(key)
                .arg(value)
                .arg(keep.saturating_sub(1))
                .arg(ttl_ms.map(|ttl| ttl.to_string()).unwrap_or_default()),
            IndexWrite::Incr {
                key,
                field,
                by,
                ttl_ms,
            } => match ttl_ms {
                Some(ttl_ms) => call.arg("#").arg(key).arg(*field).arg(by).arg(ttl_ms),
                None => call.arg("#").arg(key).arg(*field).arg(by).arg(""),
            },
        };
    }
}

/// How many script arguments [`pack`] adds for `writes`.
pub(super) fn packed_len(writes: &[IndexWrite]) -> usize {
    writes
        .iter()
        .map(|write| match write {
            IndexWrite::Add { .. } => 5,
            IndexWrite::Remove { .. } => 3,
            IndexWrite::Set { .. } => 4,
            IndexWrite::Push { .. } | IndexWrite::Incr { .. } => 5,
        })
        .sum()
}

/// The scripts, hashed once; `invoke_async` loads a script on `NOSCRIPT` (a restarted or new node).
pub(super) struct Scripts {
    pub insert: Script,
    pub compare_and_set: Script,
    pub get_recording: Script,
    pub claim: Script,
    pub replace_if_equal: Script,
    pub complete_idempotency: Script,
    pub delete_if_equal: Script,
    pub schedule: Script,
    pub pay_session_and_checkout: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            insert: Script::new(&format!("{RUN_WRITES}{INSERT}")),
            compare_and_set: Script::new(&format!("{RUN_WRITES}{COMPARE_AND_SET}")),
            get_recording: Script::new(&format!("{RUN_WRITES}{GET_RECORDING}")),
            claim: Script::new(CLAIM),
            replace_if_equal: Script::new(REPLACE_IF_EQUAL),
            complete_idempotency: Script::new(COMPLETE_IDEMPOTENCY),
            delete_if_equal: Script::new(DELETE_IF_EQUAL),
            schedule: Script::new(SCHEDULE),
            pay_session_and_checkout: Script::new(PAY_SESSION_AND_CHECKOUT),
        }
    }
}
