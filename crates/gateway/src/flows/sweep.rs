//! The account-wide sweep: MSP's `GET /transactions` from a stored watermark (less
//! an overlap) to now, every page, compared with what the gateway holds. A row about one of the
//! gateway's orders that differs makes the gateway sync that order once per sweep
//! ([`super::sync`]), which records what the notifications missed: a status, a refund made in MSP's
//! dashboard (`source: "dashboard"`), a chargeback (a dispute). Rows of other orders are counted
//! and left alone.
//!
//! One instance sweeps at a time (a Redis lease, renewed while the sweep walks: before every
//! page and after every order it syncs, each step bounded by MSP's timeouts, so that a sweep
//! of any length keeps it and a dead instance's runs out by the gateway's clock). The watermark moves only
//! when every page was read and every row handled: a crash, a lost lease, MSP answering 403 or
//! 5xx, or an order that cannot be synced ends the sweep with the watermark where it was, so
//! the next sweep reads those rows again (syncing is idempotent: nothing is recorded twice).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::Context;
use super::sync::{SyncError, sync};
use crate::domain::checkout::{Checkout, CheckoutId, EventSource};
use crate::domain::dispute::DisputeStatus;
use crate::domain::refund::RefundSource;
use crate::psp::multisafepay::transactions::{TransactionQuery, TransactionRow};
use crate::store::StoreError;

/// Sweeps by outcome (`ok`, `refused`, `unreachable`, `unexpected`, `sync_failed`,
/// `lease_lost`, `busy`).
pub const SWEEPS: &str = "gateway_transaction_sweeps_total";
/// Rows read, by whether they were the gateway's (`ours`, `other`).
pub const SWEEP_ROWS: &str = "gateway_transaction_sweep_rows_total";
/// What sweeps changed, by kind (`missed_status`, `dashboard_refunds`, `chargebacks`).
pub const SWEEP_DIFFERENCES: &str = "gateway_transaction_sweep_differences_total";

/// How a sweep runs.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// How far before the watermark each sweep reads (`reconcile.transactions_overlap_s`).
    pub overlap: TimeDelta,
    /// Rows a page (`reconcile.transactions_page_size`, MSP: 1000).
    pub page_size: u32,
    /// How long the lease lasts without renewal (renewed before every page and, once a third
    /// of it has passed, after every order synced).
    pub lease: Duration,
}

impl SweepConfig {
    pub fn from_settings(s: &crate::configuration::ReconcileSettings) -> Self {
        Self {
            overlap: TimeDelta::seconds(s.transactions_overlap_s as i64),
            page_size: s.transactions_page_size,
            lease: Duration::from_secs(300),
        }
    }
}

/// What a sweep changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Differences {
    pub missed_status: u64,
    pub dashboard_refunds: u64,
    pub chargebacks: u64,
}

/// One sweep, as `GET /v1/reconciliation` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    #[serde(with = "crate::domain::time::rfc3339")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub finished_at: DateTime<Utc>,
    /// The window read, before the overlap was taken off its start.
    #[serde(with = "crate::domain::time::rfc3339")]
    pub from: DateTime<Utc>,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub until: DateTime<Utc>,
    pub pages: u32,
    pub rows: u64,
    /// Rows about orders that are not the gateway's, left alone.
    pub other_orders: u64,
    pub differences: Differences,
    /// Why the sweep stopped early (the watermark stayed), `null` when it read everything.
    pub error: Option<String>,
}

/// Runs a sweep every `interval` until `shutdown` turns true; each instance has its own owner
/// token, and the lease lets one sweep at a time.
pub async fn run(
    ctx: std::sync::Arc<Context>,
    config: SweepConfig,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let owner = uuid::Uuid::new_v4().simple().to_string();
    tracing::info!(interval_s = interval.as_secs(), "transaction sweep started");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        match sweep(&ctx, &config, &owner).await {
            Ok(_) => {}
            Err(e) => {
                metrics::counter!(SWEEPS, "outcome" => "store_error").increment(1);
                tracing::warn!(error = %e, "transaction sweep failed on the store; trying again next interval");
            }
        }
    }
    tracing::info!("transaction sweep stopped");
}

/// One sweep as `owner`; `None` when another instance holds the lease.
#[tracing::instrument(name = "transaction_sweep", skip_all)]
pub async fn sweep(
    ctx: &Context,
    config: &SweepConfig,
    owner: &str,
) -> Result<Option<SweepReport>, StoreError> {
    if !ctx
        .store
        .lease_sweep(owner, ctx.clock.now(), config.lease)
        .await?
    {
        metrics::counter!(SWEEPS, "outcome" => "busy").increment(1);
        return Ok(None);
    }
    let result = walk(ctx, config, owner).await;
    if let Err(e) = ctx.store.release_sweep(owner).await {
        tracing::warn!(error = %e, "could not release the sweep's lease; it ends by itself");
    }
    let (report, outcome) = result?;
    metrics::counter!(SWEEPS, "outcome" => outcome).increment(1);
    let d = report.differences;
    for (kind, n) in [
        ("missed_status", d.missed_status),
        ("dashboard_refunds", d.dashboard_refunds),
        ("chargebacks", d.chargebacks),
    ] {
        metrics::counter!(SWEEP_DIFFERENCES, "kind" => kind).increment(n);
    }
    metrics::counter!(SWEEP_ROWS, "order" => "ours").increment(report.rows - report.other_orders);
    metrics::counter!(SWEEP_ROWS, "order" => "other").increment(report.other_orders);
    match &report.error {
        None => tracing::info!(
            rows = report.rows,
            pages = report.pages,
            missed_status = d.missed_status,
            dashboard_refunds = d.dashboard_refunds,
            chargebacks = d.chargebacks,
            "transaction sweep done"
        ),
        Some(error) => tracing::warn!(
            error = %error,
            rows = report.rows,
            "transaction sweep stopped early; the watermark stays and the next sweep reads these rows again"
        ),
    }
    match serde_json::to_string(&report) {
        Ok(json) => {
            if let Err(e) = ctx.store.record_sweep(&json).await {
                tracing::warn!(error = %e, "could not keep the sweep's report");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not write the sweep's report"),
    }
    Ok(Some(report))
}

/// Reads every page and handles every row; the report and its outcome label.
async fn walk(
    ctx: &Context,
    config: &SweepConfig,
    owner: &str,
) -> Result<(SweepReport, &'static str), StoreError> {
    let started_at = ctx.clock.now();
    let from = ctx
        .store
        .sweep_watermark()
        .await?
        .unwrap_or(started_at - config.overlap);
    let until = started_at;
    let mut report = SweepReport {
        started_at,
        finished_at: started_at,
        from,
        until,
        pages: 0,
        rows: 0,
        other_orders: 0,
        differences: Differences::default(),
        error: None,
    };
    let mut synced: HashSet<CheckoutId> = HashSet::new();
    let mut after: Option<String> = None;
    let mut lease = Lease {
        owner,
        ttl: config.lease,
        renewed_at: started_at,
    };
    let outcome = loop {
        if report.pages > 0 && !lease.renew(ctx).await? {
            report.error = Some("another instance took the sweep's lease".into());
            break "lease_lost";
        }
        let query = TransactionQuery {
            created_from: from - config.overlap,
            created_until: until,
            limit: config.page_size,
            after: after.clone(),
        };
        let page = match ctx.psp.list_transactions(&query).await {
            Ok(page) => page,
            Err(e) => {
                report.error = Some(e.to_string());
                break e.label();
            }
        };
        report.pages += 1;
        report.rows += page.rows.len() as u64;
        match handle_page(ctx, &page.rows, &mut synced, &mut report, &mut lease).await {
            Ok(true) => {}
            Ok(false) => {
                report.error = Some("another instance took the sweep's lease".into());
                break "lease_lost";
            }
            Err(e) => {
                report.error = Some(format!("an order could not be synced: {e}"));
                break "sync_failed";
            }
        }
        match page.after {
            Some(cursor) if !page.rows.is_empty() => after = Some(cursor),
            _ => break "ok",
        }
    };
    if report.error.is_none() && !ctx.store.advance_sweep_watermark(owner, until).await? {
        report.error = Some("another instance took the sweep's lease".into());
    }
    report.finished_at = ctx.clock.now();
    let outcome = if report.error.is_some() && outcome == "ok" {
        "lease_lost"
    } else {
        outcome
    };
    Ok((report, outcome))
}

/// The checkout a row's `order_id` names: the checkout id itself, or a capture's
/// `<checkout id>-c`.
fn checkout_of(order_id: &str) -> Option<CheckoutId> {
    CheckoutId::parse(order_id)
        .or_else(|_| CheckoutId::parse(order_id.strip_suffix("-c").unwrap_or_default()))
        .ok()
}

/// The sweep's hold on its lease while it walks.
struct Lease<'a> {
    owner: &'a str,
    ttl: Duration,
    /// When it was last renewed, by the gateway's clock.
    renewed_at: DateTime<Utc>,
}

impl Lease<'_> {
    /// Renews the lease now; `false` when another instance holds it (this one's ran out).
    async fn renew(&mut self, ctx: &Context) -> Result<bool, StoreError> {
        let now = ctx.clock.now();
        let kept = ctx.store.lease_sweep(self.owner, now, self.ttl).await?;
        if kept {
            self.renewed_at = now;
        }
        Ok(kept)
    }

    /// Renews the lease once a third of it has passed since the last renewal: a page of a
    /// thousand orders to sync may take longer than the lease, each sync does not.
    async fn renew_if_aging(&mut self, ctx: &Context) -> Result<bool, StoreError> {
        let third = TimeDelta::from_std(self.ttl / 3).unwrap_or(TimeDelta::MAX);
        if ctx.clock.now() - self.renewed_at < third {
            return Ok(true);
        }
        self.renew(ctx).await
    }
}

/// Syncs, once per sweep, every checkout of the page whose rows differ from what it holds,
/// and counts what that changed. `false` when the lease was lost on the way (the sweep stops).
async fn handle_page(
    ctx: &Context,
    rows: &[TransactionRow],
    synced: &mut HashSet<CheckoutId>,
    report: &mut SweepReport,
    lease: &mut Lease<'_>,
) -> Result<bool, SyncError> {
    let mut by_checkout: BTreeMap<CheckoutId, Vec<&TransactionRow>> = BTreeMap::new();
    for row in rows {
        match checkout_of(&row.order_id) {
            Some(id) => by_checkout.entry(id).or_default().push(row),
            None => report.other_orders += 1,
        }
    }
    for (id, rows) in by_checkout {
        let Some(before) = ctx.store.get(&id).await?.map(|v| v.checkout) else {
            report.other_orders += rows.len() as u64;
            continue;
        };
        if synced.contains(&id) || !rows.iter().any(|r| differs(&before, r)) {
            continue;
        }
        let after = sync(ctx, &id, EventSource::Reconcile).await?;
        synced.insert(id);
        count(&before, &after, &mut report.differences);
        if !lease.renew_if_aging(ctx).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `row` says something `checkout` does not hold.
fn differs(checkout: &Checkout, row: &TransactionRow) -> bool {
    match row.kind.as_str() {
        "payment" => {
            let pending = !checkout.status.is_settled();
            let voided = matches!(row.status.as_str(), "void" | "chargedback" | "chargeback")
                && !checkout.status.is_final();
            (pending && checkout.psp.status.as_deref() != Some(row.status.as_str())) || voided
        }
        "refund" => match checkout
            .refunds
            .iter()
            .find(|r| r.psp.transaction_id.as_deref() == Some(row.transaction_id.as_str()))
        {
            None => true,
            Some(r) => r.psp.status.as_deref() != Some(row.status.as_str()),
        },
        "chargeback" => match checkout
            .disputes
            .iter()
            .find(|d| d.psp.transaction_id == row.transaction_id)
        {
            None => true,
            Some(d) => row
                .dispute_status
                .as_deref()
                .is_some_and(|s| s != d.psp.status),
        },
        "reverse_chargeback" | "reverse-chargeback" => checkout
            .disputes
            .iter()
            .any(|d| d.status != DisputeStatus::Won),
        _ => false,
    }
}

/// What one sync changed, in the report's terms: each refund it recorded as made in MSP's
/// dashboard, each dispute it made, each refund or dispute whose status moved, and the
/// checkout's own move when neither of the first two explains it.
fn count(before: &Checkout, after: &Checkout, d: &mut Differences) {
    let mut found = 0;
    for r in &after.refunds {
        match before.refund(&r.id) {
            None if r.source == RefundSource::Dashboard => found += 1,
            None => {}
            Some(b) if b.status != r.status => d.missed_status += 1,
            Some(_) => {}
        }
    }
    d.dashboard_refunds += found;
    for dispute in &after.disputes {
        match before.dispute(&dispute.id) {
            None => {
                d.chargebacks += 1;
                found += 1;
            }
            Some(b) if b.status != dispute.status => d.missed_status += 1,
            Some(_) => {}
        }
    }
    if before.status != after.status && found == 0 {
        d.missed_status += 1;
    }
}
