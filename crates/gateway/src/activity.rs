//! What the operator console reads about a checkout and about the last day: the MSP calls the
//! gateway made for a checkout, the notifications it received for it, and hourly statistics.
//!
//! The per-checkout logs hold the newest 100 entries each and expire with their checkout; the
//! statistics are hourly buckets shared by every instance, kept a little over a day. Each
//! instance counts its statistics in memory and adds them to the buckets every
//! [`STATS_WRITE_EVERY`] (and before it reads them).
//!
//! What it costs: inside a request the records wait for the checkout's next command (a
//! create's MSP call, a 3-D Secure return's, a refund's, a signed notification): the read that
//! news to the checkout starts with writes them in its own script, or, when the flow starts
//! from a record it holds (the create), the change's compare-and-set does, once applied. No
//! round trip of their own, even for news that changes nothing (MSP's notification of the
//! status the create answer told). The console's search entries ride the same way: a new
//! checkout's on its insert, the MSP transaction id on the change that brings it. Whatever no
//! command took (a call that failed before any read) is written when the request ends, one
//! script per record; background work (the reconciler, the deliverer) writes at once.
//!
//! Recording never fails a payment: a write of its own that does not land is logged and
//! counted (`gateway_activity_record_errors_total`); one inside a change's script that Redis
//! refuses is dropped there, unseen, like that script's other hints.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::clock::SharedClock;
use crate::domain::checkout::{CheckoutId, CheckoutStatus};
use crate::state::AppState;
use crate::store::activity::{Pending, StatsUpdate};
use crate::store::{CheckoutStore, StoreError};

/// One call the gateway made to MultiSafepay for a checkout. Never its body: no card data, no
/// token, no key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MspCallRecord {
    /// When the call started, by the gateway's clock.
    pub at: DateTime<Utc>,
    /// A short stable name: `create_order`, `get_order`, `refund`, `capture`, …
    pub operation: String,
    /// The HTTP status MSP answered with; none when no answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// MSP's `error_code`, when it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msp_error_code: Option<i64>,
    pub duration_ms: u64,
    /// `ok`, `msp_error`, `timeout` or `unreachable`.
    pub outcome: String,
}

/// One notification MSP sent about a checkout, accepted or not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// When it arrived, by the gateway's clock.
    pub at: DateTime<Utc>,
    /// `post` (signed, with the order) or `get` (a bare ping).
    pub kind: String,
    pub verified: bool,
    /// Why it was rejected, in plain words (`bad signature`, `stale timestamp`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// MSP's status of the order, when the notification carried or led to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msp_status: Option<String>,
}

/// One hour of the gateway's own statistics, across every instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HourStats {
    pub hour_start: DateTime<Utc>,
    /// Checkouts that reached a final outcome in this hour, by outcome (`succeeded`, `failed`,
    /// `canceled`, `expired`, …).
    pub outcomes: BTreeMap<String, u64>,
    /// Payments sent to MSP for authorisation, and those it authorised.
    pub auth_attempts: u64,
    pub auth_successes: u64,
    /// MSP call latency, read off a fixed histogram (an upper bound of the bucket).
    pub msp_latency_p50_ms: Option<f64>,
    pub msp_latency_p99_ms: Option<f64>,
    /// Webhook delivery attempts that the receiver accepted, and those it did not.
    pub webhook_ok: u64,
    pub webhook_failed: u64,
    /// The age of the oldest undelivered event seen in this hour.
    pub outbox_age_max_s: Option<u64>,
}

/// The MSP calls made for checkout `id`, newest first (at most 100).
pub async fn msp_calls(
    state: &AppState,
    id: &CheckoutId,
) -> Result<Vec<MspCallRecord>, StoreError> {
    state.flows.store.msp_call_log(id).await
}

/// The notifications received for checkout `id`, newest first (at most 100).
pub async fn notifications(
    state: &AppState,
    id: &CheckoutId,
) -> Result<Vec<NotificationRecord>, StoreError> {
    state.flows.store.notification_log(id).await
}

/// The 24 hours up to and including the one `now` is in, oldest first; hours without data are
/// zeroed.
pub async fn last_24h(state: &AppState, now: DateTime<Utc>) -> Result<Vec<HourStats>, StoreError> {
    // What this instance counted is written first, so that it shows at once; other
    // instances' counts show within their next write.
    if let Some(recorder) = state.flows.psp.recorder() {
        recorder.write_counts().await;
    }
    hours_up_to(state.flows.store.as_ref(), now, 24).await
}

/// The `n` hours up to and including `now`'s, oldest first.
pub async fn hours_up_to(
    store: &dyn CheckoutStore,
    now: DateTime<Utc>,
    n: i64,
) -> Result<Vec<HourStats>, StoreError> {
    let last = unix_hour(now);
    let hours: Vec<i64> = (last - n + 1..=last).collect();
    let raw = store.stats_hours(&hours).await?;
    Ok(hours
        .iter()
        .zip(raw)
        .map(|(hour, fields)| hour_stats(*hour, &fields))
        .collect())
}

fn unix_hour(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

// The statistics' field names. Counters only, so that instances add up with `HINCRBY`.
const OUTCOME_PREFIX: &str = "o:";
const AUTH_ATTEMPTS: &str = "auth_att";
const AUTH_SUCCESSES: &str = "auth_ok";
const WEBHOOK_OK: &str = "wh_ok";
const WEBHOOK_FAILED: &str = "wh_fail";

/// Upper bounds (ms) of the MSP latency histogram's buckets; one more bucket holds the rest.
pub const LATENCY_BOUNDS_MS: [u64; 11] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000,
];
const LATENCY_FIELDS: [&str; 12] = [
    "lat:0", "lat:1", "lat:2", "lat:3", "lat:4", "lat:5", "lat:6", "lat:7", "lat:8", "lat:9",
    "lat:10", "lat:11",
];

/// Upper bounds (s) of the outbox age histogram's buckets; one more bucket holds the rest.
pub const OUTBOX_AGE_BOUNDS_S: [u64; 9] = [1, 5, 15, 60, 300, 900, 3_600, 14_400, 86_400];
const OUTBOX_AGE_FIELDS: [&str; 10] = [
    "obx:0", "obx:1", "obx:2", "obx:3", "obx:4", "obx:5", "obx:6", "obx:7", "obx:8", "obx:9",
];

/// The outcome field of each status that ends a payment attempt; none for the others.
fn outcome_field(status: CheckoutStatus) -> Option<&'static str> {
    match status {
        CheckoutStatus::Succeeded => Some("o:succeeded"),
        CheckoutStatus::Failed => Some("o:failed"),
        CheckoutStatus::Canceled => Some("o:canceled"),
        CheckoutStatus::Expired => Some("o:expired"),
        _ => None,
    }
}

fn bucket(bounds: &[u64], value: u64) -> usize {
    bounds
        .iter()
        .position(|b| value <= *b)
        .unwrap_or(bounds.len())
}

fn hour_stats(hour: i64, fields: &[(String, i64)]) -> HourStats {
    let count = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut stats = HourStats {
        hour_start: DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default(),
        outcomes: BTreeMap::new(),
        auth_attempts: 0,
        auth_successes: 0,
        msp_latency_p50_ms: None,
        msp_latency_p99_ms: None,
        webhook_ok: 0,
        webhook_failed: 0,
        outbox_age_max_s: None,
    };
    let mut latency = [0u64; LATENCY_FIELDS.len()];
    let mut ages = [0u64; OUTBOX_AGE_FIELDS.len()];
    for (field, value) in fields {
        let value = count(*value);
        match field.as_str() {
            AUTH_ATTEMPTS => stats.auth_attempts = value,
            AUTH_SUCCESSES => stats.auth_successes = value,
            WEBHOOK_OK => stats.webhook_ok = value,
            WEBHOOK_FAILED => stats.webhook_failed = value,
            f => {
                if let Some(outcome) = f.strip_prefix(OUTCOME_PREFIX) {
                    stats.outcomes.insert(outcome.to_owned(), value);
                } else if let Some(i) = LATENCY_FIELDS.iter().position(|l| *l == f) {
                    latency[i] = value;
                } else if let Some(i) = OUTBOX_AGE_FIELDS.iter().position(|l| *l == f) {
                    ages[i] = value;
                }
            }
        }
    }
    stats.msp_latency_p50_ms = quantile(&LATENCY_BOUNDS_MS, &latency, 0.50);
    stats.msp_latency_p99_ms = quantile(&LATENCY_BOUNDS_MS, &latency, 0.99);
    stats.outbox_age_max_s = ages
        .iter()
        .rposition(|n| *n > 0)
        .map(|i| OUTBOX_AGE_BOUNDS_S[i.min(OUTBOX_AGE_BOUNDS_S.len() - 1)]);
    stats
}

/// The `q` quantile of a histogram (`counts[i]` values at most `bounds[i]`, the last count above
/// every bound), interpolated linearly within its bucket as Prometheus' `histogram_quantile`
/// does; a quantile in the open last bucket is its lower bound. `None` without any value.
fn quantile(bounds: &[u64], counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, n) in counts.iter().enumerate() {
        if *n > 0 && (below + n) as f64 >= rank {
            let Some(upper) = bounds.get(i) else {
                return bounds.last().map(|b| *b as f64);
            };
            let lower = if i == 0 { 0 } else { bounds[i - 1] };
            let within = (rank - below as f64) / *n as f64;
            return Some(lower as f64 + (upper - lower) as f64 * within.clamp(0.0, 1.0));
        }
        below += n;
    }
    bounds.last().map(|b| *b as f64)
}

/// How a call to MSP ended, as the log names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    /// MSP answered, but not with a yes (a refusal, a 5xx, a body we could not read).
    MspError,
    Timeout,
    Unreachable,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::MspError => "msp_error",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
        }
    }
}

/// What the MSP client knows of one call once it is over: never its body.
#[derive(Clone, Debug)]
pub struct CallFacts<'a> {
    /// MSP's order id, which is our checkout id; none for calls about no one order.
    pub order_id: Option<&'a str>,
    pub operation: &'static str,
    pub at: DateTime<Utc>,
    pub http_status: Option<u16>,
    pub msp_error_code: Option<i64>,
    pub duration: Duration,
    pub outcome: CallOutcome,
}

/// Writes what the console reads. Held by the MSP client (every call) and reached through the
/// flows' context (transitions, notifications, webhook attempts). Never fails its caller: a
/// write that does not land is logged and counted (`gateway_activity_record_errors_total`).
pub struct Recorder {
    store: Arc<dyn CheckoutStore>,
    clock: SharedClock,
    /// The statistics counted here and not written yet.
    tally: Tally,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    pub fn new(store: Arc<dyn CheckoutStore>, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            tally: Tally::default(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// One MSP call: into its checkout's log, and counted in its hour's latency histogram (a
    /// `create_order` also counts as an authorisation attempt). Inside a request
    /// ([`deferring`]) the log entry waits for the checkout's next command, which writes it in
    /// its own script; elsewhere it is written at once.
    pub async fn msp_call(&self, call: CallFacts<'_>) {
        let duration_ms = u64::try_from(call.duration.as_millis()).unwrap_or(u64::MAX);
        let record = MspCallRecord {
            at: call.at,
            operation: call.operation.to_owned(),
            http_status: call.http_status,
            msp_error_code: call.msp_error_code,
            duration_ms,
            outcome: call.outcome.as_str().to_owned(),
        };
        let id = call.order_id.and_then(|raw| CheckoutId::parse(raw).ok());
        let mut incr = vec![(LATENCY_FIELDS[bucket(&LATENCY_BOUNDS_MS, duration_ms)], 1)];
        if call.operation == "create_order" {
            incr.push((AUTH_ATTEMPTS, 1));
        }
        self.tally.add(&StatsUpdate {
            hour: unix_hour(call.at),
            incr,
        });
        let stats = StatsUpdate::default();
        if let Some((id, record, stats)) = defer_call(id, record, stats) {
            let written = self
                .store
                .record_msp_call(id.as_ref(), &record, &stats)
                .await;
            failed_to_record("msp_call", written);
        }
    }

    /// One notification for checkout `id`, to be written with the change it brings (inside
    /// a request; elsewhere it is written at once).
    pub async fn notification_with_change(
        &self,
        id: &CheckoutId,
        kind: &'static str,
        msp_status: Option<&str>,
    ) {
        let record = NotificationRecord {
            at: self.now(),
            kind: kind.to_owned(),
            verified: true,
            reason: None,
            msp_status: msp_status.map(str::to_owned),
        };
        let deferred = DEFERRED.try_with(|d| {
            d.borrow_mut()
                .notifications
                .push((id.clone(), record.clone()))
        });
        if deferred.is_err() {
            let written = self.store.record_notification(id, &record).await;
            failed_to_record("notification", written);
        }
    }

    /// One notification for checkout `id` (kept only while the checkout exists).
    pub async fn notification(
        &self,
        id: &CheckoutId,
        kind: &'static str,
        rejected: Option<&'static str>,
        msp_status: Option<&str>,
    ) {
        let record = NotificationRecord {
            at: self.now(),
            kind: kind.to_owned(),
            verified: rejected.is_none(),
            reason: rejected.map(str::to_owned),
            msp_status: msp_status.map(str::to_owned),
        };
        let written = self.store.record_notification(id, &record).await;
        failed_to_record("notification", written);
    }

    /// One webhook delivery attempt: accepted by the receiver or not.
    pub fn webhook_attempt(&self, delivered: bool) {
        self.tally.add(&StatsUpdate {
            hour: unix_hour(self.now()),
            incr: vec![(
                if delivered {
                    WEBHOOK_OK
                } else {
                    WEBHOOK_FAILED
                },
                1,
            )],
        });
    }

    /// A status change of a checkout, counted when it ends a payment attempt (an outcome, an
    /// authorisation).
    pub fn transition(&self, from: CheckoutStatus, to: CheckoutStatus, at: DateTime<Utc>) {
        if let Some(stats) = transition_stats(from, to, at) {
            self.tally.add(&stats);
        }
    }

    /// Writes what was counted here since the last write, one script per hour. What cannot be
    /// written is kept for the next write (and the failure logged and counted).
    pub async fn write_counts(&self) {
        for update in self.tally.take() {
            let written = self.store.record_stats(&update).await;
            if written.is_err() {
                self.tally.add(&update);
            }
            failed_to_record("stats", written);
        }
    }

    /// Writes the counts every [`STATS_WRITE_EVERY`] until `shutdown` turns true, then once
    /// more.
    pub async fn write_counts_until(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(STATS_WRITE_EVERY) => {}
                _ = shutdown.changed() => {}
            }
            self.write_counts().await;
            if *shutdown.borrow() {
                break;
            }
        }
    }

    /// The age of the oldest undelivered event as seen now. Written at most once per
    /// [`OUTBOX_SAMPLE_EVERY_S`] seconds per instance, and only while something waits.
    pub fn outbox_age(&self, age: Option<Duration>) {
        let Some(age) = age else { return };
        let now = self.now();
        static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
        let last = LAST.load(Ordering::Relaxed);
        if now.timestamp().saturating_sub(last) < OUTBOX_SAMPLE_EVERY_S
            || LAST
                .compare_exchange(last, now.timestamp(), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.tally.add(&StatsUpdate {
            hour: unix_hour(now),
            incr: vec![(
                OUTBOX_AGE_FIELDS[bucket(&OUTBOX_AGE_BOUNDS_S, age.as_secs())],
                1,
            )],
        });
    }
}

tokio::task_local! {
    /// The records of the request running on this task that wait for their checkout's next
    /// change ([`deferring`]).
    static DEFERRED: RefCell<Deferred>;
}

/// Records made during one request, not yet written.
#[derive(Debug, Default)]
struct Deferred {
    calls: Vec<(Option<CheckoutId>, MspCallRecord, StatsUpdate)>,
    notifications: Vec<(CheckoutId, NotificationRecord)>,
}

type Call = (Option<CheckoutId>, MspCallRecord, StatsUpdate);

/// Keeps an MSP call for the request's next change; outside a request, hands it back.
fn defer_call(id: Option<CheckoutId>, record: MspCallRecord, stats: StatsUpdate) -> Option<Call> {
    let mut call = Some((id, record, stats));
    let _ = DEFERRED.try_with(|d| {
        if let Some(call) = call.take() {
            d.borrow_mut().calls.push(call);
        }
    });
    call
}

/// Runs a request with its records deferred: an MSP call or a notification waits for the
/// change of its checkout that follows it (the compare-and-set writes them, no round trip of
/// their own); whatever no change took is written when the request is over.
pub async fn deferring<F: Future>(recorder: Option<Arc<Recorder>>, request: F) -> F::Output {
    let Some(recorder) = recorder else {
        return request.await;
    };
    DEFERRED
        .scope(RefCell::new(Deferred::default()), async move {
            let output = request.await;
            let left = DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
            recorder.flush(left).await;
            output
        })
        .await
}

/// [`deferring`] as a middleware: around every request of the app.
pub async fn defer_records(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let recorder = req
        .app_data::<actix_web::web::Data<AppState>>()
        .and_then(|state| state.flows.psp.recorder_arc());
    deferring(recorder, next.call(req)).await
}

/// The records waiting for checkout `id`'s change, taken out (with every id-less call's
/// counters): for the compare-and-set about to be sent. Give them back with [`give_back`]
/// if it is not applied. Empty outside a request.
pub fn take_for(id: &CheckoutId) -> Pending {
    DEFERRED
        .try_with(|d| {
            let mut d = d.borrow_mut();
            let mut pending = Pending::default();
            let calls = std::mem::take(&mut d.calls);
            for (of, record, stats) in calls {
                match &of {
                    Some(of) if of == id => {
                        pending.calls.push(record);
                        pending.stats.push(stats);
                    }
                    _ => d.calls.push((of, record, stats)),
                }
            }
            let notifications = std::mem::take(&mut d.notifications);
            for (of, record) in notifications {
                if &of == id {
                    pending.notifications.push(record);
                } else {
                    d.notifications.push((of, record));
                }
            }
            pending
        })
        .unwrap_or_default()
}

/// Puts back what [`take_for`] took, for a change that was not applied.
pub fn give_back(id: &CheckoutId, pending: Pending) {
    let _ = DEFERRED.try_with(|d| {
        let mut d = d.borrow_mut();
        for (record, stats) in pending.calls.into_iter().zip(pending.stats) {
            d.calls.push((Some(id.clone()), record, stats));
        }
        for record in pending.notifications {
            d.notifications.push((id.clone(), record));
        }
    });
}

impl Recorder {
    /// Writes what a request left: each call and notification, one write each.
    async fn flush(&self, left: Deferred) {
        for (id, record, stats) in left.calls {
            let written = self
                .store
                .record_msp_call(id.as_ref(), &record, &stats)
                .await;
            failed_to_record("msp_call", written);
        }
        for (id, record) in left.notifications {
            let written = self.store.record_notification(&id, &record).await;
            failed_to_record("notification", written);
        }
    }
}

/// How often an instance samples the outbox's age into the statistics, at most.
pub const OUTBOX_SAMPLE_EVERY_S: i64 = 10;

/// How often an instance writes the statistics it counted. Counted in memory in between (an
/// addition, instead of a Redis write per checkout), so that an instance that dies loses at
/// most this much of its counts; readers in this instance write them first.
pub const STATS_WRITE_EVERY: Duration = Duration::from_secs(5);

/// Statistics counted and not written yet: by hour, each field's sum.
#[derive(Debug, Default)]
struct Tally(std::sync::Mutex<BTreeMap<i64, BTreeMap<&'static str, i64>>>);

impl Tally {
    fn add(&self, update: &StatsUpdate) {
        if update.is_empty() {
            return;
        }
        let mut hours = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let fields = hours.entry(update.hour).or_default();
        for (field, by) in &update.incr {
            *fields.entry(field).or_default() += by;
        }
    }

    fn take(&self) -> Vec<StatsUpdate> {
        let hours = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        hours
            .into_iter()
            .map(|(hour, fields)| StatsUpdate {
                hour,
                incr: fields.into_iter().collect(),
            })
            .collect()
    }
}

/// The statistics a move from `from` to `to` adds, if any.
fn transition_stats(
    from: CheckoutStatus,
    to: CheckoutStatus,
    at: DateTime<Utc>,
) -> Option<StatsUpdate> {
    use CheckoutStatus as S;
    if from == to {
        return None;
    }
    let before_payment = matches!(from, S::Created | S::RequiresAction | S::Processing);
    let mut incr = Vec::new();
    if before_payment {
        if let Some(field) = outcome_field(to) {
            incr.push((field, 1));
        }
        if matches!(to, S::Succeeded | S::RequiresCapture) {
            incr.push((AUTH_SUCCESSES, 1));
        }
    } else if from == S::RequiresCapture
        && let Some(field) = outcome_field(to)
    {
        // An authorisation ends when it is captured, released or lapses.
        incr.push((field, 1));
    }
    (!incr.is_empty()).then(|| StatsUpdate {
        hour: unix_hour(at),
        incr,
    })
}

/// Logs and counts a recording that failed.
pub(crate) fn failed_to_record(what: &'static str, written: Result<(), StoreError>) {
    if let Err(e) = written {
        tracing::warn!(record = what, error = %e, "could not record the console's activity; the payment goes on");
        metrics::counter!(crate::metrics::ACTIVITY_RECORD_ERRORS, "record" => what).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_entries_leave_out_what_they_lack_and_read_entries_that_spelled_it_null() {
        let call = MspCallRecord {
            at: DateTime::from_timestamp(1_796_661_293, 0).expect("a valid instant"),
            operation: "create_order".into(),
            http_status: Some(200),
            msp_error_code: None,
            duration_ms: 4,
            outcome: "ok".into(),
        };
        let json = serde_json::to_string(&call).expect("serialises");
        assert!(!json.contains("msp_error_code"), "{json}");
        assert_eq!(
            serde_json::from_str::<MspCallRecord>(&json).ok(),
            Some(call.clone())
        );
        // Entries written before the field was left out still read.
        let old = json.replace("\"duration_ms\"", "\"msp_error_code\":null,\"duration_ms\"");
        assert_eq!(serde_json::from_str::<MspCallRecord>(&old).ok(), Some(call));

        let notification = NotificationRecord {
            at: DateTime::from_timestamp(1_796_661_293, 0).expect("a valid instant"),
            kind: "post".into(),
            verified: true,
            reason: None,
            msp_status: Some("completed".into()),
        };
        let json = serde_json::to_string(&notification).expect("serialises");
        assert!(!json.contains("reason"), "{json}");
        assert_eq!(
            serde_json::from_str::<NotificationRecord>(&json).ok(),
            Some(notification)
        );
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let bounds = [10, 100];
        // 10 values of at most 10 ms, 10 of 10–100 ms, none above.
        let counts = [10, 10, 0];
        assert_eq!(quantile(&bounds, &counts, 0.5), Some(10.0));
        assert_eq!(quantile(&bounds, &counts, 0.75), Some(55.0));
        assert_eq!(quantile(&bounds, &[0, 0, 0], 0.5), None);
        // Everything above the last bound: the last bound, a lower bound of the truth.
        assert_eq!(quantile(&bounds, &[0, 0, 3], 0.99), Some(100.0));
    }

    #[test]
    fn durations_fall_in_the_bucket_of_their_upper_bound() {
        assert_eq!(bucket(&LATENCY_BOUNDS_MS, 0), 0);
        assert_eq!(bucket(&LATENCY_BOUNDS_MS, 10), 0);
        assert_eq!(bucket(&LATENCY_BOUNDS_MS, 11), 1);
        assert_eq!(bucket(&LATENCY_BOUNDS_MS, 31_000), LATENCY_BOUNDS_MS.len());
        assert_eq!(LATENCY_FIELDS.len(), LATENCY_BOUNDS_MS.len() + 1);
        assert_eq!(OUTBOX_AGE_FIELDS.len(), OUTBOX_AGE_BOUNDS_S.len() + 1);
    }

    #[test]
    fn an_hour_reads_back_from_its_fields() {
        let fields: Vec<(String, i64)> = [
            ("o:succeeded", 3),
            ("o:failed", 1),
            ("auth_att", 5),
            ("auth_ok", 3),
            ("lat:2", 4),
            ("wh_ok", 2),
            ("wh_fail", 1),
            ("obx:3", 1),
            ("obx:1", 2),
            ("unknown", 9),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
        let h = hour_stats(10, &fields);
        assert_eq!(h.hour_start.timestamp(), 36_000);
        assert_eq!(h.outcomes.get("succeeded"), Some(&3));
        assert_eq!(h.outcomes.get("failed"), Some(&1));
        assert_eq!((h.auth_attempts, h.auth_successes), (5, 3));
        assert_eq!((h.webhook_ok, h.webhook_failed), (2, 1));
        assert_eq!(h.outbox_age_max_s, Some(60));
        let p50 = h.msp_latency_p50_ms.unwrap();
        assert!((25.0..=50.0).contains(&p50), "{p50}");
    }

    #[test]
    fn only_the_end_of_a_payment_attempt_is_an_outcome() {
        use CheckoutStatus as S;
        let at = DateTime::from_timestamp(7_200, 0).unwrap();
        let fields = |from, to| {
            transition_stats(from, to, at)
                .map(|s| s.incr.iter().map(|(f, _)| *f).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(fields(S::Created, S::Succeeded), ["o:succeeded", "auth_ok"]);
        assert_eq!(fields(S::RequiresAction, S::Failed), ["o:failed"]);
        assert_eq!(fields(S::Created, S::RequiresCapture), ["auth_ok"]);
        assert_eq!(fields(S::RequiresCapture, S::Succeeded), ["o:succeeded"]);
        assert!(fields(S::Created, S::RequiresAction).is_empty());
        assert!(fields(S::Succeeded, S::Refunded).is_empty());
        assert!(fields(S::Succeeded, S::Succeeded).is_empty());
    }
}
