//! The webhook endpoints in memory (the sandbox): the Redis store's semantics, one lock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::webhook_endpoint::{WebhookEndpoint, WebhookEndpointId};
use crate::store::StoreError;
use crate::store::endpoints::{PutReply, WebhookEndpoints};

#[derive(Default)]
pub(super) struct Endpoints(Mutex<BTreeMap<WebhookEndpointId, WebhookEndpoint>>);

impl Endpoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<WebhookEndpointId, WebhookEndpoint>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl WebhookEndpoints for MemoryStore {
    async fn put_endpoint(
        &self,
        next: &WebhookEndpoint,
        expected: Option<&WebhookEndpoint>,
        max: usize,
    ) -> Result<PutReply, StoreError> {
        let mut all = self.endpoints.lock();
        match (all.get(&next.id), expected) {
            (None, None) if all.len() >= max => return Ok(PutReply::Full),
            (None, None) => {}
            (Some(current), Some(expected)) if current == expected => {}
            _ => return Ok(PutReply::Conflict),
        }
        all.insert(next.id.clone(), next.clone());
        Ok(PutReply::Written)
    }

    async fn endpoint(
        &self,
        id: &WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        Ok(self.endpoints.lock().get(id).cloned())
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        Ok(self.endpoints.lock().values().rev().cloned().collect())
    }

    async fn delete_endpoint(&self, expected: &WebhookEndpoint) -> Result<bool, StoreError> {
        let mut all = self.endpoints.lock();
        if all.get(&expected.id) != Some(expected) {
            return Ok(false);
        }
        all.remove(&expected.id);
        Ok(true)
    }
}
