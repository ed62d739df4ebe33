//! Events for the merchant: every change of a checkout's status (except into
//! `created`) and every change of a refund's (its creation included), with the object as it
//! was right after the change, and the state of its delivery to the merchant's webhook.
//!
//! An event keeps only what it shows ([`EventObject`]): a refund's event the refund (and its
//! checkout's currency), not the checkout with every refund in it. A checkout's refunds make
//! events of their own, so an event that held the whole checkout would make a checkout's
//! events grow with the square of its refunds (issue 23: 400 refunds, 118 MB).
//!
//! Events are derived, not reported: [`events_between`] compares the checkout before and after
//! one compare-and-set, so no transition can forget to announce itself. The event id names its
//! checkout and the version that compare-and-set wrote (`evt_` + the checkout's 32 hex digits +
//! 8 of version + 2 of position), so that an event is found without an index, two writers
//! racing for one version can never mint two different events under one id, and a checkout's
//! events sort by id in the order they happened.
//!
//! A payment method's events (`payment_method.saved|updated|deleted`) live beside the payment
//! method, in an outbox of their own ([`EventOwner::PaymentMethod`]), because a saved card
//! outlives the checkout that saved it: their id is `evt_` + the payment method's 32 hex
//! digits + the version that change wrote (8 hex) + `pm`.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::checkout::{Checkout, CheckoutId, CheckoutStatus};
use super::dispute::{Dispute, DisputeChange};
use super::money::Currency;
use super::payment_method::{PaymentMethod, PaymentMethodEventType, PaymentMethodId};
use super::refund::{Refund, RefundId, RefundStatus};

/// Whose events and outbox an event lives in: a checkout's, or a payment method's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventOwner {
    Checkout(CheckoutId),
    PaymentMethod(PaymentMethodId),
}

impl EventOwner {
    /// Its id (`chk_…` or `pm_…`): the hash tag of its keys, and its outbox index member.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Checkout(id) => id.as_str(),
            Self::PaymentMethod(id) => id.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        CheckoutId::parse(s)
            .map(Self::Checkout)
            .or_else(|_| PaymentMethodId::parse(s).map(Self::PaymentMethod))
            .ok()
    }
}

impl fmt::Display for EventOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&CheckoutId> for EventOwner {
    fn from(id: &CheckoutId) -> Self {
        Self::Checkout(id.clone())
    }
}

impl From<&PaymentMethodId> for EventOwner {
    fn from(id: &PaymentMethodId) -> Self {
        Self::PaymentMethod(id.clone())
    }
}

/// `evt_`, the checkout's 32 hex digits, the version (8 hex), the position in that version (2).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

#[derive(Debug, thiserror::Error)]
#[error("an event id is `evt_` followed by 42 lowercase hex digits (or 40 and `pm`)")]
pub struct InvalidEventId;

impl EventId {
    pub const PREFIX: &'static str = "evt_";
    const HEX_LEN: usize = 32 + 8 + 2;
    /// What ends a payment method's event id, after its 32 + 8 hex digits.
    const PAYMENT_METHOD_SUFFIX: &'static str = "pm";

    /// The event a change of payment method `id` to `version` makes (one per change).
    pub fn of_payment_method(id: &PaymentMethodId, version: u64) -> Self {
        let hex = &id.as_str()[PaymentMethodId::PREFIX.len()..];
        Self(format!(
            "{}{hex}{:08x}{}",
            Self::PREFIX,
            version & 0xffff_ffff,
            Self::PAYMENT_METHOD_SUFFIX
        ))
    }

    /// Whose events hold this one.
    pub fn owner(&self) -> EventOwner {
        if self.0.ends_with(Self::PAYMENT_METHOD_SUFFIX) {
            let hex = &self.0[Self::PREFIX.len()..Self::PREFIX.len() + 32];
            if let Ok(id) = PaymentMethodId::parse(&format!("{}{hex}", PaymentMethodId::PREFIX)) {
                return EventOwner::PaymentMethod(id);
            }
        }
        EventOwner::Checkout(self.checkout_id())
    }

    pub fn new(checkout: &CheckoutId, version: u64, position: u8) -> Self {
        // Versions past 2^32 would take a checkout 4 billion writes: the id keeps the low bits.
        let version = version & 0xffff_ffff;
        Self(format!(
            "{}{version:08x}{position:02x}",
            Self::checkout_prefix(checkout)
        ))
    }

    /// What every id of `checkout`'s events starts with: `evt_` and its 32 hex digits.
    pub fn checkout_prefix(checkout: &CheckoutId) -> String {
        let hex = &checkout.as_str()[CheckoutId::PREFIX.len()..];
        format!("{}{hex}", Self::PREFIX)
    }

    pub fn parse(s: &str) -> Result<Self, InvalidEventId> {
        let rest = s.strip_prefix(Self::PREFIX).ok_or(InvalidEventId)?;
        // A checkout's: 42 hex digits; a payment method's: 40 and `pm`.
        let hex = match rest.strip_suffix(Self::PAYMENT_METHOD_SUFFIX) {
            Some(hex) if hex.len() == Self::HEX_LEN - 2 => hex,
            _ if rest.len() == Self::HEX_LEN => rest,
            _ => return Err(InvalidEventId),
        };
        let well_formed = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if well_formed {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidEventId)
        }
    }

    /// The checkout whose record holds this event (for a payment method's event, the checkout
    /// that saved it, whose hex digits it shares).
    pub fn checkout_id(&self) -> CheckoutId {
        let hex = &self.0[Self::PREFIX.len()..Self::PREFIX.len() + 32];
        // A parsed id always holds 32 lowercase hex digits here, so this cannot fail; should it
        // ever, the id names no checkout that exists.
        CheckoutId::parse(&format!("{}{hex}", CheckoutId::PREFIX))
            .unwrap_or_else(|_| CheckoutId::generate())
    }

    /// The low 32 bits of the version of its checkout that the event was written with.
    pub fn version_low_bits(&self) -> u32 {
        let start = Self::PREFIX.len() + 32;
        // A parsed id always holds 8 hex digits here.
        u32::from_str_radix(&self.0[start..start + 8], 16).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = InvalidEventId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        id.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `checkout.<new status>`, `refund.<new status>` or `dispute.<created|updated|closed>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Checkout(CheckoutStatus),
    Refund(RefundStatus),
    Dispute(DisputeChange),
    /// `webhook_endpoint.disabled`.
    WebhookEndpointDisabled,
    /// `payment_method.saved`, `.updated`, `.deleted`.
    PaymentMethod(PaymentMethodEventType),
}

impl EventType {
    /// Every type there is, for validating a `type` filter and for documentation.
    pub fn all() -> impl Iterator<Item = EventType> {
        CheckoutStatus::ALL
            .into_iter()
            .filter(|s| *s != CheckoutStatus::Created)
            .map(EventType::Checkout)
            .chain(RefundStatus::ALL.into_iter().map(EventType::Refund))
            .chain(DisputeChange::ALL.into_iter().map(EventType::Dispute))
            .chain([EventType::WebhookEndpointDisabled])
            .chain(
                PaymentMethodEventType::ALL
                    .into_iter()
                    .map(EventType::PaymentMethod),
            )
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Self::all().find(|t| t.to_string() == s)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Checkout(s) => write!(f, "checkout.{}", s.as_str()),
            Self::Refund(s) => write!(f, "refund.{}", s.as_str()),
            Self::Dispute(c) => write!(f, "dispute.{}", c.as_str()),
            Self::WebhookEndpointDisabled => f.write_str("webhook_endpoint.disabled"),
            Self::PaymentMethod(k) => f.write_str(k.as_str()),
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EventType::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {s:?}")))
    }
}

/// One event, as stored next to its checkout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub kind: EventType,
    pub created_at: DateTime<Utc>,
    /// The status before the change; `None` for a refund's creation.
    pub previous_status: Option<String>,
    /// What the event shows, as it was right after the change.
    pub object: EventObject,
}

/// The object an event shows (its `data.object`), and no more than it shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventObject {
    /// A `checkout.*` event's: the checkout (whose refunds give its `amount_refunded`).
    Checkout(Box<Checkout>),
    /// A `refund.*` event's: the refund, with its checkout's id and currency.
    Refund {
        checkout: CheckoutId,
        currency: Currency,
        refund: Box<Refund>,
    },
    /// A `dispute.*` event's: the dispute, with its checkout's id and currency.
    Dispute {
        checkout: CheckoutId,
        currency: Currency,
        dispute: Box<Dispute>,
    },
    /// A `webhook_endpoint.*` event's: the endpoint (never its secrets). It is stored beside
    /// the event whose delivery changed the endpoint, in that event's `checkout`.
    WebhookEndpoint {
        checkout: CheckoutId,
        endpoint: Box<super::webhook_endpoint::EndpointSnapshot>,
    },
    /// A `payment_method.*` event's: the payment method as merchants see it (never MSP's
    /// token, which is not part of it).
    PaymentMethod(Box<PaymentMethod>),
}

impl Event {
    /// The id of the checkout the event is about (its own, or its refund's; for a payment
    /// method's, the checkout that saved it).
    pub fn checkout_id(&self) -> &CheckoutId {
        match &self.object {
            EventObject::Checkout(checkout) => &checkout.id,
            EventObject::PaymentMethod(method) => &method.created_from,
            EventObject::Refund { checkout, .. }
            | EventObject::Dispute { checkout, .. }
            | EventObject::WebhookEndpoint { checkout, .. } => checkout,
        }
    }

    /// For a `refund.*` event, which refund changed.
    pub fn refund_id(&self) -> Option<&RefundId> {
        match &self.object {
            EventObject::Checkout(_)
            | EventObject::Dispute { .. }
            | EventObject::WebhookEndpoint { .. }
            | EventObject::PaymentMethod(_) => None,
            EventObject::Refund { refund, .. } => Some(&refund.id),
        }
    }
}

/// The merchant event of one change of a payment method (`method` as it is after the change,
/// written as `version`).
pub fn payment_method_event(
    kind: PaymentMethodEventType,
    method: &PaymentMethod,
    version: u64,
    at: DateTime<Utc>,
) -> Event {
    Event {
        id: EventId::of_payment_method(&method.id, version),
        kind: EventType::PaymentMethod(kind),
        created_at: at,
        previous_status: None,
        object: EventObject::PaymentMethod(Box::new(method.clone())),
    }
}

/// The events one compare-and-set from `before` to `after` (written as `version`) makes, in a
/// fixed order: the checkout's status first, then its refunds oldest first, then its disputes
/// oldest first (a dispute's events are its checkout's events).
pub fn events_between(
    before: &Checkout,
    after: &Checkout,
    version: u64,
    at: DateTime<Utc>,
) -> Vec<Event> {
    let mut kinds: Vec<(EventType, Option<String>, EventObject)> = Vec::new();
    if before.status != after.status && after.status != CheckoutStatus::Created {
        kinds.push((
            EventType::Checkout(after.status),
            Some(before.status.as_str().to_owned()),
            EventObject::Checkout(Box::new(after.clone())),
        ));
    }
    for refund in &after.refunds {
        let previous = before.refund(&refund.id).map(|r| r.status);
        if previous != Some(refund.status) {
            kinds.push((
                EventType::Refund(refund.status),
                previous.map(|s| s.as_str().to_owned()),
                EventObject::Refund {
                    checkout: after.id.clone(),
                    currency: after.currency,
                    refund: Box::new(refund.clone()),
                },
            ));
        }
    }
    for dispute in &after.disputes {
        let previous = before.dispute(&dispute.id);
        for change in DisputeChange::between(previous, dispute) {
            kinds.push((
                EventType::Dispute(change),
                previous.map(|d| d.status.as_str().to_owned()),
                EventObject::Dispute {
                    checkout: after.id.clone(),
                    currency: after.currency,
                    dispute: Box::new(dispute.clone()),
                },
            ));
        }
    }
    kinds
        .into_iter()
        .zip(0u8..)
        .map(|((kind, previous_status, object), position)| Event {
            id: EventId::new(&after.id, version, position),
            kind,
            created_at: at,
            previous_status,
            object,
        })
        .collect()
}

/// Where a delivery to the merchant's webhook stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// One try to deliver an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(with = "crate::domain::time::rfc3339")]
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// Why the attempt did not count as delivered, in words for the merchant's engineers.
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// An event's delivery: stored beside the event, changed by every attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    /// When the next attempt is due; `None` once delivered or failed.
    #[serde(default, with = "crate::domain::time::rfc3339_opt")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// At most this many attempts are kept per event (the newest); a redelivered event that keeps
/// failing for months must not grow its record without bound.
pub const MAX_ATTEMPTS_KEPT: usize = 50;

impl Delivery {
    /// A new event's delivery: due now.
    pub fn due_now(now: DateTime<Utc>) -> Self {
        Self {
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            next_attempt_at: Some(now),
        }
    }

    /// Records `attempt` and decides what comes next: delivered on success; otherwise the next
    /// try of the schedule, or `failed` when that would be later than `max_age` after the
    /// event was created.
    pub fn record(
        &mut self,
        attempt: Attempt,
        delivered: bool,
        event_created: DateTime<Utc>,
        max_age: TimeDelta,
    ) {
        let now = attempt.at;
        self.attempts.push(attempt);
        if self.attempts.len() > MAX_ATTEMPTS_KEPT {
            let excess = self.attempts.len() - MAX_ATTEMPTS_KEPT;
            self.attempts.drain(..excess);
        }
        if delivered {
            self.status = DeliveryStatus::Delivered;
            self.next_attempt_at = None;
            return;
        }
        let failures = self
            .attempts
            .iter()
            .rev()
            .take_while(|a| a.http_status.is_none_or(|s| !(200..300).contains(&s)))
            .count();
        let next = now + retry_after(failures);
        if next > event_created + max_age {
            self.status = DeliveryStatus::Failed;
            self.next_attempt_at = None;
        } else {
            self.status = DeliveryStatus::Pending;
            self.next_attempt_at = Some(next);
        }
    }

    /// A new attempt now, whatever the status (`POST /v1/events/{id}/redeliver`).
    pub fn redeliver(&mut self, now: DateTime<Utc>) {
        self.status = DeliveryStatus::Pending;
        self.next_attempt_at = Some(now);
    }
}

/// The wait after the `failures`-th failed attempt in a row: about 1 min, 5 min,
/// 30 min, 2 h, 5 h, 10 h, then every 12 h.
pub fn retry_after(failures: usize) -> TimeDelta {
    match failures {
        0 | 1 => TimeDelta::minutes(1),
        2 => TimeDelta::minutes(5),
        3 => TimeDelta::minutes(30),
        4 => TimeDelta::hours(2),
        5 => TimeDelta::hours(5),
        6 => TimeDelta::hours(10),
        _ => TimeDelta::hours(12),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout_id() -> CheckoutId {
        CheckoutId::parse("chk_0193a1b2c3d4e5f60718293a4b5c6d7e").unwrap()
    }

    #[test]
    fn an_event_id_names_its_checkout_and_sorts_by_version() {
        let id = EventId::new(&checkout_id(), 3, 1);
        assert_eq!(
            id.as_str(),
            "evt_0193a1b2c3d4e5f60718293a4b5c6d7e0000000301"
        );
        assert_eq!(EventId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.checkout_id(), checkout_id());
        assert_eq!(id.version_low_bits(), 3);
        assert_eq!(
            EventId::new(&checkout_id(), 0x1_0000_0007, 0).version_low_bits(),
            7
        );
        assert!(EventId::new(&checkout_id(), 2, 5) < EventId::new(&checkout_id(), 10, 0));
        for bad in [
            "",
            "evt_",
            "evt_0193A1B2C3D4E5F60718293A4B5C6D7E0000000301",
            "chk_0193a1b2c3d4e5f60718293a4b5c6d7e0000000301",
            "evt_0193a1b2c3d4e5f60718293a4b5c6d7e00000003",
        ] {
            assert!(EventId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_payment_methods_event_id_names_it_and_not_a_checkout() {
        let pm = PaymentMethodId::saved_by(&checkout_id());
        let id = EventId::of_payment_method(&pm, 2);
        assert_eq!(
            id.as_str(),
            "evt_0193a1b2c3d4e5f60718293a4b5c6d7e00000002pm"
        );
        assert_eq!(EventId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.owner(), EventOwner::PaymentMethod(pm));
        assert_eq!(
            EventId::new(&checkout_id(), 2, 0).owner(),
            EventOwner::Checkout(checkout_id())
        );
        for bad in [
            "evt_0193a1b2c3d4e5f60718293a4b5c6d7e000000pm",
            "evt_0193a1b2c3d4e5f60718293a4b5c6d7e0000000201pm",
            "evt_pm",
        ] {
            assert!(EventId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            EventType::parse("payment_method.deleted"),
            Some(EventType::PaymentMethod(PaymentMethodEventType::Deleted))
        );
    }

    #[test]
    fn event_types_read_as_their_names() {
        assert_eq!(
            EventType::Checkout(CheckoutStatus::Succeeded).to_string(),
            "checkout.succeeded"
        );
        assert_eq!(
            EventType::parse("refund.pending"),
            Some(EventType::Refund(RefundStatus::Pending))
        );
        assert_eq!(EventType::parse("checkout.created"), None);
        assert_eq!(EventType::parse("checkout.nonsense"), None);
        let json = serde_json::to_string(&EventType::Checkout(CheckoutStatus::Failed)).unwrap();
        assert_eq!(json, "\"checkout.failed\"");
    }

    #[test]
    fn the_retry_schedule_is_the_documented_one_then_gives_up_at_max_age() {
        let created = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let mut delivery = Delivery::due_now(created);
        let mut now = created;
        let mut waits = Vec::new();
        while delivery.status == DeliveryStatus::Pending {
            let attempt = Attempt {
                at: now,
                http_status: Some(500),
                error: Some("answered 500".into()),
                duration_ms: 3,
            };
            delivery.record(attempt, false, created, TimeDelta::days(3));
            if let Some(next) = delivery.next_attempt_at {
                waits.push((next - now).num_minutes());
                now = next;
            }
        }
        assert_eq!(
            waits,
            [1, 5, 30, 120, 300, 600, 720, 720, 720, 720]
                .into_iter()
                .collect::<Vec<i64>>()
        );
        assert_eq!(delivery.status, DeliveryStatus::Failed);
        assert!(now - created <= TimeDelta::days(3));

        delivery.redeliver(now);
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!(delivery.next_attempt_at, Some(now));
        let ok = Attempt {
            at: now,
            http_status: Some(204),
            error: None,
            duration_ms: 1,
        };
        delivery.record(ok, true, created, TimeDelta::days(3));
        assert_eq!(delivery.status, DeliveryStatus::Delivered);
        assert_eq!(delivery.next_attempt_at, None);
    }
}
