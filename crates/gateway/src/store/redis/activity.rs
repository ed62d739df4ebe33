//! [`Activity`] on Redis: see [`crate::store::activity`] for the layout.
//!
//! One script writes a log entry and an hour's counters together: one round trip on a single
//! node; on Redis Cluster (different slots) the same script runs once per slot, both at once.

use std::sync::LazyLock;

use ::redis::{Pipeline, Script};
use async_trait::async_trait;

use super::timeline::IndexWrite;
use super::{RedisStore, from_json, millis, to_json};
use crate::activity::{MspCallRecord, NotificationRecord};
use crate::domain::checkout::CheckoutId;
use crate::store::StoreError;
use crate::store::activity::{Activity, LOG_CAP, Pending, STATS_TTL, StatsUpdate};
use crate::store::console::{ConsoleData, ConsoleSlot, INDEX_KEEP, SearchIndex};

/// ARGV[1]: a log entry, or '' for none; then, with an entry, KEYS[1] the checkout and KEYS[2]
/// its log: the entry is pushed (newest first, trimmed to ARGV[2] + 1 entries) only while the
/// checkout exists, and the log takes the checkout's remaining TTL. ARGV[3]: the statistics' TTL
/// in ms; ARGV[4..]: field, increment pairs added to the next key (the hour's statistics).
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local k = 1
if ARGV[1] ~= '' then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    redis.call('LPUSH', KEYS[2], ARGV[1])
    redis.call('LTRIM', KEYS[2], 0, ARGV[2])
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
  k = 3
end
if #ARGV > 3 then
  for i = 4, #ARGV, 2 do
    redis.call('HINCRBY', KEYS[k], ARGV[i], ARGV[i + 1])
  end
  redis.call('PEXPIRE', KEYS[k], ARGV[3])
end
return 1",
    )
});

impl RedisStore {
    /// `pending` as writes a single node runs in a checkout's script (its compare-and-set, once
    /// applied, or the read that records): the log entries (the script gives them the record's
    /// TTL), the search entries and the counters.
    pub(super) fn activity_writes(
        &self,
        id: &CheckoutId,
        pending: Option<&Pending>,
    ) -> Vec<IndexWrite> {
        let Some(pending) = pending else {
            return Vec::new();
        };
        let mut writes = Vec::new();
        // No TTL of their own: the script that runs them gives the logs the record's.
        let mut push = |key: String, entry: Result<String, StoreError>| match entry {
            Ok(value) => writes.push(IndexWrite::Push {
                key,
                value,
                keep: LOG_CAP,
                ttl_ms: None,
            }),
            Err(e) => tracing::warn!(error = %e, "could not encode a console log entry"),
        };
        for call in &pending.calls {
            push(self.keys.msp_log(id), to_json("an MSP call", call));
        }
        for notification in &pending.notifications {
            push(
                self.keys.notification_log(id),
                to_json("a notification", notification),
            );
        }
        writes.extend(self.search_writes(id, &pending.search));
        // Each hour's counters added up first, and its TTL refreshed once.
        let mut hours: std::collections::BTreeMap<i64, Vec<(&'static str, i64)>> =
            Default::default();
        for stats in &pending.stats {
            let fields = hours.entry(stats.hour).or_default();
            for (field, by) in &stats.incr {
                match fields.iter_mut().find(|(f, _)| f == field) {
                    Some((_, sum)) => *sum += by,
                    None => fields.push((field, *by)),
                }
            }
        }
        for (hour, fields) in hours {
            let key = self.keys.stats_hour(hour);
            let last = fields.len().saturating_sub(1);
            for (i, (field, by)) in fields.into_iter().enumerate() {
                writes.push(IndexWrite::Incr {
                    key: key.clone(),
                    field,
                    by,
                    ttl_ms: (i == last).then(|| millis(STATS_TTL)),
                });
            }
        }
        writes
    }

    /// Checkout `id` first in each of the console's `search` index entries, as writes for a
    /// script on a single node (see [`ConsoleData::console_index`]).
    pub(super) fn search_writes(
        &self,
        id: &CheckoutId,
        search: &[(SearchIndex, String)],
    ) -> Vec<IndexWrite> {
        search
            .iter()
            .map(|(index, value)| IndexWrite::Push {
                key: self.keys.console(ConsoleSlot::Index(*index, value)),
                value: id.as_str().to_owned(),
                keep: INDEX_KEEP,
                ttl_ms: Some(millis(self.ttls.retention)),
            })
            .collect()
    }

    /// `pending` written after an applied compare-and-set, where the script could not take it
    /// (Redis Cluster: the statistics are another slot). Failures are logged and counted.
    pub(super) async fn write_pending(&self, id: &CheckoutId, pending: Option<&Pending>) {
        let Some(pending) = pending else { return };
        let none = StatsUpdate::default();
        let mut results = Vec::new();
        for call in &pending.calls {
            results.push(self.record_msp_call(Some(id), call, &none).await);
        }
        for notification in &pending.notifications {
            results.push(self.record_notification(id, notification).await);
        }
        for stats in &pending.stats {
            results.push(self.record_stats(stats).await);
        }
        for (index, value) in &pending.search {
            results.push(self.console_index(*index, value, id).await);
        }
        for result in results {
            crate::activity::failed_to_record("with_change", result);
        }
    }

    /// Runs [`RECORD`] with `log` (checkout key, log key, entry) and/or `stats`.
    async fn record(
        &self,
        op: &'static str,
        log: Option<(String, String, String)>,
        stats: &StatsUpdate,
    ) -> Result<(), StoreError> {
        let stats_key = (!stats.is_empty()).then(|| self.keys.stats_hour(stats.hour));
        let invoke = |log: Option<&(String, String, String)>, stats_key: Option<&String>| {
            let mut script = RECORD.prepare_invoke();
            match log {
                Some((checkout, list, entry)) => {
                    script.key(checkout).key(list).arg(entry);
                }
                None => {
                    script.arg("");
                }
            }
            script.arg(LOG_CAP - 1).arg(millis(STATS_TTL));
            if let Some(key) = stats_key {
                script.key(key);
                for (field, by) in &stats.incr {
                    script.arg(*field).arg(*by);
                }
            }
            script
        };
        let run_one = async |log: Option<&(String, String, String)>, stats_key: Option<&String>| {
            let script = invoke(log, stats_key);
            // Sent again after a broken connection like any write here: at worst an entry or
            // a count twice, never a payment's error.
            self.run(op, || {
                let mut conn = self.conn();
                let script = &script;
                async move { script.invoke_async::<i64>(&mut conn).await }
            })
            .await
        };
        if log.is_none() && stats_key.is_none() {
            return Ok(());
        }
        if self.connection.is_cluster() && log.is_some() && stats_key.is_some() {
            // The checkout's slot and the statistics' slot: one script each, both at once.
            let (a, b) = futures_util::future::join(
                run_one(log.as_ref(), None),
                run_one(None, stats_key.as_ref()),
            )
            .await;
            a.and(b).map(drop)
        } else {
            run_one(log.as_ref(), stats_key.as_ref()).await.map(drop)
        }
    }

    async fn read_log<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        key: String,
    ) -> Result<Vec<T>, StoreError> {
        let raw: Vec<String> = self
            .run(op, || {
                let mut conn = self.conn();
                let key = &key;
                async move {
                    ::redis::cmd("LRANGE")
                        .arg(key)
                        .arg(0)
                        .arg(LOG_CAP - 1)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        // An entry that does not decode (a later version's, say) is left out, not an error:
        // the console shows the rest.
        Ok(raw
            .iter()
            .filter_map(|entry| {
                from_json::<T>("activity log entry", entry)
                    .inspect_err(|e| tracing::warn!(error = %e, "skipping an activity log entry"))
                    .ok()
            })
            .collect())
    }
}

#[async_trait]
impl Activity for RedisStore {
    async fn record_msp_call(
        &self,
        id: Option<&CheckoutId>,
        call: &MspCallRecord,
        stats: &StatsUpdate,
    ) -> Result<(), StoreError> {
        let log = match id {
            Some(id) => Some((
                self.keys.checkout(id),
                self.keys.msp_log(id),
                to_json("an MSP call", call)?,
            )),
            None => None,
        };
        self.record("record_msp_call", log, stats).await
    }

    async fn record_notification(
        &self,
        id: &CheckoutId,
        notification: &NotificationRecord,
    ) -> Result<(), StoreError> {
        let log = (
            self.keys.checkout(id),
            self.keys.notification_log(id),
            to_json("a notification", notification)?,
        );
        self.record("record_notification", Some(log), &StatsUpdate::default())
            .await
    }

    async fn record_stats(&self, stats: &StatsUpdate) -> Result<(), StoreError> {
        self.record("record_stats", None, stats).await
    }

    async fn msp_call_log(&self, id: &CheckoutId) -> Result<Vec<MspCallRecord>, StoreError> {
        self.read_log("msp_call_log", self.keys.msp_log(id)).await
    }

    async fn notification_log(
        &self,
        id: &CheckoutId,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        self.read_log("notification_log", self.keys.notification_log(id))
            .await
    }

    async fn stats_hours(&self, hours: &[i64]) -> Result<Vec<Vec<(String, i64)>>, StoreError> {
        if hours.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = hours.iter().map(|h| self.keys.stats_hour(*h)).collect();
        self.run("stats_hours", || {
            let mut conn = self.conn();
            let keys = &keys;
            async move {
                // Every hour under one hash tag: one pipeline to one node.
                let mut pipe = Pipeline::new();
                for key in keys {
                    pipe.cmd("HGETALL").arg(key);
                }
                pipe.query_async::<Vec<Vec<(String, i64)>>>(&mut conn).await
            }
        })
        .await
    }
}
