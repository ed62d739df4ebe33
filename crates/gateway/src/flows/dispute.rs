//! Answering a dispute: the merchant's evidence goes to MSP file by file
//! (`POST /orders/{id}/files`), then the dispute records `evidence_submitted_at` with the
//! checkout's one compare-and-set. Only a dispute that needs a response takes evidence.

use super::Context;
use super::apply::{ApplyError, apply};
use super::transition::News;
use crate::domain::checkout::{Checkout, EventSource};
use crate::domain::dispute::{DisputeId, DisputeStatus};
use crate::psp::{EvidenceFile, PspError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DisputeError {
    #[error("no such dispute")]
    NotFound,
    /// Evidence is taken only while the dispute needs a response.
    #[error("the dispute is {0}")]
    NotOpen(DisputeStatus),
    /// The dispute's `respond_by` has passed with no evidence: MSP accepts it for the shopper.
    #[error("the dispute's deadline has passed")]
    Overdue,
    /// MSP did not take file `index` (those before it it has).
    #[error("MultiSafepay did not take evidence file {index}: {source}")]
    Psp {
        index: usize,
        #[source]
        source: PspError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ApplyError> for DisputeError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::NotFound => Self::NotFound,
            ApplyError::Store(e) => Self::Store(e),
        }
    }
}

/// The checkout holding dispute `id`, if there is one.
pub async fn find(ctx: &Context, id: &DisputeId) -> Result<Option<Checkout>, StoreError> {
    let Some(checkout_id) = id.checkout_id() else {
        return Ok(None);
    };
    Ok(ctx
        .store
        .get(&checkout_id)
        .await?
        .map(|v| v.checkout)
        .filter(|c| c.dispute(id).is_some()))
}

/// Sends `files` to MSP for dispute `id`, then records that evidence was submitted; returns the
/// checkout afterwards. Nothing is sent unless the dispute needs a response.
#[tracing::instrument(name = "submit_evidence", skip_all, fields(dispute_id = %id))]
pub async fn submit_evidence(
    ctx: &Context,
    id: &DisputeId,
    files: &[EvidenceFile<'_>],
) -> Result<Checkout, DisputeError> {
    let checkout = find(ctx, id).await?.ok_or(DisputeError::NotFound)?;
    let dispute = checkout.dispute(id).ok_or(DisputeError::NotFound)?;
    if dispute.status != DisputeStatus::NeedsResponse {
        return Err(DisputeError::NotOpen(dispute.status));
    }
    let now = ctx.clock.now();
    if dispute.evidence_submitted_at.is_none() && dispute.respond_by.is_some_and(|by| by < now) {
        return Err(DisputeError::Overdue);
    }
    for (index, file) in files.iter().enumerate() {
        ctx.psp
            .upload_evidence(checkout.id.as_str(), file)
            .await
            .map_err(|source| DisputeError::Psp { index, source })?;
    }
    tracing::info!(files = files.len(), "evidence sent to MultiSafepay");
    Ok(apply(
        ctx,
        &checkout.id,
        EventSource::Api,
        News::EvidenceSubmitted(id),
    )
    .await?)
}
