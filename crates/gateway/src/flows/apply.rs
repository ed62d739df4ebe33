//! The one path by which a checkout's state changes after creation: the transition pipeline's
//! writing half.
//!
//! Callers (the create flow, notifications, the browser return, refresh, the reconciler) report
//! what they learned as [`News`]; [`apply`] reads the stored checkout, lets
//! [`transition`] turn the news into the next state and its
//! event, and writes both with one compare-and-set. When another writer got there first the loop
//! decides again on the state the store answers with, so racers end in the same state whatever
//! their order; after [`MAX_CAS_ATTEMPTS`] lost races in a row it gives up with a
//! 503-class error.
//!
//! Within one process the writers of one checkout take turns (a fair queue per checkout), so
//! that a burst of changes to one checkout (a hundred refunds at once, and MSP's notifications
//! of them) is written one after the other instead of racing: only writers in other
//! instances can make a compare-and-set lose.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::Context;
use super::transition::{News, transition};
use crate::domain::checkout::{Checkout, CheckoutEvent, CheckoutId, CheckoutStatus, EventSource};
use crate::domain::event::events_between;
use crate::metrics::TRANSITIONS;
use crate::store::console::SearchIndex;
use crate::store::{CasReply, Outbox, StoreError, Versioned};

/// How many compare-and-sets one change may lose before it gives up. Each loss means another
/// writer won in between: within one instance writers take turns, so only writers in other
/// instances (or a stale first read) make it lose, a few times at most; sixteen in a row, with a short random pause after each, means
/// something keeps writing the checkout, and looping on would hold the caller forever.
pub const MAX_CAS_ATTEMPTS: u32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("no such checkout")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `news` to checkout `id` and returns the stored state afterwards (changed or not).
#[tracing::instrument(name = "apply_change", level = "debug", skip_all, fields(checkout_id = %id, source = source.as_str()))]
pub async fn apply(
    ctx: &Context,
    id: &CheckoutId,
    source: EventSource,
    news: News<'_>,
) -> Result<Checkout, ApplyError> {
    // The console's records of what led here (the notification, the sync's MSP call) go with
    // the read, so that news that changes nothing (MSP's notification of a status the create
    // answer told already) costs them no round trip of their own.
    let deferred = crate::activity::take_for(id);
    let stored = if deferred.is_empty() {
        ctx.store.get(id).await
    } else {
        ctx.store
            .get_recording(id, &deferred)
            .await
            .inspect_err(|_| crate::activity::give_back(id, deferred))
    };
    apply_from(ctx, stored?.ok_or(ApplyError::NotFound)?, source, news).await
}

/// As [`apply`], starting from a state the caller already holds (the create flow knows its
/// record at version 1), which saves the first read. If that state is stale, the
/// compare-and-set says so and the loop re-reads, as it does for any racer.
pub async fn apply_from(
    ctx: &Context,
    stored: Versioned,
    source: EventSource,
    news: News<'_>,
) -> Result<Checkout, ApplyError> {
    apply_versioned(ctx, stored, source, news)
        .await
        .map(|v| v.checkout)
}

/// As [`apply_from`], with the version the answered state is stored at, so that the caller's
/// next change can start from it without reading it back.
pub async fn apply_versioned(
    ctx: &Context,
    stored: Versioned,
    source: EventSource,
    news: News<'_>,
) -> Result<Versioned, ApplyError> {
    let applied = apply_news(ctx, stored, source, news).await?;
    // A saved card is stored once MSP's news shows its token.
    Ok(super::saved_card::after_apply(ctx, applied, news).await)
}

async fn apply_news(
    ctx: &Context,
    mut stored: Versioned,
    source: EventSource,
    news: News<'_>,
) -> Result<Versioned, ApplyError> {
    let store = ctx.store.as_ref();
    let id = stored.checkout.id.clone();
    let _turn = TURNS.take(&id).await;
    for attempt in 1..=MAX_CAS_ATTEMPTS {
        let current = stored.checkout;
        let now = ctx.clock.now();
        let Some((next, event)) = transition(&current, news, source, now) else {
            return Ok(Versioned {
                checkout: current,
                version: stored.version,
            });
        };
        // The merchant's events of this change, written with it.
        let events = events_between(&current, &next, stored.version + 1, now);
        // Queued for webhooks.url when it is configured, and for the webhook endpoints the
        // merchant manages while there are any: the deliverer fans it out.
        let deliver = !events.is_empty()
            && (ctx.settings.deliver_webhooks
                || ctx
                    .outbox
                    .endpoints
                    .queue(&ctx.store, now.timestamp_millis(), &events)
                    .await);
        let announce_at = deliver.then(|| now + ctx.settings.outbox_grace);
        // The console's records of what led here (this request's MSP calls, its
        // notification), in the same script.
        let deferred = crate::activity::take_for(&id);
        let mut activity = deferred.clone();
        // The console finds a checkout by MSP's transaction id once MSP has named it.
        if let Some(tx) = &next.psp.transaction_id
            && current.psp.transaction_id.as_ref() != Some(tx)
        {
            activity
                .search
                .push((SearchIndex::MspTransaction, tx.clone()));
        }
        let outbox = Outbox {
            events: &events,
            deliver_at: deliver.then_some(now),
            announce_at,
            to_url: ctx.settings.deliver_webhooks,
            activity: (!activity.is_empty()).then_some(&activity),
        };
        // The events are announced (listed, and found by any instance once the grace is over
        // should this one die before delivering them) by a command sent just before the
        // compare-and-set, on the same connection: no round trip of its own. The store sends it
        // once the compare-and-set is ready to go, so that both leave together.
        // (A single Redis node writes it inside the compare-and-set's script instead.)
        let announce = Box::pin(async {
            if events.is_empty() {
                return Ok(());
            }
            store
                .announce_events(&(&id).into(), &events, announce_at)
                .await
        });
        // With the listing's status move and the reconciler's unschedule (hints), which a
        // single Redis node writes in the compare-and-set's script.
        let (announced, written) = store
            .commit_transition(
                stored.version,
                current.status,
                &next,
                event.as_ref(),
                outbox,
                announce,
            )
            .await;
        if let Err(e) = announced {
            tracing::warn!(checkout_id = %id, error = %e, "could not announce the transition's events: this instance delivers them, and they are listed under their checkout only");
        }
        // Not written: the records wait for the next change, or the end of the request.
        let written = written.inspect_err(|_| crate::activity::give_back(&id, deferred.clone()));
        match written? {
            CasReply::Applied { version } => {
                if let Some(e) = &event {
                    record_transition(&id, e, current.status);
                }
                if let Some(recorder) = ctx.psp.recorder() {
                    recorder.transition(current.status, next.status, now);
                }
                if deliver {
                    ctx.outbox.ring(&id);
                }
                return Ok(Versioned {
                    checkout: next,
                    version,
                });
            }
            CasReply::Conflict { current } => {
                crate::activity::give_back(&id, deferred);
                tracing::debug!("lost a compare-and-set race; deciding again on the fresh state");
                // The first lost race is nearly always to a change that is already written (MSP's
                // notification of the order this create just made): decide again at once on the
                // state the store answered with. After that, a random pause of up to
                // `attempt - 1` ms spreads out racers that would otherwise collide again at
                // once, and the state is read afresh after it.
                if attempt == 1 {
                    stored = *current;
                } else {
                    let pause_us = rand::random_range(0..=u64::from(attempt - 1) * 1_000);
                    tokio::time::sleep(std::time::Duration::from_micros(pause_us)).await;
                    stored = store.get(&id).await?.ok_or(ApplyError::NotFound)?;
                }
            }
            CasReply::NotFound => {
                crate::activity::give_back(&id, deferred);
                return Err(ApplyError::NotFound);
            }
        }
    }
    // A 503-class error: nothing of this change was written, and a retry decides afresh.
    tracing::warn!(
        checkout_id = %id,
        attempts = MAX_CAS_ATTEMPTS,
        "gave up a change: the checkout kept changing under it"
    );
    Err(ApplyError::Store(StoreError::unavailable(format!(
        "checkout {id} kept changing while this change was written ({MAX_CAS_ATTEMPTS} compare-and-sets lost in a row); nothing was changed, retry in a moment"
    ))))
}

/// The writers' turns, per checkout, in this process. One table for the process (not per
/// context): checkout ids are unique, so contexts sharing a process (tests) share it harmlessly.
static TURNS: LazyLock<Turns> = LazyLock::new(Turns::default);

/// Table size past which the entries nobody holds or waits for are dropped.
const PRUNE_TURNS_ABOVE: usize = 1_024;

#[derive(Default)]
struct Turns {
    entries: Mutex<HashMap<CheckoutId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Turns {
    /// Waits for checkout `id`'s turn (first come, first served: tokio's mutex is fair) and
    /// holds it until the guard is dropped.
    async fn take(&self, id: &CheckoutId) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() > PRUNE_TURNS_ABOVE {
                entries.retain(|_, turn| Arc::strong_count(turn) > 1);
            }
            entries.entry(id.clone()).or_default().clone()
        };
        turn.lock_owned().await
    }
}

/// The transition's one log line. It names the checkout and the source itself: the
/// `apply_change` span is at debug, so that a line at info costs one span fewer to write.
fn record_transition(id: &CheckoutId, e: &CheckoutEvent, from: CheckoutStatus) {
    tracing::info!(
        checkout_id = %id,
        source = e.source.as_str(),
        from = from.as_str(),
        to = e.to.as_str(),
        psp_status = e.psp_status.as_deref(),
        "checkout status changed"
    );
    metrics::counter!(TRANSITIONS, "from" => from.as_str(), "to" => e.to.as_str(), "source" => e.source.as_str())
        .increment(1);
}
