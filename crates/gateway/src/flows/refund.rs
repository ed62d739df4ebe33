//! Refunds: reserve, ask MSP, and let MSP's news settle them.
//!
//! Money moves exactly once by the order of the steps:
//! 1. The refund id is made first (by the API, before an `Idempotency-Key` is claimed, so that
//!    the claim records it and a retry after a crash resumes this refund: [`resume_refund`]).
//! 2. The refund is reserved: one compare-and-set of the checkout that adds it only if the
//!    checkout is refundable, holds fewer than [`MAX_REFUNDS_PER_CHECKOUT`] refunds and the
//!    amount fits what is left. The same write indexes the refund by id and puts the checkout in
//!    the reconciler's index, so a reservation that lands after its writer stopped waiting (a
//!    Redis stall) is followed up all the same. The writers of one checkout take turns
//!    ([`super::apply`]), so a burst of refunds is written one after the other, not raced.
//!    Until here nothing has reached MSP: a store error is 503 "nothing was sent", and true.
//! 3. MSP is called once, with the refund id as `refund_order_id`. From here on the answer is
//!    never "nothing was sent": MSP's answer is recorded (`pending` and acknowledged, or
//!    `failed` when MSP refused at once), and if that write fails the answer is computed from
//!    what is known, as the create flow does; an unknown outcome (timeout, 5xx) leaves the
//!    refund `pending` and unacknowledged. Either way the reconciler follows it up.
//! 4. A refund MSP has not acknowledged is never sent again. The reconciler asks MSP for the
//!    order: a refund listed among its `related_transactions` is ours and settles from there;
//!    one MSP does not list, older than any send can be ([`NEVER_RECEIVED_AFTER`] plus the
//!    longest MSP call), provably never reached MSP and fails (nothing was refunded; its amount
//!    is free again), as a checkout MSP never received does.
//! 5. The refund settles as MSP settles it (`reserved` → `completed`, or `declined`, or `void`),
//!    read from MSP's order in notifications and syncs; the checkout becomes `partially_refunded`
//!    or `refunded` as refunds complete ([`super::transition`]).

use chrono::{DateTime, TimeDelta, Utc};

use super::Context;
use super::apply::{ApplyError, apply, apply_versioned};
use super::sync::{SyncError, sync};
use super::transition::{News, RefundAnswer, transition};
use crate::domain::checkout::{Checkout, CheckoutId, CheckoutStatus, EventSource, RefundRefusal};
use crate::domain::failure::Failure;
use crate::domain::money::MinorUnits;
use crate::domain::refund::{
    MAX_REFUNDS_PER_CHECKOUT, Refund, RefundId, RefundPsp, RefundReason, RefundStatus,
};
use crate::psp::{PspError, RefundRequest};
use crate::store::{StoreError, Versioned};

/// The longest a refund may take from its creation to its MSP call: a flow whose reservation
/// took longer (a stalled store, a long queue of writers) does not call MSP at all, so that a
/// refund MSP does not list this long (plus the longest MSP call) after its creation provably
/// never reached it.
pub const NEVER_RECEIVED_AFTER: TimeDelta = TimeDelta::seconds(10);

/// A refund as the merchant asked for it.
#[derive(Debug, Default)]
pub struct NewRefund {
    /// `None`: everything not yet refunded.
    pub amount: Option<MinorUnits>,
    pub reason: Option<RefundReason>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no such checkout")]
    CheckoutNotFound,
    #[error("no such refund")]
    RefundNotFound,
    #[error("the checkout is {0}: only succeeded and partially refunded checkouts can be refunded")]
    NotRefundable(CheckoutStatus),
    #[error("the amount is more than the {left} left to refund")]
    TooLarge { left: MinorUnits },
    #[error("the checkout holds {MAX_REFUNDS_PER_CHECKOUT} refunds, the most it may")]
    LimitReached,
    #[error("a dispute of the checkout is open")]
    Disputed,
    /// Only a pending refund that MSP has acknowledged can be voided.
    #[error("the refund is {0}: only a pending refund can be canceled")]
    NotCancelable(RefundStatus),
    /// MSP could not be asked, or answered something unusable; nothing changed.
    #[error(transparent)]
    Psp(PspError),
    /// The store failed before MSP was called: nothing was sent to MSP.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ApplyError> for RefundError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::NotFound => Self::CheckoutNotFound,
            ApplyError::Store(e) => Self::Store(e),
        }
    }
}

impl From<RefundRefusal> for RefundError {
    fn from(r: RefundRefusal) -> Self {
        match r {
            RefundRefusal::NotRefundable(status) => Self::NotRefundable(status),
            RefundRefusal::TooLarge { left } => Self::TooLarge { left },
            RefundRefusal::LimitReached => Self::LimitReached,
            RefundRefusal::Disputed => Self::Disputed,
        }
    }
}

/// Reserves refund `refund_id` and asks MSP for it; returns the checkout afterwards.
#[tracing::instrument(name = "create_refund", skip_all, fields(checkout_id = %id, refund_id = %refund_id))]
pub async fn create_refund(
    ctx: &Context,
    id: &CheckoutId,
    refund_id: RefundId,
    new: NewRefund,
) -> Result<(Checkout, RefundId), RefundError> {
    let stored = ctx
        .store
        .get(id)
        .await?
        .ok_or(RefundError::CheckoutNotFound)?;
    if let Some(refund) = stored.checkout.refund(&refund_id).cloned() {
        return send_late_reservation(ctx, stored, refund).await;
    }
    let (reserved, refund) = reserve(ctx, stored, refund_id, new).await?;
    let checkout = send(ctx, reserved, &refund).await?;
    Ok((checkout, refund.id))
}

/// The retry of a keyed refund whose earlier request answered "nothing was sent" finds its
/// refund reserved: the reservation landed after that request gave up on it (a stalled Redis),
/// and nothing sent it, because only the request holding the key sends its refund, and
/// the one that failed stopped before sending. It is sent now, the one refund the key makes, if
/// that is still in time ([`NEVER_RECEIVED_AFTER`]); otherwise it is answered as it stands and
/// the reconciler fails it as never received.
async fn send_late_reservation(
    ctx: &Context,
    stored: Versioned,
    refund: Refund,
) -> Result<(Checkout, RefundId), RefundError> {
    let late = ctx.clock.now() - refund.created_at;
    if !refund.awaits_msp() || late > NEVER_RECEIVED_AFTER {
        tracing::warn!(
            status = refund.status.as_str(),
            late_ms = late.num_milliseconds(),
            "the refund an earlier request reserved is answered as it stands"
        );
        return Ok((stored.checkout, refund.id));
    }
    tracing::warn!(
        late_ms = late.num_milliseconds(),
        "an earlier request's reservation landed after it gave up; sending that refund"
    );
    let checkout = send(ctx, stored, &refund).await?;
    Ok((checkout, refund.id))
}

/// Step 2: the reservation, decided on `stored` (and again on the fresh state by the
/// compare-and-set, should a writer in another instance have got there first). Returns the
/// reserved state, at its version, and the refund. Public for the tests of a reservation whose
/// writer vanished before sending it.
pub async fn reserve(
    ctx: &Context,
    stored: Versioned,
    refund_id: RefundId,
    new: NewRefund,
) -> Result<(Versioned, Refund), RefundError> {
    let amount = stored.checkout.check_refund(new.amount)?;
    let now = ctx.clock.now();
    let refund = Refund {
        id: refund_id,
        source: Default::default(),
        amount,
        status: RefundStatus::Pending,
        reason: new.reason,
        failure: None,
        metadata: new.metadata,
        psp: RefundPsp::default(),
        created_at: now,
        updated_at: now,
    };
    let reserved = apply_versioned(
        ctx,
        stored,
        EventSource::Api,
        News::RefundRequested(&refund),
    )
    .await?;
    if reserved.checkout.refund(&refund.id).is_none() {
        // The compare-and-set decided on a fresher state than ours: it says why.
        return Err(reserved.checkout.check_refund(Some(amount)).err().map_or(
            RefundError::TooLarge {
                left: reserved.checkout.refundable(),
            },
            RefundError::from,
        ));
    }
    Ok((reserved, refund))
}

/// Step 3: asks MSP for the reserved `refund` and records its answer. Errors only before the
/// call (nothing reached MSP); after it, the answer is what is known, stored or not.
async fn send(
    ctx: &Context,
    reserved: Versioned,
    refund: &Refund,
) -> Result<Checkout, RefundError> {
    let checkout = &reserved.checkout;
    let late = ctx.clock.now() - refund.created_at;
    if late > NEVER_RECEIVED_AFTER {
        // Past the time after which the reconciler takes a refund MSP does not list for one it
        // never received: sending it now could make a refund the gateway then calls failed.
        tracing::warn!(
            late_ms = late.num_milliseconds(),
            "the reservation took too long; not sending the refund (the reconciler fails it)"
        );
        return Err(RefundError::Store(StoreError::unavailable(format!(
            "reserving refund {} took {} ms; it was not sent",
            refund.id,
            late.num_milliseconds()
        ))));
    }
    let request = RefundRequest {
        order_id: checkout.id.as_str(),
        refund_order_id: refund.id.as_str(),
        amount: refund.amount.value(),
        currency: checkout.currency.code(),
        description: refund.reason.map(RefundReason::as_str),
        requested_at: refund.created_at,
        same_amount_requested_at: checkout.same_amount_requested_before(refund),
    };
    let answer = ctx.psp.refund(&request).await;
    let answer = match &answer {
        Ok(accepted) => RefundAnswer::Accepted(accepted),
        // Refused at once (MSP error 1034 and the like): the failure says why, in MSP's words.
        Err(PspError::Rejected { failure, .. } | PspError::Declined { failure, .. }) => {
            RefundAnswer::Refused(failure)
        }
        Err(e) => {
            tracing::warn!(error = %e, "MultiSafepay did not answer the refund call; the reconciler will look for the refund at MultiSafepay");
            return Ok(reserved.checkout);
        }
    };
    let news = News::RefundAnswered {
        id: &refund.id,
        answer,
    };
    // From the reserved version: a racer's write makes the compare-and-set decide again.
    match apply_versioned(ctx, reserved.clone(), EventSource::Api, news).await {
        Ok(answered) => Ok(answered.checkout),
        Err(e) => {
            // MSP has the refund (or refused it): the merchant gets that answer, computed from
            // what is known; the stored refund stays unacknowledged and the reconciler, which
            // has it in its index, reads MSP's word again.
            tracing::error!(error = %e, "could not store MultiSafepay's answer to the refund; answering it anyway, the reconciler records it");
            Ok(
                transition(&reserved.checkout, news, EventSource::Api, ctx.clock.now())
                    .map_or(reserved.checkout, |(c, _)| c),
            )
        }
    }
}

/// The retry of a keyed refund whose first request never finished (the gateway stopped, or
/// its store failed): answers refund `refund_id` as it stands, after asking MSP when MSP's
/// answer was never recorded, or makes it now if it was never reserved (then nothing reached
/// MSP either: a refund is reserved before it is sent). Never a second refund at MSP.
#[tracing::instrument(name = "resume_refund", skip_all, fields(checkout_id = %id, refund_id = %refund_id))]
pub async fn resume_refund(
    ctx: &Context,
    id: &CheckoutId,
    refund_id: RefundId,
    new: NewRefund,
) -> Result<(Checkout, RefundId), RefundError> {
    let stored = ctx
        .store
        .get(id)
        .await?
        .ok_or(RefundError::CheckoutNotFound)?;
    let Some(refund) = stored.checkout.refund(&refund_id) else {
        tracing::warn!("resuming a keyed refund that reserved nothing: making it now");
        let (reserved, refund) = reserve(ctx, stored, refund_id, new).await?;
        let checkout = send(ctx, reserved, &refund).await?;
        return Ok((checkout, refund.id));
    };
    if !refund.awaits_msp() {
        tracing::warn!(
            status = refund.status.as_str(),
            "resuming a keyed refund that was interrupted: answering it"
        );
        return Ok((stored.checkout, refund_id));
    }
    tracing::warn!("resuming a keyed refund whose answer was never recorded: asking MultiSafepay");
    match sync(ctx, id, EventSource::Api).await {
        Ok(synced) => {
            let checkout = fail_unreceived(ctx, synced, ctx.clock.now()).await?;
            Ok((checkout, refund_id))
        }
        // MSP cannot be asked now: the refund stays pending, and the reconciler follows it up.
        Err(SyncError::Psp(e)) => {
            tracing::warn!(error = %e, "MultiSafepay could not be asked while resuming; answering the refund as stored");
            Ok((stored.checkout, refund_id))
        }
        Err(SyncError::Store(e)) => Err(RefundError::Store(e)),
        Err(SyncError::NotFound) => Err(RefundError::CheckoutNotFound),
    }
}

/// Fails every refund that MSP, in the order it has just listed, provably never received:
/// unacknowledged (the sync acknowledges every refund MSP lists), and created longer ago than
/// any refund is sent ([`NEVER_RECEIVED_AFTER`]) plus the longest MSP call. Nothing was
/// refunded: its amount is free again, and the merchant, told by its `failure`, refunds again
/// if they still mean to. Never sent again: its request may have been answered "nothing was
/// sent" (its reservation landed after its writer stopped waiting), and the merchant may have
/// refunded again under a new id.
pub async fn fail_unreceived(
    ctx: &Context,
    checkout: Checkout,
    now: DateTime<Utc>,
) -> Result<Checkout, StoreError> {
    let after = NEVER_RECEIVED_AFTER + ctx.settings.psp_call_deadline;
    let lost: Vec<RefundId> = checkout
        .refunds
        .iter()
        .filter(|r| r.awaits_msp() && now - r.created_at > after)
        .map(|r| r.id.clone())
        .collect();
    let failure = Failure {
        code: "refund_not_received".into(),
        message: "MultiSafepay never received this refund, so nothing was refunded and its amount is free again: refund again if you still mean to.".into(),
        psp_reason_code: String::new(),
    };
    let mut latest = checkout;
    for id in lost {
        tracing::warn!(refund_id = %id, "MultiSafepay never received this refund; it fails");
        let news = News::RefundAnswered {
            id: &id,
            answer: RefundAnswer::NeverReceived(&failure),
        };
        latest = match apply(ctx, &latest.id, EventSource::Reconcile, news).await {
            Ok(c) => c,
            Err(ApplyError::Store(e)) => return Err(e),
            Err(ApplyError::NotFound) => return Ok(latest),
        };
    }
    Ok(latest)
}

/// The checkout a refund belongs to, and the refund.
pub async fn find(ctx: &Context, id: &RefundId) -> Result<(Checkout, Refund), RefundError> {
    let checkout_id = ctx
        .store
        .checkout_of_refund(id)
        .await?
        .ok_or(RefundError::RefundNotFound)?;
    let checkout = ctx
        .store
        .get(&checkout_id)
        .await?
        .ok_or(RefundError::RefundNotFound)?
        .checkout;
    let refund = checkout
        .refund(id)
        .cloned()
        .ok_or(RefundError::RefundNotFound)?;
    Ok((checkout, refund))
}

/// Voids a pending refund at MSP, then records it `canceled`.
#[tracing::instrument(name = "cancel_refund", skip_all, fields(refund_id = %id))]
pub async fn cancel_refund(
    ctx: &Context,
    id: &RefundId,
) -> Result<(Checkout, Refund), RefundError> {
    let (checkout, refund) = find(ctx, id).await?;
    if refund.status != RefundStatus::Pending {
        return Err(RefundError::NotCancelable(refund.status));
    }
    // MSP voids a refund by its own transaction id, known once MSP has acknowledged it.
    let Some(transaction_id) = refund.psp.transaction_id.as_deref() else {
        return Err(RefundError::NotCancelable(refund.status));
    };
    match ctx
        .psp
        .cancel_refund(checkout.id.as_str(), transaction_id)
        .await
    {
        Ok(()) => {}
        Err(PspError::Rejected { .. } | PspError::Declined { .. }) => {
            // MSP says it cannot be voided any more (it settled meanwhile): say what it is now.
            let synced = super::sync::sync(ctx, &checkout.id, EventSource::Api)
                .await
                .ok()
                .and_then(|c| c.refund(id).cloned())
                .unwrap_or(refund);
            return Err(RefundError::NotCancelable(synced.status));
        }
        Err(e) => return Err(RefundError::Psp(e)),
    }
    let after = apply(
        ctx,
        &checkout.id,
        EventSource::Api,
        News::RefundCanceled(id),
    )
    .await?;
    let refund = after
        .refund(id)
        .cloned()
        .ok_or(RefundError::RefundNotFound)?;
    Ok((after, refund))
}
