//! Checkouts nobody can pay: MSP waits for the shopper's 3-D Secure (its order is `initialized`),
//! but the gateway has no pay link to send the shopper to. MSP hands out the challenge's
//! `payment_url` (or form) only in its answer to the create call; when that answer never
//! reached the gateway (MSP timed out, the gateway stopped before storing it) or its pay session
//! could not be stored, the merchant heard `processing` or nothing, and nobody can ever finish
//! the challenge.
//!
//! Such a checkout is cancelled at MSP as soon as a sync sees it (nothing was paid), so that the
//! merchant gets a final answer and can start a new checkout, instead of one that stays
//! `processing` until MSP expires the order an hour and a half later. If MSP refuses (the order
//! moved on meanwhile) the cancel flow syncs and the checkout shows what MSP says; if MSP cannot
//! be asked, the checkout stays as it is and the next look tries again.

use super::Context;
use super::apply::apply;
use super::cancel::cancel_for;
use super::sync::SyncError;
use super::transition::News;
use crate::domain::checkout::{Checkout, CheckoutStatus, EventSource};
use crate::psp::{PaymentStatus, PspOrder};

/// Asks MSP for the order of `known` (the checkout as last read), applies the answer, and cancels
/// the checkout if nobody can pay it. Errors are [`sync`](super::sync::sync)'s.
#[tracing::instrument(name = "sync_with_msp", skip_all, fields(checkout_id = %known.id, source = source.as_str()))]
pub async fn sync_or_abandon(
    ctx: &Context,
    known: &Checkout,
    source: EventSource,
) -> Result<Checkout, SyncError> {
    let id = &known.id;
    let order = ctx
        .psp
        .get_order(id.as_str())
        .await
        .map_err(SyncError::Psp)?;
    // A `processing` checkout cannot go back to `requires_action`: applying MSP's `initialized`
    // would be refused (and counted as an anomaly), so it is cancelled as it is.
    let synced = if known.status == CheckoutStatus::Processing && unpayable(known, &order) {
        known.clone()
    } else {
        apply(ctx, id, source, News::Order(&order)).await?
    };
    if !unpayable(&synced, &order) {
        return Ok(synced);
    }
    match cancel_for(ctx, id, Some("abandoned"), source).await {
        Ok(canceled) => {
            tracing::warn!(
                "MultiSafepay waits for 3-D Secure on a checkout without a pay link (its create answer was lost); cancelled it at MultiSafepay"
            );
            Ok(canceled)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not cancel a checkout without a pay link; trying again at its next sync");
            Ok(synced)
        }
    }
}

/// MSP waits for the shopper, who has no way to get there: no pay link, and never came back.
fn unpayable(checkout: &Checkout, order: &PspOrder) -> bool {
    order.status == PaymentStatus::AwaitingShopper
        && checkout.pay_token.is_none()
        && !checkout.shopper_returned
        && matches!(
            checkout.status,
            CheckoutStatus::RequiresAction | CheckoutStatus::Processing
        )
}
