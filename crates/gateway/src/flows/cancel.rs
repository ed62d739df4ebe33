//! Cancel a checkout and capture an authorisation: MSP first, then
//! the checkout, through the one transition pipeline. When MSP refuses because the order moved on
//! (it completed meanwhile), the checkout is synced so that it shows MSP's status, and the caller
//! hears what that status is. When MSP's answer is lost, nothing is assumed: the reconciler (or
//! a notification, or `?refresh=true`) reads the order, whose `capture` entries say what was
//! captured ([`super::transition`]). A request that resumes an interrupted one answers the
//! change the interrupted one made, if MSP made it.

use super::Context;
use super::apply::{ApplyError, apply};
use super::sync::sync;
use super::transition::News;
use crate::domain::checkout::{Checkout, CheckoutId, CheckoutStatus, EventSource};
use crate::domain::money::MinorUnits;
use crate::psp::{CaptureRequest, PspError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no such checkout")]
    NotFound,
    /// The checkout's status does not allow it (the status it has now).
    #[error("the checkout is {0}")]
    NotAllowed(CheckoutStatus),
    /// MSP refused (its words); the checkout, synced with MSP, is now `status`.
    #[error("MultiSafepay refused ({msp}); the checkout is {status}")]
    Refused { status: CheckoutStatus, msp: String },
    /// More than the authorised amount.
    #[error("the amount is more than the {authorised} authorised")]
    TooLarge { authorised: MinorUnits },
    /// MSP did not answer, or answered something unusable: it may have done it. The checkout
    /// is left as it was, and the reconciler asks MSP.
    #[error("MultiSafepay's answer is unknown: {0}")]
    OutcomeUnknown(PspError),
    /// MSP did it, and the store could not record it; the next sync with MSP will.
    #[error("MultiSafepay agreed, but the change could not be stored: {0}")]
    Unrecorded(StoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ApplyError> for ChangeError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::NotFound => Self::NotFound,
            ApplyError::Store(e) => Self::Store(e),
        }
    }
}

/// Whether a request runs for the first time, or resumes one that never finished (its
/// Idempotency-Key was taken over after the gateway stopped mid-request): what the first one
/// asked MSP for may be done already, and is then the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    First,
    Resumed,
}

/// Statuses a merchant may cancel: the shopper has not paid, or only an authorisation exists.
pub fn cancelable(status: CheckoutStatus) -> bool {
    matches!(
        status,
        CheckoutStatus::RequiresAction
            | CheckoutStatus::Processing
            | CheckoutStatus::RequiresCapture
    )
}

/// Cancels a checkout on the gateway's own account (`source` says which task decided it), as a
/// first attempt.
pub async fn cancel_for(
    ctx: &Context,
    id: &CheckoutId,
    reason: Option<&str>,
    source: EventSource,
) -> Result<Checkout, ChangeError> {
    cancel_as(ctx, id, reason, Attempt::First, source).await
}

/// Cancels a checkout for the merchant (`POST /v1/checkouts/{id}/cancel`).
pub async fn cancel(
    ctx: &Context,
    id: &CheckoutId,
    reason: Option<&str>,
    attempt: Attempt,
) -> Result<Checkout, ChangeError> {
    cancel_as(ctx, id, reason, attempt, EventSource::Api).await
}

#[tracing::instrument(name = "cancel_checkout", skip_all, fields(checkout_id = %id))]
async fn cancel_as(
    ctx: &Context,
    id: &CheckoutId,
    reason: Option<&str>,
    attempt: Attempt,
    source: EventSource,
) -> Result<Checkout, ChangeError> {
    let done = |c: &Checkout| c.status == CheckoutStatus::Canceled;
    let checkout = current(ctx, id).await?;
    if attempt == Attempt::Resumed && done(&checkout) {
        return Ok(checkout);
    }
    if !cancelable(checkout.status) {
        return Err(ChangeError::NotAllowed(checkout.status));
    }
    let answer = if checkout.status == CheckoutStatus::RequiresCapture {
        ctx.psp.cancel_authorization(id.as_str(), reason).await
    } else {
        ctx.psp.cancel_order(id.as_str()).await
    };
    let canceled = match answer {
        Ok(canceled) => canceled,
        Err(e @ (PspError::Rejected { .. } | PspError::Declined { .. })) => {
            return refused(ctx, id, &e, attempt, done).await;
        }
        Err(e) => return Err(outcome_unknown(ctx, id, e).await),
    };
    let after = apply(ctx, id, source, News::CanceledAtMsp(&canceled))
        .await
        .map_err(unrecorded)?;
    if after.status == CheckoutStatus::Canceled {
        Ok(after)
    } else {
        // MSP's news got there first and moved the checkout on: say what it is.
        Err(ChangeError::NotAllowed(after.status))
    }
}

#[tracing::instrument(name = "capture", skip_all, fields(checkout_id = %id))]
pub async fn capture(
    ctx: &Context,
    id: &CheckoutId,
    amount: Option<MinorUnits>,
    attempt: Attempt,
) -> Result<Checkout, ChangeError> {
    let checkout = current(ctx, id).await?;
    // What MSP says is still capturable, by default all of it (a resumed capture of a checkout
    // already captured compares with the whole authorisation, as it was asked).
    let capturable = match checkout.capturable() {
        Some(left) if checkout.status == CheckoutStatus::RequiresCapture => left,
        _ => checkout.amount,
    };
    let amount = amount.unwrap_or(capturable);
    // Captured, of this amount: MSP allows one capture, so this one.
    let done = |c: &Checkout| {
        c.amount_captured == Some(amount) && c.status != CheckoutStatus::RequiresCapture
    };
    if attempt == Attempt::Resumed && done(&checkout) {
        return Ok(checkout);
    }
    if checkout.status != CheckoutStatus::RequiresCapture {
        return Err(ChangeError::NotAllowed(checkout.status));
    }
    if amount > capturable {
        return Err(ChangeError::TooLarge {
            authorised: capturable,
        });
    }
    let new_order_id = format!("{id}-c");
    let request = CaptureRequest {
        order_id: id.as_str(),
        amount: amount.value(),
        new_order_id: &new_order_id,
    };
    let accepted = match ctx.psp.capture(&request).await {
        Ok(accepted) => accepted,
        Err(e @ (PspError::Rejected { .. } | PspError::Declined { .. })) => {
            return refused(ctx, id, &e, attempt, done).await;
        }
        Err(e) => return Err(outcome_unknown(ctx, id, e).await),
    };
    let news = News::Captured {
        amount,
        accepted: &accepted,
    };
    apply(ctx, id, EventSource::Api, news)
        .await
        .map_err(unrecorded)
}

async fn current(ctx: &Context, id: &CheckoutId) -> Result<Checkout, ChangeError> {
    Ok(ctx
        .store
        .get(id)
        .await?
        .ok_or(ChangeError::NotFound)?
        .checkout)
}

/// The change MSP agreed to could not be stored.
fn unrecorded(e: ApplyError) -> ChangeError {
    match e {
        ApplyError::Store(e) => ChangeError::Unrecorded(e),
        ApplyError::NotFound => ChangeError::NotFound,
    }
}

/// MSP refused: the order has most likely moved on. Sync so that the checkout shows MSP's
/// status, and answer that status, unless this request resumes one whose change MSP had made
/// (`done` says so of the synced checkout): then that change is the answer.
async fn refused(
    ctx: &Context,
    id: &CheckoutId,
    refusal: &PspError,
    attempt: Attempt,
    done: impl Fn(&Checkout) -> bool,
) -> Result<Checkout, ChangeError> {
    tracing::info!(error = %refusal, "MultiSafepay refused; syncing the checkout with it");
    let msp = match refusal {
        PspError::Rejected { error_info, .. } | PspError::Declined { error_info, .. } => {
            error_info.clone()
        }
        other => other.to_string(),
    };
    let checkout = match sync(ctx, id, EventSource::Api).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "could not sync after MultiSafepay's refusal");
            current(ctx, id).await?
        }
    };
    if attempt == Attempt::Resumed && done(&checkout) {
        tracing::info!("the interrupted request's change had been made at MultiSafepay");
        return Ok(checkout);
    }
    Err(ChangeError::Refused {
        status: checkout.status,
        msp,
    })
}

/// MSP's answer is unknown: it may have made the change. Nothing is changed here; the
/// reconciler is asked to look at the order at once (a notification may tell first).
async fn outcome_unknown(ctx: &Context, id: &CheckoutId, e: PspError) -> ChangeError {
    tracing::warn!(error = %e, "MultiSafepay's answer is unknown; the reconciler will read the order");
    if let Err(e) = ctx
        .store
        .schedule_sync(id, ctx.clock.now().timestamp())
        .await
    {
        tracing::warn!(error = %e, "could not put the checkout in the reconciler's index");
    }
    ChangeError::OutcomeUnknown(e)
}
