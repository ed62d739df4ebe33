//! The saved-card part of the store contract, on a single Redis node, a Redis
//! Cluster (the payment method and its events share one hash slot) and the in-memory store:
//! a save is done once, a change is a compare-and-set with its event, and a customer's cards
//! list newest first, page by page, with MSP's token read back only beside its payment method.

use std::sync::Arc;

use chrono::Utc;
use gateway::domain::card::CardSummary;
use gateway::domain::checkout::CheckoutId;
use gateway::domain::payment_method::{
    CustomerReference, MspToken, PaymentMethod, PaymentMethodEvent, PaymentMethodEventType,
    PaymentMethodId, PaymentMethodStatus, Usage,
};
use gateway::store::{CheckoutStore, Outbox};

use crate::LONG;

fn method(customer: &CustomerReference) -> PaymentMethod {
    let checkout = CheckoutId::generate();
    let now = Utc::now();
    PaymentMethod {
        id: PaymentMethodId::saved_by(&checkout),
        customer_reference: customer.clone(),
        usage: Usage::Subscription,
        status: PaymentMethodStatus::Active,
        card: CardSummary {
            brand: "visa".into(),
            last4: "1111".into(),
            exp_month: 12,
            exp_year: 2030,
        },
        created_from: checkout,
        created_at: now,
        updated_at: now,
    }
}

async fn saves_once_changes_by_compare_and_set_and_lists_newest_first(
    store: Arc<dyn CheckoutStore>,
) {
    let customer = CustomerReference::parse(
        "customer.reference",
        &format!("cus-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    )
    .unwrap();
    let first = method(&customer);
    let token = MspToken::new("QZTCh7jdk8".into()).unwrap();
    let saved = PaymentMethodEvent::new(PaymentMethodEventType::Saved, &first, 1, Utc::now());
    let stored = store
        .save_payment_method(&first, &token, &saved, Outbox::NONE)
        .await
        .unwrap();
    assert_eq!((stored.version, &stored.method), (1, &first));
    assert_eq!(stored.token, token);
    // A retried save finds the first one and writes nothing.
    let mut other = first.clone();
    other.usage = Usage::CardOnFile;
    let other_token = MspToken::new("other".into()).unwrap();
    let again = store
        .save_payment_method(&other, &other_token, &saved, Outbox::NONE)
        .await
        .unwrap();
    assert_eq!(
        (again.method.usage, again.token),
        (Usage::Subscription, token.clone())
    );

    let mut deleted = first.clone();
    deleted.status = PaymentMethodStatus::Deleted;
    let event = PaymentMethodEvent::new(PaymentMethodEventType::Deleted, &deleted, 2, Utc::now());
    assert!(
        !store
            .update_payment_method(7, &deleted, &event, Outbox::NONE)
            .await
            .unwrap(),
        "stale version"
    );
    assert!(
        store
            .update_payment_method(1, &deleted, &event, Outbox::NONE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_payment_method(1, &deleted, &event, Outbox::NONE)
            .await
            .unwrap(),
        "once"
    );
    let now = store.payment_method(&first.id).await.unwrap().unwrap();
    assert_eq!(
        (now.version, now.method.status),
        (2, PaymentMethodStatus::Deleted)
    );
    let kinds: Vec<String> = store
        .payment_method_events(&first.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["payment_method.saved", "payment_method.deleted"]);

    let second = method(&customer);
    let third = method(&customer);
    for m in [&second, &third] {
        let e = PaymentMethodEvent::new(PaymentMethodEventType::Saved, m, 1, Utc::now());
        store
            .save_payment_method(m, &token, &e, Outbox::NONE)
            .await
            .unwrap();
    }
    let stranger = CustomerReference::parse("r", "someone-else").unwrap();
    let theirs = method(&stranger);
    let e = PaymentMethodEvent::new(PaymentMethodEventType::Saved, &theirs, 1, Utc::now());
    store
        .save_payment_method(&theirs, &token, &e, Outbox::NONE)
        .await
        .unwrap();

    let page = store
        .list_payment_methods(&customer, 2, None)
        .await
        .unwrap();
    let ids: Vec<_> = page.data.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids, [third.id.clone(), second.id.clone()]);
    assert!(page.has_more);
    let rest = store
        .list_payment_methods(&customer, 2, Some(&second.id))
        .await
        .unwrap();
    assert_eq!(rest.data.len(), 1);
    assert_eq!(rest.data[0].id, first.id);
    assert!(!rest.has_more);
    assert!(
        store
            .payment_method(&PaymentMethodId::saved_by(&CheckoutId::generate()))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn redis_keeps_the_saved_card_contract() {
    saves_once_changes_by_compare_and_set_and_lists_newest_first(crate::redis_store(LONG).await)
        .await;
}

#[tokio::test]
async fn redis_cluster_keeps_the_saved_card_contract() {
    saves_once_changes_by_compare_and_set_and_lists_newest_first(crate::cluster_store(LONG).await)
        .await;
}

#[tokio::test]
async fn memory_keeps_the_saved_card_contract() {
    saves_once_changes_by_compare_and_set_and_lists_newest_first(crate::memory_store(LONG).await)
        .await;
}

/// A payment method's merchant events are written with each change, listed, read by id and
/// leased from its own outbox like a checkout's .
async fn a_payment_methods_events_have_their_own_outbox(store: Arc<dyn CheckoutStore>) {
    use gateway::domain::event::{EventOwner, EventType, payment_method_event};
    let customer = CustomerReference::parse("customer.reference", "cus-outbox").unwrap();
    let first = method(&customer);
    let token = MspToken::new("QZTCh7jdk8".into()).unwrap();
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    let history = PaymentMethodEvent::new(PaymentMethodEventType::Saved, &first, 1, now);
    let saved = [payment_method_event(
        PaymentMethodEventType::Saved,
        &first,
        1,
        now,
    )];
    let queued = |events| Outbox {
        events,
        deliver_at: Some(now),
        announce_at: Some(now),
        to_url: true,
        activity: None,
    };
    store
        .save_payment_method(&first, &token, &history, queued(&saved))
        .await
        .unwrap();
    let mut deleted = first.clone();
    deleted.status = PaymentMethodStatus::Deleted;
    let history = PaymentMethodEvent::new(PaymentMethodEventType::Deleted, &deleted, 2, now);
    let gone = [payment_method_event(
        PaymentMethodEventType::Deleted,
        &deleted,
        2,
        now,
    )];
    assert!(
        store
            .update_payment_method(1, &deleted, &history, queued(&gone))
            .await
            .unwrap()
    );
    // Read by id, with its pending delivery, and never with the token.
    let read = store.event(&saved[0].id).await.unwrap().unwrap();
    assert_eq!(read.event, saved[0]);
    assert!(read.delivery.is_some());
    assert!(!format!("{read:?}").contains("QZTCh7jdk8"));
    // Listed, and by type.
    let window = (now - chrono::TimeDelta::days(1), now);
    let listed = store
        .recent_events(
            Some(EventType::PaymentMethod(PaymentMethodEventType::Deleted)),
            None,
            window,
            10,
        )
        .await
        .unwrap();
    assert!(listed.iter().any(|e| e.event == gone[0]), "{listed:?}");
    // The outbox index names the payment method; leasing it answers both events.
    let owner = EventOwner::PaymentMethod(first.id.clone());
    let due = store.due_outboxes(now, 1000).await.unwrap();
    assert!(due.iter().any(|d| d.owner == owner), "{due:?}");
    let (leased, _) = store
        .lease_due_events(&owner, now, now + chrono::TimeDelta::minutes(1), 10)
        .await
        .unwrap();
    let mut ids: Vec<_> = leased.iter().map(|l| l.event.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, [saved[0].id.clone(), gone[0].id.clone()]);
    // Delivered: out of the outbox.
    for l in &leased {
        let mut delivery = l.delivery.clone().unwrap();
        delivery.status = gateway::domain::event::DeliveryStatus::Delivered;
        delivery.next_attempt_at = None;
        store.save_delivery(&l.event.id, &delivery).await.unwrap();
    }
    let (again, earliest) = store
        .lease_due_events(&owner, now + chrono::TimeDelta::hours(1), now, 10)
        .await
        .unwrap();
    assert!(again.is_empty() && earliest.is_none(), "{again:?}");
}

#[tokio::test]
async fn redis_keeps_a_payment_methods_events_in_its_own_outbox() {
    a_payment_methods_events_have_their_own_outbox(crate::redis_store(LONG).await).await;
}

#[tokio::test]
async fn redis_cluster_keeps_a_payment_methods_events_in_its_own_outbox() {
    a_payment_methods_events_have_their_own_outbox(crate::cluster_store(LONG).await).await;
}

#[tokio::test]
async fn memory_keeps_a_payment_methods_events_in_its_own_outbox() {
    a_payment_methods_events_have_their_own_outbox(crate::memory_store(LONG).await).await;
}
