//! Whether this instance should queue events for webhook endpoints, without a
//! Redis read per event: a shop with no `webhooks.url` and no endpoint pays nothing for them.
//!
//! The answer is cached for [`FRESH_FOR`]: an endpoint made on this instance counts at once;
//! one made on another instance counts here from the first event after the cache runs out, so
//! it may miss the events of its first seconds made elsewhere. Errors count as "there may be
//! endpoints" (queue, rather than lose a delivery).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::store::CheckoutStore;

/// How long an answer is used before the store is asked again (ms).
pub const FRESH_FOR_MS: i64 = 10_000;

/// The cached answer.
#[derive(Debug)]
pub struct EndpointsHint {
    any: AtomicBool,
    /// When the store was last asked (ms), `i64::MIN` before the first time.
    checked_at_ms: AtomicI64,
}

impl Default for EndpointsHint {
    fn default() -> Self {
        Self {
            any: AtomicBool::new(false),
            checked_at_ms: AtomicI64::new(i64::MIN),
        }
    }
}

impl EndpointsHint {
    /// Whether webhook endpoints may exist, asking the store when the cached answer is older
    /// than [`FRESH_FOR_MS`].
    pub async fn may_exist(&self, store: &dyn CheckoutStore, now_ms: i64) -> bool {
        let checked = self.checked_at_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(checked) < FRESH_FOR_MS && now_ms >= checked {
            return self.any.load(Ordering::Relaxed);
        }
        let any = match store.endpoints().await {
            Ok(endpoints) => !endpoints.is_empty(),
            Err(e) => {
                tracing::warn!(error = %e, "could not tell whether webhook endpoints exist; queueing events for them");
                true
            }
        };
        self.any.store(any, Ordering::Relaxed);
        self.checked_at_ms.store(now_ms, Ordering::Relaxed);
        any
    }

    /// What is known without asking: whether endpoints existed when last looked.
    pub fn known(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// An endpoint was made here: count it at once.
    pub fn created(&self, now_ms: i64) {
        self.any.store(true, Ordering::Relaxed);
        self.checked_at_ms.store(now_ms, Ordering::Relaxed);
    }
}
