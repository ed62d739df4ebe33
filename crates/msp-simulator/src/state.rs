//! The simulator's shared state, and the background work that follows a change: notifications
//! (as the faults say), the challenge window, the clearing of uncleared payments, the settling of
//! refunds, the lifetime of authorisations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::clock::Clock;
use super::faults::{self, Faults};
use super::notifier::{Job, Notifier};
use super::orders::{NotificationMethod, Order, OrderKey, Sharded, Status};
use super::wire::OrderObject;

/// The simulator's state, shared by every worker.
pub(crate) struct Sim {
    pub(crate) base_url: String,
    pub(crate) keys: Vec<Arc<str>>,
    pub(crate) orders: Sharded<OrderKey, Order>,
    /// A capture's `new_order_id` -> the id of the order it captured: the captured money goes by
    /// either id. Lock order: an alias shard before an order shard, never the other way.
    pub(crate) aliases: Sharded<OrderKey, String>,
    /// Recurring tokens, by site and `customer.reference`.
    pub(crate) tokens: super::recurring::Tokens,
    /// Challenge session id (in `payment_url` and the verification form) -> order.
    pub(crate) sessions: Sharded<String, OrderKey>,
    pub(super) faults: RwLock<Faults>,
    pub(crate) notifier: Arc<Notifier>,
    /// The time every timer and every order stamp reads.
    pub(crate) clock: Arc<Clock>,
    pub(super) next_id: AtomicU64,
    pub(super) challenge_expiry: Duration,
    pub(super) uncleared_delay: Duration,
    pub(super) refund_delay: Duration,
    /// Background work (notifications, timers) runs on the runtime that started the simulator,
    /// not on the server's worker threads, so it outlives no request and no worker.
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) shutdown: watch::Receiver<bool>,
    /// The last [`MAX_API_CALLS`] calls to the MSP API (`/v1/json/…`), oldest first, for
    /// `GET /sim/requests`: tests count how often a client called.
    pub(crate) api_calls: std::sync::Mutex<std::collections::VecDeque<ApiCall>>,
}

/// How many API calls `GET /sim/requests` remembers (a benchmark must not grow memory).
pub(crate) const MAX_API_CALLS: usize = 10_000;

/// One call to the MSP API, as `GET /sim/requests` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct ApiCall {
    pub method: String,
    pub path: String,
    /// The `{order_id}` of the path, when it has one.
    pub order_id: Option<String>,
    pub at_ms: i64,
    /// The call's W3C `traceparent` header, when it had one (so that a test can see a trace
    /// carried on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Sim {
    pub(crate) fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn merge_faults(&self, patch: faults::FaultsPatch) -> Faults {
        let mut f = self.faults.write().unwrap_or_else(PoisonError::into_inner);
        f.merge(patch);
        f.clone()
    }

    /// A fresh MSP transaction id. Seeded from the clock so restarts do not reuse ids; kept
    /// below 2^53 so JavaScript clients read it exactly.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The order a merchant's order id means on a site: its own, or the one whose capture it
    /// names.
    pub(crate) fn resolve(&self, key: OrderKey) -> OrderKey {
        let captured = self.aliases.shard(&key).get(&key).cloned();
        match captured {
            Some(order_id) => (key.0, order_id),
            None => key,
        }
    }

    /// Takes `alias` as another id of the order `order_id`, unless an order or another capture
    /// has it already.
    pub(crate) fn reserve_alias(&self, alias: &OrderKey, order_id: &str) -> bool {
        let mut aliases = self.aliases.shard(alias);
        if aliases.contains_key(alias) || self.orders.shard(alias).contains_key(alias) {
            return false;
        }
        aliases.insert(alias.clone(), order_id.to_owned());
        true
    }

    pub(crate) fn release_alias(&self, alias: &OrderKey) {
        self.aliases.shard(alias).remove(alias);
    }

    /// Runs `fut` on the simulator's runtime until it ends or the simulator stops.
    fn spawn_background(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let mut shutdown = self.shutdown.clone();
        self.runtime.spawn(async move {
            tokio::select! {
                _ = shutdown.wait_for(|stopped| *stopped) => {}
                () = fut => {}
            }
        });
    }

    /// Holds a request until the simulator stops (the `timeout` fault).
    pub(crate) async fn hold_forever(&self) {
        let mut shutdown = self.shutdown.clone();
        let _ = shutdown.wait_for(|stopped| *stopped).await;
    }

    /// The notification for `order` as it is now, if it has a notification URL.
    pub(crate) fn job_for(&self, site: usize, order: &Order) -> Option<Job> {
        let url = order.options.notification_url.clone()?;
        let method = order.options.notification_method;
        let body = match method {
            // The bare order object, compact, slashes unescaped: what MSP sends (reference §5.3).
            NotificationMethod::Post => serde_json::to_vec(&OrderObject::of(order))
                .ok()
                .map(Arc::from),
            NotificationMethod::Get => None,
        };
        Some(Job {
            api_key: self.keys.get(site)?.clone(),
            order_id: order.order_id.clone(),
            order_status: order.status.as_str(),
            url,
            method,
            body,
        })
    }

    /// Applies `f` to an order; on success stamps `modified` and notifies the new state, and an
    /// order it authorised starts its authorisation's lifetime. `None` when the order does not
    /// exist for this site.
    pub(crate) fn change<R, E>(
        self: &Arc<Self>,
        key: &OrderKey,
        f: impl FnOnce(&mut Order) -> Result<R, E>,
    ) -> Option<Result<R, E>> {
        let (result, job, authorised) = {
            let mut shard = self.orders.shard(key);
            let order = shard.get_mut(key)?;
            let before = order.status;
            match f(order) {
                Ok(r) => {
                    order.modified = self.clock.naive_now();
                    self.tokens.on_change(key.0, order);
                    let quiet = std::mem::take(&mut order.quiet);
                    let authorised = (before != Status::Authorized
                        && order.status == Status::Authorized)
                        .then(|| order.capture_expiry())
                        .flatten();
                    let job = if quiet {
                        None
                    } else {
                        self.job_for(key.0, order)
                    };
                    (Ok(r), job, authorised)
                }
                Err(e) => {
                    order.quiet = false;
                    (Err(e), None, None)
                }
            }
        };
        if let Some(job) = job {
            self.notify(job);
        }
        if let Some(expiry) = authorised {
            self.schedule_authorization_expiry(key.clone(), expiry);
        }
        Some(result)
    }

    /// Sends a notification in the background, as the faults say.
    pub(crate) fn notify(self: &Arc<Self>, job: Job) {
        let faults = self.faults();
        if faults.drop_notifications {
            return;
        }
        if !faults.reorder_notifications {
            self.deliver(job);
            return;
        }
        let api_key = job.api_key.clone();
        let order_id = job.order_id.clone();
        let (now, hold) = self.notifier.hold_for_reorder(job);
        let mut jobs = now.into_iter();
        if let Some(first) = jobs.next() {
            self.deliver(first);
        }
        if let Some(second) = jobs.next() {
            // Leave the newer one a head start so the older one really arrives after it.
            let sim = self.clone();
            self.spawn_background(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                sim.deliver(second);
            });
        }
        if let Some(id) = hold {
            let sim = self.clone();
            self.spawn_background(async move {
                tokio::time::sleep(Notifier::reorder_hold()).await;
                if let Some(job) = sim.notifier.release_hold(&api_key, &order_id, id) {
                    sim.deliver(job);
                }
            });
        }
    }

    fn deliver(self: &Arc<Self>, job: Job) {
        let sim = self.clone();
        let notifier = self.notifier.clone();
        self.spawn_background(async move {
            notifier.deliver(job, || sim.faults()).await;
        });
    }

    /// Runs `f` once the simulator's clock reaches `due` (or the simulator stops first).
    fn at(
        self: &Arc<Self>,
        due: chrono::DateTime<chrono::Utc>,
        f: impl FnOnce(&Arc<Sim>, chrono::NaiveDateTime) + Send + 'static,
    ) {
        let sim = self.clone();
        self.spawn_background(async move {
            sim.clock.sleep_until(due).await;
            let now = sim.clock.naive_now();
            f(&sim, now);
        });
    }

    pub(crate) fn schedule_expiry(self: &Arc<Self>, key: OrderKey) {
        let due = self.clock.due_in(self.challenge_expiry);
        self.at(due, move |sim, now| {
            let _ = sim.change(&key, |o| o.expire(now));
        });
    }

    pub(crate) fn schedule_clearing(self: &Arc<Self>, key: OrderKey, complete: bool) {
        let due = self.clock.due_in(self.uncleared_delay);
        self.at(due, move |sim, now| {
            let _ = sim.change(&key, |o| o.clear(complete, now));
        });
    }

    /// Voids an authorisation not captured by `expiry` (Visa 7 days, Mastercard and Maestro 30
    /// after it was made); a captured or cancelled one is left as it is.
    pub(crate) fn schedule_authorization_expiry(
        self: &Arc<Self>,
        key: OrderKey,
        expiry: chrono::NaiveDateTime,
    ) {
        self.at(expiry.and_utc(), move |sim, now| {
            let _ = sim.change(&key, |o| o.void_authorization(now));
        });
    }

    /// Settles a refund (`completed`, or `declined` under the fault) once it has been reserved
    /// for the refund delay, unless it was voided meanwhile.
    pub(crate) fn schedule_settlement(self: &Arc<Self>, key: OrderKey, refund_id: u64) {
        let due = self.clock.due_in(self.refund_delay);
        self.at(due, move |sim, now| {
            let _ = sim.change(&key, |o| {
                o.quiet = o.is_silent(refund_id);
                o.settle_refund(refund_id, now)
            });
        });
    }
}
