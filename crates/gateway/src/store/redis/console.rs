//! The console's entries (`store::console`): plain commands on keys of their own.

use std::time::Duration;

use ::redis::AsyncCommands;
use async_trait::async_trait;

use super::records::IdempotencyRecord;
use super::{RedisStore, from_json, millis};
use crate::domain::checkout::CheckoutId;
use crate::store::StoreError;
use crate::store::console::{ConsoleData, ConsoleSlot, checkout_of_response};

#[async_trait]
impl ConsoleData for RedisStore {
    async fn console_put(
        &self,
        slot: ConsoleSlot<'_>,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = &self.keys.console(slot);
        let ttl = millis(ttl);
        self.run("console_put", || {
            let mut conn = self.conn();
            async move { conn.pset_ex::<_, _, ()>(key, value, ttl).await }
        })
        .await
    }

    async fn console_get(&self, slot: ConsoleSlot<'_>) -> Result<Option<String>, StoreError> {
        let key = &self.keys.console(slot);
        self.run("console_get", || {
            let mut conn = self.conn();
            async move { conn.get(key).await }
        })
        .await
    }

    async fn console_delete(&self, slot: ConsoleSlot<'_>) -> Result<(), StoreError> {
        let key = &self.keys.console(slot);
        self.run("console_delete", || {
            let mut conn = self.conn();
            async move { conn.del::<_, ()>(key).await }
        })
        .await
    }

    async fn console_count(&self, slot: ConsoleSlot<'_>, ttl: Duration) -> Result<u64, StoreError> {
        let key = &self.keys.console(slot);
        let ttl = millis(ttl) as i64;
        let (count,): (u64,) = self
            .run("console_count", || {
                let mut conn = self.conn();
                async move {
                    ::redis::pipe()
                        .atomic()
                        .incr(key, 1)
                        .pexpire(key, ttl)
                        .ignore()
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(count)
    }

    async fn console_counted(&self, slot: ConsoleSlot<'_>) -> Result<u64, StoreError> {
        let key = &self.keys.console(slot);
        let count: Option<u64> = self
            .run("console_counted", || {
                let mut conn = self.conn();
                async move { conn.get(key).await }
            })
            .await?;
        Ok(count.unwrap_or(0))
    }

    async fn console_push(
        &self,
        slot: ConsoleSlot<'_>,
        value: &str,
        keep: usize,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = &self.keys.console(slot);
        let ttl = millis(ttl) as i64;
        let last = isize::try_from(keep.max(1)).unwrap_or(isize::MAX) - 1;
        self.run("console_push", || {
            let mut conn = self.conn();
            async move {
                ::redis::pipe()
                    .atomic()
                    .lpush(key, value)
                    .ignore()
                    .ltrim(key, 0, last)
                    .ignore()
                    .pexpire(key, ttl)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
            }
        })
        .await
    }

    async fn console_list(
        &self,
        slot: ConsoleSlot<'_>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let key = &self.keys.console(slot);
        let last = isize::try_from(limit.max(1)).unwrap_or(isize::MAX) - 1;
        self.run("console_list", || {
            let mut conn = self.conn();
            async move { conn.lrange(key, 0, last).await }
        })
        .await
    }

    async fn console_index(
        &self,
        index: crate::store::console::SearchIndex,
        value: &str,
        id: &CheckoutId,
    ) -> Result<(), StoreError> {
        self.console_push(
            ConsoleSlot::Index(index, value),
            id.as_str(),
            crate::store::console::INDEX_KEEP,
            self.ttls.retention,
        )
        .await
    }

    async fn idempotency_checkout(&self, key: &str) -> Result<Option<CheckoutId>, StoreError> {
        let redis_key = &self.keys.idempotency(key);
        let raw: Option<String> = self
            .run("idempotency_checkout", || {
                let mut conn = self.conn();
                async move { conn.get(redis_key).await }
            })
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let record: IdempotencyRecord = from_json("idempotency record", &raw)?;
        Ok(record
            .resource
            .as_deref()
            .and_then(|r| CheckoutId::parse(r).ok())
            .or_else(|| {
                record
                    .response
                    .as_ref()
                    .and_then(|r| checkout_of_response(&r.body))
            }))
    }
}
