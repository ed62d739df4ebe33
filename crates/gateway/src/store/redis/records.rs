//! The JSON stored under an idempotency key.

use serde::{Deserialize, Serialize};

use crate::store::{IdempotencyBegin, StoredResponse};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum IdempotencyState {
    Processing,
    Completed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct IdempotencyRecord {
    /// Bumped when this layout changes incompatibly.
    pub schema_version: u32,
    pub state: IdempotencyState,
    /// A keyed HMAC of the request (computed by the caller), never the body itself.
    pub fingerprint: String,
    /// The claim's owner token: only its holder may complete or abort.
    pub owner: String,
    pub response: Option<StoredResponse>,
}

impl IdempotencyRecord {
    pub const SCHEMA_VERSION: u32 = 1;

    pub fn processing(fingerprint: &str, owner: &str) -> Self {
        Self {
            schema_version: Self::SCHEMA_VERSION,
            state: IdempotencyState::Processing,
            fingerprint: fingerprint.to_owned(),
            owner: owner.to_owned(),
            response: None,
        }
    }

    pub fn is_processing_by(&self, owner: &str) -> bool {
        self.state == IdempotencyState::Processing && self.owner == owner
    }

    /// The completed record, when `owner` still holds the claim.
    pub fn complete(self, owner: &str, response: &StoredResponse) -> Option<Self> {
        self.is_processing_by(owner).then(|| Self {
            state: IdempotencyState::Completed,
            response: Some(response.clone()),
            ..self
        })
    }

    pub fn into_begin(self) -> IdempotencyBegin {
        match (self.state, self.response) {
            (IdempotencyState::Completed, Some(response)) => IdempotencyBegin::Completed {
                fingerprint: self.fingerprint,
                response,
            },
            // A completed record without a response cannot be written by `complete`; treat it
            // like a request still running, which the caller answers with 409 (retry later).
            _ => IdempotencyBegin::InFlight {
                fingerprint: self.fingerprint,
            },
        }
    }
}
