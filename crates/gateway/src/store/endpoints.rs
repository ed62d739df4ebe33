//! The webhook endpoints' store: few records (at most
//! [`MAX_ENDPOINTS`](crate::domain::webhook_endpoint::MAX_ENDPOINTS)), read whole by the
//! deliverer for every event it fans out, changed by one compare-and-set each.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::webhook_endpoint::{WebhookEndpoint, WebhookEndpointId};

/// What [`WebhookEndpoints::put_endpoint`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutReply {
    Written,
    /// The stored endpoint is not the expected one any more (or exists already, for an insert,
    /// or is gone, for a replace): nothing was written. Read again and decide again.
    Conflict,
    /// An insert beyond the most endpoints kept.
    Full,
}

#[async_trait]
pub trait WebhookEndpoints: Send + Sync + 'static {
    /// Writes `next` if the stored endpoint with its id is still `expected` (`None`: there is
    /// none yet, and fewer than `max` endpoints are stored).
    async fn put_endpoint(
        &self,
        next: &WebhookEndpoint,
        expected: Option<&WebhookEndpoint>,
        max: usize,
    ) -> Result<PutReply, StoreError>;

    async fn endpoint(&self, id: &WebhookEndpointId)
    -> Result<Option<WebhookEndpoint>, StoreError>;

    /// Every endpoint, newest first.
    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError>;

    /// Deletes the endpoint if it is still `expected`; `false` when it changed or is gone.
    async fn delete_endpoint(&self, expected: &WebhookEndpoint) -> Result<bool, StoreError>;
}
