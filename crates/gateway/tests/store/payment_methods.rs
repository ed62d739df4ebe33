//! The saved-card part of the store contract (design §14), on a single Redis node, a Redis
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
use gateway::store::CheckoutStore;

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
        .save_payment_method(&first, &token, &saved)
        .await
        .unwrap();
    assert_eq!((stored.version, &stored.method), (1, &first));
    assert_eq!(stored.token, token);
    // A retried save finds the first one and writes nothing.
    let mut other = first.clone();
    other.usage = Usage::CardOnFile;
    let other_token = MspToken::new("other".into()).unwrap();
    let again = store
        .save_payment_method(&other, &other_token, &saved)
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
            .update_payment_method(7, &deleted, &event)
            .await
            .unwrap(),
        "stale version"
    );
    assert!(
        store
            .update_payment_method(1, &deleted, &event)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_payment_method(1, &deleted, &event)
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
        store.save_payment_method(m, &token, &e).await.unwrap();
    }
    let stranger = CustomerReference::parse("r", "someone-else").unwrap();
    let theirs = method(&stranger);
    let e = PaymentMethodEvent::new(PaymentMethodEventType::Saved, &theirs, 1, Utc::now());
    store
        .save_payment_method(&theirs, &token, &e)
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
