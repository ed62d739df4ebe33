//! What the operator console reads ([`crate::activity`]): each checkout's MSP call log and
//! notification log, and the hourly statistics every instance adds to.
//!
//! ```text
//! {prefix}:{chk_…}:msplog   LIST  JSON MSP call, newest first, ≤ 100   TTL the checkout's
//! {prefix}:{chk_…}:ntflog   LIST  JSON notification, newest first, ≤ 100 TTL the checkout's
//! {prefix}:{stats}:h:<unix hour>
//!                           HASH  counter → value (see below)          TTL 25 h
//! ```
//!
//! A log entry is written only while its checkout exists, and its list takes the checkout's
//! remaining TTL; every write of the record refreshes both lists with it, so that they expire
//! together. The statistics' fields are all counters (`HINCRBY`, so that instances add up
//! without coordinating), latencies and ages as fixed histograms; their names are
//! [`crate::activity`]'s.

use async_trait::async_trait;

use crate::activity::{MspCallRecord, NotificationRecord};
use crate::domain::checkout::CheckoutId;
use crate::store::StoreError;
use crate::store::console::SearchIndex;

/// The newest entries kept per checkout, per log.
pub const LOG_CAP: usize = 100;

/// How long an hour's statistics are kept: a day and an hour, so that the last 24 full hours
/// and the current one are always there.
pub const STATS_TTL: std::time::Duration = std::time::Duration::from_secs(25 * 3600);

/// What one write adds to one hour's statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsUpdate {
    /// The hour, as Unix seconds divided by 3600.
    pub hour: i64,
    /// Counters to add to (`HINCRBY`).
    pub incr: Vec<(&'static str, i64)>,
}

impl StatsUpdate {
    pub fn is_empty(&self) -> bool {
        self.incr.is_empty()
    }
}

/// The console's logs and statistics.
#[async_trait]
pub trait Activity: Send + Sync + 'static {
    /// Adds `call` to checkout `id`'s MSP call log (when given and the checkout exists) and
    /// `stats` to its hour, in one round trip where the store can.
    async fn record_msp_call(
        &self,
        id: Option<&CheckoutId>,
        call: &MspCallRecord,
        stats: &StatsUpdate,
    ) -> Result<(), StoreError>;

    /// Adds `notification` to checkout `id`'s notification log, if the checkout exists.
    async fn record_notification(
        &self,
        id: &CheckoutId,
        notification: &NotificationRecord,
    ) -> Result<(), StoreError>;

    /// Adds `stats` to its hour.
    async fn record_stats(&self, stats: &StatsUpdate) -> Result<(), StoreError>;

    /// Checkout `id`'s MSP calls, newest first.
    async fn msp_call_log(&self, id: &CheckoutId) -> Result<Vec<MspCallRecord>, StoreError>;

    /// Checkout `id`'s notifications, newest first.
    async fn notification_log(
        &self,
        id: &CheckoutId,
    ) -> Result<Vec<NotificationRecord>, StoreError>;

    /// The raw fields of each hour of `hours` (Unix hours), in that order; empty for an hour
    /// without any.
    async fn stats_hours(&self, hours: &[i64]) -> Result<Vec<Vec<(String, i64)>>, StoreError>;
}

/// Records waiting to be written with their checkout's next change (one round trip fewer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    pub calls: Vec<MspCallRecord>,
    pub notifications: Vec<NotificationRecord>,
    pub stats: Vec<StatsUpdate>,
    /// Console search index entries that find the checkout (its MSP transaction id once MSP
    /// has named it), with the checkouts' retention.
    pub search: Vec<(SearchIndex, String)>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
            && self.notifications.is_empty()
            && self.stats.is_empty()
            && self.search.is_empty()
    }
}
