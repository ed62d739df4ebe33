//! Amounts as MSP's Node SDK sends them: an integer or a string of digits, nothing else.

use serde_json::{Value, json};

use crate::after_payment::*;
use crate::helpers::*;

#[tokio::test]
async fn an_order_amount_may_be_a_string_of_digits() {
    let sim = spawn().await;
    let id = order_id();
    let mut body = order_body(&id, PAID_CARD);
    body["amount"] = json!("1250");
    let (status, created) = sim.create(&body).await;
    assert_eq!(status, 200, "{created}");
    let o = sim.order(&id).await;
    assert_eq!(o["amount"], 1250, "shown as an integer, as MSP does");
    assert_eq!(o["payment_methods"][0]["amount"], 1250);
    sim.handle.stop().await;
}

#[tokio::test]
async fn any_other_order_amount_is_invalid() {
    let sim = spawn().await;
    for amount in [
        json!("12.50"),
        json!("-100"),
        json!(" 100"),
        json!("1e3"),
        json!(""),
        json!("0"),
        json!(0),
        json!(12.5),
        json!(-100),
        json!(true),
        json!([100]),
        Value::Null,
    ] {
        let id = order_id();
        let mut body = order_body(&id, PAID_CARD);
        body["amount"] = amount.clone();
        let (status, answer) = sim.create(&body).await;
        assert_eq!(
            (status, answer["error_code"].as_u64()),
            (400, Some(1001)),
            "{amount}: {answer}"
        );
        assert_eq!(sim.get_order(&id).await.0, 404, "{amount}: no order");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_refund_amount_may_be_a_string_of_digits_and_empty_or_zero_means_all() {
    let sim = spawn().await;
    let id = sim.paid_order(None).await;
    let refund_id = sim
        .refund_ok(&id, json!({"currency": "EUR", "amount": "400"}))
        .await;
    let o = sim.order(&id).await;
    assert_eq!(o["amount_refunded"], 400);
    assert_eq!(related(&o, refund_id)["amount"], 400);
    for all in [json!(""), json!("0")] {
        let id = sim.paid_order(None).await;
        sim.refund_ok(&id, json!({"currency": "EUR", "amount": all}))
            .await;
        assert_eq!(sim.order(&id).await["amount_refunded"], 1000, "{all}");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn any_other_refund_amount_is_invalid() {
    let sim = spawn().await;
    let id = sim.paid_order(None).await;
    for amount in [
        json!("4.00"),
        json!("-4"),
        json!("four"),
        json!(4.5),
        json!(-4),
        json!(true),
        json!({"value": 4}),
    ] {
        let (status, answer) = sim
            .refund(&id, json!({"currency": "EUR", "amount": amount}))
            .await;
        assert_eq!(
            (status, answer["error_code"].as_u64()),
            (400, Some(1001)),
            "{amount}: {answer}"
        );
    }
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("completed"), Some(0)),
        "refusals change nothing"
    );
    sim.handle.stop().await;
}
