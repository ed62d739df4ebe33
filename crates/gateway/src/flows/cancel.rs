//! Cancel a checkout (design §10.2) and capture an authorisation (design §10.3): MSP first, then
//! the checkout, through the one transition pipeline. When MSP refuses because the order moved on
//! (it completed meanwhile), the checkout is synced so that it shows MSP's status, and the caller
//! hears what that status is.

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
    /// MSP could not be asked or answered something unusable; nothing changed here.
    #[error(transparent)]
    Psp(PspError),
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

/// Statuses a merchant may cancel: the shopper has not paid, or only an authorisation exists.
pub fn cancelable(status: CheckoutStatus) -> bool {
    matches!(
        status,
        CheckoutStatus::RequiresAction
            | CheckoutStatus::Processing
            | CheckoutStatus::RequiresCapture
    )
}

#[tracing::instrument(name = "cancel_checkout", skip_all, fields(checkout_id = %id))]
pub async fn cancel_checkout(
    ctx: &Context,
    id: &CheckoutId,
    reason: Option<&str>,
) -> Result<Checkout, ChangeError> {
    let checkout = current(ctx, id).await?;
    if !cancelable(checkout.status) {
        return Err(ChangeError::NotAllowed(checkout.status));
    }
    let answer = if checkout.status == CheckoutStatus::RequiresCapture {
        ctx.psp.cancel_authorization(id.as_str(), reason).await
    } else {
        ctx.psp.cancel_order(id.as_str()).await
    };
    match answer {
        Ok(()) => {}
        Err(e @ (PspError::Rejected { .. } | PspError::Declined { .. })) => {
            return Err(moved_on(ctx, id, &e).await);
        }
        Err(e) => return Err(ChangeError::Psp(e)),
    }
    let after = apply(ctx, id, EventSource::Api, News::CanceledAtMsp).await?;
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
) -> Result<Checkout, ChangeError> {
    let checkout = current(ctx, id).await?;
    if checkout.status != CheckoutStatus::RequiresCapture {
        return Err(ChangeError::NotAllowed(checkout.status));
    }
    let amount = amount.unwrap_or(checkout.amount);
    if amount > checkout.amount {
        return Err(ChangeError::TooLarge {
            authorised: checkout.amount,
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
            return Err(moved_on(ctx, id, &e).await);
        }
        Err(e) => return Err(ChangeError::Psp(e)),
    };
    let news = News::Captured {
        amount,
        accepted: &accepted,
    };
    Ok(apply(ctx, id, EventSource::Api, news).await?)
}

async fn current(ctx: &Context, id: &CheckoutId) -> Result<Checkout, ChangeError> {
    Ok(ctx
        .store
        .get(id)
        .await?
        .ok_or(ChangeError::NotFound)?
        .checkout)
}

/// MSP refused: the order has most likely moved on. Sync so that the checkout shows MSP's
/// status, and answer that status.
async fn moved_on(ctx: &Context, id: &CheckoutId, refusal: &PspError) -> ChangeError {
    tracing::info!(error = %refusal, "MultiSafepay refused; syncing the checkout with it");
    let msp = match refusal {
        PspError::Rejected { error_info, .. } | PspError::Declined { error_info, .. } => {
            error_info.clone()
        }
        other => other.to_string(),
    };
    let status = match sync(ctx, id, EventSource::Api).await {
        Ok(c) => c.status,
        Err(e) => {
            tracing::warn!(error = %e, "could not sync after MultiSafepay's refusal");
            match current(ctx, id).await {
                Ok(c) => c.status,
                Err(e) => return e,
            }
        }
    };
    ChangeError::Refused { status, msp }
}
