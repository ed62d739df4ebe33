//! Asking MSP what happened (`GET /orders/{id}`) and applying the answer. Used by
//! `?refresh=true`, GET notifications, the browser return and the reconciler.

use super::Context;
use super::apply::{ApplyError, apply};
use super::transition::News;
use crate::domain::checkout::{Checkout, CheckoutId, EventSource};
use crate::psp::PspError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("no such checkout")]
    NotFound,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// MSP could not be asked (unreachable, or an unusable answer); nothing changed.
    #[error("MultiSafepay could not be asked: {0}")]
    Psp(PspError),
}

impl From<ApplyError> for SyncError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::NotFound => Self::NotFound,
            ApplyError::Store(e) => Self::Store(e),
        }
    }
}

/// Fetches the order from MSP and applies it.
#[tracing::instrument(name = "sync_with_msp", skip_all, fields(checkout_id = %id, source = source.as_str()))]
pub async fn sync(
    ctx: &Context,
    id: &CheckoutId,
    source: EventSource,
) -> Result<Checkout, SyncError> {
    let order = ctx
        .psp
        .get_order(id.as_str())
        .await
        .map_err(SyncError::Psp)?;
    Ok(apply(ctx, id, source, News::Order(&order)).await?)
}

/// The shopper's browser is back from MSP (`/return` or `/cancel`). The status is synced with
/// MSP unless it is settled already; if MSP cannot be asked, the checkout becomes `processing`
/// (the shopper has returned, so it no longer waits for them) and the redirect still goes out.
#[tracing::instrument(name = "browser_return", skip_all, fields(checkout_id = %id))]
pub async fn shopper_returned(ctx: &Context, id: &CheckoutId) -> Result<Checkout, SyncError> {
    let stored = ctx.store.get(id).await?.ok_or(SyncError::NotFound)?;
    if stored.checkout.status.is_settled() {
        return Ok(stored.checkout);
    }
    let answer = ctx.psp.get_order(id.as_str()).await;
    if let Err(e) = &answer {
        tracing::warn!(error = %e, "MultiSafepay could not be asked on the shopper's return; marking processing");
    }
    let news = News::ShopperReturned {
        order: answer.as_ref().ok(),
    };
    Ok(apply(ctx, id, EventSource::BrowserReturn, news).await?)
}
