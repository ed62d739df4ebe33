//! The reconciler: resolves checkouts whose notification never came.
//!
//! Every checkout enters a due-time index when it is created (first sync `first_after_s` later).
//! Each pass takes the due ones, holds a short per-checkout lock so that several instances do not
//! double up, re-reads the checkout (the index is only a hint), asks MSP, and either drops it from
//! the index (settled, or older than `max_age_s`) or schedules the next look with back-off.
//! A `requires_action` checkout whose 3DS window is over becomes `expired`; one that MSP says
//! waits for 3-D Secure while nobody has its pay link is cancelled ([`abandon`](super::abandon)).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

use super::Context;
use super::abandon::{CreateCall, sync_or_abandon};
use super::apply::{ApplyError, apply};
use super::refund;
use super::sync::SyncError;
use super::transition::News;
use crate::domain::checkout::{Checkout, CheckoutId, CheckoutStatus, EventSource};
use crate::domain::refund::RefundStatus;
use crate::metrics::{RECONCILER_CHECKOUTS, RECONCILER_RUNS};
use crate::psp::PspError;
use crate::store::StoreError;

/// How often a pass looks at the index.
pub const TICK: Duration = Duration::from_secs(5);
/// Checkouts handled per pass at most; the rest wait for the next tick.
pub const BATCH: usize = 100;
/// Longer than one MSP call can take, so a lock never lapses mid-sync.
const LOCK_TTL: Duration = Duration::from_secs(60);
/// The longest wait between two looks at one checkout.
const MAX_BACKOFF: TimeDelta = TimeDelta::hours(1);

/// Runs passes every [`TICK`] until `shutdown` turns true.
pub async fn run(ctx: std::sync::Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    tracing::info!("reconciler started");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        match pass(&ctx).await {
            Ok(n) => {
                metrics::counter!(RECONCILER_RUNS, "result" => "ok").increment(1);
                metrics::gauge!(crate::metrics::RECONCILER_PASS_CHECKOUTS).set(n as f64);
                if n > 0 {
                    tracing::info!(checkouts = n, "reconciler pass done");
                }
            }
            Err(e) => {
                metrics::counter!(RECONCILER_RUNS, "result" => "store_error").increment(1);
                tracing::warn!(error = %e, "reconciler pass failed; trying again next tick");
            }
        }
    }
    tracing::info!("reconciler stopped");
}

/// One pass over the checkouts due by the context's clock; returns how many it looked at.
///
/// A checkout that cannot be read or changed (a record that does not decode, a compare-and-set
/// that keeps losing) is skipped: counted (`result="skipped"`), logged once, and put back in the
/// index with back-off, and the pass carries on with the next one. Otherwise one bad record,
/// first in line, would stop every later pass. Only the store itself failing (the index cannot
/// be read, the skipped checkout cannot be put back) ends the pass early.
pub async fn pass(ctx: &Context) -> Result<usize, StoreError> {
    let now = ctx.clock.now();
    let due = ctx.store.due_for_sync(now.timestamp(), BATCH).await?;
    for id in &due {
        let Some(lock) = ctx.store.try_lock(id, LOCK_TTL).await? else {
            continue; // another instance has it
        };
        let result = reconcile_one(ctx, id, now).await;
        if let Err(e) = ctx.store.unlock(id, &lock).await {
            tracing::warn!(checkout_id = %id, error = %e, "could not release the reconciler lock; it lapses by itself");
        }
        let label = match &result {
            Ok(Verdict::Settled) => "settled",
            Ok(Verdict::Pending) => "pending",
            Ok(Verdict::GaveUp) => "gave_up",
            Ok(Verdict::Gone) => "gone",
            Err(_) => "skipped",
        };
        metrics::counter!(RECONCILER_CHECKOUTS, "result" => label).increment(1);
        if let Err(e) = result {
            skip(ctx, id, now, &e).await?;
        }
    }
    Ok(due.len())
}

/// Puts a checkout the pass could not handle back in the index, later: an hour for a record
/// that does not decode (it will not heal before someone fixes it), the usual interval for
/// anything else. If even that write fails, the store is down and the pass stops.
async fn skip(
    ctx: &Context,
    id: &CheckoutId,
    now: DateTime<Utc>,
    error: &StoreError,
) -> Result<(), StoreError> {
    let delay = match error {
        StoreError::Corrupt { .. } => MAX_BACKOFF.max(ctx.settings.sync_interval),
        StoreError::Unavailable { .. } => ctx.settings.sync_interval,
    };
    // Put back first: if that fails the store is down, and that, not this record, is the news.
    ctx.store
        .schedule_sync(id, (now + delay).timestamp())
        .await?;
    tracing::error!(
        checkout_id = %id,
        error = %error,
        retry_in_s = delay.num_seconds(),
        "reconciler skipped a checkout it could not read or change; check the record, it is looked at again later"
    );
    Ok(())
}

enum Verdict {
    Settled,
    Pending,
    GaveUp,
    Gone,
}

#[tracing::instrument(name = "reconcile", skip_all, fields(checkout_id = %id))]
async fn reconcile_one(
    ctx: &Context,
    id: &CheckoutId,
    now: DateTime<Utc>,
) -> Result<Verdict, StoreError> {
    let store = ctx.store.as_ref();
    let Some(stored) = store.get(id).await? else {
        store.unschedule_sync(id).await?;
        return Ok(Verdict::Gone);
    };
    let checkout = stored.checkout;
    if checkout.is_at_rest() {
        store.unschedule_sync(id).await?;
        return Ok(Verdict::Settled);
    }
    // A settled checkout is here for its refunds: their age is what counts.
    let since = match checkout
        .refunds
        .iter()
        .filter(|r| r.status == RefundStatus::Pending)
        .map(|r| r.created_at)
        .min()
    {
        Some(oldest) if checkout.status.is_settled() => oldest,
        _ => checkout.created_at,
    };
    let age = now - since;
    // An authorisation waits for its capture until MSP's deadline: MSP voids it then, and only
    // asking MSP tells, so it is not given up before that deadline.
    let give_up_at = match (checkout.status, checkout.capture_before) {
        (CheckoutStatus::RequiresCapture, Some(by)) => by.max(since) + ctx.settings.give_up_after,
        _ => since + ctx.settings.give_up_after,
    };
    if now > give_up_at {
        tracing::warn!(
            status = checkout.status.as_str(),
            age_s = age.num_seconds(),
            "giving up on a checkout MultiSafepay never settled; check it by hand"
        );
        store.unschedule_sync(id).await?;
        return Ok(Verdict::GaveUp);
    }

    let window_over = now > checkout.expires_at;
    let create = CreateCall::MayBeRunning;
    let after = match sync_or_abandon(ctx, &checkout, EventSource::Reconcile, create).await {
        // MSP has just listed the order's refunds: one of ours it does not have never reached it.
        Ok(c) => Some(refund::fail_unreceived(ctx, c, now).await?),
        Err(SyncError::Psp(PspError::NotFound { failure })) => {
            // MSP has never heard of the order: it was never created (the gateway stopped
            // before the call, or the call never arrived), so nothing was charged.
            let news = News::NeverReceived(&failure);
            Some(apply_or_log(ctx, id, EventSource::Reconcile, news).await?)
        }
        Err(SyncError::Psp(e)) => {
            tracing::info!(error = %e, "MultiSafepay could not be asked; will try again later");
            None
        }
        Err(SyncError::NotFound) => {
            store.unschedule_sync(id).await?;
            return Ok(Verdict::Gone);
        }
        Err(SyncError::Store(e)) => return Err(e),
    };
    let latest = after.unwrap_or(checkout);
    let latest = if latest.status == CheckoutStatus::RequiresAction && window_over {
        // MSP's card window (1 h) plus our margin has passed and the shopper never finished.
        apply_or_log(ctx, id, EventSource::Expiry, News::ThreeDsWindowOver).await?
    } else {
        latest
    };
    if latest.is_at_rest() {
        store.unschedule_sync(id).await?;
        return Ok(Verdict::Settled);
    }
    // Back-off: wait about half the checkout's age, between `interval_s` and an hour.
    let interval = ctx.settings.sync_interval;
    let delay = (age / 2).clamp(interval, MAX_BACKOFF.max(interval));
    store.schedule_sync(id, (now + delay).timestamp()).await?;
    Ok(Verdict::Pending)
}

async fn apply_or_log(
    ctx: &Context,
    id: &CheckoutId,
    source: EventSource,
    news: News<'_>,
) -> Result<Checkout, StoreError> {
    match apply(ctx, id, source, news).await {
        Ok(c) => Ok(c),
        Err(ApplyError::Store(e)) => Err(e),
        Err(ApplyError::NotFound) => Err(StoreError::corrupt(format!(
            "checkout {id} vanished mid-reconcile"
        ))),
    }
}
