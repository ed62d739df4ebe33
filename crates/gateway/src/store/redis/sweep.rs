//! [`Sweeps`] on Redis: see [`crate::store::sweep`] for the layout.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::{AsyncCommands, Script};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{RedisStore, millis};
use crate::store::StoreError;
use crate::store::sweep::{SWEEPS_KEPT, Sweeps};

/// The owner of a lease's value `owner until_ms` (a value without a time is all owner).
const OWNER_OF: &str = r"
local function owner_of(held)
  local space = string.find(held, ' ', 1, true)
  if space then
    return string.sub(held, 1, space - 1), tonumber(string.sub(held, space + 1))
  end
  return held, nil
end
";

/// Takes or extends the lease: KEYS[1] lease; ARGV owner, ttl ms, now ms (the gateway's
/// clock). Another owner's lease is taken over once its time has passed by that clock.
static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{OWNER_OF}
local held = redis.call('GET', KEYS[1])
if held then
  local who, till = owner_of(held)
  if who ~= ARGV[1] and (till == nil or till > tonumber(ARGV[3])) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. (tonumber(ARGV[3]) + tonumber(ARGV[2])), 'PX', ARGV[2])
return 1"
    ))
});

/// KEYS[1] lease; ARGV owner.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{OWNER_OF}
local held = redis.call('GET', KEYS[1])
if held and owner_of(held) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0"
    ))
});

/// KEYS[1] lease, KEYS[2] watermark; ARGV owner, unix ms, ttl ms.
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{OWNER_OF}
local held = redis.call('GET', KEYS[1])
if not held or owner_of(held) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1"
    ))
});

impl RedisStore {
    fn sweep_key(&self, what: &str) -> String {
        self.keys.sweep(what)
    }
}

#[async_trait]
impl Sweeps for RedisStore {
    async fn lease_sweep(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = &self.sweep_key("lease");
        let ttl = millis(ttl);
        let now = now.timestamp_millis();
        let taken: i64 = self
            .run("lease_sweep", || {
                let mut conn = self.conn();
                async move {
                    LEASE
                        .key(key)
                        .arg(owner)
                        .arg(ttl)
                        .arg(now)
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(taken == 1)
    }

    async fn release_sweep(&self, owner: &str) -> Result<(), StoreError> {
        let key = &self.sweep_key("lease");
        let _: i64 = self
            .run("release_sweep", || {
                let mut conn = self.conn();
                async move { RELEASE.key(key).arg(owner).invoke_async(&mut conn).await }
            })
            .await?;
        Ok(())
    }

    async fn sweep_watermark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let key = &self.sweep_key("watermark");
        let raw: Option<String> = self
            .run("sweep_watermark", || {
                let mut conn = self.conn();
                async move { conn.get(key).await }
            })
            .await?;
        raw.map(|r| {
            r.parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| StoreError::corrupt(format!("sweep watermark {r:?}")))
        })
        .transpose()
    }

    async fn advance_sweep_watermark(
        &self,
        owner: &str,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (lease, watermark) = (&self.sweep_key("lease"), &self.sweep_key("watermark"));
        let at = to.timestamp_millis();
        let ttl = millis(self.ttls.retention);
        let moved: i64 = self
            .run("advance_sweep_watermark", || {
                let mut conn = self.conn();
                async move {
                    ADVANCE
                        .key(lease)
                        .key(watermark)
                        .arg(owner)
                        .arg(at)
                        .arg(ttl)
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(moved == 1)
    }

    async fn record_sweep(&self, report: &str) -> Result<(), StoreError> {
        let key = &self.sweep_key("history");
        let ttl = millis(self.ttls.retention) as i64;
        self.run("record_sweep", || {
            let mut conn = self.conn();
            async move {
                ::redis::pipe()
                    .atomic()
                    .lpush(key, report)
                    .ignore()
                    .ltrim(key, 0, SWEEPS_KEPT as isize - 1)
                    .ignore()
                    .pexpire(key, ttl)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
            }
        })
        .await
    }

    async fn recent_sweeps(&self) -> Result<Vec<String>, StoreError> {
        let key = &self.sweep_key("history");
        self.run("recent_sweeps", || {
            let mut conn = self.conn();
            async move { conn.lrange(key, 0, SWEEPS_KEPT as isize - 1).await }
        })
        .await
    }
}
