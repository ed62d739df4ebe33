//! Where checkouts live: one trait, two implementations.
//!
//! - [`redis::RedisStore`] for `serve` and the tests (a multiplexed connection manager, or the
//!   cluster client; Lua for every atomic step; hash-tagged keys so the same code runs on Redis
//!   Cluster).
//! - [`memory::MemoryStore`] for the `sandbox` command only.
//!
//! One contract test suite (`tests/store/`) runs against both. Handlers never issue raw
//! commands: they call these domain operations. Every key has a TTL (design §6).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::checkout::{Checkout, CheckoutEvent, CheckoutId, PaySession};
use crate::domain::refund::RefundId;

pub mod keys;
pub mod listing;
pub mod memory;
pub mod redis;
pub mod timeline;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or did not answer in time: the caller answers 503.
    #[error("the store is unavailable: {message}")]
    Unavailable {
        /// What failed, in words for the log.
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// A stored value could not be decoded: a bug or a schema change, never the caller's fault.
    #[error("a stored value is corrupt: {message}")]
    Corrupt {
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

/// The error underneath a [`StoreError`], kept typed so that the log shows the whole chain and
/// a caller can tell, say, a timeout from a refused connection.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Redis(#[from] ::redis::RedisError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Redis did not answer within the command or connect timeout.
    #[error(transparent)]
    Timeout(#[from] tokio::time::error::Elapsed),
}

impl StoreError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::Corrupt {
            message: message.into(),
            source: None,
        }
    }

    /// The same error, with the error it comes from.
    pub fn caused_by(self, cause: impl Into<Cause>) -> Self {
        let source = Some(cause.into());
        match self {
            Self::Unavailable { message, .. } => Self::Unavailable { message, source },
            Self::Corrupt { message, .. } => Self::Corrupt { message, source },
        }
    }
}

/// A stored checkout with the version its compare-and-set is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub checkout: Checkout,
    /// Starts at 1 on insert and goes up by one with every successful compare-and-set.
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertReply {
    Inserted,
    /// A checkout with that id exists already; nothing was written.
    AlreadyExists,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasReply {
    /// Written; the new version.
    Applied { version: u64 },
    /// Someone else wrote first; nothing was written. Re-read and decide again.
    Conflict,
    /// No such checkout (expired or never existed).
    NotFound,
}

/// A response stored under an idempotency key, replayed byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// This request owns the key now; finish with `idempotency_complete` or `idempotency_abort`
    /// using the owner token.
    Started { owner: String },
    /// Another request with this key is still running.
    InFlight { fingerprint: String },
    /// A request with this key has finished; its fingerprint and response.
    Completed {
        fingerprint: String,
        response: StoredResponse,
    },
}

/// A short lock, held by whoever knows the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockToken(pub String);

/// Time-to-live settings every write applies (design §2, §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttls {
    /// Checkout record and its events (`checkout.retention_s`).
    pub retention: Duration,
    /// Pending 3DS session (`checkout.session_ttl_s`).
    pub session: Duration,
    /// Idempotency records (24 h, Stripe's window).
    pub idempotency: Duration,
}

#[async_trait]
pub trait CheckoutStore: Send + Sync + 'static {
    /// One round trip, for `/health/ready`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a new checkout at version 1 with its first event, atomically.
    async fn insert(
        &self,
        checkout: &Checkout,
        event: &CheckoutEvent,
    ) -> Result<InsertReply, StoreError>;

    async fn get(&self, id: &CheckoutId) -> Result<Option<Versioned>, StoreError>;

    /// Enters a new checkout in the listing indexes (design §11: all, its status, its
    /// reference). Called *before* [`insert`](Self::insert): an entry whose record is missing is
    /// skipped by the reader, a record without its entries could never be listed.
    async fn index_for_listing(&self, checkout: &Checkout) -> Result<(), StoreError>;

    /// Moves `checkout` from the status index of `previous` to its own. Called after the
    /// compare-and-set that changed the status; idempotent, and only a hint (the reader
    /// re-checks every record's status).
    async fn reindex_status(
        &self,
        checkout: &Checkout,
        previous: crate::domain::checkout::CheckoutStatus,
    ) -> Result<(), StoreError>;

    /// One page of checkouts, newest first (`GET /v1/checkouts`), from the indexes: its cost
    /// does not grow with the number of checkouts stored.
    async fn list_checkouts(
        &self,
        query: &listing::ListQuery,
    ) -> Result<listing::ListReply, StoreError>;

    /// Replaces the checkout if its stored version is still `expected_version`, appending `event`
    /// when given, atomically (one Lua script: record, events and their TTLs).
    async fn compare_and_set(
        &self,
        expected_version: u64,
        next: &Checkout,
        event: Option<&CheckoutEvent>,
    ) -> Result<CasReply, StoreError>;

    /// The checkout's events, oldest first. Empty when the checkout is unknown.
    async fn events(&self, id: &CheckoutId) -> Result<Vec<CheckoutEvent>, StoreError>;

    /// Stores the pending 3DS session under its pay token, with the session TTL.
    async fn put_pay_session(&self, token: &str, session: &PaySession) -> Result<(), StoreError>;

    async fn get_pay_session(&self, token: &str) -> Result<Option<PaySession>, StoreError>;

    /// Remembers which checkout refund `refund` belongs to (the refund lives in the checkout's
    /// record), for the checkout's retention. Written before the refund is reserved, so that a
    /// reserved refund can always be found by its id.
    async fn index_refund(
        &self,
        refund: &RefundId,
        checkout: &CheckoutId,
    ) -> Result<(), StoreError>;

    /// The checkout refund `refund` belongs to, if it was indexed.
    async fn checkout_of_refund(&self, refund: &RefundId)
    -> Result<Option<CheckoutId>, StoreError>;

    /// Claims an idempotency key (`SET NX` with the idempotency TTL) for a request with this
    /// fingerprint, or reports what the key already holds.
    async fn idempotency_begin(
        &self,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyBegin, StoreError>;

    /// Stores the final response under the key, if `owner` still owns it.
    async fn idempotency_complete(
        &self,
        key: &str,
        owner: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;

    /// Releases the key (compare-and-delete on the owner), so that a retry can run again; used
    /// when nothing was sent to MSP.
    async fn idempotency_abort(&self, key: &str, owner: &str) -> Result<(), StoreError>;

    /// Puts the checkout in the reconciler's due-time index (ZADD; idempotent).
    async fn schedule_sync(&self, id: &CheckoutId, due_unix: i64) -> Result<(), StoreError>;

    /// Takes the checkout out of the due-time index (ZREM; idempotent).
    async fn unschedule_sync(&self, id: &CheckoutId) -> Result<(), StoreError>;

    /// Checkouts due at or before `now_unix`, earliest first, at most `limit`.
    async fn due_for_sync(
        &self,
        now_unix: i64,
        limit: usize,
    ) -> Result<Vec<CheckoutId>, StoreError>;

    /// `SET NX EX` with a fresh owner token; `None` when someone else holds it.
    async fn try_lock(
        &self,
        id: &CheckoutId,
        ttl: Duration,
    ) -> Result<Option<LockToken>, StoreError>;

    /// Compare-and-delete: releases the lock only if `token` still owns it.
    async fn unlock(&self, id: &CheckoutId, token: &LockToken) -> Result<(), StoreError>;
}
