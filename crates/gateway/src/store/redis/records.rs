//! The JSON stored under an idempotency key.

use serde::{Deserialize, Serialize};

use crate::store::{Claim, IdempotencyBegin, StoredResponse};

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
    /// What the request creates (the checkout id), recorded before MSP hears of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Until when (Unix ms, the gateway's clock) a processing claim counts as in flight; after
    /// that a retry takes it over. Absent: until the key expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_until_ms: Option<i64>,
    /// Released by its owner after a failure that sent nothing to MSP: the next claim with the
    /// same fingerprint takes it over at once, keeping the resource. (Its in-flight time is
    /// set over too, so that an older instance takes it over as an interrupted claim.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
}

impl IdempotencyRecord {
    pub const SCHEMA_VERSION: u32 = 1;

    pub fn processing(claim: &Claim<'_>, owner: &str) -> Self {
        Self {
            schema_version: Self::SCHEMA_VERSION,
            state: IdempotencyState::Processing,
            fingerprint: claim.fingerprint.to_owned(),
            owner: owner.to_owned(),
            response: None,
            resource: claim.resource.map(str::to_owned),
            in_flight_until_ms: claim.in_flight_until_ms(),
            released: false,
        }
    }

    /// This claim, released by its owner (see `released`).
    pub fn released(&self) -> Self {
        Self {
            released: true,
            in_flight_until_ms: Some(0),
            ..self.clone()
        }
    }

    /// The claim of a request that never finished, taken over by `claim` under `owner`: it
    /// keeps the interrupted request's resource. `None` unless this record is a processing
    /// claim for the same fingerprint whose in-flight time is over.
    pub fn take_over(&self, claim: &Claim<'_>, owner: &str) -> Option<Self> {
        let lapsed = self.released
            || self
                .in_flight_until_ms
                .is_some_and(|until| until <= claim.now_ms);
        (self.state == IdempotencyState::Processing
            && lapsed
            && self.fingerprint == claim.fingerprint)
            .then(|| Self {
                owner: owner.to_owned(),
                in_flight_until_ms: claim.in_flight_until_ms(),
                released: false,
                resource: self
                    .resource
                    .clone()
                    .or_else(|| claim.resource.map(str::to_owned)),
                ..self.clone()
            })
    }

    pub fn is_processing_by(&self, owner: &str) -> bool {
        self.state == IdempotencyState::Processing && self.owner == owner
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
