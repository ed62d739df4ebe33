//! Refunds (design §10.1): reserve, ask MSP, and let MSP's news settle them.
//!
//! Money is safe by the order of the steps:
//! 1. The refund is indexed, then reserved: one compare-and-set of the checkout that adds the
//!    refund only if the checkout is refundable and the amount fits what is left (concurrent
//!    refunds re-decide on the fresh state, so together they never exceed the amount).
//! 2. MSP is called once, with the refund id as `refund_order_id`. Its answer is recorded
//!    (`pending` and acknowledged, or `failed` when MSP refused at once).
//! 3. An unknown outcome (timeout, 5xx) leaves the refund `pending` and unacknowledged; it is
//!    never sent again blindly. The reconciler asks MSP for the order: a refund listed among its
//!    `related_transactions` is ours and settles from there; one MSP does not list, whose call is
//!    older than any call can take, provably never reached MSP and is sent again, with the same
//!    `refund_order_id`.
//! 4. The refund settles as MSP settles it (`reserved` → `completed`, or `declined`, or `void`),
//!    read from MSP's order in notifications and syncs; the checkout becomes `partially_refunded`
//!    or `refunded` as refunds complete ([`super::transition`]).

use chrono::{DateTime, Utc};

use super::Context;
use super::apply::{ApplyError, apply, apply_from};
use super::transition::{News, RefundAnswer};
use crate::domain::checkout::{Checkout, CheckoutId, CheckoutStatus, EventSource, RefundRefusal};
use crate::domain::money::MinorUnits;
use crate::domain::refund::{Refund, RefundId, RefundPsp, RefundReason, RefundStatus};
use crate::psp::{PspError, RefundRequest};
use crate::store::StoreError;

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
    /// Only a pending refund that MSP has acknowledged can be voided.
    #[error("the refund is {0}: only a pending refund can be canceled")]
    NotCancelable(RefundStatus),
    /// MSP could not be asked, or answered something unusable; nothing changed.
    #[error(transparent)]
    Psp(PspError),
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
        }
    }
}

/// Reserves a refund and asks MSP for it; returns the checkout afterwards and the refund's id.
#[tracing::instrument(name = "create_refund", skip_all, fields(checkout_id = %id, refund_id = tracing::field::Empty))]
pub async fn create_refund(
    ctx: &Context,
    id: &CheckoutId,
    new: NewRefund,
) -> Result<(Checkout, RefundId), RefundError> {
    let stored = ctx
        .store
        .get(id)
        .await?
        .ok_or(RefundError::CheckoutNotFound)?;
    let amount = stored.checkout.check_refund(new.amount)?;
    let now = ctx.clock.now();
    let refund = Refund {
        id: RefundId::generate(),
        amount,
        status: RefundStatus::Pending,
        reason: new.reason,
        failure: None,
        metadata: new.metadata,
        psp: RefundPsp::default(),
        created_at: now,
        updated_at: now,
    };
    tracing::Span::current().record("refund_id", tracing::field::display(&refund.id));
    ctx.store.index_refund(&refund.id, id).await?;
    // From the state just read: a racer's write makes the compare-and-set re-read and re-decide.
    let reserved = apply_from(
        ctx,
        stored,
        EventSource::Api,
        News::RefundRequested(&refund),
    )
    .await?;
    if reserved.refund(&refund.id).is_none() {
        // The compare-and-set decided on a fresher state than ours: it says why.
        return Err(reserved.check_refund(Some(amount)).err().map_or(
            RefundError::TooLarge {
                left: reserved.refundable(),
            },
            RefundError::from,
        ));
    }
    // From here the refund exists: whatever MSP does, the reconciler follows it up.
    if let Err(e) = ctx.store.schedule_sync(id, now.timestamp()).await {
        tracing::warn!(error = %e, "could not put the checkout in the reconciler's index");
    }
    let checkout = send(ctx, &reserved, &refund).await?;
    Ok((checkout, refund.id))
}

/// Asks MSP for `refund` and records its answer; on an unknown outcome the refund stays
/// pending and unacknowledged.
async fn send(
    ctx: &Context,
    checkout: &Checkout,
    refund: &Refund,
) -> Result<Checkout, RefundError> {
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
            return Ok(checkout.clone());
        }
    };
    let news = News::RefundAnswered {
        id: &refund.id,
        answer,
    };
    Ok(apply(ctx, &checkout.id, EventSource::Api, news).await?)
}

/// Sends again every pending refund that MSP, in the order it has just listed, provably never
/// received: unacknowledged, not among the order's refunds (the sync would have acknowledged
/// it), and requested longer ago than any MSP call can take.
pub async fn resend_unreceived(
    ctx: &Context,
    checkout: Checkout,
    now: DateTime<Utc>,
) -> Result<Checkout, StoreError> {
    let lost: Vec<Refund> = checkout
        .refunds
        .iter()
        .filter(|r| {
            r.status == RefundStatus::Pending
                && !r.psp.acknowledged
                && now - r.created_at > ctx.settings.psp_call_deadline
        })
        .cloned()
        .collect();
    let mut latest = checkout;
    for refund in lost {
        tracing::warn!(refund_id = %refund.id, "MultiSafepay never received this refund; sending it again");
        latest = match send(ctx, &latest, &refund).await {
            Ok(c) => c,
            Err(RefundError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "could not send the refund again; will try later");
                latest
            }
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
