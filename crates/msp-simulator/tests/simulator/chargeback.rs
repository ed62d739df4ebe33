//! `POST /sim/orders/{id}/chargeback`: a paid order charged back as MSP shows it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::after_payment::*;
use crate::helpers::*;

fn chargebacks(order: &Value) -> Vec<Value> {
    order["related_transactions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["type"] == "chargeback")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_completed_order_charged_back_is_void_with_a_chargeback_entry_and_notified() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = sim.paid_order(Some(&format!("{}/ok", notify.uri()))).await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let (status, answered) = sim.chargeback(&id).await;
    assert_eq!(status, 200, "{answered}");
    let o = sim.order(&id).await;
    assert_eq!(answered, o, "answers the order as GET shows it");
    assert_eq!(
        (o["status"].as_str(), o["financial_status"].as_str()),
        (Some("void"), Some("void"))
    );
    let cb = chargebacks(&o);
    assert_eq!(cb.len(), 1, "{o}");
    assert_eq!(cb[0]["amount"], 1000);
    assert_eq!(cb[0]["currency"], "EUR");
    assert_eq!(cb[0]["status"], "completed");
    assert_eq!(cb[0]["order_id"], id.as_str());
    assert_eq!(cb[0]["reference_transaction_id"], o["transaction_id"]);
    assert!(cb[0]["transaction_id"].is_u64());
    assert!(cb[0]["refund_order_id"].is_null());

    let attempts = sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[1]["order_status"], "void");
    let last = posted_orders(&notify, &id).await.pop().unwrap();
    assert_eq!(chargebacks(&last).len(), 1);

    let (status, answer) = sim.refund(&id, json!({"currency": "EUR"})).await;
    assert_eq!(
        (status, answer["error_code"].as_u64()),
        (422, Some(1034)),
        "nothing left to refund: {answer}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_partially_refunded_order_is_charged_back_for_what_was_not_refunded() {
    let sim = spawn().await;
    let id = sim.paid_order(None).await;
    let refund_id = sim
        .refund_ok(&id, json!({"currency": "EUR", "amount": 300}))
        .await;
    let (status, o) = sim.chargeback(&id).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["status"], "void");
    assert_eq!(chargebacks(&o)[0]["amount"], 700);
    assert_eq!(o["amount_refunded"], 300);
    // The refund goes its own way, and the order stays charged back.
    sim.advance(60).await;
    let o = sim
        .wait_order(&id, Duration::from_secs(1), |o| {
            related(o, refund_id)["status"] == "completed"
        })
        .await;
    assert_eq!(related(&o, refund_id)["status"], "completed");
    assert_eq!(o["status"], "void");
    sim.handle.stop().await;
}

#[tokio::test]
async fn only_a_paid_order_can_be_charged_back_once() {
    let sim = spawn().await;
    let unpaid = order_id();
    sim.create(&order_body(&unpaid, "4111111111111111")).await;
    let refunded = sim.paid_order(None).await;
    sim.refund_ok(&refunded, json!({"currency": "EUR"})).await;
    let twice = sim.paid_order(None).await;
    assert_eq!(sim.chargeback(&twice).await.0, 200);
    for (id, why) in [
        (unpaid.as_str(), "initialized"),
        (refunded.as_str(), "refunded in full"),
        (twice.as_str(), "charged back already"),
    ] {
        let (status, answer) = sim.chargeback(id).await;
        assert_eq!(status, 409, "{why}: {answer}");
        assert!(answer["error"].is_string(), "{why}: {answer}");
    }
    assert_eq!(sim.order(&unpaid).await["status"], "initialized");
    assert_eq!(sim.order(&refunded).await["status"], "refunded");
    let (status, answer) = sim.chargeback("no-such-order").await;
    assert_eq!(status, 404, "{answer}");
    sim.handle.stop().await;
}

#[tokio::test]
async fn an_order_id_used_on_two_sites_needs_the_key_of_one() {
    let sim = spawn().await;
    let id = order_id();
    for key in [KEY, OTHER_KEY] {
        let (status, _) = sim.create_as(key, &order_body(&id, PAID_CARD)).await;
        assert_eq!(status, 200);
    }
    let (status, answer) = sim.chargeback(&id).await;
    assert_eq!(status, 409, "ambiguous: {answer}");
    let r = sim
        .http
        .post(format!("{}/sim/orders/{id}/chargeback", sim.local()))
        .header("api_key", OTHER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        sim.order(&id).await["status"],
        "completed",
        "site A's order"
    );
    sim.handle.stop().await;
}
