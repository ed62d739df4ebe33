//! The webhook endpoints' contract, for every store: endpoints change by
//! compare-and-set only; an event is fanned out once, each endpoint with its own delivery that
//! is leased, saved and redelivered apart from the others and from `webhooks.url`'s; a
//! `webhook_endpoint.*` event is stored beside its checkout and delivered like any other.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use gateway::domain::checkout::{CheckoutId, CheckoutStatus as S};
use gateway::domain::event::{
    Attempt, Delivery, DeliveryStatus, Event, EventObject, EventType, events_between,
};
use gateway::domain::webhook_endpoint::{EventFilter, WebhookEndpoint, WebhookEndpointId};
use gateway::store::endpoints::PutReply;
use gateway::store::{CasReply, CheckoutStore, DeliveryTarget, Outbox, Ttls};

use crate::LONG;
use crate::fixtures::{checkout, created_event, moved};

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap()
}

fn endpoint(url: &str) -> WebhookEndpoint {
    WebhookEndpoint::new(
        url.into(),
        EventFilter::parse(vec!["*".into()]).unwrap(),
        None,
        now(),
    )
}

/// A checkout moved to succeeded at `at`, its event queued (for webhooks.url when `to_url`).
async fn queued_event(store: &dyn CheckoutStore, to_url: bool, at: DateTime<Utc>) -> Event {
    let id = CheckoutId::generate();
    let before = checkout(&id);
    store.insert(&before, &created_event()).await.unwrap();
    let after = moved(&before, S::Succeeded);
    let events = events_between(&before, &after, 2, at);
    store
        .announce_events(&(&id).into(), &events, Some(at))
        .await
        .unwrap();
    let outbox = Outbox {
        events: &events,
        deliver_at: Some(at),
        announce_at: Some(at),
        to_url,
        activity: None,
    };
    assert_eq!(
        store
            .compare_and_set(1, &after, None, outbox)
            .await
            .unwrap(),
        CasReply::Applied { version: 2 }
    );
    events.into_iter().next().unwrap()
}

fn delivered(at: DateTime<Utc>) -> Delivery {
    let mut d = Delivery::due_now(at);
    d.record(
        Attempt {
            at,
            http_status: Some(204),
            error: None,
            duration_ms: 3,
        },
        true,
        at,
        TimeDelta::days(3),
    );
    d
}

pub async fn endpoints_change_by_compare_and_set_and_list_newest_first<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(LONG).await;
    let first = endpoint("https://a.example/");
    assert_eq!(
        store.put_endpoint(&first, None, 2).await.unwrap(),
        PutReply::Written
    );
    assert_eq!(
        store.put_endpoint(&first, None, 2).await.unwrap(),
        PutReply::Conflict,
        "an insert of an existing id"
    );
    let second = endpoint("https://b.example/");
    store.put_endpoint(&second, None, 2).await.unwrap();
    assert_eq!(
        store
            .put_endpoint(&endpoint("https://c.example/"), None, 2)
            .await
            .unwrap(),
        PutReply::Full
    );
    let ids: Vec<WebhookEndpointId> = store
        .endpoints()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [second.id.clone(), first.id.clone()]);

    let mut changed = first.clone();
    changed.url = "https://a.example/v2".into();
    let mut stale = first.clone();
    stale.description = Some("stale".into());
    assert_eq!(
        store.put_endpoint(&changed, Some(&stale), 2).await.unwrap(),
        PutReply::Conflict
    );
    assert_eq!(
        store.put_endpoint(&changed, Some(&first), 2).await.unwrap(),
        PutReply::Written
    );
    assert_eq!(
        store.endpoint(&first.id).await.unwrap(),
        Some(changed.clone())
    );
    assert!(!store.delete_endpoint(&first).await.unwrap(), "stale");
    assert!(store.delete_endpoint(&changed).await.unwrap());
    assert_eq!(store.endpoint(&first.id).await.unwrap(), None);
    assert_eq!(store.endpoints().await.unwrap().len(), 1);
}

pub async fn an_event_is_fanned_out_once_each_endpoint_with_its_own_delivery<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(LONG).await;
    let at = now();
    let event = queued_event(store.as_ref(), true, at).await;
    let checkout = event.checkout_id().clone();
    let lease = TimeDelta::minutes(1);
    let (leased, _) = store
        .lease_due_events(&(&checkout).into(), at, at + lease, 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].target, DeliveryTarget::Url);
    assert_eq!(leased[0].fanned_out, None, "not fanned out yet");

    let (e1, e2) = (WebhookEndpointId::generate(), WebhookEndpointId::generate());
    let both = [e1.clone(), e2.clone()];
    assert_eq!(
        store
            .fan_out(&event.id, &both, at, at + lease, true)
            .await
            .unwrap(),
        both
    );
    // Once: another instance's fan-out finds it done.
    assert!(
        store
            .fan_out(&event.id, &both, at, at + lease, true)
            .await
            .unwrap()
            .is_empty()
    );
    let deliveries = store.endpoint_deliveries(&event.id).await.unwrap();
    assert_eq!(
        deliveries
            .iter()
            .map(|(e, _)| e.clone())
            .collect::<Vec<_>>(),
        both
    );
    assert!(
        deliveries
            .iter()
            .all(|(_, d)| d.status == DeliveryStatus::Pending)
    );
    // Leased to the fan-out's caller: nothing is due until the lease is over.
    let (none, _) = store
        .lease_due_events(&(&checkout).into(), at, at + lease, 10)
        .await
        .unwrap();
    assert!(none.is_empty());
    let later = at + lease;
    let (all, _) = store
        .lease_due_events(&(&checkout).into(), later, later + lease, 10)
        .await
        .unwrap();
    let mut targets: Vec<DeliveryTarget> = all.iter().map(|l| l.target.clone()).collect();
    targets.sort_by_key(|t| t.label().to_owned());
    let mut want = vec![
        DeliveryTarget::Url,
        DeliveryTarget::Endpoint(e1.clone()),
        DeliveryTarget::Endpoint(e2.clone()),
    ];
    want.sort_by_key(|t| t.label().to_owned());
    assert_eq!(targets, want);
    let url = all
        .iter()
        .find(|l| l.target == DeliveryTarget::Url)
        .unwrap();
    assert_eq!(url.fanned_out.as_deref(), Some(&both[..]));

    // Each delivery is saved apart.
    store
        .save_target_delivery(
            &event.id,
            &DeliveryTarget::Endpoint(e1.clone()),
            &delivered(later),
        )
        .await
        .unwrap();
    let deliveries = store.endpoint_deliveries(&event.id).await.unwrap();
    assert_eq!(deliveries[0].1.status, DeliveryStatus::Delivered);
    assert_eq!(deliveries[1].1.status, DeliveryStatus::Pending);
    let stored = store.event(&event.id).await.unwrap().unwrap();
    assert_eq!(stored.delivery.unwrap().status, DeliveryStatus::Pending);

    // Redelivered to one endpoint: due again, its attempts kept.
    let again = at + TimeDelta::hours(1);
    let queued = store
        .redeliver_to_endpoint(&event.id, &e1, again)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queued.status, DeliveryStatus::Pending);
    assert_eq!(queued.attempts.len(), 1);
    let (leased, _) = store
        .lease_due_events(&(&checkout).into(), again, again + lease, 10)
        .await
        .unwrap();
    assert!(
        leased
            .iter()
            .any(|l| l.target == DeliveryTarget::Endpoint(e1.clone())),
        "{leased:?}"
    );
    // An endpoint that never had it gets a delivery of its own.
    let e3 = WebhookEndpointId::generate();
    store
        .redeliver_to_endpoint(&event.id, &e3, again)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.endpoint_deliveries(&event.id).await.unwrap().len(), 3);
}

pub async fn without_webhooks_url_an_event_goes_to_the_endpoints_only<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(LONG).await;
    let at = now();
    let event = queued_event(store.as_ref(), false, at).await;
    let checkout = event.checkout_id().clone();
    assert_eq!(
        store.event(&event.id).await.unwrap().unwrap().delivery,
        None
    );
    let lease = TimeDelta::minutes(1);
    let (leased, _) = store
        .lease_due_events(&(&checkout).into(), at, at + lease, 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].delivery, None);
    let e1 = WebhookEndpointId::generate();
    store
        .fan_out(&event.id, std::slice::from_ref(&e1), at, at + lease, false)
        .await
        .unwrap();
    let later = at + lease;
    let (leased, _) = store
        .lease_due_events(&(&checkout).into(), later, later + lease, 10)
        .await
        .unwrap();
    assert_eq!(
        leased.iter().map(|l| l.target.clone()).collect::<Vec<_>>(),
        [DeliveryTarget::Endpoint(e1)]
    );
    assert_eq!(
        store.event(&event.id).await.unwrap().unwrap().delivery,
        None
    );
}

pub async fn an_endpoint_event_is_stored_beside_its_checkout_and_queued<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(LONG).await;
    let at = now();
    let cause = queued_event(store.as_ref(), true, at).await;
    let checkout = cause.checkout_id().clone();
    let mut disabled = endpoint("https://gone.example/");
    disabled.disabled_reason = Some(gateway::domain::webhook_endpoint::DisabledReason::Gone);
    let notice = Event {
        id: cause.id.clone(),
        kind: EventType::WebhookEndpointDisabled,
        created_at: at,
        previous_status: None,
        object: EventObject::WebhookEndpoint {
            checkout: checkout.clone(),
            endpoint: Box::new(disabled.snapshot()),
        },
    };
    let first = store.add_event(&notice, true, at).await.unwrap().unwrap();
    let second = store.add_event(&notice, true, at).await.unwrap().unwrap();
    assert_ne!(first.id, second.id);
    assert_ne!(first.id, cause.id);
    assert_eq!(first.id.checkout_id(), checkout);
    let read = store.event(&first.id).await.unwrap().unwrap();
    assert_eq!(read.event, first);
    assert_eq!(read.delivery.unwrap().status, DeliveryStatus::Pending);
    // The checkout's own event still reads with its checkout.
    let own = store.event(&cause.id).await.unwrap().unwrap();
    assert!(matches!(own.event.object, EventObject::Checkout(_)));
    let (leased, _) = store
        .lease_due_events(&(&checkout).into(), at, at + TimeDelta::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 3, "{leased:?}");
    // No checkout, no event.
    let orphan = Event {
        id: gateway::domain::event::EventId::new(&CheckoutId::generate(), 2, 0),
        ..notice
    };
    assert!(store.add_event(&orphan, true, at).await.unwrap().is_none());
}
