//! Where checkouts live: a store trait per concern, two implementations.
//!
//! - [`Records`]: checkout records, their history and compare-and-set transitions, pay
//!   sessions, the refund index.
//! - [`Listing`]: the listing indexes (`GET /v1/checkouts`).
//! - [`Idempotency`]: idempotency keys.
//! - [`SyncIndex`]: the reconciler's due-time index.
//! - [`EventOutbox`]: merchant events, their index, outbox and deliveries.
//! - [`Locks`]: short per-checkout locks.
//! - [`WebhookEndpoints`]: the merchant's webhook endpoints.
//! - [`ConsoleData`]: the operators' console: sessions, sign-in failures, actions, search
//!   indexes.
//! - [`Activity`]: the operator console's per-checkout logs and hourly statistics.
//!
//! [`CheckoutStore`] is their union (implemented for whatever implements them all): the
//! service holds an `Arc<dyn CheckoutStore>` and callers `use` the traits whose methods they
//! call. Each operation has one name, the trait's: the implementations have no inherent
//! aliases.
//!
//! - [`redis::RedisStore`] for `serve` and the tests (a multiplexed connection manager, or the
//!   cluster client; Lua for every atomic step; hash-tagged keys so the same code runs on Redis
//!   Cluster).
//! - [`memory::MemoryStore`] for the `sandbox` command only.
//!
//! One contract test suite (`tests/store/`) runs against both. Handlers never issue raw
//! commands: they call these domain operations. Every key has a TTL.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::domain::checkout::{Checkout, CheckoutEvent, CheckoutId, PaySession};
use crate::domain::event::{Delivery, Event, EventId, EventOwner, EventType};
use crate::domain::refund::RefundId;
use crate::domain::webhook_endpoint::WebhookEndpointId;
pub use activity::Activity;
pub use console::ConsoleData;
pub use endpoints::WebhookEndpoints;

pub mod activity;
pub mod console;
pub mod endpoints;
pub mod keys;
pub mod listing;
pub mod memory;
pub mod payment_methods;
pub mod redis;
pub mod sweep;
pub mod timeline;

pub use payment_methods::{PaymentMethodPage, PaymentMethods};

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
    /// Someone else wrote first; nothing was written. Decide again on `current`, the
    /// checkout as the winner left it.
    Conflict { current: Box<Versioned> },
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
    Started {
        owner: String,
        /// The resource the claim records: this request's own, or, when `resumed`, the one the
        /// interrupted request had recorded (work with that one).
        resource: Option<String>,
        /// The key was taken over from a request whose claim outlived its in-flight time (it
        /// crashed): the work may have begun already.
        resumed: bool,
        /// An earlier request with this key failed having sent nothing to MSP and released it
        /// ([`Idempotency::idempotency_abort`]), keeping its resource: what that request wrote
        /// may have landed after it stopped waiting (a stalled Redis), never sent on. Go on
        /// with that resource, not a new one.
        released: bool,
    },
    /// Another request with this key is still running.
    InFlight { fingerprint: String },
    /// A request with this key has finished; its fingerprint and response.
    Completed {
        fingerprint: String,
        response: StoredResponse,
    },
}

/// What one compare-and-set adds to its checkout's events and outbox, in the same
/// atomic step as the record.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outbox<'a> {
    /// The merchant events of this change; kept as long as the checkout.
    pub events: &'a [Event],
    /// Queue them for delivery, due at this time (a webhook URL is configured); `None` keeps
    /// them for the events API only.
    pub deliver_at: Option<DateTime<Utc>>,
    /// When queued, the time the outbox index announces them at (`deliver_at` plus a grace):
    /// from then on any instance may deliver them, should this one not have.
    pub announce_at: Option<DateTime<Utc>>,
    /// When queued, whether `webhooks.url` gets them (it is configured): their delivery
    /// records start pending. Without it they are queued for the webhook endpoints only,
    /// and their `delivery` stays `null`.
    pub to_url: bool,
    /// The operator console's records that go with this change (the MSP calls that led to
    /// it, its notification, the hour's counts), written only when it is applied and never
    /// its error.
    pub activity: Option<&'a activity::Pending>,
}

impl Outbox<'_> {
    /// No events.
    pub const NONE: Outbox<'static> = Outbox {
        events: &[],
        deliver_at: None,
        announce_at: None,
        to_url: false,
        activity: None,
    };
}

/// An entry of the outbox index: a checkout (or payment method) whose outbox may have events
/// due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub owner: EventOwner,
    /// The entry's score as read (ms since the epoch); settling compares against it.
    pub due_ms: i64,
}

/// An event with its delivery (none when the event was never queued for delivery).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub event: Event,
    pub delivery: Option<Delivery>,
}

/// Where one delivery of an event goes: the configured `webhooks.url`, or one
/// webhook endpoint. Each has its own delivery record, attempts and retries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryTarget {
    Url,
    Endpoint(WebhookEndpointId),
}

impl DeliveryTarget {
    /// The label metrics and logs name it by: `webhooks_url`, or the endpoint's id (never a
    /// URL, which may hold secrets of the merchant's).
    pub fn label(&self) -> &str {
        match self {
            Self::Url => "webhooks_url",
            Self::Endpoint(id) => id.as_str(),
        }
    }
}

/// A leased delivery: the event, where it goes, its delivery so far (none before the first
/// attempt at `webhooks.url`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leased {
    pub event: Event,
    pub target: DeliveryTarget,
    pub delivery: Option<Delivery>,
    /// For [`DeliveryTarget::Url`]: the endpoints the event was fanned out to, `None` while it
    /// was not yet (the deliverer does it: [`EventOutbox::fan_out`]).
    pub fanned_out: Option<Vec<WebhookEndpointId>>,
}

/// A request claiming an idempotency key.
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    /// The keyed HMAC of the request.
    pub fingerprint: &'a str,
    /// What the request will create (the checkout id), recorded with the claim before anything
    /// reaches MSP, so that a retry after a crash resumes it instead of starting another.
    pub resource: Option<&'a str>,
    /// Now, by the gateway's clock, in Unix milliseconds.
    pub now_ms: i64,
    /// How long the claim counts as in flight (`idempotency.in_flight_ttl_s`). After that, a
    /// request with the same key and fingerprint takes the claim over (with its recorded
    /// resource). `None`: in flight until the key expires.
    pub in_flight_ms: Option<i64>,
}

impl<'a> Claim<'a> {
    /// A claim that stays in flight until the key expires, recording nothing.
    pub fn until_expiry(fingerprint: &'a str) -> Self {
        Self {
            fingerprint,
            resource: None,
            now_ms: 0,
            in_flight_ms: None,
        }
    }

    /// When the claim stops counting as in flight.
    pub fn in_flight_until_ms(&self) -> Option<i64> {
        self.in_flight_ms.map(|ms| self.now_ms.saturating_add(ms))
    }
}

/// A short lock, held by whoever knows the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockToken(pub String);

/// Time-to-live settings every write applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttls {
    /// Checkout record and its events (`checkout.retention_s`).
    pub retention: Duration,
    /// Pending 3DS session (`checkout.session_ttl_s`).
    pub session: Duration,
    /// Idempotency records (24 h, Stripe's window).
    pub idempotency: Duration,
}

/// The announcement of a change's events that [`Records::commit_transition`] sends just
/// before its compare-and-set.
pub type Announcement<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// The checkout records: the record with its history and compare-and-set transitions, its
/// pending 3DS pay session, and the refund index. Its create and transition steps also write
/// the [`Listing`], [`SyncIndex`] and console search ([`ConsoleData`]) hints, hence those
/// supertraits.
#[async_trait]
pub trait Records: Listing + SyncIndex + ConsoleData {
    /// One round trip, for `/health/ready`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a new checkout at version 1 with its first event, atomically.
    async fn insert(
        &self,
        checkout: &Checkout,
        event: &CheckoutEvent,
    ) -> Result<InsertReply, StoreError>;

    async fn get(&self, id: &CheckoutId) -> Result<Option<Versioned>, StoreError>;

    /// As [`get`](Self::get), also writing `pending`, the console's records of what led to this
    /// read (a notification, a sync's MSP call): the checkout's log entries while it exists, the
    /// hour's counters always, whether or not a change follows. The Redis store on a single node does both in one
    /// script (one round trip); Redis Cluster sends the records beside the read.
    async fn get_recording(
        &self,
        id: &CheckoutId,
        pending: &activity::Pending,
    ) -> Result<Option<Versioned>, StoreError>;

    /// Replaces the checkout if its stored version is still `expected_version`, appending `event`
    /// to its history when given and `outbox`'s merchant events to its events (and outbox),
    /// atomically (one Lua script: record, history, events, outbox and their TTLs).
    async fn compare_and_set(
        &self,
        expected_version: u64,
        next: &Checkout,
        event: Option<&CheckoutEvent>,
        outbox: Outbox<'_>,
    ) -> Result<CasReply, StoreError>;

    /// The create flow's writes before MSP is called, in their order: the listing entries
    /// ([`index_for_listing`](Listing::index_for_listing)), the record with its first event
    /// ([`insert`](Self::insert)), then, only when inserted, its place in the reconciler's
    /// due-time index at `first_sync_unix` ([`schedule_sync`](SyncIndex::schedule_sync)) and the
    /// console's `search` entries ([`console_index`](ConsoleData::console_index)). Any error
    /// means MSP must not be called. The Redis store on a single node does it all in one
    /// script (one round trip); the default, and Redis Cluster (whose keys live in different
    /// slots), run the steps one after the other, the search entries as hints (a failure is
    /// logged, never an error).
    async fn insert_new(
        &self,
        checkout: &Checkout,
        event: &CheckoutEvent,
        first_sync_unix: i64,
        search: &[(console::SearchIndex, String)],
    ) -> Result<InsertReply, StoreError> {
        insert_new_in_steps(self, checkout, event, first_sync_unix, search).await
    }

    /// `announce` (the caller's announcement of the change's events, which must reach the store
    /// no later than the compare-and-set) sent together with
    /// [`compare_and_set`](Self::compare_and_set), then, when applied, the indexes that are
    /// hints: the listing's status index moves from `previous` when the status changed
    /// ([`reindex_status`](Listing::reindex_status)), and a checkout at rest leaves the
    /// reconciler's due-time index ([`unschedule_sync`](SyncIndex::unschedule_sync)). A hint that
    /// cannot be written is logged, never an error. Returns the announcement's and the
    /// compare-and-set's outcomes. The Redis store on a single node writes the hints inside the
    /// compare-and-set's script and sends the announcement only once the script's arguments are
    /// ready, so that both leave together (one round trip); the default, and Redis Cluster, send
    /// the hints after it. A checkout with refunds MSP has not acknowledged
    /// ([`Refund::awaits_msp`](crate::domain::refund::Refund::awaits_msp)) also gets, with the
    /// change (on one node) or just before it, each such refund's entry in the refund index and
    /// its place in the reconciler's index, due at its `updated_at`: a reserved refund is found
    /// and followed up even when its writer never learnt that the reservation landed.
    async fn commit_transition(
        &self,
        expected_version: u64,
        previous: crate::domain::checkout::CheckoutStatus,
        next: &Checkout,
        event: Option<&CheckoutEvent>,
        outbox: Outbox<'_>,
        announce: Announcement<'_>,
    ) -> (Result<(), StoreError>, Result<CasReply, StoreError>) {
        write_refund_hints(self, next).await;
        let (announced, written) = futures_util::future::join(
            announce,
            self.compare_and_set(expected_version, next, event, outbox),
        )
        .await;
        if let Ok(CasReply::Applied { .. }) = written {
            write_transition_hints(self, previous, next).await;
        }
        (announced, written)
    }

    /// The checkout's events, oldest first. Empty when the checkout is unknown.
    async fn events(&self, id: &CheckoutId) -> Result<Vec<CheckoutEvent>, StoreError>;

    /// Stores the pending 3DS session under its pay token, with the session TTL.
    async fn put_pay_session(&self, token: &str, session: &PaySession) -> Result<(), StoreError>;

    async fn get_pay_session(&self, token: &str) -> Result<Option<PaySession>, StoreError>;

    /// What the pay page needs: the session under `token` and, when there is one, its
    /// checkout (`None` when that is gone). The Redis store on a single node reads both in one
    /// script (one round trip); the default, and Redis Cluster, one after the other.
    async fn pay_session_and_checkout(
        &self,
        token: &str,
    ) -> Result<Option<(PaySession, Option<Versioned>)>, StoreError> {
        let Some(session) = self.get_pay_session(token).await? else {
            return Ok(None);
        };
        let checkout = self.get(&session.checkout_id).await?;
        Ok(Some((session, checkout)))
    }

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
}

/// The listing indexes of `GET /v1/checkouts`.
#[async_trait]
pub trait Listing: Send + Sync + 'static {
    /// Enters a new checkout in the listing indexes (all, its status, its
    /// reference). Called *before* [`insert`](Records::insert): an entry whose record is missing is
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
}

/// Idempotency keys: a request claims its key, then completes it with its response or aborts.
#[async_trait]
pub trait Idempotency: Send + Sync + 'static {
    /// Claims an idempotency key (`SET NX` with the idempotency TTL) for a request with this
    /// fingerprint, or reports what the key already holds.
    async fn idempotency_begin(
        &self,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyBegin, StoreError> {
        self.idempotency_claim(key, &Claim::until_expiry(fingerprint))
            .await
    }

    /// As [`idempotency_begin`](Self::idempotency_begin), recording the claim's resource and
    /// in-flight deadline; a processing claim with the same fingerprint whose deadline has
    /// passed is taken over (`Started { resumed: true, .. }`, with its resource).
    async fn idempotency_claim(
        &self,
        key: &str,
        claim: &Claim<'_>,
    ) -> Result<IdempotencyBegin, StoreError>;

    /// Stores the final response under the key, if `owner` still owns it.
    async fn idempotency_complete(
        &self,
        key: &str,
        owner: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;

    /// Releases the key, if `owner` still owns it, so that a retry runs again; used when nothing
    /// was sent to MSP. A claim that recorded a resource keeps it, marked released: the retry
    /// gets `Started { released: true, .. }` with that resource, because the failed request's
    /// writes (a refund's reservation) may land after it gave up on them, and a retry under a
    /// new id would leave them behind. A claim without a resource is deleted.
    async fn idempotency_abort(&self, key: &str, owner: &str) -> Result<(), StoreError>;
}

/// The reconciler's due-time index: which checkouts to sync with MSP, and when.
#[async_trait]
pub trait SyncIndex: Send + Sync + 'static {
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
}

/// The merchant events: their index for `GET /v1/events`, the outbox of those
/// queued for delivery, and the deliveries.
#[async_trait]
pub trait EventOutbox: Send + Sync + 'static {
    /// Called before the compare-and-set that will write `events` (all of checkout, or payment
    /// method, `id`): lists them in the events index (for `GET /v1/events`), and when
    /// `deliver_due` is given announces their owner in the outbox index at that time (ZADD: it replaces the entry's
    /// time), a little ahead, so that should the writer die before delivering them, any
    /// instance finds them then. Both are hints (an entry whose event was never written, the
    /// compare-and-set having lost, is skipped by readers).
    async fn announce_events(
        &self,
        id: &EventOwner,
        events: &[Event],
        deliver_due: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;

    /// Events of every checkout, newest first, of type `kind` when given, strictly older than
    /// the event `before` (its creation time and id) when given, at most `limit`, created
    /// within `window` (oldest, newest: now and now less the retention).
    async fn recent_events(
        &self,
        kind: Option<EventType>,
        before: Option<(DateTime<Utc>, &EventId)>,
        window: (DateTime<Utc>, DateTime<Utc>),
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Outbox index entries due at or before `now`, earliest first, at most `limit`.
    async fn due_outboxes(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Leases the checkout's (or payment method's) deliveries due at or before `now` (at most `limit`) until
    /// `lease_until`: another instance takes them only once the lease is over. Answers them
    /// (an event queued but not yet fanned out to the endpoints is a [`DeliveryTarget::Url`]
    /// one with `fanned_out: None`), and the checkout's earliest outbox time afterwards (ms).
    async fn lease_due_events(
        &self,
        id: &EventOwner,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<Leased>, Option<i64>), StoreError>;

    /// Stores an event's delivery to `webhooks.url` after an attempt
    /// ([`save_target_delivery`](Self::save_target_delivery) with [`DeliveryTarget::Url`]).
    async fn save_delivery(
        &self,
        id: &EventId,
        delivery: &Delivery,
    ) -> Result<Option<i64>, StoreError> {
        self.save_target_delivery(id, &DeliveryTarget::Url, delivery)
            .await
    }

    /// Stores an event's delivery to `target` after an attempt: queued again at its
    /// `next_attempt_at`, or out of the outbox when delivered or failed. Answers the checkout's
    /// earliest outbox time afterwards (ms), `None` when its outbox is empty.
    async fn save_target_delivery(
        &self,
        id: &EventId,
        target: &DeliveryTarget,
        delivery: &Delivery,
    ) -> Result<Option<i64>, StoreError>;

    /// Fans a leased event out to `endpoints` (the enabled ones whose filter matches it), once:
    /// each gets a delivery record due now, leased to the caller until `lease_until`; without
    /// `keep_url` (no `webhooks.url`) the event's own outbox entry goes. Answers the endpoints
    /// the caller must deliver to now: none when the event was fanned out before (by another
    /// instance), whose deliveries are queued already.
    async fn fan_out(
        &self,
        id: &EventId,
        endpoints: &[WebhookEndpointId],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        keep_url: bool,
    ) -> Result<Vec<WebhookEndpointId>, StoreError>;

    /// Adds a `webhook_endpoint.*` event to the events of `event`'s checkout (the
    /// checkout whose event's delivery changed the endpoint), queued for delivery at `now`,
    /// with a pending `webhooks.url` delivery when `to_url`, and announces it. Its id is
    /// `event.id`'s checkout with version 0 (no change of a checkout has it) and the first
    /// free position. Answers the event as stored, `None` when the checkout is gone.
    async fn add_event(
        &self,
        event: &Event,
        to_url: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Event>, StoreError>;

    /// The event's deliveries to webhook endpoints, in the order it was fanned out.
    async fn endpoint_deliveries(
        &self,
        id: &EventId,
    ) -> Result<Vec<(WebhookEndpointId, Delivery)>, StoreError>;

    /// Queues the event's delivery to endpoint `endpoint` for a new attempt at `now`, whatever
    /// its status, making the delivery if the event never had one there; `None` when there is
    /// no such event.
    async fn redeliver_to_endpoint(
        &self,
        id: &EventId,
        endpoint: &WebhookEndpointId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError>;

    /// Settles checkout `id`'s outbox index entry after a delivery pass: with `seen` (the score
    /// the pass read), only if nobody changed the entry since; `next_due` (ms) is the
    /// checkout's earliest outbox time, `None` when the outbox is empty (the entry goes).
    /// Without `seen` (a pass the writer started itself), an earlier entry is kept.
    async fn settle_outbox(
        &self,
        id: &EventOwner,
        seen: Option<i64>,
        next_due: Option<i64>,
    ) -> Result<(), StoreError>;

    /// One event with its delivery.
    async fn event(&self, id: &EventId) -> Result<Option<StoredEvent>, StoreError>;

    /// The checkout's events, newest first.
    async fn checkout_events(&self, id: &CheckoutId) -> Result<Vec<StoredEvent>, StoreError>;

    /// Queues the event for a new attempt at `now`, whatever its delivery's status; `None`
    /// when there is no such event.
    async fn redeliver(
        &self,
        id: &EventId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError>;

    /// The outbox index's size (checkouts with undelivered events) and its earliest due time
    /// (ms), for the operators' metrics.
    async fn outbox_backlog(&self) -> Result<(u64, Option<i64>), StoreError>;
}

/// Short per-checkout locks (the reconciler's, so that one instance syncs a checkout at a time).
#[async_trait]
pub trait Locks: Send + Sync + 'static {
    /// `SET NX EX` with a fresh owner token; `None` when someone else holds it.
    async fn try_lock(
        &self,
        id: &CheckoutId,
        ttl: Duration,
    ) -> Result<Option<LockToken>, StoreError>;

    /// Compare-and-delete: releases the lock only if `token` still owns it.
    async fn unlock(&self, id: &CheckoutId, token: &LockToken) -> Result<(), StoreError>;
}

/// The whole store, as the service holds it (`Arc<dyn CheckoutStore>`): every concern's trait.
/// Implemented for every type that implements them all; callers `use` the trait whose methods
/// they call.
pub trait CheckoutStore:
    Records
    + Listing
    + Idempotency
    + SyncIndex
    + EventOutbox
    + Locks
    + PaymentMethods
    + sweep::Sweeps
    + WebhookEndpoints
    + ConsoleData
    + Activity
{
}

impl<T> CheckoutStore for T where
    T: Records
        + Listing
        + Idempotency
        + SyncIndex
        + EventOutbox
        + Locks
        + PaymentMethods
        + sweep::Sweeps
        + WebhookEndpoints
        + ConsoleData
        + Activity
{
}

/// [`Records::insert_new`] as steps, in its order.
pub(crate) async fn insert_new_in_steps<S: Records + ?Sized>(
    store: &S,
    checkout: &Checkout,
    event: &CheckoutEvent,
    first_sync_unix: i64,
    search: &[(console::SearchIndex, String)],
) -> Result<InsertReply, StoreError> {
    store.index_for_listing(checkout).await?;
    let reply = store.insert(checkout, event).await?;
    if reply == InsertReply::Inserted {
        let id = &checkout.id;
        let hints = futures_util::future::join_all(
            search
                .iter()
                .map(|(index, value)| store.console_index(*index, value, id)),
        );
        let (scheduled, hints) =
            futures_util::future::join(store.schedule_sync(id, first_sync_unix), hints).await;
        if let Some(Err(e)) = hints.into_iter().find(Result::is_err) {
            tracing::warn!(checkout_id = %id, error = %e, "could not enter a checkout in the console's search indexes");
        }
        scheduled?;
    }
    Ok(reply)
}

/// The hints of [`Records::commit_transition`] as separate steps, after an applied
/// compare-and-set.
pub(crate) async fn write_transition_hints<S: Records + ?Sized>(
    store: &S,
    previous: crate::domain::checkout::CheckoutStatus,
    next: &Checkout,
) {
    if next.status != previous {
        // The listing's status index is a hint too: readers re-check.
        if let Err(e) = store.reindex_status(next, previous).await {
            tracing::warn!(error = %e, "could not move the checkout in the listing's status index");
        }
    }
    if next.is_at_rest() {
        // The due-time index is only a hint: a failure here is logged, and the
        // reconciler drops settled checkouts it finds there anyway.
        if let Err(e) = store.unschedule_sync(&next.id).await {
            tracing::warn!(error = %e, "could not take a settled checkout out of the reconciler index");
        }
    }
}

/// The refund hints of [`Records::commit_transition`] as separate steps, before the
/// compare-and-set.
pub(crate) async fn write_refund_hints<S: Records + ?Sized>(store: &S, next: &Checkout) {
    let awaiting: Vec<&crate::domain::refund::RefundId> = next
        .refunds
        .iter()
        .filter(|r| r.awaits_msp())
        .map(|r| &r.id)
        .collect();
    if awaiting.is_empty() {
        return;
    }
    for refund in awaiting {
        if let Err(e) = store.index_refund(refund, &next.id).await {
            tracing::warn!(error = %e, "could not index a refund");
        }
    }
    if let Err(e) = store
        .schedule_sync(&next.id, next.updated_at.timestamp())
        .await
    {
        tracing::warn!(error = %e, "could not put a checkout with a refund in the reconciler's index");
    }
}
