//! Resuming a keyed create whose first request never finished (the gateway stopped), when its
//! retry comes: the checkout that request stored is answered, synced with MSP first, or created
//! now under the recorded id if nothing was stored (then nothing reached MSP either: the record
//! is stored before MSP is called, see [`create`](super::create)). Never a second MSP order: the
//! id is MSP's order id.

use super::Context;
use super::abandon::{CreateCall, sync_or_abandon};
use super::apply::{ApplyError, apply};
use super::create::{CreateError, create_checkout_as};
use super::sync::SyncError;
use super::transition::News;
use crate::domain::checkout::{Checkout, CheckoutId, EventSource};
use crate::domain::new_checkout::NewCheckout;
use crate::psp::PspError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// Nothing was stored, and creating the checkout now went as a create can go.
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error("the store is unavailable")]
    Store(#[source] StoreError),
    /// The stored checkout was gone by the time it was synced (it expired meanwhile).
    #[error("no such checkout")]
    NotFound,
}

/// Resumes the create of checkout `id` (recorded by the interrupted request's idempotency
/// claim) and returns the checkout to answer.
pub async fn resume_create(
    ctx: &Context,
    id: CheckoutId,
    new: &NewCheckout,
) -> Result<Checkout, ResumeError> {
    let stored = ctx.store.get(&id).await.map_err(ResumeError::Store)?;
    let Some(stored) = stored else {
        tracing::warn!(checkout_id = %id, "resuming a keyed create that stored nothing: creating it now");
        return Ok(create_checkout_as(ctx, id, new).await?);
    };
    tracing::warn!(checkout_id = %id, status = stored.checkout.status.as_str(), "resuming a keyed create that was interrupted: answering its checkout");
    // A checkout waiting for 3-D Secure has no pay link now (MSP sends it only in the create
    // answer, which the interrupted request never passed on): it is cancelled at MSP.
    let checkout = match sync_or_abandon(
        ctx,
        &stored.checkout,
        EventSource::Refresh,
        CreateCall::Over,
    )
    .await
    {
        Ok(checkout) => checkout,
        // MSP never got the order (the gateway stopped before the call arrived): nothing was
        // charged; the checkout fails with a message saying so, as the reconciler would do.
        Err(SyncError::Psp(PspError::NotFound { failure })) => apply(
            ctx,
            &id,
            EventSource::Refresh,
            News::NeverReceived(&failure),
        )
        .await
        .map_err(|e| match e {
            ApplyError::Store(e) => ResumeError::Store(e),
            ApplyError::NotFound => ResumeError::NotFound,
        })?,
        // MSP cannot be asked now: answer what is stored; the reconciler resolves it.
        Err(SyncError::Psp(e)) => {
            tracing::warn!(error = %e, "MultiSafepay could not be asked while resuming; answering the stored checkout");
            stored.checkout
        }
        Err(SyncError::Store(e)) => return Err(ResumeError::Store(e)),
        Err(SyncError::NotFound) => return Err(ResumeError::NotFound),
    };
    Ok(checkout)
}
