//! Refunds and chargebacks of a manual-capture order count against what was captured, not
//! against what was authorised.

use serde_json::json;

use crate::after_payment::*;
use crate::helpers::*;

/// An order authorised for 1000 and captured for 600.
async fn captured_600(sim: &TestSim) -> String {
    let id = sim.authorised_order(VISA, None).await;
    let (status, answer) = sim
        .capture(&id, json!({"amount": 600, "new_order_status": "completed"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    id
}

#[tokio::test]
async fn refunds_of_a_partial_capture_add_up_to_the_captured_amount_and_no_further() {
    let sim = spawn().await;
    let id = captured_600(&sim).await;
    let (status, answer) = sim
        .refund(&id, json!({"currency": "EUR", "amount": 700}))
        .await;
    assert_eq!(
        (status, answer["error_code"].as_u64()),
        (422, Some(1034)),
        "more than was captured: {answer}"
    );
    assert!(
        answer["error_info"].as_str().unwrap().contains("600"),
        "{answer}"
    );
    sim.refund_ok(&id, json!({"currency": "EUR", "amount": 400}))
        .await;
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("partial_refunded"), Some(400))
    );
    // Absent amount: everything captured and not refunded yet.
    let rest = sim.refund_ok(&id, json!({"currency": "EUR"})).await;
    let o = sim.order(&id).await;
    assert_eq!(related(&o, rest)["amount"], 200, "{o}");
    assert_eq!(
        (
            o["status"].as_str(),
            o["financial_status"].as_str(),
            o["amount_refunded"].as_u64()
        ),
        (Some("refunded"), Some("completed"), Some(600)),
        "refunded in full at 600 of an authorised 1000"
    );
    let (status, answer) = sim
        .refund(&id, json!({"currency": "EUR", "amount": 1}))
        .await;
    assert_eq!((status, answer["error_code"].as_u64()), (422, Some(1034)));
    sim.handle.stop().await;
}

#[tokio::test]
async fn an_authorisation_not_captured_cannot_be_refunded_or_charged_back() {
    let sim = spawn().await;
    let id = sim.authorised_order(VISA, None).await;
    let (status, answer) = sim.refund(&id, json!({"currency": "EUR"})).await;
    assert_eq!(
        (status, answer["error_code"].as_u64()),
        (422, Some(1034)),
        "{answer}"
    );
    assert_eq!(sim.chargeback(&id).await.0, 409);
    let o = sim.order(&id).await;
    assert_eq!(
        (
            o["financial_status"].as_str(),
            o["amount_refunded"].as_u64()
        ),
        (Some("initialized"), Some(0))
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_refund_through_the_capture_order_id_is_the_same_refund() {
    let sim = spawn().await;
    let id = sim.authorised_order(MASTERCARD, None).await;
    let new_id = format!("{id}-c");
    sim.capture(
        &id,
        json!({"amount": 600, "new_order_id": new_id, "new_order_status": "completed"}),
    )
    .await;
    let by_capture = sim
        .refund_ok(&new_id, json!({"currency": "EUR", "amount": 250}))
        .await;
    let by_order = sim
        .refund_ok(&id, json!({"currency": "EUR", "amount": 300}))
        .await;
    let o = sim.order(&id).await;
    assert_eq!(o["amount_refunded"], 550, "{o}");
    assert_eq!(related(&o, by_capture)["refund_order_id"], new_id.as_str());
    assert_eq!(related(&o, by_order)["refund_order_id"], id.as_str());
    let (status, answer) = sim
        .refund(&new_id, json!({"currency": "EUR", "amount": 51}))
        .await;
    assert_eq!(
        (status, answer["error_code"].as_u64()),
        (422, Some(1034)),
        "one balance, whichever id: {answer}"
    );
    let (status, answer) = sim
        .patch_refund(&new_id, &by_order.to_string(), json!({"status": "void"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(sim.order(&id).await["amount_refunded"], 250);
    let (status, o) = sim.chargeback(&new_id).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(
        (o["order_id"].as_str(), o["status"].as_str()),
        (Some(id.as_str()), Some("void"))
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_chargeback_of_a_capture_takes_what_was_captured_and_not_refunded() {
    let sim = spawn().await;
    let id = captured_600(&sim).await;
    sim.refund_ok(&id, json!({"currency": "EUR", "amount": 100}))
        .await;
    let (status, o) = sim.chargeback(&id).await;
    assert_eq!(status, 200, "{o}");
    let chargeback = o["related_transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "chargeback")
        .cloned()
        .unwrap();
    assert_eq!(chargeback["amount"], 500, "{o}");
    assert_eq!(
        (o["status"].as_str(), o["financial_status"].as_str()),
        (Some("void"), Some("void"))
    );
    sim.handle.stop().await;
}
