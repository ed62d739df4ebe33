//! Delivering events to the storefront's webhook and to the webhook endpoints the
//! merchant manages.
//!
//! The transition that makes an event also queues it, in the same atomic write
//! ([`crate::flows::apply`]); this module only takes queued events out. Each instance runs one
//! [`Deliverer`]: it delivers at once what its own transitions queued (the
//! [`crate::flows::OutboxBell`] rings), and once a second looks at the outbox index for what is
//! due (retries, and events whose writer died before delivering them). A delivery is leased to
//! one instance while it is being made (`webhooks.timeout_ms` + 30 s), so that in the normal
//! case each is made once; a lease whose instance died runs out and another takes over.
//!
//! An event has one delivery per destination, each with its own record, attempts and retries:
//! `webhooks.url` when configured, and every enabled endpoint whose filter matches it. The
//! first time an event is leased it is fanned out to those endpoints (once, whichever instance
//! does it: [`crate::store::EventOutbox::fan_out`]), and their deliveries go out at once.
//! Every destination has its own few attempts in flight at a time: a slow or dead receiver holds
//! only its own, and what is due for it while they are busy waits for one of them to end (or,
//! past a bound that keeps it within its lease, is due again a few seconds later, no attempt
//! counted), so it costs the others nothing.
//!
//! - [`signing`]: `Gateway-Signature` and the Standard Webhooks headers.
//! - [`delivery`]: one attempt (the POST, its answer, `Retry-After`).
//! - [`endpoints`]: what attempts do to an endpoint (410 and long failure disable it).
//! - [`address`]: the address guard of API-made endpoints, at creation and at every
//!   connection.
//! - [`hint`]: whether endpoints exist, cached, so that without `webhooks.url` and endpoints
//!   events are not queued at all (and the deliverer makes no Redis calls).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::api::view::MerchantEventView;
use crate::clock::seconds;
use crate::configuration::WebhookSettings;
use crate::domain::event::{
    Attempt, Delivery, DeliveryStatus, Event, EventObject, EventOwner, EventType,
};
use crate::domain::webhook_endpoint::WebhookEndpoint;
use crate::flows::Context;
use crate::metrics::{
    WEBHOOK_DELIVERIES, WEBHOOK_DELIVERY_DURATION, WEBHOOK_ENDPOINT_DELIVERIES,
    WEBHOOK_OUTBOX_DEPTH, WEBHOOK_OUTBOX_OVERDUE,
};
use crate::store::{DeliveryTarget, Leased, StoreError};

pub mod address;
pub mod delivery;
pub mod endpoints;
pub mod hint;
pub mod signing;

pub use signing::Signer;

use address::AddressGuard;
use endpoints::Health;

/// How many deliveries of one checkout run at once.
const CONCURRENCY: usize = 16;
/// Attempts in flight at once per destination: what keeps one slow endpoint from holding up the
/// others, not a rate limit. It was 4: at full speed (about 2,000 checkouts a second on two
/// cores) a destination then fell seconds behind, and with three endpoints per event the outbox
/// took 2.6 s after the run to empty; with 16 the last delivery came 15 ms after it
/// (`outbox_bench`, BENCHMARKS.md).
pub const PER_DESTINATION: usize = 16;
/// How long a delivery waits for one of its destination's attempts to end, at most (less
/// than its lease's margin over the attempt timeout, so that it never outlives its lease)…
const QUEUE_WAIT: Duration = Duration::from_secs(25);
/// …and how much later it is due when none ended by then.
const BUSY_WAIT: TimeDelta = TimeDelta::seconds(5);
/// Checkouts looked at per pass over the outbox index; the rest wait for the next pass.
const PASS_BATCH: usize = 100;
/// Deliveries leased per checkout at a time.
const EVENTS_PER_CHECKOUT: usize = 20;

/// One instance's deliverer.
pub struct Deliverer {
    ctx: Arc<Context>,
    /// For `webhooks.url`, the operator's own: not guarded.
    url_client: reqwest::Client,
    /// For the endpoints: connects only to addresses the guard let through.
    endpoint_client: reqwest::Client,
    url: Option<String>,
    url_signer: Signer,
    guard: Arc<AddressGuard>,
    max_age: TimeDelta,
    timeout: Duration,
    lease: TimeDelta,
    /// Attempts in flight per destination ([`DeliveryTarget::label`]).
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Checkouts (and payment methods) the background passes are delivering now (they are not
    /// started twice).
    busy: Mutex<HashSet<EventOwner>>,
}

/// One delivery to make.
struct Job {
    event: Event,
    target: DeliveryTarget,
    delivery: Option<Delivery>,
}

impl Deliverer {
    pub fn new(
        ctx: Arc<Context>,
        settings: &WebhookSettings,
        guard: Arc<AddressGuard>,
    ) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let client = || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("checkout-gateway/", env!("CARGO_PKG_VERSION")))
        };
        let url_client = client()
            .build()
            .context("could not build the webhook HTTP client")?;
        // No proxy: a proxy would resolve the endpoint's name itself, past the address guard.
        let endpoint_client = client()
            .no_proxy()
            .dns_resolver(guard.resolver())
            .build()
            .context("could not build the webhook endpoints' HTTP client")?;
        Ok(Self {
            ctx,
            url_client,
            endpoint_client,
            url: settings.url.clone(),
            url_signer: Signer::new(settings.secrets.clone()),
            guard,
            max_age: seconds(settings.max_age_s),
            timeout,
            lease: TimeDelta::from_std(timeout).unwrap_or(TimeDelta::MAX) + TimeDelta::seconds(30),
            in_flight: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashSet::new()),
        })
    }

    /// Delivers until `stop` turns true: at once what `bell` announces, and every second what
    /// the outbox index says is due, each checkout in a task of its own.
    pub async fn run(
        self: Arc<Self>,
        mut bell: mpsc::Receiver<EventOwner>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                Some(id) = bell.recv() => {
                    let this = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = this.deliver_checkout(&id, None).await {
                            tracing::warn!(checkout_id = %id, error = %e, "could not deliver a checkout's events; they stay queued");
                        }
                    });
                }
                _ = tick.tick() => {
                    // Nothing to deliver to (no webhooks.url, no endpoint seen): no Redis calls,
                    // but for asking every 10 s whether an endpoint made elsewhere wants the
                    // events made here meanwhile.
                    if self.url.is_none() && !self.ctx.outbox.endpoints.known() {
                        let now_ms = self.ctx.clock.now().timestamp_millis();
                        let hint = &self.ctx.outbox.endpoints;
                        hint.refresh_if_due(&self.ctx.store, now_ms).await;
                        if !hint.known() {
                            continue;
                        }
                    }
                    if let Err(e) = self.start_due().await {
                        tracing::warn!(error = %e, "webhook delivery pass failed; retrying in a second");
                    }
                }
            }
        }
    }

    /// Starts a task for every checkout the outbox index says is due that is not being
    /// delivered already: a slow one never holds up the next pass.
    async fn start_due(self: &Arc<Self>) -> Result<(), StoreError> {
        let now = self.ctx.clock.now();
        let due = self.ctx.store.due_outboxes(now, PASS_BATCH).await?;
        for entry in due {
            let fresh = self.lock_busy().insert(entry.owner.clone());
            if !fresh {
                continue;
            }
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this
                    .deliver_checkout(&entry.owner, Some(entry.due_ms))
                    .await
                {
                    tracing::warn!(checkout_id = %entry.owner, error = %e, "could not deliver a checkout's events; they stay queued");
                }
                this.lock_busy().remove(&entry.owner);
            });
        }
        self.observe_backlog(now).await;
        Ok(())
    }

    fn lock_busy(&self) -> std::sync::MutexGuard<'_, HashSet<EventOwner>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One pass over the outbox index: delivers what is due now, and waits for it. Answers how
    /// many deliveries it tried. Tests call it after moving the clock.
    pub async fn pass(&self) -> Result<usize, StoreError> {
        let now = self.ctx.clock.now();
        let due = self.ctx.store.due_outboxes(now, PASS_BATCH).await?;
        let tried: Vec<Result<usize, StoreError>> = futures_util::stream::iter(due)
            .map(|entry| async move {
                self.deliver_checkout(&entry.owner, Some(entry.due_ms))
                    .await
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut count = 0;
        for result in tried {
            match result {
                Ok(n) => count += n,
                Err(e) => {
                    tracing::warn!(error = %e, "could not deliver a checkout's events; they stay queued")
                }
            }
        }
        self.observe_backlog(now).await;
        Ok(count)
    }

    /// Leases checkout (or payment method) `id`'s due deliveries, fans new events out to the
    /// endpoints, delivers, and settles its index entry (`seen` is the entry's score when a
    /// pass found it there).
    async fn deliver_checkout(
        &self,
        id: &EventOwner,
        seen: Option<i64>,
    ) -> Result<usize, StoreError> {
        let now = self.ctx.clock.now();
        let (leased, mut earliest) = self
            .ctx
            .store
            .lease_due_events(id, now, now + self.lease, EVENTS_PER_CHECKOUT)
            .await?;
        let endpoints = if leased.is_empty() {
            Vec::new()
        } else {
            self.ctx.store.endpoints().await?
        };
        let mut jobs = Vec::with_capacity(leased.len());
        for Leased {
            event,
            target,
            delivery,
            fanned_out,
        } in leased
        {
            if target == DeliveryTarget::Url {
                // Fanned out once; without webhooks.url the event's own entry goes with it.
                if fanned_out.is_none() || self.url.is_none() {
                    let kind = event.kind.to_string();
                    let matching: Vec<_> = endpoints
                        .iter()
                        .filter(|e| e.wants(&kind))
                        .map(|e| e.id.clone())
                        .collect();
                    let fresh = self
                        .ctx
                        .store
                        .fan_out(
                            &event.id,
                            &matching,
                            now,
                            now + self.lease,
                            self.url.is_some(),
                        )
                        .await?;
                    jobs.extend(fresh.into_iter().map(|endpoint| Job {
                        event: event.clone(),
                        target: DeliveryTarget::Endpoint(endpoint),
                        delivery: None,
                    }));
                }
                if self.url.is_none() {
                    continue;
                }
            }
            jobs.push(Job {
                event,
                target,
                delivery,
            });
        }
        let count = jobs.len();
        let endpoints = &endpoints;
        let results: Vec<Result<Option<i64>, StoreError>> = futures_util::stream::iter(jobs)
            .map(|job| self.deliver_one(job, endpoints))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for result in results {
            // Each save answers the outbox's earliest time after it; the last one to finish
            // saw all the others' saves.
            earliest = result?;
        }
        self.ctx.store.settle_outbox(id, seen, earliest).await?;
        Ok(count)
    }

    /// A permit for one attempt at `label`, once one of its attempts in flight ends (within
    /// [`QUEUE_WAIT`] and the attempt timeout); `None` when none did.
    async fn permit(&self, label: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(label.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_DESTINATION)))
            .clone();
        tokio::time::timeout(QUEUE_WAIT.min(self.timeout), semaphore.acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// One attempt at one delivery, recorded. Answers the checkout's earliest outbox time after.
    async fn deliver_one(
        &self,
        job: Job,
        endpoints: &[WebhookEndpoint],
    ) -> Result<Option<i64>, StoreError> {
        let Job {
            event,
            target,
            delivery,
        } = job;
        let at = self.ctx.clock.now();
        let mut delivery = delivery.unwrap_or_else(|| Delivery::due_now(at));
        let label = target.label().to_owned();
        let (url, signer, endpoint, client, guard) = match &target {
            DeliveryTarget::Url => match &self.url {
                Some(url) => (
                    url.clone(),
                    self.url_signer.clone(),
                    None,
                    &self.url_client,
                    None,
                ),
                None => {
                    return self
                        .give_up(&event, &target, delivery, &label, "no_url")
                        .await;
                }
            },
            DeliveryTarget::Endpoint(id) => match endpoints.iter().find(|e| e.id == *id) {
                Some(e) if !e.disabled() => (
                    e.url.clone(),
                    Signer::new(e.signing_secrets(at)),
                    Some(e),
                    &self.endpoint_client,
                    Some(self.guard.as_ref()),
                ),
                // Deleted or disabled: it gets nothing (the merchant may redeliver).
                _ => {
                    return self
                        .give_up(&event, &target, delivery, &label, "disabled")
                        .await;
                }
            },
        };
        let Some(_permit) = self.permit(&label).await else {
            // Its attempts are all in flight: this one waits its turn, counting no attempt.
            delivery.status = DeliveryStatus::Pending;
            delivery.next_attempt_at = Some(at + BUSY_WAIT);
            return self
                .ctx
                .store
                .save_target_delivery(&event.id, &target, &delivery)
                .await;
        };
        // The attempt's time is when it goes out, after any wait for its turn.
        let at = self.ctx.clock.now();
        let body = serde_json::to_vec(&MerchantEventView::new(
            &event,
            &self.ctx.settings.public_url,
        ))
        .unwrap_or_default();
        let to = delivery::Destination {
            client,
            url: &url,
            signer: &signer,
            guard,
            timeout: self.timeout,
        };
        let outcome = delivery::post(&to, event.id.as_str(), at.timestamp(), body).await;
        let delivered = outcome.delivered();
        let attempt = Attempt {
            at,
            http_status: outcome.http_status,
            error: outcome.error.clone(),
            duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        };
        delivery.record(attempt, delivered, event.created_at, self.max_age);
        if let Some(wait) = outcome.retry_after {
            delivery::hold_for(&mut delivery, at, wait, event.created_at, self.max_age);
        }
        let outcome_label = match delivery.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Pending => "retry",
            DeliveryStatus::Failed => "failed",
        };
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome_label).increment(1);
        metrics::counter!(WEBHOOK_ENDPOINT_DELIVERIES, "endpoint" => label.clone(), "outcome" => outcome_label)
            .increment(1);
        metrics::histogram!(WEBHOOK_DELIVERY_DURATION, "endpoint" => label.clone())
            .record(outcome.duration.as_secs_f64());
        if let Some(recorder) = self.ctx.psp.recorder() {
            recorder.webhook_attempt(delivered);
        }
        if !delivered {
            tracing::warn!(
                event_id = %event.id,
                event_type = %event.kind,
                checkout_id = %event.checkout_id(),
                destination = %label,
                http_status = outcome.http_status,
                error = outcome.error.as_deref(),
                attempts = delivery.attempts.len(),
                next_attempt_at = delivery.next_attempt_at.map(|t| t.to_rfc3339()),
                "webhook delivery attempt failed"
            );
        }
        // The endpoint's health first: whoever sees this attempt (a 410, or the failure that
        // ends its max age) sees the endpoint disabled by it too.
        let mut disabled = None;
        if let Some(endpoint) = endpoint {
            let health = if delivered {
                Health::Delivered
            } else if outcome.gone() {
                Health::Gone
            } else {
                Health::Failed
            };
            match endpoints::record(&self.ctx, endpoint, health, at, self.max_age).await {
                Ok(now_disabled) => disabled = now_disabled,
                Err(e) => {
                    tracing::warn!(endpoint_id = %endpoint.id, error = %e, "could not record a webhook endpoint's health")
                }
            }
        }
        let saved = self
            .ctx
            .store
            .save_target_delivery(&event.id, &target, &delivery)
            .await;
        if let Some(disabled) = disabled {
            self.announce_disabled(&event, &disabled).await;
        }
        saved
    }

    /// Makes the `webhook_endpoint.disabled` event of an endpoint that `cause`'s delivery
    /// disabled; it goes out like any event, to `webhooks.url` and to the other enabled
    /// endpoints whose filter matches it.
    async fn announce_disabled(&self, cause: &Event, endpoint: &WebhookEndpoint) {
        let now = self.ctx.clock.now();
        let checkout = cause.checkout_id().clone();
        let event = Event {
            id: cause.id.clone(),
            kind: EventType::WebhookEndpointDisabled,
            created_at: now,
            previous_status: None,
            object: EventObject::WebhookEndpoint {
                checkout: checkout.clone(),
                endpoint: Box::new(endpoint.snapshot()),
            },
        };
        match self
            .ctx
            .store
            .add_event(&event, self.url.is_some(), now)
            .await
        {
            Ok(Some(stored)) => {
                tracing::info!(event_id = %stored.id, endpoint_id = %endpoint.id, "webhook_endpoint.disabled queued");
                self.ctx.outbox.ring(&checkout);
            }
            Ok(None) => {
                tracing::warn!(endpoint_id = %endpoint.id, "no webhook_endpoint.disabled event: its checkout is gone")
            }
            Err(e) => {
                tracing::warn!(endpoint_id = %endpoint.id, error = %e, "could not queue webhook_endpoint.disabled")
            }
        }
    }

    /// Ends a delivery that has nowhere to go, without an attempt.
    async fn give_up(
        &self,
        event: &Event,
        target: &DeliveryTarget,
        mut delivery: Delivery,
        label: &str,
        why: &'static str,
    ) -> Result<Option<i64>, StoreError> {
        delivery::abandon(&mut delivery);
        metrics::counter!(WEBHOOK_ENDPOINT_DELIVERIES, "endpoint" => label.to_owned(), "outcome" => why)
            .increment(1);
        self.ctx
            .store
            .save_target_delivery(&event.id, target, &delivery)
            .await
    }

    async fn observe_backlog(&self, now: DateTime<Utc>) {
        match self.ctx.store.outbox_backlog().await {
            Ok((depth, earliest)) => {
                metrics::gauge!(WEBHOOK_OUTBOX_DEPTH).set(depth as f64);
                let overdue = earliest
                    .map(|ms| (now.timestamp_millis() - ms).max(0) as f64 / 1000.0)
                    .unwrap_or(0.0);
                metrics::gauge!(WEBHOOK_OUTBOX_OVERDUE).set(overdue);
                if let Some(recorder) = self.ctx.psp.recorder() {
                    let age = earliest.map(|_| std::time::Duration::from_secs_f64(overdue));
                    recorder.outbox_age(age);
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not measure the outbox"),
        }
    }
}
