//! What the account-wide sweep ([`crate::flows::sweep`]) keeps: its lease (one
//! instance sweeps at a time), its watermark (how far back the next sweep reads) and the reports
//! of its last 100 runs.
//!
//! Redis layout (one hash tag, `{sweep}`, so that one script checks the lease and moves the
//! watermark together):
//!
//! ```text
//! {prefix}:{sweep}:lease      STR   owner token, space, held until TTL the lease's
//!                                   (unix ms by the gateway's clock)
//! {prefix}:{sweep}:watermark  STR   unix ms                        TTL retention
//! {prefix}:{sweep}:history    LIST  JSON reports, newest first     TTL retention (100 kept)
//! ```

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// How many sweep reports are kept.
pub const SWEEPS_KEPT: usize = 100;

#[async_trait]
pub trait Sweeps: Send + Sync + 'static {
    /// Takes the sweep's lease as `owner` until `now` + `ttl` (or extends it, when `owner`
    /// holds it already); `false` when another owner holds it past `now`. The lease runs out by
    /// the gateway's clock (`now`), so that tests move time instead of waiting; the key's own
    /// TTL is a backstop.
    async fn lease_sweep(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Gives the lease up, if `owner` still holds it.
    async fn release_sweep(&self, owner: &str) -> Result<(), StoreError>;

    /// Where the next sweep starts reading (before its overlap); `None` before the first.
    async fn sweep_watermark(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Moves the watermark to `to`, only while `owner` holds the lease (checked in the same
    /// atomic step); answers whether it moved.
    async fn advance_sweep_watermark(
        &self,
        owner: &str,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Keeps a sweep's report (JSON), newest first, the last [`SWEEPS_KEPT`].
    async fn record_sweep(&self, report: &str) -> Result<(), StoreError>;

    /// The kept reports, newest first.
    async fn recent_sweeps(&self) -> Result<Vec<String>, StoreError>;
}
