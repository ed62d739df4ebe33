//! Delivering events to the storefront's webhook (design §12).
//!
//! The transition that makes an event also queues it, in the same atomic write
//! ([`crate::flows::apply`]); this module only takes queued events out. Each instance runs one
//! [`Deliverer`]: it delivers at once what its own transitions queued (the
//! [`crate::flows::OutboxBell`] rings), and once a second looks at the outbox index for what is
//! due (retries, and events whose writer died before delivering them). An event is leased to one
//! instance while it is being delivered (`webhooks.timeout_ms` + 30 s), so that in the normal
//! case each is delivered once; a lease whose instance died runs out and another takes over.
//!
//! A delivery is a POST of the event as the API shows it, signed `t=…,v1=…` (HMAC-SHA256 of
//! `"{t}.{body}"`, one `v1` per secret) and with the Standard Webhooks headers
//! ([`signing`]: `webhook-id` the event id, `webhook-timestamp` the attempt's time by the
//! gateway's clock, `webhook-signature`), within the timeout, redirects not followed. A 2xx is
//! delivered; anything else is retried on the schedule of [`crate::domain::event::retry_after`]
//! until `webhooks.max_age_s` after the event, then `failed`. The receiver's answer body is
//! never read, so a huge or endless one holds nothing.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::api::view::MerchantEventView;
use crate::clock::seconds;
use crate::configuration::WebhookSettings;
use crate::domain::checkout::CheckoutId;
use crate::domain::event::{Attempt, DeliveryStatus};
use crate::flows::Context;
use crate::metrics::{WEBHOOK_DELIVERIES, WEBHOOK_OUTBOX_DEPTH, WEBHOOK_OUTBOX_OVERDUE};
use crate::store::{StoreError, StoredEvent};

pub mod signing;

pub use signing::Signer;

/// How many deliveries run at once in one instance: a slow receiver takes at most this many
/// workers, and never a request's.
const CONCURRENCY: usize = 16;
/// Checkouts looked at per pass over the outbox index; the rest wait for the next pass.
const PASS_BATCH: usize = 100;
/// Events leased per checkout at a time.
const EVENTS_PER_CHECKOUT: usize = 20;

/// One instance's deliverer.
pub struct Deliverer {
    ctx: Arc<Context>,
    client: reqwest::Client,
    url: String,
    signer: Signer,
    max_age: TimeDelta,
    timeout: Duration,
    lease: TimeDelta,
    permits: Arc<Semaphore>,
}

impl Deliverer {
    /// `None` when no webhook URL is configured.
    pub fn new(ctx: Arc<Context>, settings: &WebhookSettings) -> anyhow::Result<Option<Self>> {
        let Some(url) = settings.url.clone() else {
            return Ok(None);
        };
        let timeout = Duration::from_millis(settings.timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("checkout-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("could not build the webhook HTTP client")?;
        Ok(Some(Self {
            ctx,
            client,
            url,
            signer: Signer::new(settings.secrets.clone()),
            max_age: seconds(settings.max_age_s),
            timeout,
            lease: TimeDelta::from_std(timeout).unwrap_or(TimeDelta::MAX) + TimeDelta::seconds(30),
            permits: Arc::new(Semaphore::new(CONCURRENCY)),
        }))
    }

    /// Delivers until `stop` turns true: at once what `bell` announces, and every second what
    /// the outbox index says is due.
    pub async fn run(
        self: Arc<Self>,
        mut bell: mpsc::Receiver<CheckoutId>,
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
                    if let Err(e) = self.pass().await {
                        tracing::warn!(error = %e, "webhook delivery pass failed; retrying in a second");
                    }
                }
            }
        }
    }

    /// One pass over the outbox index: delivers what is due now. Answers how many events it
    /// tried. Tests call it after moving the clock.
    pub async fn pass(&self) -> Result<usize, StoreError> {
        let now = self.ctx.clock.now();
        let due = self.ctx.store.due_outboxes(now, PASS_BATCH).await?;
        let tried: Vec<Result<usize, StoreError>> = futures_util::stream::iter(due)
            .map(|entry| async move {
                self.deliver_checkout(&entry.checkout, Some(entry.due_ms))
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

    /// Leases checkout `id`'s due events, delivers them, and settles its index entry (`seen`
    /// is the entry's score when a pass found it there).
    async fn deliver_checkout(
        &self,
        id: &CheckoutId,
        seen: Option<i64>,
    ) -> Result<usize, StoreError> {
        let now = self.ctx.clock.now();
        let (leased, mut earliest) = self
            .ctx
            .store
            .lease_due_events(id, now, now + self.lease, EVENTS_PER_CHECKOUT)
            .await?;
        let count = leased.len();
        let results: Vec<Result<Option<i64>, StoreError>> = futures_util::stream::iter(leased)
            .map(|stored| self.deliver_one(stored))
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

    /// One attempt at one event, recorded. Answers the checkout's earliest outbox time after.
    async fn deliver_one(&self, stored: StoredEvent) -> Result<Option<i64>, StoreError> {
        let _permit = self.permits.acquire().await;
        let StoredEvent { event, delivery } = stored;
        let at = self.ctx.clock.now();
        let body = serde_json::to_vec(&MerchantEventView::new(
            &event,
            &self.ctx.settings.public_url,
        ))
        .unwrap_or_default();
        let started = Instant::now();
        let (http_status, error) = self.post(event.id.as_str(), at.timestamp(), body).await;
        let delivered = http_status.is_some_and(|s| (200..300).contains(&s));
        let attempt = Attempt {
            at,
            http_status,
            error,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let mut delivery = delivery.unwrap_or_else(|| crate::domain::event::Delivery::due_now(at));
        let error = attempt.error.clone();
        delivery.record(attempt, delivered, event.created_at, self.max_age);
        let outcome = match delivery.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Pending => "retry",
            DeliveryStatus::Failed => "failed",
        };
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
        if !delivered {
            tracing::warn!(
                event_id = %event.id,
                event_type = %event.kind,
                checkout_id = %event.checkout_id(),
                http_status,
                error = error.as_deref(),
                attempts = delivery.attempts.len(),
                next_attempt_at = delivery.next_attempt_at.map(|t| t.to_rfc3339()),
                "webhook delivery attempt failed"
            );
        }
        self.ctx.store.save_delivery(&event.id, &delivery).await
    }

    /// POSTs one signed body; answers the receiver's status, or why there was none (and why a
    /// status does not count as delivered), in words for the merchant's engineers.
    async fn post(
        &self,
        event_id: &str,
        attempt_at: i64,
        body: Vec<u8>,
    ) -> (Option<u16>, Option<String>) {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let signed = self.signer.sign(event_id, t, attempt_at, &body);
        let sent = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("gateway-signature", signed.gateway_signature)
            .header("gateway-event-id", event_id)
            .header("webhook-id", signed.webhook_id)
            .header("webhook-timestamp", signed.webhook_timestamp)
            .header("webhook-signature", signed.webhook_signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                // The body is never read: dropping the response closes the connection.
                drop(response);
                let error = match status {
                    200..=299 => None,
                    300..=399 => Some(format!(
                        "answered {status}: redirects are not followed; configure the final URL as webhooks.url"
                    )),
                    _ => Some(format!("answered {status}; a 2xx acknowledges an event")),
                };
                (Some(status), error)
            }
            Err(e) if e.is_timeout() => (
                None,
                Some(format!(
                    "no answer within {} ms (webhooks.timeout_ms)",
                    self.timeout.as_millis()
                )),
            ),
            Err(e) if e.is_connect() => (None, Some("could not connect".to_owned())),
            Err(_) => (
                None,
                Some("the request failed before an answer came".to_owned()),
            ),
        }
    }

    async fn observe_backlog(&self, now: DateTime<Utc>) {
        match self.ctx.store.outbox_backlog().await {
            Ok((depth, earliest)) => {
                metrics::gauge!(WEBHOOK_OUTBOX_DEPTH).set(depth as f64);
                let overdue = earliest
                    .map(|ms| (now.timestamp_millis() - ms).max(0) as f64 / 1000.0)
                    .unwrap_or(0.0);
                metrics::gauge!(WEBHOOK_OUTBOX_OVERDUE).set(overdue);
            }
            Err(e) => tracing::debug!(error = %e, "could not measure the outbox"),
        }
    }
}
