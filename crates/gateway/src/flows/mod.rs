//! Use-cases shared by several callers (style.md's `flows/`, Hyperswitch's `core/`).
//!
//! - [`create`]: store → MSP direct order → apply the answer; [`resume`]: the retry of a keyed
//!   create that was interrupted.
//! - [`sync`]: ask MSP (`GET /orders/{id}`) and apply; the browser return. [`abandon`]: the
//!   same, cancelling a checkout that waits for 3-D Secure while nobody has its pay link.
//! - [`coalesce`]: keyless syncs of one checkout share one MSP call, a few seconds at most.
//! - [`transition`]: what a caller learned ([`transition::News`]) becomes the next status, its
//!   failure and its event; the only place that chooses a status.
//! - [`apply`]: writes a transition with one compare-and-set (re-deciding on a lost race).
//! - [`cancel`]: cancel a checkout, capture an authorisation: MSP first.
//! - [`refund`]: reserve a refund, ask MSP, cancel one; MSP's news settles them.
//! - [`saved_card`]: saved cards: a payment method stored once MSP shows the
//!   token of a successful saving checkout, a saved card checked before it pays, expiry updates
//!   and deletion (at MSP first).
//! - [`sweep`]: the account-wide sweep of MSP's `GET /transactions`: orders whose
//!   news never came, refunds made in MSP's dashboard, chargebacks; one instance at a time.
//! - [`dispute`]: the merchant's evidence for a dispute, to MSP and then the record.
//! - [`reconcile`]: the background task that resolves checkouts whose news never came, and
//!   refunds whose answer was lost (found at MSP, or failed when MSP never received them).
//!
//! Flows know nothing of HTTP: they take a [`Context`] (the store, the MSP client, the clock and
//! the few settings they read), which the web layer's state wraps, the background tasks share,
//! and tests build with a clock they move.

use std::sync::Arc;

use chrono::TimeDelta;

use crate::clock::{SharedClock, seconds};
use crate::configuration::{NotificationMethod, Settings};
use crate::psp::multisafepay::MultiSafepayClient;
use crate::store::CheckoutStore;

pub mod abandon;
pub mod apply;
pub mod cancel;
pub mod coalesce;
pub mod create;
pub mod dispute;
pub mod reconcile;
pub mod refund;
pub mod resume;
pub mod saved_card;
pub mod sweep;
pub mod sync;
pub mod transition;

/// What the flows need from the outside world.
pub struct Context {
    pub store: Arc<dyn CheckoutStore>,
    pub psp: MultiSafepayClient,
    pub clock: SharedClock,
    pub settings: FlowSettings,
    /// Tells this instance's webhook deliverer of new events (silent without webhooks).
    pub outbox: OutboxBell,
    /// Shares MSP calls between concurrent keyless syncs of one checkout.
    pub syncs: coalesce::SyncGate,
}

/// Tells this instance's webhook deliverer that a checkout's outbox has new events, so that
/// they leave at once. Best effort: when the deliverer is busy the bell stays silent, and the
/// events leave when their announced time comes.
///
/// It also holds whether webhook endpoints exist, as this instance last saw it
/// ([`crate::webhooks::hint`]).
#[derive(Clone, Debug, Default)]
pub struct OutboxBell {
    tx: Option<tokio::sync::mpsc::Sender<crate::domain::event::EventOwner>>,
    pub endpoints: std::sync::Arc<crate::webhooks::hint::EndpointsHint>,
}

impl OutboxBell {
    /// A bell and the receiver the deliverer listens on.
    pub fn new(
        capacity: usize,
    ) -> (
        Self,
        tokio::sync::mpsc::Receiver<crate::domain::event::EventOwner>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        (
            Self {
                tx: Some(tx),
                endpoints: Default::default(),
            },
            rx,
        )
    }

    /// Rings for checkout (or payment method) `id`.
    pub fn ring(&self, id: impl Into<crate::domain::event::EventOwner>) {
        let id = id.into();
        if let Some(tx) = &self.tx
            && tx.try_send(id.clone()).is_err()
        {
            tracing::debug!(checkout_id = %id, "deliverer busy; the events leave at their announced time");
        }
    }
}

/// The settings the flows read, in the units they use.
#[derive(Clone, Debug)]
pub struct FlowSettings {
    /// Base URL browsers and MSP use to reach us, without a trailing slash: the notification,
    /// return and cancel URLs of every order are built on it.
    pub public_url: String,
    /// How MSP should notify us (`notification_method` of every order).
    pub notification_method: NotificationMethod,
    /// Life of a pending 3-D Secure session; a `requires_action` checkout expires after it.
    pub session_ttl: TimeDelta,
    /// When the reconciler first looks at a checkout whose news has not come.
    pub first_sync_after: TimeDelta,
    /// The shortest wait between two of the reconciler's looks at one checkout.
    pub sync_interval: TimeDelta,
    /// When the reconciler gives up on a checkout MSP never settled.
    pub give_up_after: TimeDelta,
    /// The longest one MSP call can take (connect plus total timeout): a refund older than this
    /// plus [`refund::NEVER_RECEIVED_AFTER`] that MSP does not list never reached MSP.
    pub psp_call_deadline: TimeDelta,
    /// Whether events are delivered to `webhooks.url` (it is set). Without it they are queued
    /// while webhook endpoints exist ([`OutboxBell::endpoints`]).
    pub deliver_webhooks: bool,
    /// How long after a transition another instance may deliver its events, should the one
    /// that wrote them not have (it died): the announced time of the outbox index.
    pub outbox_grace: TimeDelta,
}

impl FlowSettings {
    pub fn new(settings: &Settings, public_url: String) -> Self {
        Self {
            public_url,
            notification_method: settings.multisafepay.notification_method,
            session_ttl: seconds(settings.checkout.session_ttl_s),
            first_sync_after: seconds(settings.reconcile.first_after_s),
            sync_interval: seconds(settings.reconcile.interval_s),
            give_up_after: seconds(settings.reconcile.max_age_s),
            psp_call_deadline: TimeDelta::milliseconds(
                i64::try_from(
                    settings
                        .multisafepay
                        .connect_timeout_ms
                        .saturating_add(settings.multisafepay.timeout_ms),
                )
                .unwrap_or(i64::MAX / 2),
            ),
            deliver_webhooks: settings.webhooks.url.is_some(),
            outbox_grace: TimeDelta::seconds(30),
        }
    }
}
