//! Asking MSP what happened (`GET /orders/{id}`) and applying the answer. Used by
//! `?refresh=true`, GET notifications, the browser return and the reconciler.

use super::Context;
use super::apply::{ApplyError, apply};
use super::coalesce::Caller;
use super::transition::News;
use crate::domain::checkout::{Checkout, CheckoutId, EventSource};
use crate::psp::{PaymentStatus, PspError};

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

/// As [`sync`], for a GET notification: concurrent ones for one checkout share one MSP call
/// ([`coalesce`](super::coalesce)); one that arrives while a call is running waits for the next.
pub async fn sync_notified(ctx: &Context, id: &CheckoutId) -> Result<Checkout, SyncError> {
    let shared = ctx
        .syncs
        .run(id, Caller::Notification, &ctx.clock, || {
            sync(ctx, id, EventSource::Notification)
        })
        .await;
    match shared {
        Some(result) => result,
        None => stored(ctx, id).await,
    }
}

async fn stored(ctx: &Context, id: &CheckoutId) -> Result<Checkout, SyncError> {
    Ok(ctx
        .store
        .get(id)
        .await?
        .ok_or(SyncError::NotFound)?
        .checkout)
}

/// The shopper's browser is back from MSP (`/return` or `/cancel`). The status is synced with
/// MSP unless it is settled already; if MSP cannot be asked, the checkout becomes `processing`
/// (the shopper has returned, so it no longer waits for them) and the redirect still goes out.
///
/// These URLs carry no secret, so a visit must not hurt the checkout:
/// - while MSP says the order is still `initialized` and the 3-D Secure window is open, the visit
///   is only a sync: the checkout keeps `requires_action` and its pay link, whoever visited (a
///   stranger's visit cannot take the challenge away from the shopper);
/// - visits share their MSP call ([`coalesce`](super::coalesce)): concurrent ones wait for one
///   call, and a checkout synced in the last few seconds is answered from the store.
#[tracing::instrument(name = "browser_return", skip_all, fields(checkout_id = %id))]
pub async fn shopper_returned(ctx: &Context, id: &CheckoutId) -> Result<Checkout, SyncError> {
    let stored_now = ctx.store.get(id).await?.ok_or(SyncError::NotFound)?;
    if stored_now.checkout.status.is_settled() {
        return Ok(stored_now.checkout);
    }
    let shared = ctx
        .syncs
        .run(id, Caller::Browser, &ctx.clock, || async {
            let answer = ctx.psp.get_order(id.as_str()).await;
            let news = match &answer {
                Err(e) => {
                    tracing::warn!(error = %e, "MultiSafepay could not be asked on the shopper's return; marking processing");
                    News::ShopperReturned { order: None }
                }
                Ok(order)
                    if order.status == PaymentStatus::AwaitingShopper
                        && ctx.clock.now() <= stored_now.checkout.expires_at =>
                {
                    News::Order(order)
                }
                Ok(order) => News::ShopperReturned { order: Some(order) },
            };
            let applied = apply(ctx, id, EventSource::BrowserReturn, news)
                .await
                .map_err(NotShared::Failed)?;
            // Only an answer from MSP may stand in for the next visits.
            if answer.is_ok() {
                Ok(applied)
            } else {
                Err(NotShared::MspSilent(Box::new(applied)))
            }
        })
        .await;
    match shared {
        Some(Ok(checkout)) => Ok(checkout),
        Some(Err(NotShared::MspSilent(checkout))) => Ok(*checkout),
        Some(Err(NotShared::Failed(e))) => Err(e.into()),
        None => stored(ctx, id).await,
    }
}

/// A browser sync whose result must not stand in for the visits after it.
enum NotShared {
    /// MSP could not be asked; the checkout was still updated (`processing`).
    MspSilent(Box<Checkout>),
    Failed(ApplyError),
}
