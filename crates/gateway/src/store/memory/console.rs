//! The console's entries in memory, with their TTLs checked on every read.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Idempotency, MemoryStore, deadline};
use crate::domain::checkout::CheckoutId;
use crate::store::StoreError;
use crate::store::console::{ConsoleData, ConsoleSlot, checkout_of_response};
use crate::store::keys::Keys;

/// Entries by the key the Redis store would use (so that slots never collide).
#[derive(Default)]
pub(super) struct ConsoleMemory {
    entries: Mutex<HashMap<String, (Entry, Instant)>>,
}

enum Entry {
    Text(String),
    Count(u64),
    List(VecDeque<String>),
}

fn key(slot: ConsoleSlot<'_>) -> String {
    Keys::new("mem").console(slot)
}

impl ConsoleMemory {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Entry, Instant)>> {
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, expires)| *expires > now);
        map
    }
}

impl MemoryStore {
    /// [`ConsoleData::console_push`], which cannot fail in memory.
    pub(super) fn push_console(
        &self,
        slot: ConsoleSlot<'_>,
        value: &str,
        keep: usize,
        ttl: Duration,
    ) {
        let mut map = self.console.lock();
        let expires = deadline(Instant::now(), ttl);
        let entry = map
            .entry(key(slot))
            .or_insert((Entry::List(VecDeque::new()), expires));
        entry.1 = expires;
        if !matches!(entry.0, Entry::List(_)) {
            entry.0 = Entry::List(VecDeque::new());
        }
        if let Entry::List(list) = &mut entry.0 {
            list.push_front(value.to_owned());
            list.truncate(keep.max(1));
        }
    }
}

#[async_trait]
impl ConsoleData for MemoryStore {
    async fn console_put(
        &self,
        slot: ConsoleSlot<'_>,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut map = self.console.lock();
        map.insert(
            key(slot),
            (Entry::Text(value.to_owned()), deadline(Instant::now(), ttl)),
        );
        Ok(())
    }

    async fn console_get(&self, slot: ConsoleSlot<'_>) -> Result<Option<String>, StoreError> {
        let map = self.console.lock();
        Ok(match map.get(&key(slot)) {
            Some((Entry::Text(t), _)) => Some(t.clone()),
            _ => None,
        })
    }

    async fn console_delete(&self, slot: ConsoleSlot<'_>) -> Result<(), StoreError> {
        self.console.lock().remove(&key(slot));
        Ok(())
    }

    async fn console_count(&self, slot: ConsoleSlot<'_>, ttl: Duration) -> Result<u64, StoreError> {
        let mut map = self.console.lock();
        let expires = deadline(Instant::now(), ttl);
        let entry = map.entry(key(slot)).or_insert((Entry::Count(0), expires));
        entry.1 = expires;
        match &mut entry.0 {
            Entry::Count(n) => {
                *n += 1;
                Ok(*n)
            }
            other => {
                *other = Entry::Count(1);
                Ok(1)
            }
        }
    }

    async fn console_counted(&self, slot: ConsoleSlot<'_>) -> Result<u64, StoreError> {
        let map = self.console.lock();
        Ok(match map.get(&key(slot)) {
            Some((Entry::Count(n), _)) => *n,
            _ => 0,
        })
    }

    async fn console_push(
        &self,
        slot: ConsoleSlot<'_>,
        value: &str,
        keep: usize,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.push_console(slot, value, keep, ttl);
        Ok(())
    }

    async fn console_list(
        &self,
        slot: ConsoleSlot<'_>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let map = self.console.lock();
        Ok(match map.get(&key(slot)) {
            Some((Entry::List(list), _)) => list.iter().take(limit).cloned().collect(),
            _ => Vec::new(),
        })
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
        let now = Instant::now();
        let mut state = self.state();
        let Some(entry) = state.live_idempotency(key, now) else {
            return Ok(None);
        };
        Ok(match &entry.value {
            Idempotency::Processing { resource, .. } => {
                resource.as_deref().and_then(|r| CheckoutId::parse(r).ok())
            }
            Idempotency::Completed { response, .. } => checkout_of_response(&response.body),
        })
    }
}
