//! Point 7: refunds.

use serde_json::{Value, json};

use crate::helpers::*;

async fn completed(sim: &TestSim) -> String {
    let id = order_id();
    let (_, created) = sim.create(&order_body(&id, "374500000000015")).await;
    assert_eq!(created["data"]["status"], "completed");
    id
}

async fn refund(sim: &TestSim, id: &str, body: Value) -> (u16, Value) {
    let r = sim
        .http
        .post(sim.url(&format!("/orders/{id}/refunds")))
        .header("api_key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn an_absent_or_zero_amount_refunds_everything() {
    let sim = spawn().await;
    for body in [
        json!({"currency": "EUR"}),
        json!({"currency": "EUR", "amount": 0}),
    ] {
        let id = completed(&sim).await;
        let (status, answer) = refund(&sim, &id, body.clone()).await;
        assert_eq!(status, 200, "{body}: {answer}");
        let o = sim.order(&id).await;
        assert_eq!(answer["data"]["transaction_id"], o["transaction_id"]);
        assert!(answer["data"]["refund_id"].is_u64());
        // Changed by the time the refund call answered.
        assert_eq!(o["status"], "refunded", "{body}");
        assert_eq!(o["amount_refunded"], 1000);
        let related = &o["related_transactions"][0];
        assert_eq!(related["type"], "refund");
        assert_eq!(related["amount"], 1000);
        assert_eq!(related["transaction_id"], answer["data"]["refund_id"]);
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn partial_refunds_add_up_to_refunded_and_no_further() {
    let sim = spawn().await;
    let id = completed(&sim).await;
    assert_eq!(
        refund(&sim, &id, json!({"currency": "EUR", "amount": 400}))
            .await
            .0,
        200
    );
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("partial_refunded"), Some(400))
    );
    let (status, over) = refund(&sim, &id, json!({"currency": "EUR", "amount": 601})).await;
    assert_eq!(
        (status, over["error_code"].clone()),
        (422, json!(1034)),
        "over-refund: {over}"
    );
    let (status, wrong) = refund(&sim, &id, json!({"currency": "USD", "amount": 100})).await;
    assert_eq!(
        (status, wrong["error_code"].clone()),
        (400, json!(1002)),
        "wrong currency: {wrong}"
    );
    assert_eq!(
        sim.order(&id).await["amount_refunded"],
        400,
        "refusals change nothing"
    );
    assert_eq!(
        refund(&sim, &id, json!({"currency": "EUR", "amount": 600}))
            .await
            .0,
        200
    );
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("refunded"), Some(1000))
    );
    assert_eq!(o["related_transactions"].as_array().unwrap().len(), 2);
    let (status, again) = refund(&sim, &id, json!({"currency": "EUR"})).await;
    assert_eq!(
        (status, again["error_code"].clone()),
        (422, json!(1034)),
        "nothing left: {again}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn an_unpaid_unknown_or_foreign_order_cannot_be_refunded() {
    let sim = spawn().await;
    let id = order_id();
    sim.create(&order_body(&id, "4111111111111111")).await;
    let (status, answer) = refund(&sim, &id, json!({"currency": "EUR"})).await;
    assert_eq!(
        (status, answer["error_code"].clone()),
        (422, json!(1034)),
        "initialized: {answer}"
    );
    let (status, answer) = refund(&sim, "no-such-order", json!({"currency": "EUR"})).await;
    assert_eq!((status, answer["error_code"].clone()), (404, json!(1006)));
    let paid = completed(&sim).await;
    let r = sim
        .http
        .post(sim.url(&format!("/orders/{paid}/refunds")))
        .header("api_key", OTHER_KEY)
        .json(&json!({"currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "another site's order");
    assert_eq!(sim.order(&paid).await["status"], "completed");
    sim.handle.stop().await;
}
