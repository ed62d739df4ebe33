//! `PATCH /capture/{id}` with `status: cancelled`: an authorisation voided before it is
//! captured.

use std::time::Duration;

use serde_json::json;

use crate::after_payment::*;
use crate::helpers::*;

#[tokio::test]
async fn cancelling_an_authorisation_voids_it_and_notifies() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = sim
        .authorised_order(VISA, Some(&format!("{}/ok", notify.uri())))
        .await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let transaction_id = sim.order(&id).await["transaction_id"].clone();
    let (status, answer) = sim
        .cancel_authorization(
            &id,
            json!({"status": "cancelled", "reason": "out of stock", "description": "sorry"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"success": true,
               "data": {"transaction_id": transaction_id, "order_id": id, "success": true}})
    );
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["financial_status"].as_str()),
        (Some("void"), Some("void")),
        "{o}"
    );
    assert_eq!(o["payment_details"]["capture_remain"], 0);
    assert_eq!(o["amount_refunded"], 0);

    let attempts = sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[1]["order_status"], "void");
    let notified = posted_orders(&notify, &id).await.pop().unwrap();
    assert_eq!(notified["financial_status"], "void");

    // Void is final: no capture, no refund, no second cancellation.
    let (status, answer) = sim
        .capture(
            &id,
            json!({"amount": 1000, "new_order_status": "completed"}),
        )
        .await;
    assert_eq!((status, answer["error_code"].as_u64()), (409, Some(1000)));
    let (status, answer) = sim.refund(&id, json!({"currency": "EUR"})).await;
    assert_eq!((status, answer["error_code"].as_u64()), (422, Some(1034)));
    let (status, answer) = sim
        .cancel_authorization(&id, json!({"status": "cancelled", "reason": "again"}))
        .await;
    assert_eq!((status, answer["error_code"].as_u64()), (409, Some(1000)));
    assert_eq!(sim.order(&id).await, o, "refusals change nothing");
    sim.handle.stop().await;
}

#[tokio::test]
async fn only_an_authorisation_can_be_cancelled_this_way() {
    let sim = spawn().await;
    let collected = sim.paid_order(None).await;
    let captured = sim.authorised_order(MASTERCARD, None).await;
    sim.capture(&captured, json!({"new_order_status": "completed"}))
        .await;
    let unanswered = order_id();
    sim.create(&manual_order(&unanswered, VISA, None)).await;
    let cancel = json!({"status": "cancelled", "reason": "changed my mind"});
    for (id, why) in [
        (&collected, "collected at once"),
        (&captured, "captured"),
        (
            &unanswered,
            "not authorised yet (PATCH /orders/{id} cancels it)",
        ),
    ] {
        let before = sim.order(id).await;
        let (status, answer) = sim.cancel_authorization(id, cancel.clone()).await;
        assert_eq!(
            (status, answer["error_code"].as_u64()),
            (409, Some(1000)),
            "{why}: {answer}"
        );
        assert_eq!(answer["success"], false);
        assert_eq!(sim.order(id).await, before, "{why}: unchanged");
    }

    let authorised = sim.authorised_order(MAESTRO, None).await;
    let (status, answer) = sim
        .cancel_authorization(&authorised, json!({"status": "void"}))
        .await;
    assert_eq!(
        (status, answer["error_code"].as_u64()),
        (400, Some(1000)),
        "only cancelled: {answer}"
    );
    let (status, answer) = sim
        .cancel_authorization("no-such-order", cancel.clone())
        .await;
    assert_eq!((status, answer["error_code"].as_u64()), (404, Some(1006)));
    let r = sim
        .http
        .patch(sim.url(&format!("/capture/{authorised}")))
        .header("api_key", OTHER_KEY)
        .json(&cancel)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "another site's order");
    assert_eq!(
        sim.order(&authorised).await["financial_status"],
        "initialized"
    );
    // Without a reason too.
    let (status, answer) = sim
        .cancel_authorization(&authorised, json!({"status": "cancelled"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(sim.order(&authorised).await["status"], "void");
    sim.handle.stop().await;
}
