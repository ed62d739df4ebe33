//! Checkouts nobody can pay: MSP waits for the shopper's 3-D Secure (its order is `initialized`),
//! but the gateway has no pay link to send the shopper to. MSP hands out the challenge's
//! `payment_url` (or form) only in its answer to the create call; when that answer never
//! reached the gateway (MSP timed out, the gateway stopped before storing it) or its pay session
//! could not be stored, the merchant heard `processing` or nothing, and nobody can ever finish
//! the challenge.
//!
//! Such a checkout is cancelled at MSP as soon as a sync sees it (nothing was paid), so that the
//! merchant gets a final answer and can start a new checkout, instead of one that stays
//! `processing` until MSP expires the order an hour and a half later. Not before its create call
//! is surely over (MSP's longest call and the storing of its answer): until then the pay link
//! may still be on its way, and a reconciler that looks early must not cancel what the shopper
//! is about to be sent to. If MSP refuses (the order
//! moved on meanwhile) the cancel flow syncs and the checkout shows what MSP says; if MSP cannot
//! be asked, the checkout stays as it is and the next look tries again.

use chrono::{DateTime, TimeDelta, Utc};

use super::Context;
use super::apply::apply;
use super::cancel::cancel_for;
use super::sync::SyncError;
use super::transition::News;
use crate::domain::checkout::{Checkout, CheckoutStatus, EventSource};
use crate::psp::{PaymentStatus, PspOrder};

/// Whether the create call of the checkout may still be running somewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateCall {
    /// Known to be over: the request that made it is gone (its idempotency key's in-flight
    /// time is over, and its retry resumes it).
    Over,
    /// Over once MSP's longest call and the storing of its answer are, counted from the
    /// checkout's creation.
    MayBeRunning,
}

/// Asks MSP for the order of `known` (the checkout as last read), applies the answer, and cancels
/// the checkout if nobody can pay it. Errors are [`sync`](super::sync::sync)'s.
#[tracing::instrument(name = "sync_with_msp", skip_all, fields(checkout_id = %known.id, source = source.as_str()))]
pub async fn sync_or_abandon(
    ctx: &Context,
    known: &Checkout,
    source: EventSource,
    create: CreateCall,
) -> Result<Checkout, SyncError> {
    let id = &known.id;
    let order = ctx
        .psp
        .get_order(id.as_str())
        .await
        .map_err(SyncError::Psp)?;
    let now = ctx.clock.now();
    let unpayable = |checkout: &Checkout| {
        unpayable(checkout, &order)
            && (create == CreateCall::Over
                || create_surely_over(checkout, now, ctx.settings.psp_call_deadline))
    };
    // A `processing` checkout cannot go back to `requires_action`: applying MSP's `initialized`
    // would be refused (and counted as an anomaly), so it is cancelled as it is.
    let synced = if known.status == CheckoutStatus::Processing && unpayable(known) {
        known.clone()
    } else {
        apply(ctx, id, source, News::Order(&order)).await?
    };
    if !unpayable(&synced) {
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

/// How long storing a create's answer may take once its MSP call is over.
const ANSWER_STORED_WITHIN: TimeDelta = TimeDelta::seconds(30);

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

/// Whether the checkout's create call, at most `call_deadline`, and the storing of its answer
/// are surely over by `now`: until then its pay link may be on its way.
fn create_surely_over(checkout: &Checkout, now: DateTime<Utc>, call_deadline: TimeDelta) -> bool {
    now - checkout.created_at > call_deadline + ANSWER_STORED_WITHIN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::transition::tests::{at, checkout, order};
    use CheckoutStatus as S;

    const DEADLINE: TimeDelta = TimeDelta::seconds(11);

    #[test]
    fn only_a_checkout_nobody_can_reach_msps_challenge_for_is_unpayable() {
        let initialized = order("initialized");
        for status in [S::RequiresAction, S::Processing] {
            assert!(unpayable(&checkout(status, false), &initialized));
        }
        // The shopper has a pay link, or has been to MSP and come back.
        let mut linked = checkout(S::RequiresAction, false);
        linked.pay_token = Some("token".into());
        assert!(!unpayable(&linked, &initialized));
        assert!(!unpayable(&checkout(S::Processing, true), &initialized));
        // MSP does not wait for the shopper, or the checkout is past waiting.
        assert!(!unpayable(
            &checkout(S::Processing, false),
            &order("uncleared")
        ));
        assert!(!unpayable(&checkout(S::Created, false), &initialized));
        assert!(!unpayable(&checkout(S::Canceled, false), &initialized));
    }

    #[test]
    fn a_create_answer_may_still_come_until_msps_longest_call_and_its_storing_are_over() {
        // MSP made the order and the create call still waits for its answer (a slow MSP, a
        // reconciler that looks early): the pay link may be on its way.
        let waiting = checkout(S::RequiresAction, false);
        let over = at() + DEADLINE + ANSWER_STORED_WITHIN;
        assert!(!create_surely_over(&waiting, over, DEADLINE));
        assert!(create_surely_over(
            &waiting,
            over + TimeDelta::seconds(1),
            DEADLINE
        ));
    }
}
