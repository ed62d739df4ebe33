//! Every Redis key is built here, under the configured prefix.
//!
//! The layout is the Redis layout:
//!
//! ```text
//! {prefix}:{chk_…}:checkout   HASH  data = JSON checkout, version       TTL retention
//! {prefix}:{chk_…}:events     LIST  JSON events, oldest first           TTL retention
//! {prefix}:{chk_…}:lock       STR   owner token                         TTL the lock's
//! {prefix}:{chk_…}:evt        HASH  event id → JSON merchant event      TTL retention
//!                                   (without its checkout while it is
//!                                   the newest: see redis/outbox.rs)
//! {prefix}:{chk_…}:dlv        HASH  event id → JSON delivery            TTL retention
//!                                   (to webhooks.url); `<event id>/` →
//!                                   the endpoints it was fanned out to;
//!                                   `<event id>/<we_…>` → JSON delivery
//!                                   to that endpoint
//! {prefix}:{chk_…}:outbox     ZSET  undelivered event id (or `<event    TTL retention
//!                                   id>/<we_…>`) by due ms
//! {prefix}:outbox-due         ZSET  checkout (or payment method) id by  TTL retention
//!                                   due ms (a hint)
//! {prefix}:pay:{token}        STR   JSON pay session                    TTL session
//! {prefix}:idem:{hex(key)}    STR   JSON idempotency record             TTL idempotency
//! {prefix}:sync-due           ZSET  checkout id scored by due unix time TTL retention
//! {prefix}:{pm_…}:pm        HASH  data = JSON payment method, token = TTL a year past the
//!                                   MSP's token, version                card's expiry
//! {prefix}:{pm_…}:pmevt     LIST  JSON payment_method.* events         TTL as its pm
//!                                   (its history, oldest first)
//! {prefix}:{pm_…}:evt|dlv|outbox    its merchant events, deliveries and TTL as its pm
//!                                   outbox, as a checkout's (above)
//! {prefix}:{pmcus:<hex(ref)>}
//!                             ZSET  pm id scored by creation ms (a hint) TTL its newest pm's
//! {prefix}:{chk_…}:msplog    LIST  JSON MSP call, newest first, ≤ 100 TTL the checkout's
//! {prefix}:{chk_…}:ntflog    LIST  JSON notification, newest first,  TTL the checkout's
//!                                   ≤ 100 (see store/activity.rs)
//! {prefix}:{stats}:h:<unix hour>
//!                             HASH  statistics counter → value       TTL 25 h
//! {prefix}:{sweep}:lease|watermark|history   the account-wide sweep's (store/sweep.rs)
//! {prefix}:{we}:endpoints     HASH  webhook endpoint id → JSON endpoint TTL ≥ 1 year from
//!                                   secrets included                 its last read
//! {prefix}:{chk_…}:console  LIST  JSON console actions, newest first  TTL retention
//! {prefix}:{console:session:<hex digest>}
//!                             STR   JSON console session               TTL the session's
//! {prefix}:{console:fail:<hex(client)>}:<unix minute>
//!                             STR   failed sign-ins (a counter)         TTL 2 minutes
//! {prefix}:{find:<email|last4|msptx>:<hex(value)>}
//!                             LIST  checkout ids, newest first (capped) TTL retention
//! {prefix}:{tl:<family>}:<yyyymmdd>
//!                             ZSET  listing index: id scored by creation TTL retention + 1 day
//!                                   ms, one key per family and UTC day   (from the last write)
//! ```
//!
//! The braces around the checkout id are literal: they are Redis Cluster's hash tag, so the
//! checkout, its events and its lock hash to one slot and one Lua script may touch them together.
//! The listing indexes ([`super::timeline`]) are hash-tagged by family, so that one
//! script walks a family's days; their families are:
//!
//! ```text
//! chk                      every checkout
//! chk:status:<status>      the checkouts of one status (a hint, re-checked by the reader)
//! chk:ref:<hex(reference)> the checkouts of one shop reference
//! evt                      every merchant event
//! evt:type:<type>          the events of one type (`checkout.succeeded`, …)
//! ```

use super::timeline::Family;
use crate::domain::checkout::{CheckoutId, CheckoutStatus};
use crate::domain::event::{EventOwner, EventType};
use crate::domain::payment_method::{CustomerReference, PaymentMethodId};
use crate::domain::refund::RefundId;

/// The listing family of every checkout.
pub fn all_checkouts() -> Family {
    Family::new("chk")
}

/// The listing family of the checkouts of one status.
pub fn checkouts_with_status(status: CheckoutStatus) -> Family {
    Family::new(["chk:status:", status.as_str()].concat())
}

/// The listing family of one shop reference, hex-encoded like idempotency keys (any
/// characters the merchant chose can then neither move the hash slot nor collide).
pub fn checkouts_with_reference(reference: &str) -> Family {
    Family::new(["chk:ref:", &hex::encode(reference.as_bytes())].concat())
}

/// The listing family of every merchant event.
pub fn all_events() -> Family {
    Family::new("evt")
}

/// The listing family of the events of one type.
pub fn events_of_type(kind: EventType) -> Family {
    Family::new(format!("evt:type:{kind}"))
}

/// What the keys of merchant events hang on (their hash tag): a checkout, a payment method
/// (whose events live beside it), or either.
pub trait EventsTag {
    fn events_tag(&self) -> &str;
}

impl EventsTag for CheckoutId {
    fn events_tag(&self) -> &str {
        self.as_str()
    }
}

impl EventsTag for PaymentMethodId {
    fn events_tag(&self) -> &str {
        self.as_str()
    }
}

impl EventsTag for EventOwner {
    fn events_tag(&self) -> &str {
        self.as_str()
    }
}

#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// `{prefix}:{chk_…}:{what}`. Keys are built on every request, so by `concat` (one exact
    /// allocation) rather than `format!`, which costs several times as much.
    fn tagged(&self, id: &(impl EventsTag + ?Sized), what: &str) -> String {
        [self.prefix.as_str(), ":{", id.events_tag(), "}:", what].concat()
    }

    /// The record whose hash slot an owner's events share: the checkout, or the payment method.
    pub fn event_owner_record(&self, owner: &EventOwner) -> String {
        match owner {
            EventOwner::Checkout(id) => self.checkout(id),
            EventOwner::PaymentMethod(id) => self.payment_method(id),
        }
    }

    pub fn checkout(&self, id: &CheckoutId) -> String {
        self.tagged(id, "checkout")
    }

    /// [`checkout`](Self::checkout)'s key as the text before and after the id, for a script
    /// that learns the id from a stored value.
    pub fn checkout_around_id(&self) -> (String, &'static str) {
        (format!("{}:{{", self.prefix), "}:checkout")
    }

    pub fn events(&self, id: &CheckoutId) -> String {
        self.tagged(id, "events")
    }

    /// The checkout's merchant events, by event id.
    pub fn event_records(&self, id: &(impl EventsTag + ?Sized)) -> String {
        self.tagged(id, "evt")
    }

    /// The delivery state of each of the checkout's events, by event id.
    pub fn deliveries(&self, id: &(impl EventsTag + ?Sized)) -> String {
        self.tagged(id, "dlv")
    }

    /// The checkout's undelivered events, scored by when their next attempt is due (ms): the
    /// outbox, written in the same script as the transition that made the events.
    pub fn outbox(&self, id: &(impl EventsTag + ?Sized)) -> String {
        self.tagged(id, "outbox")
    }

    /// Checkouts (and payment methods) whose outbox may hold due events, scored by when (ms). One key for all
    /// checkouts, so it cannot share their hash tags: a hint, announced before the transition
    /// that fills an outbox and settled after each delivery pass.
    pub fn outbox_due(&self) -> String {
        [self.prefix.as_str(), ":outbox-due"].concat()
    }

    /// The checkout's MSP call log (the operator console's), newest first.
    pub fn msp_log(&self, id: &CheckoutId) -> String {
        self.tagged(id, "msplog")
    }

    /// The checkout's notification log (the operator console's), newest first.
    pub fn notification_log(&self, id: &CheckoutId) -> String {
        self.tagged(id, "ntflog")
    }

    /// One hour's statistics (Unix hour: seconds / 3600), every hour under one hash tag.
    pub fn stats_hour(&self, hour: i64) -> String {
        format!("{}:{{stats}}:h:{hour}", self.prefix)
    }

    pub fn lock(&self, id: &CheckoutId) -> String {
        self.tagged(id, "lock")
    }

    /// The token is used verbatim: it is random and URL-safe when we mint it, and any other
    /// string a browser sends can only name a key that does not exist.
    pub fn pay(&self, token: &str) -> String {
        [self.prefix.as_str(), ":pay:", token].concat()
    }

    /// Refund id → checkout id (the refund itself lives in the checkout's record).
    pub fn refund(&self, id: &RefundId) -> String {
        format!("{}:refund:{}", self.prefix, id)
    }

    /// Idempotency keys are chosen by the merchant (any characters, up to 255), so they are
    /// hex-encoded: a `{`, `}` or `:` in them can then neither change the key's hash slot nor
    /// collide with another key family. Hex rather than a hash keeps it reversible when
    /// debugging.
    pub fn idempotency(&self, key: &str) -> String {
        format!("{}:idem:{}", self.prefix, hex::encode(key.as_bytes()))
    }

    /// The merchant's webhook endpoints: one hash, in a slot of its own.
    pub fn webhook_endpoints(&self) -> String {
        [self.prefix.as_str(), ":{we}:endpoints"].concat()
    }

    pub fn sync_due(&self) -> String {
        [self.prefix.as_str(), ":sync-due"].concat()
    }

    /// The account-wide sweep's `what` (`lease`, `watermark`, `history`), all under one hash
    /// tag ([`super::sweep`]).
    pub fn sweep(&self, what: &str) -> String {
        [self.prefix.as_str(), ":{sweep}:", what].concat()
    }

    /// One day (`yyyymmdd`, UTC) of one listing family; the family is the hash tag.
    pub fn timeline(&self, family: &Family, day: &str) -> String {
        [self.prefix.as_str(), ":{tl:", family.as_str(), "}:", day].concat()
    }

    /// A saved card: the payment method with MSP's token beside it. The payment
    /// method id is the hash tag, shared with its events.
    pub fn payment_method(&self, id: &PaymentMethodId) -> String {
        [self.prefix.as_str(), ":{", id.as_str(), "}:pm"].concat()
    }

    /// The payment method's events, oldest first, written in the script that changes it.
    pub fn payment_method_events(&self, id: &PaymentMethodId) -> String {
        [self.prefix.as_str(), ":{", id.as_str(), "}:pmevt"].concat()
    }

    /// The payment methods of one customer reference (hex-encoded, as idempotency keys).
    /// The console's keys: sessions, failure counters and search indexes hash-tagged by their
    /// own name (each is one key), a checkout's actions by the checkout id.
    pub fn console(&self, slot: super::console::ConsoleSlot<'_>) -> String {
        use super::console::ConsoleSlot as S;
        let p = self.prefix.as_str();
        match slot {
            S::Session(digest) => [p, ":{console:session:", digest, "}"].concat(),
            S::SignInFailures { client, minute } => format!(
                "{p}:{{console:fail:{}}}:{minute}",
                hex::encode(client.as_bytes())
            ),
            S::Actions(id) => self.tagged(id, "console"),
            S::Index(index, value) => [
                p,
                ":{find:",
                index.as_str(),
                ":",
                &hex::encode(value.as_bytes()),
                "}",
            ]
            .concat(),
        }
    }

    pub fn customer_payment_methods(&self, reference: &CustomerReference) -> String {
        [
            self.prefix.as_str(),
            ":{pmcus:",
            &hex::encode(reference.as_str().as_bytes()),
            "}",
        ]
        .concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster hashes for `key`: the text between the first `{` and the next
    /// `}` when that is non-empty, else the whole key (Redis' own rule).
    fn hash_tag(key: &str) -> &str {
        if let Some(open) = key.find('{')
            && let Some(len) = key[open + 1..].find('}')
            && len > 0
        {
            return &key[open + 1..open + 1 + len];
        }
        key
    }

    fn id() -> CheckoutId {
        CheckoutId::parse("chk_0193a1b2c3d4e5f60718293a4b5c6d7e").unwrap()
    }

    #[test]
    fn checkout_events_and_lock_share_the_checkout_id_as_hash_tag() {
        let keys = Keys::new("cgw");
        let id = id();
        assert_eq!(
            keys.checkout(&id),
            "cgw:{chk_0193a1b2c3d4e5f60718293a4b5c6d7e}:checkout"
        );
        assert_eq!(
            keys.events(&id),
            "cgw:{chk_0193a1b2c3d4e5f60718293a4b5c6d7e}:events"
        );
        assert_eq!(
            keys.lock(&id),
            "cgw:{chk_0193a1b2c3d4e5f60718293a4b5c6d7e}:lock"
        );
        for key in [
            keys.checkout(&id),
            keys.events(&id),
            keys.lock(&id),
            keys.event_records(&id),
            keys.deliveries(&id),
            keys.outbox(&id),
            keys.msp_log(&id),
            keys.notification_log(&id),
        ] {
            assert_eq!(hash_tag(&key), id.as_str(), "{key}");
        }
    }

    #[test]
    fn every_key_starts_with_the_prefix() {
        let keys = Keys::new("test:abc");
        let id = id();
        for key in [
            keys.checkout(&id),
            keys.events(&id),
            keys.lock(&id),
            keys.pay("tok"),
            keys.idempotency("k"),
            keys.sync_due(),
            keys.outbox_due(),
            keys.event_records(&id),
            keys.timeline(&all_checkouts(), "20261124"),
            keys.msp_log(&id),
            keys.stats_hour(493_000),
        ] {
            assert!(key.starts_with("test:abc:"), "{key}");
        }
    }

    #[test]
    fn idempotency_keys_cannot_inject_a_hash_tag_or_a_separator() {
        let keys = Keys::new("cgw");
        let key = keys.idempotency("a{b}:c d");
        assert_eq!(key, format!("cgw:idem:{}", hex::encode("a{b}:c d")));
        assert!(!key["cgw:idem:".len()..].contains(['{', '}', ':', ' ']));
        // Distinct merchant keys never share a Redis key.
        assert_ne!(keys.idempotency("ab"), keys.idempotency("AB"));
    }

    #[test]
    fn a_listing_family_is_the_hash_tag_of_all_its_days() {
        let keys = Keys::new("cgw");
        let family = checkouts_with_status(CheckoutStatus::Succeeded);
        let (a, b) = (
            keys.timeline(&family, "20261124"),
            keys.timeline(&family, "20261125"),
        );
        assert_eq!(a, "cgw:{tl:chk:status:succeeded}:20261124");
        assert_eq!(hash_tag(&a), hash_tag(&b));
        // A reference cannot inject a brace or a separator.
        let r = keys.timeline(&checkouts_with_reference("a{b}:c"), "20261124");
        assert_eq!(
            hash_tag(&r),
            format!("tl:chk:ref:{}", hex::encode("a{b}:c"))
        );
    }

    #[test]
    fn every_hour_of_statistics_shares_one_hash_tag() {
        let keys = Keys::new("cgw");
        assert_eq!(keys.stats_hour(493_000), "cgw:{stats}:h:493000");
        assert_eq!(hash_tag(&keys.stats_hour(1)), hash_tag(&keys.stats_hour(2)));
    }

    #[test]
    fn hash_tag_follows_the_redis_rule() {
        assert_eq!(hash_tag("a:{x}:b"), "x");
        assert_eq!(hash_tag("a:{}:b"), "a:{}:b");
        assert_eq!(hash_tag("plain"), "plain");
        assert_eq!(hash_tag("a{b"), "a{b");
    }
}
