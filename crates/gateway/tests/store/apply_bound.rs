//! `flows::apply` does not loop forever: a change that keeps losing its compare-and-set gives up
//! after a handful of attempts with a 503-class error that says to retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use chrono::{DateTime, Utc};
use gateway::clock::SystemClock;
use gateway::configuration::Settings;
use gateway::domain::checkout::{Checkout, CheckoutEvent, CheckoutId, EventSource, PaySession};
use gateway::domain::event::{Delivery, Event, EventId, EventOwner, EventType};
use gateway::domain::payment_method::{
    CustomerReference, MspToken, PaymentMethod, PaymentMethodEvent, PaymentMethodId,
    StoredPaymentMethod,
};
use gateway::domain::refund::RefundId;
use gateway::domain::webhook_endpoint::{WebhookEndpoint, WebhookEndpointId};
use gateway::flows::apply::{ApplyError, MAX_CAS_ATTEMPTS, apply};
use gateway::flows::transition::News;
use gateway::flows::{Context, FlowSettings};
use gateway::psp::multisafepay::MultiSafepayClient;
use gateway::store::endpoints::PutReply;
use gateway::store::{
    CasReply, CheckoutStore, Claim, EventOutbox, Idempotency, IdempotencyBegin, InsertReply,
    Listing, LockToken, Locks, Outbox, OutboxEntry, PaymentMethodPage, PaymentMethods, Records,
    StoreError, StoredEvent, StoredResponse, SyncIndex, Versioned,
};
use gateway::store::{DeliveryTarget, Leased, WebhookEndpoints};

use crate::fixtures::{checkout, created_event};
use crate::{LONG, memory_store};

/// A store whose every compare-and-set loses (someone else always wrote first).
struct AlwaysLosing {
    inner: Arc<dyn CheckoutStore>,
    attempts: AtomicUsize,
}

#[async_trait]
impl Records for AlwaysLosing {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn insert(&self, c: &Checkout, e: &CheckoutEvent) -> Result<InsertReply, StoreError> {
        self.inner.insert(c, e).await
    }
    async fn get(&self, id: &CheckoutId) -> Result<Option<Versioned>, StoreError> {
        self.inner.get(id).await
    }
    async fn get_recording(
        &self,
        id: &CheckoutId,
        pending: &gateway::store::activity::Pending,
    ) -> Result<Option<Versioned>, StoreError> {
        self.inner.get_recording(id, pending).await
    }
    async fn compare_and_set(
        &self,
        _: u64,
        next: &Checkout,
        _: Option<&CheckoutEvent>,
        _: Outbox<'_>,
    ) -> Result<CasReply, StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let current = self
            .inner
            .get(&next.id)
            .await?
            .expect("the checkout exists");
        Ok(CasReply::Conflict {
            current: Box::new(current),
        })
    }
    async fn events(&self, id: &CheckoutId) -> Result<Vec<CheckoutEvent>, StoreError> {
        self.inner.events(id).await
    }
    async fn put_pay_session(&self, t: &str, s: &PaySession) -> Result<(), StoreError> {
        self.inner.put_pay_session(t, s).await
    }
    async fn get_pay_session(&self, t: &str) -> Result<Option<PaySession>, StoreError> {
        self.inner.get_pay_session(t).await
    }
    async fn index_refund(&self, r: &RefundId, c: &CheckoutId) -> Result<(), StoreError> {
        self.inner.index_refund(r, c).await
    }
    async fn checkout_of_refund(&self, r: &RefundId) -> Result<Option<CheckoutId>, StoreError> {
        self.inner.checkout_of_refund(r).await
    }
}

#[async_trait]
impl Idempotency for AlwaysLosing {
    async fn idempotency_claim(
        &self,
        k: &str,
        c: &Claim<'_>,
    ) -> Result<IdempotencyBegin, StoreError> {
        self.inner.idempotency_claim(k, c).await
    }
    async fn idempotency_complete(
        &self,
        k: &str,
        o: &str,
        r: &StoredResponse,
    ) -> Result<(), StoreError> {
        self.inner.idempotency_complete(k, o, r).await
    }
    async fn idempotency_abort(&self, k: &str, o: &str) -> Result<(), StoreError> {
        self.inner.idempotency_abort(k, o).await
    }
}

#[async_trait]
impl SyncIndex for AlwaysLosing {
    async fn schedule_sync(&self, id: &CheckoutId, due: i64) -> Result<(), StoreError> {
        self.inner.schedule_sync(id, due).await
    }
    async fn unschedule_sync(&self, id: &CheckoutId) -> Result<(), StoreError> {
        self.inner.unschedule_sync(id).await
    }
    async fn due_for_sync(&self, now: i64, limit: usize) -> Result<Vec<CheckoutId>, StoreError> {
        self.inner.due_for_sync(now, limit).await
    }
}

#[async_trait]
impl PaymentMethods for AlwaysLosing {
    async fn save_payment_method(
        &self,
        method: &PaymentMethod,
        token: &MspToken,
        event: &PaymentMethodEvent,
        outbox: gateway::store::Outbox<'_>,
    ) -> Result<StoredPaymentMethod, StoreError> {
        self.inner
            .save_payment_method(method, token, event, outbox)
            .await
    }
    async fn payment_method(
        &self,
        id: &PaymentMethodId,
    ) -> Result<Option<StoredPaymentMethod>, StoreError> {
        self.inner.payment_method(id).await
    }
    async fn update_payment_method(
        &self,
        expected_version: u64,
        next: &PaymentMethod,
        event: &PaymentMethodEvent,
        outbox: gateway::store::Outbox<'_>,
    ) -> Result<bool, StoreError> {
        self.inner
            .update_payment_method(expected_version, next, event, outbox)
            .await
    }
    async fn list_payment_methods(
        &self,
        customer: &CustomerReference,
        limit: usize,
        starting_after: Option<&PaymentMethodId>,
    ) -> Result<PaymentMethodPage, StoreError> {
        self.inner
            .list_payment_methods(customer, limit, starting_after)
            .await
    }
    async fn payment_method_events(
        &self,
        id: &PaymentMethodId,
    ) -> Result<Vec<PaymentMethodEvent>, StoreError> {
        self.inner.payment_method_events(id).await
    }
}

#[async_trait]
impl Locks for AlwaysLosing {
    async fn try_lock(
        &self,
        id: &CheckoutId,
        ttl: Duration,
    ) -> Result<Option<LockToken>, StoreError> {
        self.inner.try_lock(id, ttl).await
    }
    async fn unlock(&self, id: &CheckoutId, token: &LockToken) -> Result<(), StoreError> {
        self.inner.unlock(id, token).await
    }
}

#[async_trait]
impl EventOutbox for AlwaysLosing {
    async fn announce_events(
        &self,
        id: &EventOwner,
        events: &[Event],
        due: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.inner.announce_events(id, events, due).await
    }
    async fn recent_events(
        &self,
        kind: Option<EventType>,
        before: Option<(DateTime<Utc>, &EventId)>,
        window: (DateTime<Utc>, DateTime<Utc>),
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.recent_events(kind, before, window, limit).await
    }
    async fn due_outboxes(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.due_outboxes(now, limit).await
    }
    async fn lease_due_events(
        &self,
        id: &EventOwner,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<Leased>, Option<i64>), StoreError> {
        self.inner.lease_due_events(id, now, until, limit).await
    }
    async fn save_target_delivery(
        &self,
        id: &EventId,
        target: &DeliveryTarget,
        d: &Delivery,
    ) -> Result<Option<i64>, StoreError> {
        self.inner.save_target_delivery(id, target, d).await
    }
    async fn fan_out(
        &self,
        id: &EventId,
        endpoints: &[WebhookEndpointId],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        keep_url: bool,
    ) -> Result<Vec<WebhookEndpointId>, StoreError> {
        self.inner
            .fan_out(id, endpoints, now, until, keep_url)
            .await
    }
    async fn add_event(
        &self,
        event: &Event,
        to_url: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Event>, StoreError> {
        self.inner.add_event(event, to_url, now).await
    }
    async fn endpoint_deliveries(
        &self,
        id: &EventId,
    ) -> Result<Vec<(WebhookEndpointId, Delivery)>, StoreError> {
        self.inner.endpoint_deliveries(id).await
    }
    async fn redeliver_to_endpoint(
        &self,
        id: &EventId,
        endpoint: &WebhookEndpointId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        self.inner.redeliver_to_endpoint(id, endpoint, now).await
    }
    async fn settle_outbox(
        &self,
        id: &EventOwner,
        seen: Option<i64>,
        next: Option<i64>,
    ) -> Result<(), StoreError> {
        self.inner.settle_outbox(id, seen, next).await
    }
    async fn event(&self, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        self.inner.event(id).await
    }
    async fn checkout_events(&self, id: &CheckoutId) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.checkout_events(id).await
    }
    async fn redeliver(
        &self,
        id: &EventId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        self.inner.redeliver(id, now).await
    }
    async fn outbox_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        self.inner.outbox_backlog().await
    }
}

#[async_trait]
impl WebhookEndpoints for AlwaysLosing {
    async fn put_endpoint(
        &self,
        next: &WebhookEndpoint,
        expected: Option<&WebhookEndpoint>,
        max: usize,
    ) -> Result<PutReply, StoreError> {
        self.inner.put_endpoint(next, expected, max).await
    }
    async fn endpoint(
        &self,
        id: &WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.inner.endpoint(id).await
    }
    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        self.inner.endpoints().await
    }
    async fn delete_endpoint(&self, expected: &WebhookEndpoint) -> Result<bool, StoreError> {
        self.inner.delete_endpoint(expected).await
    }
}

#[async_trait]
impl gateway::store::ConsoleData for AlwaysLosing {
    async fn console_put(
        &self,
        slot: gateway::store::console::ConsoleSlot<'_>,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.inner.console_put(slot, value, ttl).await
    }
    async fn console_get(
        &self,
        slot: gateway::store::console::ConsoleSlot<'_>,
    ) -> Result<Option<String>, StoreError> {
        self.inner.console_get(slot).await
    }
    async fn console_delete(
        &self,
        slot: gateway::store::console::ConsoleSlot<'_>,
    ) -> Result<(), StoreError> {
        self.inner.console_delete(slot).await
    }
    async fn console_count(
        &self,
        slot: gateway::store::console::ConsoleSlot<'_>,
        ttl: Duration,
    ) -> Result<u64, StoreError> {
        self.inner.console_count(slot, ttl).await
    }
    async fn console_counted(
        &self,
        slot: gateway::store::console::ConsoleSlot<'_>,
    ) -> Result<u64, StoreError> {
        self.inner.console_counted(slot).await
    }
    async fn console_push(
        &self,
        slot: gateway::store::console::ConsoleSlot<'_>,
        value: &str,
        keep: usize,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.inner.console_push(slot, value, keep, ttl).await
    }
    async fn console_list(
        &self,
        slot: gateway::store::console::ConsoleSlot<'_>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.console_list(slot, limit).await
    }
    async fn console_index(
        &self,
        index: gateway::store::console::SearchIndex,
        value: &str,
        id: &CheckoutId,
    ) -> Result<(), StoreError> {
        self.inner.console_index(index, value, id).await
    }
    async fn idempotency_checkout(&self, key: &str) -> Result<Option<CheckoutId>, StoreError> {
        self.inner.idempotency_checkout(key).await
    }
}

#[async_trait]
impl Listing for AlwaysLosing {
    async fn index_for_listing(&self, c: &Checkout) -> Result<(), StoreError> {
        self.inner.index_for_listing(c).await
    }
    async fn reindex_status(
        &self,
        c: &Checkout,
        previous: gateway::domain::checkout::CheckoutStatus,
    ) -> Result<(), StoreError> {
        self.inner.reindex_status(c, previous).await
    }
    async fn list_checkouts(
        &self,
        q: &gateway::store::listing::ListQuery,
    ) -> Result<gateway::store::listing::ListReply, StoreError> {
        self.inner.list_checkouts(q).await
    }
}

#[async_trait]
impl gateway::store::sweep::Sweeps for AlwaysLosing {
    async fn lease_sweep(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.lease_sweep(owner, now, ttl).await
    }
    async fn release_sweep(&self, owner: &str) -> Result<(), StoreError> {
        self.inner.release_sweep(owner).await
    }
    async fn sweep_watermark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.inner.sweep_watermark().await
    }
    async fn advance_sweep_watermark(
        &self,
        owner: &str,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.advance_sweep_watermark(owner, to).await
    }
    async fn record_sweep(&self, report: &str) -> Result<(), StoreError> {
        self.inner.record_sweep(report).await
    }
    async fn recent_sweeps(&self) -> Result<Vec<String>, StoreError> {
        self.inner.recent_sweeps().await
    }
}

#[async_trait]
impl gateway::store::Activity for AlwaysLosing {
    async fn record_msp_call(
        &self,
        id: Option<&CheckoutId>,
        call: &gateway::activity::MspCallRecord,
        stats: &gateway::store::activity::StatsUpdate,
    ) -> Result<(), StoreError> {
        self.inner.record_msp_call(id, call, stats).await
    }
    async fn record_notification(
        &self,
        id: &CheckoutId,
        n: &gateway::activity::NotificationRecord,
    ) -> Result<(), StoreError> {
        self.inner.record_notification(id, n).await
    }
    async fn record_stats(
        &self,
        stats: &gateway::store::activity::StatsUpdate,
    ) -> Result<(), StoreError> {
        self.inner.record_stats(stats).await
    }
    async fn msp_call_log(
        &self,
        id: &CheckoutId,
    ) -> Result<Vec<gateway::activity::MspCallRecord>, StoreError> {
        self.inner.msp_call_log(id).await
    }
    async fn notification_log(
        &self,
        id: &CheckoutId,
    ) -> Result<Vec<gateway::activity::NotificationRecord>, StoreError> {
        self.inner.notification_log(id).await
    }
    async fn stats_hours(&self, hours: &[i64]) -> Result<Vec<Vec<(String, i64)>>, StoreError> {
        self.inner.stats_hours(hours).await
    }
}

#[tokio::test]
async fn a_change_that_keeps_losing_its_compare_and_set_gives_up_with_a_retryable_error() {
    let inner = memory_store(LONG).await;
    let id = CheckoutId::generate();
    inner
        .insert(&checkout(&id), &created_event())
        .await
        .unwrap();
    let store = Arc::new(AlwaysLosing {
        inner,
        attempts: AtomicUsize::new(0),
    });
    let settings = Settings::default();
    let ctx = Context {
        store: store.clone(),
        psp: MultiSafepayClient::new(
            "http://127.0.0.1:9",
            SecretString::from("k"),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap(),
        clock: Arc::new(SystemClock),
        settings: FlowSettings::new(&settings, "http://gateway.test".into()),
        outbox: Default::default(),
        syncs: Default::default(),
    };

    let failure = gateway::psp::multisafepay::status::failure_for_unknown_order();
    let err = apply(
        &ctx,
        &id,
        EventSource::Reconcile,
        News::NeverReceived(&failure),
    )
    .await
    .unwrap_err();
    assert_eq!(
        store.attempts.load(Ordering::SeqCst),
        MAX_CAS_ATTEMPTS as usize
    );
    let ApplyError::Store(e @ StoreError::Unavailable { .. }) = err else {
        panic!("expected a 503-class store error, got {err:?}");
    };
    assert!(e.to_string().contains("retry"), "{e}");
}
