//! The `refund_failure` fault: a refund declined when it would have settled, and a refund made
//! whose answer never comes.

use std::time::Duration;

use serde_json::json;

use crate::after_payment::*;
use crate::helpers::*;

const PROMPTLY: Duration = Duration::from_secs(1);

#[tokio::test]
async fn refund_failure_is_none_by_default_and_takes_only_its_values() {
    let sim = spawn().await;
    assert_eq!(sim.put_faults(json!({})).await["refund_failure"], "none");
    for value in ["declined", "timeout", "none"] {
        assert_eq!(
            sim.put_faults(json!({"refund_failure": value})).await["refund_failure"],
            value
        );
    }
    let r = sim
        .http
        .put(format!("{}/sim/faults", sim.local()))
        .json(&json!({"refund_failure": "sometimes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_declined_refund_is_accepted_then_declined_and_gives_its_amount_back() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = sim.paid_order(Some(&format!("{}/ok", notify.uri()))).await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    sim.put_faults(json!({"refund_failure": "declined"})).await;
    let refund_id = sim
        .refund_ok(&id, json!({"currency": "EUR", "amount": 400}))
        .await;
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("partial_refunded"), Some(400)),
        "accepted like any refund"
    );
    assert_eq!(related(&o, refund_id)["status"], "reserved");
    sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;

    // Switching the fault off later does not save a refund made under it.
    sim.put_faults(json!({"refund_failure": "none"})).await;
    sim.advance(60).await;
    let o = sim
        .wait_order(&id, PROMPTLY, |o| {
            related(o, refund_id)["status"] == "declined"
        })
        .await;
    assert_eq!(related(&o, refund_id)["status"], "declined", "{o}");
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("completed"), Some(0)),
        "the amount is back on the order"
    );
    let attempts = sim.wait_attempts(&id, 3, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 3, "the decline is notified: {attempts:?}");
    let last = posted_orders(&notify, &id).await.pop().unwrap();
    assert_eq!(related(&last, refund_id)["status"], "declined");
    assert_eq!(last["status"], "completed");

    // The amount can be refunded again (once the five minutes are over).
    sim.advance(300).await;
    sim.refund_ok(&id, json!({"currency": "EUR", "amount": 400}))
        .await;
    assert_eq!(sim.order(&id).await["amount_refunded"], 400);
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_refund_timeout_makes_the_refund_but_never_answers() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = sim.paid_order(Some(&format!("{}/ok", notify.uri()))).await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    sim.put_faults(json!({"refund_failure": "timeout"})).await;
    let r = sim
        .http
        .post(sim.url(&format!("/orders/{id}/refunds")))
        .header("api_key", KEY)
        .timeout(Duration::from_millis(500))
        .json(&json!({"currency": "EUR", "amount": 250, "refund_order_id": "re-lost"}))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()), "the answer never comes");

    // The refund exists: findable by its refund_order_id, notified, and it settles as usual.
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("partial_refunded"), Some(250))
    );
    let entry = o["related_transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["refund_order_id"] == "re-lost")
        .cloned()
        .expect("the refund is recorded");
    assert_eq!(
        (entry["status"].as_str(), entry["amount"].as_u64()),
        (Some("reserved"), Some(250))
    );
    assert_eq!(
        sim.wait_attempts(&id, 2, Duration::from_secs(5))
            .await
            .len(),
        2
    );
    let refund_id = entry["transaction_id"].as_u64().unwrap();
    sim.advance(60).await;
    let o = sim
        .wait_order(&id, PROMPTLY, |o| {
            related(o, refund_id)["status"] == "completed"
        })
        .await;
    assert_eq!(related(&o, refund_id)["status"], "completed");
    sim.handle.stop().await;
}
