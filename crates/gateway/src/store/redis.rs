//! The Redis store: multiplexed connection manager or cluster client, Lua for atomic steps.
//!
//! Every operation runs under `command_timeout`, so an outage answers `Unavailable` quickly
//! instead of hanging a request; the connection recovers by itself once Redis is back.

mod connection;
mod listing;
mod records;
mod scripts;
mod timeline;

use std::future::Future;
use std::time::Duration;

use ::redis::{AsyncCommands, RedisResult};
use async_trait::async_trait;
use rand::RngCore;

use self::connection::{Connection, classify};
use self::records::IdempotencyRecord;
use self::scripts::Scripts;
use super::keys::Keys;
use super::{
    CasReply, CheckoutStore, IdempotencyBegin, InsertReply, LockToken, StoreError, StoredResponse,
    Ttls, Versioned,
};
use crate::domain::checkout::{Checkout, CheckoutEvent, CheckoutId, PaySession};
use crate::domain::refund::RefundId;

/// How to reach Redis (design §2 `redis.*`).
#[derive(Clone, Debug)]
pub struct RedisConnect {
    /// `redis://` or `rediss://`; used when `cluster_urls` is empty.
    pub url: Option<String>,
    /// Seed nodes of a Redis Cluster; non-empty switches to the cluster client.
    pub cluster_urls: Vec<String>,
    pub key_prefix: String,
    pub ttls: Ttls,
    /// The longest any one store operation may take before it answers `Unavailable`.
    pub command_timeout: Duration,
}

pub struct RedisStore {
    connection: Connection,
    keys: Keys,
    ttls: Ttls,
    timeout: Duration,
    scripts: Scripts,
}

impl RedisStore {
    /// Connects and checks the connection with a PING. Fails when Redis cannot be reached now;
    /// after a successful connect, an outage gives `Unavailable` errors until Redis is back.
    pub async fn connect(settings: RedisConnect) -> Result<RedisStore, StoreError> {
        let timeout = settings.command_timeout;
        let connection = if !settings.cluster_urls.is_empty() {
            Connection::cluster(&settings.cluster_urls, timeout).await?
        } else if let Some(url) = settings.url.as_deref() {
            Connection::single(url, timeout).await?
        } else {
            return Err(StoreError::unavailable(
                "no Redis configured: set redis.url or redis.cluster_urls",
            ));
        };
        let store = RedisStore {
            connection,
            keys: Keys::new(settings.key_prefix),
            ttls: settings.ttls,
            timeout,
            scripts: Scripts::new(),
        };
        store.ping().await?;
        Ok(store)
    }

    fn conn(&self) -> Connection {
        self.connection.clone()
    }

    /// Runs one operation under the command timeout and sorts its error.
    async fn run<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => classify(op, e),
            Err(elapsed) => StoreError::unavailable(format!(
                "{op}: Redis did not answer within {:?}",
                self.timeout
            ))
            .caused_by(elapsed),
        };
        tracing::warn!(operation = op, error.message = %result, "redis operation failed");
        metrics::counter!(crate::metrics::STORE_ERRORS, "operation" => op).increment(1);
        Err(result)
    }
}

/// A TTL in milliseconds for `PX`/`PEXPIRE`: at least 1 (0 would delete the key at once, or be
/// refused) and at most a century (Redis refuses expiry times that overflow).
fn millis(d: Duration) -> u64 {
    const CENTURY_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, CENTURY_MS)
}

fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    // Our own types always serialize; a failure here is a bug worth reporting, not a panic.
    serde_json::to_string(value)
        .map_err(|e| StoreError::corrupt(format!("could not encode {what}: {e}")).caused_by(e))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| {
        StoreError::corrupt(format!("stored {what} does not decode: {e}")).caused_by(e)
    })
}

/// ≥128 random bits, hex: unguessable owner tokens for locks and idempotency claims.
fn fresh_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[async_trait]
impl CheckoutStore for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        self.run("ping", async move {
            ::redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(drop)
    }

    #[tracing::instrument(skip_all, fields(checkout_id = %checkout.id))]
    async fn insert(
        &self,
        checkout: &Checkout,
        event: &CheckoutEvent,
    ) -> Result<InsertReply, StoreError> {
        let data = to_json("checkout", checkout)?;
        let event = to_json("event", event)?;
        let mut conn = self.conn();
        let inserted: i64 = self
            .run("insert", async {
                self.scripts
                    .insert
                    .key(self.keys.checkout(&checkout.id))
                    .key(self.keys.events(&checkout.id))
                    .arg(data)
                    .arg(event)
                    .arg(millis(self.ttls.retention))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(if inserted == 1 {
            InsertReply::Inserted
        } else {
            InsertReply::AlreadyExists
        })
    }

    #[tracing::instrument(skip_all, fields(checkout_id = %id))]
    async fn get(&self, id: &CheckoutId) -> Result<Option<Versioned>, StoreError> {
        let mut conn = self.conn();
        let key = self.keys.checkout(id);
        let (data, version): (Option<String>, Option<u64>) = self
            .run("get", async move {
                ::redis::cmd("HMGET")
                    .arg(&key)
                    .arg("data")
                    .arg("version")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        match (data, version) {
            (None, None) => Ok(None),
            (Some(data), Some(version)) => Ok(Some(Versioned {
                checkout: from_json("checkout", &data)?,
                version,
            })),
            _ => Err(StoreError::corrupt(format!(
                "checkout {id} has only one of `data` and `version`"
            ))),
        }
    }

    // Listing (design §11): in `listing.rs`.
    async fn index_for_listing(&self, checkout: &Checkout) -> Result<(), StoreError> {
        self.index_for_listing_impl(checkout).await
    }

    async fn reindex_status(
        &self,
        checkout: &Checkout,
        previous: crate::domain::checkout::CheckoutStatus,
    ) -> Result<(), StoreError> {
        self.reindex_status_impl(checkout, previous).await
    }

    async fn list_checkouts(
        &self,
        query: &crate::store::listing::ListQuery,
    ) -> Result<crate::store::listing::ListReply, StoreError> {
        self.list_checkouts_impl(query).await
    }

    #[tracing::instrument(skip_all, fields(checkout_id = %next.id, expected_version))]
    async fn compare_and_set(
        &self,
        expected_version: u64,
        next: &Checkout,
        event: Option<&CheckoutEvent>,
    ) -> Result<CasReply, StoreError> {
        let data = to_json("checkout", next)?;
        let event = event.map(|e| to_json("event", e)).transpose()?;
        let mut conn = self.conn();
        let outcome: i64 = self
            .run("compare_and_set", async {
                let mut call = self.scripts.compare_and_set.prepare_invoke();
                call.key(self.keys.checkout(&next.id))
                    .key(self.keys.events(&next.id))
                    .arg(expected_version)
                    .arg(data)
                    .arg(millis(self.ttls.retention));
                if let Some(event) = event {
                    call.arg(event);
                }
                call.invoke_async(&mut conn).await
            })
            .await?;
        match outcome {
            -1 => Ok(CasReply::NotFound),
            0 => Ok(CasReply::Conflict),
            v => u64::try_from(v)
                .map(|version| CasReply::Applied { version })
                .map_err(|_| StoreError::corrupt(format!("compare-and-set answered {v}"))),
        }
    }

    #[tracing::instrument(skip_all, fields(checkout_id = %id))]
    async fn events(&self, id: &CheckoutId) -> Result<Vec<CheckoutEvent>, StoreError> {
        let mut conn = self.conn();
        let key = self.keys.events(id);
        let raw: Vec<String> = self
            .run("events", async move { conn.lrange(&key, 0, -1).await })
            .await?;
        raw.iter().map(|e| from_json("event", e)).collect()
    }

    async fn put_pay_session(&self, token: &str, session: &PaySession) -> Result<(), StoreError> {
        let data = to_json("pay session", session)?;
        let mut conn = self.conn();
        let key = self.keys.pay(token);
        let ttl = millis(self.ttls.session);
        self.run("put_pay_session", async move {
            conn.pset_ex::<_, _, ()>(&key, data, ttl).await
        })
        .await
    }

    async fn get_pay_session(&self, token: &str) -> Result<Option<PaySession>, StoreError> {
        let mut conn = self.conn();
        let key = self.keys.pay(token);
        let raw: Option<String> = self
            .run("get_pay_session", async move { conn.get(&key).await })
            .await?;
        raw.map(|r| from_json("pay session", &r)).transpose()
    }

    async fn index_refund(
        &self,
        refund: &RefundId,
        checkout: &CheckoutId,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let key = self.keys.refund(refund);
        let value = checkout.as_str().to_owned();
        let ttl = millis(self.ttls.retention);
        self.run("index_refund", async move {
            conn.pset_ex::<_, _, ()>(&key, value, ttl).await
        })
        .await
    }

    async fn checkout_of_refund(
        &self,
        refund: &RefundId,
    ) -> Result<Option<CheckoutId>, StoreError> {
        let mut conn = self.conn();
        let key = self.keys.refund(refund);
        let raw: Option<String> = self
            .run("checkout_of_refund", async move { conn.get(&key).await })
            .await?;
        raw.map(|r| {
            CheckoutId::parse(&r).map_err(|e| StoreError::corrupt(format!("refund index: {e}")))
        })
        .transpose()
    }

    async fn idempotency_begin(
        &self,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyBegin, StoreError> {
        let owner = fresh_token();
        let record = to_json(
            "idempotency record",
            &IdempotencyRecord::processing(fingerprint, &owner),
        )?;
        let mut conn = self.conn();
        let (claimed, current): (i64, Option<String>) = self
            .run("idempotency_begin", async {
                self.scripts
                    .claim
                    .key(self.keys.idempotency(key))
                    .arg(record)
                    .arg(millis(self.ttls.idempotency))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        if claimed == 1 {
            return Ok(IdempotencyBegin::Started { owner });
        }
        let current = current.ok_or_else(|| {
            StoreError::corrupt("idempotency claim answered neither claimed nor a record")
        })?;
        let record: IdempotencyRecord = from_json("idempotency record", &current)?;
        Ok(record.into_begin())
    }

    async fn idempotency_complete(
        &self,
        key: &str,
        owner: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let redis_key = self.keys.idempotency(key);
        let mut conn = self.conn();
        let current: Option<String> = self
            .run("idempotency_complete", {
                let mut conn = conn.clone();
                let redis_key = redis_key.clone();
                async move { conn.get(&redis_key).await }
            })
            .await?;
        let Some(current) = current else {
            tracing::warn!("idempotency key expired before its request completed");
            return Ok(());
        };
        let record: IdempotencyRecord = from_json("idempotency record", &current)?;
        let Some(completed) = record.complete(owner, response) else {
            tracing::warn!(
                "idempotency key is no longer owned by this request; response not stored"
            );
            return Ok(());
        };
        let completed = to_json("idempotency record", &completed)?;
        // Compare on the exact bytes read above: if the record changed in between (aborted,
        // expired and claimed again), this request no longer owns it and writes nothing.
        let replaced: i64 = self
            .run("idempotency_complete", async {
                self.scripts
                    .replace_if_equal
                    .key(&redis_key)
                    .arg(current)
                    .arg(completed)
                    .arg(millis(self.ttls.idempotency))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        if replaced == 0 {
            tracing::warn!("idempotency key changed owner while completing; response not stored");
        }
        Ok(())
    }

    async fn idempotency_abort(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let redis_key = self.keys.idempotency(key);
        let mut conn = self.conn();
        let current: Option<String> = self
            .run("idempotency_abort", {
                let mut conn = conn.clone();
                let redis_key = redis_key.clone();
                async move { conn.get(&redis_key).await }
            })
            .await?;
        let Some(current) = current else {
            return Ok(());
        };
        let record: IdempotencyRecord = from_json("idempotency record", &current)?;
        if !record.is_processing_by(owner) {
            // Completed, or someone else's claim: a late abort must not erase either.
            return Ok(());
        }
        let _deleted: i64 = self
            .run("idempotency_abort", async {
                self.scripts
                    .delete_if_equal
                    .key(&redis_key)
                    .arg(current)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn schedule_sync(&self, id: &CheckoutId, due_unix: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let _: i64 = self
            .run("schedule_sync", async {
                self.scripts
                    .schedule
                    .key(self.keys.sync_due())
                    .arg(due_unix)
                    .arg(id.as_str())
                    .arg(millis(self.ttls.retention))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn unschedule_sync(&self, id: &CheckoutId) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let key = self.keys.sync_due();
        self.run("unschedule_sync", async move {
            conn.zrem::<_, _, ()>(&key, id.as_str()).await
        })
        .await
    }

    async fn due_for_sync(
        &self,
        now_unix: i64,
        limit: usize,
    ) -> Result<Vec<CheckoutId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let key = self.keys.sync_due();
        let members: Vec<String> = self
            .run("due_for_sync", {
                let mut conn = conn.clone();
                let key = key.clone();
                async move {
                    // ZRANGEBYSCORE rather than `ZRANGE … BYSCORE`: the same answer, and it
                    // also works on servers older than Redis 6.2.
                    ::redis::cmd("ZRANGEBYSCORE")
                        .arg(&key)
                        .arg("-inf")
                        .arg(now_unix)
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let mut due = Vec::with_capacity(members.len());
        let mut junk = Vec::new();
        for member in members {
            match CheckoutId::parse(&member) {
                Ok(id) => due.push(id),
                Err(_) => junk.push(member),
            }
        }
        if !junk.is_empty() {
            // The index is only a hint: drop what is not a checkout id rather than let it take
            // a place in every batch forever.
            tracing::warn!(
                count = junk.len(),
                "removing malformed members of the sync-due index"
            );
            self.run("due_for_sync", async move {
                conn.zrem::<_, _, ()>(&key, junk).await
            })
            .await?;
        }
        Ok(due)
    }

    #[tracing::instrument(skip_all, fields(checkout_id = %id))]
    async fn try_lock(
        &self,
        id: &CheckoutId,
        ttl: Duration,
    ) -> Result<Option<LockToken>, StoreError> {
        let token = fresh_token();
        let mut conn = self.conn();
        let key = self.keys.lock(id);
        let acquired: Option<String> = self
            .run("try_lock", {
                let token = token.clone();
                async move {
                    ::redis::cmd("SET")
                        .arg(&key)
                        .arg(token)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(ttl))
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(acquired.map(|_| LockToken(token)))
    }

    #[tracing::instrument(skip_all, fields(checkout_id = %id))]
    async fn unlock(&self, id: &CheckoutId, token: &LockToken) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let _: i64 = self
            .run("unlock", async {
                self.scripts
                    .delete_if_equal
                    .key(self.keys.lock(id))
                    .arg(&token.0)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ::redis::{ErrorKind, RedisError};

    use super::*;
    use crate::store::Cause;

    #[test]
    fn a_value_that_does_not_decode_is_corrupt_and_keeps_the_json_error() {
        let err = from_json::<Vec<u8>>("event", "{").unwrap_err();
        let json = serde_json::from_str::<Vec<u8>>("{").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("a stored value is corrupt: stored event does not decode: {json}")
        );
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    source: Some(Cause::Json(_)),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn redis_errors_are_sorted_and_kept() {
        let err = classify("get", RedisError::from((ErrorKind::Parse, "not a number")));
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    source: Some(Cause::Redis(_)),
                    ..
                }
            ),
            "{err:?}"
        );

        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = classify("get", RedisError::from(refused));
        let Some(Cause::Redis(source)) = (match &err {
            StoreError::Unavailable { source, .. } => source.as_ref(),
            StoreError::Corrupt { .. } => None,
        }) else {
            panic!("expected Unavailable with the Redis error: {err:?}");
        };
        assert!(source.is_io_error());
        assert_eq!(
            err.to_string(),
            format!("the store is unavailable: get: {source}")
        );
    }

    #[test]
    fn ttls_are_clamped_to_what_redis_accepts() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(10)), 1);
        assert_eq!(millis(Duration::from_secs(90)), 90_000);
        assert_eq!(millis(Duration::MAX), 100 * 365 * 24 * 3600 * 1000);
    }

    #[test]
    fn owner_tokens_carry_128_random_bits() {
        let (a, b) = (fresh_token(), fresh_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
