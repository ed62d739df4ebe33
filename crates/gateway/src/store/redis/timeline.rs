//! The Redis side of [`crate::store::timeline`]: one sorted set per family and UTC day, and
//! the script that walks a family's days for one page in one round trip.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::ConnectionLike;
use ::redis::{Cmd, Pipeline, RedisResult, Script};

use super::connection::Connection;
use super::millis;
use crate::store::keys::Keys;
use crate::store::timeline::{Direction, Entry, Family, MAX_DAYS_PER_CALL, PageRequest, day_of};

/// KEYS: the day buckets of one family, in walk order (the start's day first).
/// ARGV: 'older' | 'newer', lowest score, highest score (both inclusive), limit,
///       [start score, start member].
/// Returns `{member, score, member, score, …}`, at most `limit` entries, in walk order.
///
/// Entries tied with the start's score are ordered by member, bytewise (as Redis orders equal
/// scores), compared here byte by byte: Lua's `<` on strings follows the server's locale.
/// Only the first bucket can hold the start's score (the start's own day).
const PAGE: &str = r#"
local older = ARGV[1] == 'older'
local lo, hi, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local at, start = ARGV[5], ARGV[6]
local function before(a, b)
  local la, lb = #a, #b
  for i = 1, math.min(la, lb) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return la < lb
end
local out, n = {}, 0
for i, key in ipairs(KEYS) do
  if n >= limit then break end
  if at and i == 1 then
    local ties = redis.call('ZRANGEBYSCORE', key, at, at)
    local from, to, step = 1, #ties, 1
    if older then from, to, step = #ties, 1, -1 end
    for j = from, to, step do
      if n >= limit then break end
      local m = ties[j]
      if (older and before(m, start)) or ((not older) and before(start, m)) then
        out[#out + 1] = m
        out[#out + 1] = at
        n = n + 1
      end
    end
  end
  if n < limit then
    local rows
    if older then
      local top = hi
      if at then top = '(' .. at end
      rows = redis.call('ZREVRANGEBYSCORE', key, top, lo, 'WITHSCORES', 'LIMIT', 0, limit - n)
    else
      local bottom = lo
      if at then bottom = '(' .. at end
      rows = redis.call('ZRANGEBYSCORE', key, bottom, hi, 'WITHSCORES', 'LIMIT', 0, limit - n)
    end
    for j = 1, #rows, 2 do
      out[#out + 1] = rows[j]
      out[#out + 1] = rows[j + 1]
      n = n + 1
    end
  end
end
return out
"#;

static PAGE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(PAGE));

/// A family's day buckets under one store's prefix, kept `keep` after their last write.
pub(crate) struct RedisTimeline<'a> {
    keys: &'a Keys,
    keep_ms: u64,
}

impl<'a> RedisTimeline<'a> {
    pub(crate) fn new(keys: &'a Keys, keep: Duration) -> Self {
        Self {
            keys,
            keep_ms: millis(keep),
        }
    }

    /// ZADD the entry to its day's key and refresh that key's TTL.
    pub(crate) fn add(&self, family: &Family, entry: &Entry) -> IndexWrite {
        IndexWrite::Add {
            key: self.keys.timeline(family, &day_of(entry.at_ms)),
            score: entry.at_ms,
            member: entry.member.clone(),
            ttl_ms: self.keep_ms,
        }
    }

    /// ZREM the entry from its day's key.
    pub(crate) fn remove(&self, family: &Family, entry: &Entry) -> IndexWrite {
        IndexWrite::Remove {
            key: self.keys.timeline(family, &day_of(entry.at_ms)),
            member: entry.member.clone(),
        }
    }

    /// One page: one script call per [`MAX_DAYS_PER_CALL`] days walked (one in the common
    /// case: a retention of 30 days is 32 buckets).
    pub(crate) async fn page<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        req: &PageRequest<'_>,
    ) -> RedisResult<Vec<Entry>> {
        let Some((lo, hi, mut after)) = req.bounds() else {
            return Ok(Vec::new());
        };
        let days = req.days();
        let mut out: Vec<Entry> = Vec::new();
        for chunk in days.chunks(MAX_DAYS_PER_CALL) {
            let mut call = PAGE_SCRIPT.prepare_invoke();
            for day in chunk {
                call.key(self.keys.timeline(req.family, day));
            }
            call.arg(match req.direction {
                Direction::Older => "older",
                Direction::Newer => "newer",
            })
            .arg(lo)
            .arg(hi)
            .arg(req.limit - out.len());
            if let Some(a) = after {
                call.arg(a.at_ms).arg(&a.member);
            }
            let flat: Vec<String> = call.invoke_async(conn).await?;
            for pair in flat.chunks_exact(2) {
                out.push(Entry {
                    member: pair[0].clone(),
                    at_ms: parse_score(&pair[1])?,
                });
            }
            if out.len() >= req.limit {
                break;
            }
            // The next chunk starts on another day: the start's ties are behind us.
            after = None;
        }
        Ok(out)
    }
}

/// Scores are whole milliseconds; Redis prints them as integers (`%.17g`), but accept a float.
fn parse_score(raw: &str) -> RedisResult<i64> {
    raw.parse::<i64>()
        .or_else(|_| raw.parse::<f64>().map(|f| f as i64))
        .map_err(|_| {
            ::redis::RedisError::from((
                ::redis::ErrorKind::Parse,
                "a listing index score is not a number",
            ))
        })
}

/// One write to an index whose key is not a checkout's hash slot (a listing day, `sync-due`,
/// `outbox-due`). A single node runs it inside a checkout's script, where it goes as values only
/// ([`super::scripts`]); elsewhere [`run_grouped`] sends its commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum IndexWrite {
    /// `ZADD key score member`, then `PEXPIRE key ttl_ms`: a key never gains an entry without
    /// its TTL being refreshed.
    Add {
        key: String,
        score: i64,
        member: String,
        ttl_ms: u64,
    },
    /// `ZREM key member`.
    Remove { key: String, member: String },
    /// `SET key value PX ttl_ms` (a refund's entry in the refund index).
    Set {
        key: String,
        value: String,
        ttl_ms: u64,
    },
    /// `LPUSH key value`, `LTRIM key 0 keep-1` (in a script: only once the list is twice that
    /// long), `PEXPIRE key ttl_ms` when given (an entry of a console log, whose TTL the
    /// script's caller sets otherwise, or of a console search index).
    Push {
        key: String,
        value: String,
        keep: usize,
        ttl_ms: Option<u64>,
    },
    /// `HINCRBY key field by`, then `PEXPIRE key ttl_ms` when given (a console statistic: the
    /// last of a key's fields refreshes its TTL).
    Incr {
        key: String,
        field: &'static str,
        by: i64,
        ttl_ms: Option<u64>,
    },
}

impl IndexWrite {
    /// The write as commands, to be sent as one transaction (they share one key).
    pub(super) fn commands(&self) -> Vec<Cmd> {
        match self {
            Self::Add {
                key,
                score,
                member,
                ttl_ms,
            } => {
                let mut zadd = ::redis::cmd("ZADD");
                zadd.arg(key).arg(score).arg(member);
                let mut expire = ::redis::cmd("PEXPIRE");
                expire.arg(key).arg(ttl_ms);
                vec![zadd, expire]
            }
            Self::Remove { key, member } => {
                let mut zrem = ::redis::cmd("ZREM");
                zrem.arg(key).arg(member);
                vec![zrem]
            }
            Self::Set { key, value, ttl_ms } => {
                let mut set = ::redis::cmd("SET");
                set.arg(key).arg(value).arg("PX").arg(ttl_ms);
                vec![set]
            }
            Self::Push {
                key,
                value,
                keep,
                ttl_ms,
            } => {
                let mut push = ::redis::cmd("LPUSH");
                push.arg(key).arg(value);
                let mut trim = ::redis::cmd("LTRIM");
                trim.arg(key).arg(0).arg(keep.saturating_sub(1));
                let mut commands = vec![push, trim];
                if let Some(ttl_ms) = ttl_ms {
                    let mut expire = ::redis::cmd("PEXPIRE");
                    expire.arg(key).arg(ttl_ms);
                    commands.push(expire);
                }
                commands
            }
            Self::Incr {
                key,
                field,
                by,
                ttl_ms,
            } => {
                let mut incr = ::redis::cmd("HINCRBY");
                incr.arg(key).arg(*field).arg(by);
                let mut commands = vec![incr];
                if let Some(ttl_ms) = ttl_ms {
                    let mut expire = ::redis::cmd("PEXPIRE");
                    expire.arg(key).arg(ttl_ms);
                    commands.push(expire);
                }
                commands
            }
        }
    }
}

/// Runs index writes, each as a transaction (`MULTI`/`EXEC`: a ZADD never lands without the
/// PEXPIRE that gives its key a TTL): all in one transaction on a single node, one each (sent
/// together) on a cluster, where one must not cross slots.
pub(super) async fn run_grouped(conn: &Connection, writes: &[IndexWrite]) -> RedisResult<()> {
    match conn {
        Connection::Single(_) | Connection::Worker(_) | Connection::Unconnected => {
            let mut pipe = Pipeline::new();
            pipe.atomic();
            for cmd in writes.iter().flat_map(IndexWrite::commands) {
                pipe.add_command(cmd).ignore();
            }
            pipe.exec_async(&mut conn.clone()).await
        }
        Connection::Cluster(_) => {
            let runs = writes.iter().map(|write| {
                let mut conn = conn.clone();
                async move {
                    let mut pipe = Pipeline::new();
                    pipe.atomic();
                    for cmd in write.commands() {
                        pipe.add_command(cmd).ignore();
                    }
                    pipe.exec_async(&mut conn).await
                }
            });
            futures_util::future::try_join_all(runs).await.map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_as_whole_milliseconds() {
        assert_eq!(parse_score("1795478400000").unwrap(), 1_795_478_400_000);
        assert_eq!(parse_score("1.7954784e+12").unwrap(), 1_795_478_400_000);
        assert!(parse_score("x").is_err());
    }
}
