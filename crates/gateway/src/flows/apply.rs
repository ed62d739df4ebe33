//! The one path by which a checkout's state changes after creation: the transition pipeline's
//! writing half.
//!
//! Callers (the create flow, notifications, the browser return, refresh, the reconciler) report
//! what they learned as [`News`]; [`apply`] reads the stored checkout, lets
//! [`transition`](super::transition::transition) turn the news into the next state and its
//! event, and writes both with one compare-and-set. When another writer got there first the loop
//! re-reads and decides again, so racers end in the same state whatever their order (design §6).

use super::Context;
use super::transition::{News, transition};
use crate::domain::checkout::{Checkout, CheckoutEvent, CheckoutId, CheckoutStatus, EventSource};
use crate::metrics::TRANSITIONS;
use crate::store::{CasReply, StoreError, Versioned};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("no such checkout")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `news` to checkout `id` and returns the stored state afterwards (changed or not).
#[tracing::instrument(name = "apply_change", skip_all, fields(checkout_id = %id, source = source.as_str()))]
pub async fn apply(
    ctx: &Context,
    id: &CheckoutId,
    source: EventSource,
    news: News<'_>,
) -> Result<Checkout, ApplyError> {
    let stored = ctx.store.get(id).await?.ok_or(ApplyError::NotFound)?;
    apply_from(ctx, stored, source, news).await
}

/// As [`apply`], starting from a state the caller already holds (the create flow knows its
/// record at version 1), which saves the first read. If that state is stale, the
/// compare-and-set says so and the loop re-reads, as it does for any racer.
pub async fn apply_from(
    ctx: &Context,
    mut stored: Versioned,
    source: EventSource,
    news: News<'_>,
) -> Result<Checkout, ApplyError> {
    let store = ctx.store.as_ref();
    let id = stored.checkout.id.clone();
    loop {
        let current = stored.checkout;
        let Some((next, event)) = transition(&current, news, source, ctx.clock.now()) else {
            return Ok(current);
        };
        match store
            .compare_and_set(stored.version, &next, event.as_ref())
            .await?
        {
            CasReply::Applied { .. } => {
                if let Some(e) = &event {
                    record_transition(e, current.status);
                }
                if next.status != current.status {
                    // The listing's status index is a hint too (design §11): readers re-check.
                    if let Err(e) = store.reindex_status(&next, current.status).await {
                        tracing::warn!(error = %e, "could not move the checkout in the listing's status index");
                    }
                }
                if next.is_at_rest() {
                    // The due-time index is only a hint (design §6): a failure here is logged,
                    // and the reconciler drops settled checkouts it finds there anyway.
                    if let Err(e) = store.unschedule_sync(&id).await {
                        tracing::warn!(error = %e, "could not take a settled checkout out of the reconciler index");
                    }
                }
                return Ok(next);
            }
            CasReply::Conflict => {
                tracing::debug!("lost a compare-and-set race; deciding again on the fresh state");
                stored = store.get(&id).await?.ok_or(ApplyError::NotFound)?;
            }
            CasReply::NotFound => return Err(ApplyError::NotFound),
        }
    }
}

fn record_transition(e: &CheckoutEvent, from: CheckoutStatus) {
    tracing::info!(
        from = from.as_str(),
        to = e.to.as_str(),
        psp_status = e.psp_status.as_deref(),
        "checkout status changed"
    );
    metrics::counter!(TRANSITIONS, "from" => from.as_str(), "to" => e.to.as_str(), "source" => e.source.as_str())
        .increment(1);
}
