//! Whether this instance should queue events for webhook endpoints, without a Redis read per
//! event: a shop with no `webhooks.url` and no endpoint pays one small read a second for them.
//!
//! The answer is cached for [`FRESH_FOR_MS`]: an endpoint made on this instance counts at once;
//! one made on another instance counts here once the cache runs out. So that the events made
//! here meanwhile are not lost to it, the events this instance did not queue are remembered
//! since the store last said "no endpoints" (the deliverer's tick asks again every second while
//! there are any, [`EndpointsHint::refresh_if_due`]); once the store shows endpoints, each is
//! queued for every endpoint that wants it and existed when it was made. Errors count as "there
//! may be endpoints" (queue, rather than lose a delivery).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::event::{Event, EventId, EventType};
use crate::domain::webhook_endpoint::WebhookEndpoint;
use crate::store::CheckoutStore;

/// How long an answer is used before the store is asked again (ms).
pub const FRESH_FOR_MS: i64 = 10_000;

/// How often the deliverer's tick asks again while events wait to be caught up (ms): it bounds
/// how many are remembered (about a second's worth) at one small read a second.
const CATCH_UP_EVERY_MS: i64 = 1_000;

/// The most unqueued events remembered (a busy instance makes a few thousand a second); past it
/// the oldest are dropped with a warning.
const MAX_UNQUEUED: usize = 200_000;

/// How much earlier than an endpoint's creation an event may be made (by another instance's
/// clock) and still be caught up for it.
const CLOCK_SKEW: TimeDelta = TimeDelta::seconds(2);

/// An event made while this instance saw no endpoints.
#[derive(Clone, Debug)]
struct Unqueued {
    id: EventId,
    kind: EventType,
    at: DateTime<Utc>,
}

/// The cached answer.
#[derive(Debug)]
pub struct EndpointsHint {
    any: AtomicBool,
    /// When the store was last asked (ms), `i64::MIN` before the first time.
    checked_at_ms: AtomicI64,
    /// The events not queued since the store last said "none", oldest first. Its lock also
    /// orders every "queue or not" decision against the change of `any` to true, so that an
    /// event is either queued when made or remembered before the catch-up takes the list.
    unqueued: Mutex<Vec<Unqueued>>,
}

impl Default for EndpointsHint {
    fn default() -> Self {
        Self {
            any: AtomicBool::new(false),
            checked_at_ms: AtomicI64::new(i64::MIN),
            unqueued: Mutex::new(Vec::new()),
        }
    }
}

impl EndpointsHint {
    /// Whether to queue `events` for webhook endpoints, asking the store when the cached answer
    /// is older than [`FRESH_FOR_MS`]. When not, they are remembered, to be queued should an
    /// endpoint made elsewhere turn up.
    pub async fn queue(
        &self,
        store: &Arc<dyn CheckoutStore>,
        now_ms: i64,
        events: &[Event],
    ) -> bool {
        if self.stale(now_ms) {
            self.refresh(store, now_ms).await;
        }
        let mut unqueued = self.lock();
        if self.any.load(Ordering::Relaxed) {
            return true;
        }
        if unqueued.len() + events.len() > MAX_UNQUEUED {
            tracing::warn!(
                "too many events made in {FRESH_FOR_MS} ms to remember for webhook endpoints made meanwhile; the oldest are dropped"
            );
            let drop = (unqueued.len() + events.len())
                .saturating_sub(MAX_UNQUEUED)
                .min(unqueued.len());
            unqueued.drain(..drop);
        }
        unqueued.extend(events.iter().map(|e| Unqueued {
            id: e.id.clone(),
            kind: e.kind,
            at: e.created_at,
        }));
        false
    }

    /// Asks the store again if events wait to be caught up and the answer is older than
    /// `CATCH_UP_EVERY_MS` (the deliverer's tick, so that an instance that makes no more
    /// events still catches up, and remembers about a second of events at most).
    pub async fn refresh_if_due(&self, store: &Arc<dyn CheckoutStore>, now_ms: i64) {
        let checked = self.checked_at_ms.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(checked) >= CATCH_UP_EVERY_MS || now_ms < checked;
        if due && !self.lock().is_empty() {
            self.refresh(store, now_ms).await;
        }
    }

    /// What is known without asking: whether endpoints existed when last looked.
    pub fn known(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// An endpoint was made here: count it at once, and catch up the events made here since it
    /// was made.
    pub fn created(&self, store: &Arc<dyn CheckoutStore>, endpoint: &WebhookEndpoint, now_ms: i64) {
        let waiting = {
            let mut unqueued = self.lock();
            self.any.store(true, Ordering::Relaxed);
            self.checked_at_ms.store(now_ms, Ordering::Relaxed);
            std::mem::take(&mut *unqueued)
        };
        spawn_catch_up(store, waiting, vec![endpoint.clone()], now_ms);
    }

    fn stale(&self, now_ms: i64) -> bool {
        let checked = self.checked_at_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(checked) >= FRESH_FOR_MS || now_ms < checked
    }

    async fn refresh(&self, store: &Arc<dyn CheckoutStore>, now_ms: i64) {
        let read_at = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let endpoints = match store.endpoints().await {
            Ok(endpoints) => Some(endpoints),
            Err(e) => {
                tracing::warn!(error = %e, "could not tell whether webhook endpoints exist; queueing events for them");
                None
            }
        };
        let any = endpoints.as_ref().is_none_or(|e| !e.is_empty());
        let waiting = {
            let mut unqueued = self.lock();
            self.any.store(any, Ordering::Relaxed);
            self.checked_at_ms.store(now_ms, Ordering::Relaxed);
            if any {
                std::mem::take(&mut *unqueued)
            } else {
                // No endpoint existed when the store was read: none can want the events made
                // before, and they are forgotten.
                unqueued.retain(|u| u.at > read_at);
                Vec::new()
            }
        };
        match endpoints {
            Some(endpoints) => spawn_catch_up(store, waiting, endpoints, now_ms),
            // Unknown endpoints: keep the events for the next answer.
            None => {
                let mut unqueued = self.lock();
                let later = std::mem::replace(&mut *unqueued, waiting);
                unqueued.extend(later);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Unqueued>> {
        self.unqueued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Queues each of `waiting` for each of `endpoints` that wants it and existed when it was made
/// (in a task of its own: the caller is a request or the deliverer's tick).
fn spawn_catch_up(
    store: &Arc<dyn CheckoutStore>,
    waiting: Vec<Unqueued>,
    endpoints: Vec<WebhookEndpoint>,
    now_ms: i64,
) {
    let targets: Vec<(&Unqueued, &WebhookEndpoint)> = catch_up_targets(&waiting, &endpoints);
    if targets.is_empty() {
        return;
    }
    let jobs: Vec<(EventId, crate::domain::webhook_endpoint::WebhookEndpointId)> = targets
        .into_iter()
        .map(|(u, e)| (u.id.clone(), e.id.clone()))
        .collect();
    let store = Arc::clone(store);
    let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    tokio::spawn(async move {
        tracing::info!(
            deliveries = jobs.len(),
            "queueing the events made here before this instance saw the new webhook endpoints"
        );
        for (event, endpoint) in jobs {
            if let Err(e) = store.redeliver_to_endpoint(&event, &endpoint, now).await {
                tracing::error!(event_id = %event.as_str(), endpoint_id = %endpoint, error = %e, "could not queue an event for a webhook endpoint made meanwhile; redeliver it");
            }
        }
    });
}

/// The (event, endpoint) pairs to catch up: the endpoint wants the event's type and existed
/// when it was made (give or take [`CLOCK_SKEW`]).
fn catch_up_targets<'a>(
    waiting: &'a [Unqueued],
    endpoints: &'a [WebhookEndpoint],
) -> Vec<(&'a Unqueued, &'a WebhookEndpoint)> {
    waiting
        .iter()
        .flat_map(|u| {
            let kind = u.kind.to_string();
            endpoints
                .iter()
                .filter(move |e| e.wants(&kind) && e.created_at - CLOCK_SKEW <= u.at)
                .map(move |e| (u, e))
        })
        .collect()
}
