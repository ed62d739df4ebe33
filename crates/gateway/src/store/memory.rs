//! The in-memory store, for the `sandbox` command only.
//!
//! Same semantics as the Redis store, TTLs included (checked on every read, and swept now and
//! then on writes so a long-running sandbox does not grow without bound). All state sits behind
//! one `std::sync::Mutex`, never held across an `.await`: every method locks, works and unlocks
//! without yielding.

mod console;
mod endpoints;
mod listing;
mod payment_methods;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
// tokio's `Instant` is std's, except that a test runtime can pause and advance it: the store's
// expiry tests move time instead of sleeping.
use tokio::time::Instant;

use async_trait::async_trait;
use rand::RngCore;

use chrono::{DateTime, Utc};

use super::keys;
use super::timeline::{Direction, Entry, MemoryTimeline, PageRequest};
use super::{
    CasReply, Claim, DeliveryTarget, EventOutbox, IdempotencyBegin, InsertReply, Leased, LockToken,
    Locks, Outbox, OutboxEntry, Records, StoreError, StoredEvent, StoredResponse, SyncIndex, Ttls,
    Versioned,
};
use crate::domain::checkout::{Checkout, CheckoutEvent, CheckoutId, PaySession};
use crate::domain::event::{Delivery, Event, EventId, EventOwner, EventType};
use crate::domain::payment_method::PaymentMethodId;
use crate::domain::refund::RefundId;
use crate::domain::webhook_endpoint::WebhookEndpointId;

/// How often a write also sweeps expired entries.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct MemoryStore {
    ttls: Ttls,
    state: Mutex<State>,
    /// Saved cards, kept apart from the checkouts' state.
    payment_methods: payment_methods::Saved,
    /// The account-wide sweep's lease, watermark and reports.
    sweeps: Mutex<sweep::SweepMemory>,
    /// The webhook endpoints, apart from the checkouts' state.
    endpoints: endpoints::Endpoints,
    /// The operators' console's entries, apart from the checkouts' state.
    console: console::ConsoleMemory,
    /// The hourly statistics of the operator console, by Unix hour.
    stats: Mutex<BTreeMap<i64, HashMap<String, i64>>>,
}

mod activity;

mod sweep;

struct Expiring<T> {
    value: T,
    expires_at: Instant,
}

/// `now + ttl`, saturating: an absurdly long TTL from configuration means "a century", not a
/// panic on `Instant` overflow.
fn deadline(now: Instant, ttl: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(ttl.min(CENTURY)).unwrap_or(now)
}

impl<T> Expiring<T> {
    fn new(value: T, ttl: Duration) -> Self {
        Self {
            value,
            expires_at: deadline(Instant::now(), ttl),
        }
    }

    fn live(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

struct Record {
    versioned: Versioned,
    events: Vec<CheckoutEvent>,
    /// Its merchant events and their outbox.
    mail: Mailbox,
    /// The operator console's logs, newest first, capped: they live as long as the record.
    msp_log: std::collections::VecDeque<crate::activity::MspCallRecord>,
    notification_log: std::collections::VecDeque<crate::activity::NotificationRecord>,
}

/// A checkout's (or payment method's) merchant events, their outbox and deliveries.
#[derive(Default)]
struct Mailbox {
    /// Merchant events with their deliveries, by id (so oldest first).
    merchant_events: BTreeMap<EventId, StoredEvent>,
    /// Undelivered event ids by due time (ms): the outbox.
    outbox: HashMap<EventId, i64>,
    /// Deliveries to webhook endpoints, with their due time (ms) while queued.
    targets: BTreeMap<(EventId, WebhookEndpointId), (Delivery, Option<i64>)>,
    /// The endpoints each event was fanned out to, in order.
    fanned: HashMap<EventId, Vec<WebhookEndpointId>>,
}

impl Mailbox {
    fn earliest_outbox(&self) -> Option<i64> {
        self.outbox
            .values()
            .copied()
            .chain(self.targets.values().filter_map(|(_, due)| *due))
            .min()
    }
}

enum Idempotency {
    Processing {
        fingerprint: String,
        owner: String,
        resource: Option<String>,
        in_flight_until_ms: Option<i64>,
        /// Released by its owner, keeping `resource` (see `idempotency_abort`).
        released: bool,
    },
    Completed {
        fingerprint: String,
        response: StoredResponse,
    },
}

struct State {
    checkouts: HashMap<CheckoutId, Expiring<Record>>,
    pay_sessions: HashMap<String, Expiring<PaySession>>,
    refunds: HashMap<RefundId, Expiring<CheckoutId>>,
    idempotency: HashMap<String, Expiring<Idempotency>>,
    locks: HashMap<CheckoutId, Expiring<String>>,
    /// The due-time index, ordered by (due, id) as Redis orders a ZSET's equal scores.
    due: BTreeSet<(i64, CheckoutId)>,
    due_of: HashMap<CheckoutId, i64>,
    /// The whole index expires like the Redis ZSET does: `retention` after its last ZADD.
    due_expires_at: Option<Instant>,
    /// The outbox index: checkout (or payment method) → due ms (a hint, as in Redis).
    outbox_due: HashMap<EventOwner, i64>,
    /// Payment methods' merchant events. Not expired: the sandbox does not live
    /// as long as a saved card.
    payment_method_mail: HashMap<PaymentMethodId, Mailbox>,
    last_sweep: Instant,
    /// The listing indexes, trimmed by retention as entries are added.
    timeline: MemoryTimeline,
}

impl State {
    fn sweep_if_due(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) < SWEEP_EVERY {
            return;
        }
        self.last_sweep = now;
        self.checkouts.retain(|_, e| e.live(now));
        self.pay_sessions.retain(|_, e| e.live(now));
        self.refunds.retain(|_, e| e.live(now));
        self.idempotency.retain(|_, e| e.live(now));
        self.locks.retain(|_, e| e.live(now));
        self.expire_due_index(now);
        let checkouts = &self.checkouts;
        self.outbox_due.retain(|id, _| match id {
            EventOwner::Checkout(id) => checkouts.contains_key(id),
            EventOwner::PaymentMethod(_) => true,
        });
    }

    fn expire_due_index(&mut self, now: Instant) {
        if self.due_expires_at.is_some_and(|at| now >= at) {
            self.due.clear();
            self.due_of.clear();
            self.due_expires_at = None;
        }
    }

    fn live_checkout(&mut self, id: &CheckoutId, now: Instant) -> Option<&mut Expiring<Record>> {
        if self.checkouts.get(id).is_some_and(|e| !e.live(now)) {
            self.checkouts.remove(id);
        }
        self.checkouts.get_mut(id)
    }

    /// The merchant events of `owner`, while it lives.
    fn mailbox(&mut self, owner: &EventOwner, now: Instant) -> Option<&mut Mailbox> {
        match owner {
            EventOwner::Checkout(id) => self.live_checkout(id, now).map(|e| &mut e.value.mail),
            EventOwner::PaymentMethod(id) => self.payment_method_mail.get_mut(id),
        }
    }

    fn live_idempotency(&mut self, key: &str, now: Instant) -> Option<&mut Expiring<Idempotency>> {
        if self.idempotency.get(key).is_some_and(|e| !e.live(now)) {
            self.idempotency.remove(key);
        }
        self.idempotency.get_mut(key)
    }
}

impl MemoryStore {
    pub fn new(ttls: Ttls) -> Self {
        let now = Instant::now();
        Self {
            ttls,
            payment_methods: payment_methods::Saved::default(),
            state: Mutex::new(State {
                checkouts: HashMap::new(),
                pay_sessions: HashMap::new(),
                refunds: HashMap::new(),
                idempotency: HashMap::new(),
                locks: HashMap::new(),
                due: BTreeSet::new(),
                due_of: HashMap::new(),
                due_expires_at: None,
                outbox_due: HashMap::new(),
                payment_method_mail: HashMap::new(),
                last_sweep: now,
                timeline: MemoryTimeline::new(
                    ttls.retention.saturating_add(Duration::from_secs(86_400)),
                ),
            }),
            sweeps: sweep::empty(),
            console: console::ConsoleMemory::default(),
            endpoints: endpoints::Endpoints::default(),
            stats: Mutex::default(),
        }
    }

    /// A panic while the lock was held cannot leave `State` half-updated (every method checks,
    /// then writes), so a poisoned lock is still safe to use.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// ≥128 random bits, hex: unguessable owner tokens for locks and idempotency claims.
fn fresh_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[async_trait]
impl Records for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn insert(
        &self,
        checkout: &Checkout,
        event: &CheckoutEvent,
    ) -> Result<InsertReply, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        state.sweep_if_due(now);
        if state.live_checkout(&checkout.id, now).is_some() {
            return Ok(InsertReply::AlreadyExists);
        }
        let record = Record {
            versioned: Versioned {
                checkout: checkout.clone(),
                version: 1,
            },
            events: vec![event.clone()],
            mail: Mailbox::default(),
            msp_log: Default::default(),
            notification_log: Default::default(),
        };
        state.checkouts.insert(
            checkout.id.clone(),
            Expiring::new(record, self.ttls.retention),
        );
        Ok(InsertReply::Inserted)
    }

    async fn get(&self, id: &CheckoutId) -> Result<Option<Versioned>, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        Ok(state
            .live_checkout(id, now)
            .map(|e| e.value.versioned.clone()))
    }

    async fn get_recording(
        &self,
        id: &CheckoutId,
        pending: &super::activity::Pending,
    ) -> Result<Option<Versioned>, StoreError> {
        let got = self.get(id).await?;
        self.record_pending(id, pending);
        Ok(got)
    }

    async fn compare_and_set(
        &self,
        expected_version: u64,
        next: &Checkout,
        event: Option<&CheckoutEvent>,
        outbox: Outbox<'_>,
    ) -> Result<CasReply, StoreError> {
        let now = Instant::now();
        let retention = self.ttls.retention;
        let mut state = self.state();
        let Some(entry) = state.live_checkout(&next.id, now) else {
            return Ok(CasReply::NotFound);
        };
        if entry.value.versioned.version != expected_version {
            return Ok(CasReply::Conflict {
                current: Box::new(entry.value.versioned.clone()),
            });
        }
        let version = expected_version + 1;
        entry.value.versioned = Versioned {
            checkout: next.clone(),
            version,
        };
        if let Some(event) = event {
            entry.value.events.push(event.clone());
        }
        for e in outbox.events {
            let delivery = outbox
                .deliver_at
                .filter(|_| outbox.to_url)
                .map(Delivery::due_now);
            if let Some(at) = outbox.deliver_at {
                entry
                    .value
                    .mail
                    .outbox
                    .insert(e.id.clone(), at.timestamp_millis());
            }
            entry.value.mail.merchant_events.insert(
                e.id.clone(),
                StoredEvent {
                    event: e.clone(),
                    delivery,
                },
            );
        }
        entry.expires_at = deadline(now, retention);
        drop(state);
        if let Some(pending) = outbox.activity {
            self.record_pending(&next.id, pending);
        }
        Ok(CasReply::Applied { version })
    }

    async fn events(&self, id: &CheckoutId) -> Result<Vec<CheckoutEvent>, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        Ok(state
            .live_checkout(id, now)
            .map(|e| e.value.events.clone())
            .unwrap_or_default())
    }

    async fn put_pay_session(&self, token: &str, session: &PaySession) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        state.sweep_if_due(now);
        state.pay_sessions.insert(
            token.to_owned(),
            Expiring::new(session.clone(), self.ttls.session),
        );
        Ok(())
    }

    async fn get_pay_session(&self, token: &str) -> Result<Option<PaySession>, StoreError> {
        let now = Instant::now();
        let state = self.state();
        Ok(state
            .pay_sessions
            .get(token)
            .filter(|e| e.live(now))
            .map(|e| e.value.clone()))
    }

    async fn index_refund(
        &self,
        refund: &RefundId,
        checkout: &CheckoutId,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        state.sweep_if_due(now);
        state.refunds.insert(
            refund.clone(),
            Expiring::new(checkout.clone(), self.ttls.retention),
        );
        Ok(())
    }

    async fn checkout_of_refund(
        &self,
        refund: &RefundId,
    ) -> Result<Option<CheckoutId>, StoreError> {
        let now = Instant::now();
        let state = self.state();
        Ok(state
            .refunds
            .get(refund)
            .filter(|e| e.live(now))
            .map(|e| e.value.clone()))
    }
}

// `Idempotency` here is the stored record's enum; the trait is named in full.
#[async_trait]
impl super::Idempotency for MemoryStore {
    async fn idempotency_claim(
        &self,
        key: &str,
        claim: &Claim<'_>,
    ) -> Result<IdempotencyBegin, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        state.sweep_if_due(now);
        let owner = fresh_token();
        let mut resource = claim.resource.map(str::to_owned);
        let (mut resumed, mut released) = (false, false);
        if let Some(entry) = state.live_idempotency(key, now) {
            match &entry.value {
                // Released by a request that sent nothing: go on with its resource.
                Idempotency::Processing {
                    fingerprint,
                    resource: theirs,
                    released: true,
                    ..
                } if fingerprint == claim.fingerprint => {
                    resource = theirs.clone().or(resource);
                    released = true;
                }
                // The request that claimed the key never finished: take its claim over (with
                // its resource), as the Redis store does.
                Idempotency::Processing {
                    fingerprint,
                    resource: theirs,
                    in_flight_until_ms: Some(until),
                    ..
                } if *until <= claim.now_ms && fingerprint == claim.fingerprint => {
                    resource = theirs.clone().or(resource);
                    resumed = true;
                }
                Idempotency::Processing { fingerprint, .. } => {
                    return Ok(IdempotencyBegin::InFlight {
                        fingerprint: fingerprint.clone(),
                    });
                }
                Idempotency::Completed {
                    fingerprint,
                    response,
                } => {
                    return Ok(IdempotencyBegin::Completed {
                        fingerprint: fingerprint.clone(),
                        response: response.clone(),
                    });
                }
            }
        }
        state.idempotency.insert(
            key.to_owned(),
            Expiring::new(
                Idempotency::Processing {
                    fingerprint: claim.fingerprint.to_owned(),
                    owner: owner.clone(),
                    resource: resource.clone(),
                    in_flight_until_ms: claim.in_flight_until_ms(),
                    released: false,
                },
                self.ttls.idempotency,
            ),
        );
        Ok(IdempotencyBegin::Started {
            owner,
            resource,
            resumed,
            released,
        })
    }

    async fn idempotency_complete(
        &self,
        key: &str,
        owner: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let ttl = self.ttls.idempotency;
        let mut state = self.state();
        let Some(entry) = state.live_idempotency(key, now) else {
            tracing::warn!("idempotency key expired before its request completed");
            return Ok(());
        };
        let fingerprint = match &entry.value {
            Idempotency::Processing {
                fingerprint,
                owner: current,
                ..
            } if current == owner => fingerprint.clone(),
            _ => {
                tracing::warn!("idempotency key is no longer owned by this request");
                return Ok(());
            }
        };
        *entry = Expiring::new(
            Idempotency::Completed {
                fingerprint,
                response: response.clone(),
            },
            ttl,
        );
        Ok(())
    }

    async fn idempotency_abort(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let Some(entry) = state.live_idempotency(key, now) else {
            return Ok(());
        };
        let delete = match &mut entry.value {
            Idempotency::Processing {
                owner: current,
                resource: Some(_),
                released,
                ..
            } if current == owner => {
                *released = true;
                false
            }
            Idempotency::Processing { owner: current, .. } => current == owner,
            Idempotency::Completed { .. } => false,
        };
        if delete {
            state.idempotency.remove(key);
        }
        Ok(())
    }
}

#[async_trait]
impl SyncIndex for MemoryStore {
    async fn schedule_sync(&self, id: &CheckoutId, due_unix: i64) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        state.sweep_if_due(now);
        state.expire_due_index(now);
        if let Some(previous) = state.due_of.insert(id.clone(), due_unix) {
            state.due.remove(&(previous, id.clone()));
        }
        state.due.insert((due_unix, id.clone()));
        state.due_expires_at = Some(deadline(now, self.ttls.retention));
        Ok(())
    }

    async fn unschedule_sync(&self, id: &CheckoutId) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(previous) = state.due_of.remove(id) {
            state.due.remove(&(previous, id.clone()));
        }
        Ok(())
    }

    async fn due_for_sync(
        &self,
        now_unix: i64,
        limit: usize,
    ) -> Result<Vec<CheckoutId>, StoreError> {
        let mut state = self.state();
        state.expire_due_index(Instant::now());
        Ok(state
            .due
            .iter()
            .take_while(|(due, _)| *due <= now_unix)
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect())
    }
}

#[async_trait]
impl EventOutbox for MemoryStore {
    async fn announce_events(
        &self,
        id: &EventOwner,
        events: &[Event],
        deliver_due: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        for e in events {
            let entry = Entry {
                at_ms: e.created_at.timestamp_millis(),
                member: e.id.as_str().to_owned(),
            };
            for family in [keys::all_events(), keys::events_of_type(e.kind)] {
                state.timeline.add(&family, entry.clone());
            }
        }
        if let Some(due) = deliver_due {
            state.outbox_due.insert(id.clone(), due.timestamp_millis());
        }
        Ok(())
    }

    async fn recent_events(
        &self,
        kind: Option<EventType>,
        before: Option<(DateTime<Utc>, &EventId)>,
        (oldest, newest): (DateTime<Utc>, DateTime<Utc>),
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let instant = Instant::now();
        let family = kind.map_or_else(keys::all_events, keys::events_of_type);
        let after = before.map(|(at, id)| Entry {
            at_ms: at.timestamp_millis(),
            member: id.as_str().to_owned(),
        });
        let mut state = self.state();
        // Every entry of the window at once: the sandbox holds little, and entries whose event
        // is gone are skipped without a second walk.
        let entries = state.timeline.page(&PageRequest {
            family: &family,
            from_ms: oldest.timestamp_millis(),
            until_ms: newest.timestamp_millis() + 86_400_000,
            after: after.as_ref(),
            direction: Direction::Older,
            limit: usize::MAX,
        });
        let mut events = Vec::new();
        for entry in entries {
            let Ok(id) = EventId::parse(&entry.member) else {
                continue;
            };
            let Some(record) = state.mailbox(&id.owner(), instant) else {
                continue;
            };
            if let Some(e) = record.merchant_events.get(&id) {
                events.push(e.clone());
                if events.len() == limit {
                    break;
                }
            }
        }
        Ok(events)
    }

    async fn due_outboxes(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let now = now.timestamp_millis();
        let state = self.state();
        let mut due: Vec<OutboxEntry> = state
            .outbox_due
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(id, due)| OutboxEntry {
                owner: id.clone(),
                due_ms: *due,
            })
            .collect();
        due.sort_by(|a, b| (a.due_ms, &a.owner).cmp(&(b.due_ms, &b.owner)));
        due.truncate(limit);
        Ok(due)
    }

    async fn lease_due_events(
        &self,
        id: &EventOwner,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<Leased>, Option<i64>), StoreError> {
        let instant = Instant::now();
        let mut state = self.state();
        let Some(record) = state.mailbox(id, instant) else {
            return Ok((Vec::new(), None));
        };
        let now_ms = now.timestamp_millis();
        let mut due: Vec<(i64, EventId, DeliveryTarget)> = record
            .outbox
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(id, at)| (*at, id.clone(), DeliveryTarget::Url))
            .chain(
                record
                    .targets
                    .iter()
                    .filter_map(|((id, endpoint), (_, due))| {
                        due.filter(|at| *at <= now_ms)
                            .map(|at| (at, id.clone(), DeliveryTarget::Endpoint(endpoint.clone())))
                    }),
            )
            .collect();
        due.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        due.truncate(limit);
        let until = lease_until.timestamp_millis();
        let mut leased = Vec::with_capacity(due.len());
        for (_, event_id, target) in due {
            let Some(stored) = record.merchant_events.get(&event_id).cloned() else {
                continue;
            };
            let (delivery, fanned_out) = match &target {
                DeliveryTarget::Url => {
                    record.outbox.insert(event_id.clone(), until);
                    (stored.delivery, record.fanned.get(&event_id).cloned())
                }
                DeliveryTarget::Endpoint(endpoint) => {
                    let Some(slot) = record
                        .targets
                        .get_mut(&(event_id.clone(), endpoint.clone()))
                    else {
                        continue;
                    };
                    slot.1 = Some(until);
                    (Some(slot.0.clone()), None)
                }
            };
            leased.push(Leased {
                event: stored.event,
                target,
                delivery,
                fanned_out,
            });
        }
        Ok((leased, record.earliest_outbox()))
    }

    async fn save_target_delivery(
        &self,
        id: &EventId,
        target: &DeliveryTarget,
        delivery: &Delivery,
    ) -> Result<Option<i64>, StoreError> {
        let instant = Instant::now();
        let mut state = self.state();
        let Some(record) = state.mailbox(&id.owner(), instant) else {
            return Ok(None);
        };
        let due = delivery.next_attempt_at.map(|at| at.timestamp_millis());
        match target {
            DeliveryTarget::Url => {
                if let Some(stored) = record.merchant_events.get_mut(id) {
                    stored.delivery = Some(delivery.clone());
                }
                match due {
                    Some(at) => record.outbox.insert(id.clone(), at),
                    None => record.outbox.remove(id),
                };
            }
            DeliveryTarget::Endpoint(endpoint) => {
                record
                    .targets
                    .insert((id.clone(), endpoint.clone()), (delivery.clone(), due));
            }
        }
        Ok(record.earliest_outbox())
    }

    async fn fan_out(
        &self,
        id: &EventId,
        endpoints: &[WebhookEndpointId],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        keep_url: bool,
    ) -> Result<Vec<WebhookEndpointId>, StoreError> {
        let instant = Instant::now();
        let mut state = self.state();
        let Some(record) = state.mailbox(&id.owner(), instant) else {
            return Ok(Vec::new());
        };
        if !keep_url {
            record.outbox.remove(id);
        }
        if record.fanned.contains_key(id) || !record.merchant_events.contains_key(id) {
            return Ok(Vec::new());
        }
        record.fanned.insert(id.clone(), endpoints.to_vec());
        for endpoint in endpoints {
            record.targets.insert(
                (id.clone(), endpoint.clone()),
                (Delivery::due_now(now), Some(lease_until.timestamp_millis())),
            );
        }
        Ok(endpoints.to_vec())
    }

    async fn add_event(
        &self,
        event: &Event,
        to_url: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Event>, StoreError> {
        let instant = Instant::now();
        let checkout = event.id.checkout_id();
        let stored = {
            let mut state = self.state();
            let Some(entry) = state.live_checkout(&checkout, instant) else {
                return Ok(None);
            };
            let record = &mut entry.value.mail;
            let Some(id) = (0..=u8::MAX)
                .map(|p| EventId::new(&checkout, 0, p))
                .find(|id| !record.merchant_events.contains_key(id))
            else {
                return Ok(None);
            };
            let stored = Event {
                id: id.clone(),
                ..event.clone()
            };
            record.merchant_events.insert(
                id.clone(),
                StoredEvent {
                    event: stored.clone(),
                    delivery: to_url.then(|| Delivery::due_now(now)),
                },
            );
            record.outbox.insert(id, now.timestamp_millis());
            stored
        };
        self.announce_events(
            &(&checkout).into(),
            std::slice::from_ref(&stored),
            Some(now),
        )
        .await?;
        Ok(Some(stored))
    }

    async fn endpoint_deliveries(
        &self,
        id: &EventId,
    ) -> Result<Vec<(WebhookEndpointId, Delivery)>, StoreError> {
        let instant = Instant::now();
        let mut state = self.state();
        let Some(record) = state.mailbox(&id.owner(), instant) else {
            return Ok(Vec::new());
        };
        let record = &*record;
        Ok(record
            .fanned
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|endpoint| {
                record
                    .targets
                    .get(&(id.clone(), endpoint.clone()))
                    .map(|(d, _)| (endpoint.clone(), d.clone()))
            })
            .collect())
    }

    async fn redeliver_to_endpoint(
        &self,
        id: &EventId,
        endpoint: &WebhookEndpointId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let instant = Instant::now();
        let checkout = id.owner();
        let mut state = self.state();
        let Some(record) = state.mailbox(&checkout, instant) else {
            return Ok(None);
        };
        if !record.merchant_events.contains_key(id) {
            return Ok(None);
        }
        let fanned = record.fanned.entry(id.clone()).or_default();
        if !fanned.contains(endpoint) {
            fanned.push(endpoint.clone());
        }
        let slot = record
            .targets
            .entry((id.clone(), endpoint.clone()))
            .or_insert_with(|| (Delivery::due_now(now), None));
        slot.0.redeliver(now);
        slot.1 = Some(now.timestamp_millis());
        let delivery = slot.0.clone();
        state.outbox_due.insert(checkout, now.timestamp_millis());
        Ok(Some(delivery))
    }

    async fn settle_outbox(
        &self,
        id: &EventOwner,
        seen: Option<i64>,
        next_due: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let current = state.outbox_due.get(id).copied();
        match (seen, next_due) {
            (Some(seen), _) if current != Some(seen) => {}
            (Some(_), None) => {
                state.outbox_due.remove(id);
            }
            (None, None) => {}
            (None, Some(next)) if current.is_some_and(|c| c <= next) => {}
            (_, Some(next)) => {
                state.outbox_due.insert(id.clone(), next);
            }
        }
        Ok(())
    }

    async fn event(&self, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        let instant = Instant::now();
        let mut state = self.state();
        Ok(state
            .mailbox(&id.owner(), instant)
            .and_then(|m| m.merchant_events.get(id).cloned()))
    }

    async fn checkout_events(&self, id: &CheckoutId) -> Result<Vec<StoredEvent>, StoreError> {
        let instant = Instant::now();
        let mut state = self.state();
        Ok(state
            .live_checkout(id, instant)
            .map(|e| {
                e.value
                    .mail
                    .merchant_events
                    .values()
                    .rev()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn redeliver(
        &self,
        id: &EventId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let instant = Instant::now();
        let checkout = id.owner();
        let mut state = self.state();
        let Some(record) = state.mailbox(&checkout, instant) else {
            return Ok(None);
        };
        let Some(stored) = record.merchant_events.get_mut(id) else {
            return Ok(None);
        };
        let delivery = stored
            .delivery
            .get_or_insert_with(|| Delivery::due_now(now));
        delivery.redeliver(now);
        let delivery = delivery.clone();
        record.outbox.insert(id.clone(), now.timestamp_millis());
        state.outbox_due.insert(checkout, now.timestamp_millis());
        Ok(Some(delivery))
    }

    async fn outbox_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        let state = self.state();
        Ok((
            state.outbox_due.len() as u64,
            state.outbox_due.values().min().copied(),
        ))
    }
}

#[async_trait]
impl Locks for MemoryStore {
    async fn try_lock(
        &self,
        id: &CheckoutId,
        ttl: Duration,
    ) -> Result<Option<LockToken>, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        state.sweep_if_due(now);
        if state.locks.get(id).is_some_and(|lock| lock.live(now)) {
            return Ok(None);
        }
        let token = fresh_token();
        state
            .locks
            .insert(id.clone(), Expiring::new(token.clone(), ttl));
        Ok(Some(LockToken(token)))
    }

    async fn unlock(&self, id: &CheckoutId, token: &LockToken) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let owned = state
            .locks
            .get(id)
            .is_some_and(|lock| lock.live(now) && lock.value == token.0);
        if owned {
            state.locks.remove(id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_absurd_ttl_means_a_long_one_not_a_panic() {
        let store = MemoryStore::new(Ttls {
            retention: Duration::MAX,
            session: Duration::MAX,
            idempotency: Duration::MAX,
        });
        let id = CheckoutId::generate();
        assert!(store.try_lock(&id, Duration::MAX).await.unwrap().is_some());
        assert_eq!(store.try_lock(&id, Duration::MAX).await.unwrap(), None);
        store.schedule_sync(&id, 5).await.unwrap();
        assert_eq!(store.due_for_sync(5, 10).await.unwrap(), vec![id]);
    }
}
