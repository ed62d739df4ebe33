//! `POST /orders/{id}/capture`: an authorisation captured, in full or in part, once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::after_payment::*;
use crate::helpers::*;

fn captures(order: &Value) -> Vec<Value> {
    order["related_transactions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["type"] == "capture")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_capture_completes_the_order_with_a_capture_entry_and_a_notification() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = sim
        .authorised_order(VISA, Some(&format!("{}/ok", notify.uri())))
        .await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let new_id = format!("{id}-c");
    let (status, answer) = sim
        .capture(
            &id,
            json!({"amount": 1000, "new_order_id": new_id, "new_order_status": "completed",
                   "invoice_id": "inv-7", "tracktrace_code": "3SABC", "carrier": "PostNL",
                   "reason": "shipped", "description": "all of it"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let capture_id = answer["data"]["transaction_id"].as_u64().unwrap();
    assert_eq!(
        answer,
        json!({"success": true, "data": {"transaction_id": capture_id, "order_id": new_id}})
    );

    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["financial_status"].as_str()),
        (Some("completed"), Some("completed")),
        "{o}"
    );
    assert_eq!(o["order_id"], id.as_str());
    assert_eq!(o["payment_methods"][0]["status"], "completed");
    assert_eq!(o["payment_details"]["capture_remain"], 0);
    assert!(o["completed"].is_string(), "{o}");
    let c = related(&o, capture_id);
    assert_eq!(c["type"], "capture", "{o}");
    assert_eq!(c["amount"], 1000);
    assert_eq!(c["currency"], "EUR");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["order_id"], new_id.as_str());
    assert_eq!(c["description"], "all of it");
    assert_eq!(c["reference_transaction_id"], o["transaction_id"]);
    assert!(c["refund_order_id"].is_null());
    for t in ["created", "modified"] {
        let s = c[t].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok(),
            "{t}: {s}"
        );
    }

    let attempts = sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    let notified = posted_orders(&notify, &id).await.pop().unwrap();
    assert_eq!(
        (
            notified["status"].as_str(),
            notified["financial_status"].as_str()
        ),
        (Some("completed"), Some("completed"))
    );
    assert_eq!(captures(&notified).len(), 1, "{notified}");
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_partial_capture_takes_part_and_an_absent_amount_takes_all() {
    let sim = spawn().await;
    let part = sim.authorised_order(MASTERCARD, None).await;
    // MSP's Node SDK sends amounts as strings of digits; no new_order_id.
    let (status, answer) = sim
        .capture(
            &part,
            json!({"amount": "600", "new_order_status": "completed"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["data"]["order_id"],
        part.as_str(),
        "the order's own id"
    );
    let o = sim.order(&part).await;
    assert_eq!(o["financial_status"], "completed");
    assert_eq!(o["amount"], 1000, "the authorised amount stays the order's");
    let c = captures(&o);
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0]["amount"].as_u64(), c[0]["order_id"].as_str()),
        (Some(600), Some(part.as_str()))
    );

    let all = sim.authorised_order(MAESTRO, None).await;
    let (status, answer) = sim
        .capture(&all, json!({"new_order_status": "completed"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(captures(&sim.order(&all).await)[0]["amount"], 1000);
    sim.handle.stop().await;
}

#[tokio::test]
async fn only_an_authorisation_can_be_captured_and_only_once() {
    let sim = spawn().await;
    let collected = sim.paid_order(None).await;
    let unanswered = order_id();
    sim.create(&manual_order(&unanswered, VISA, None)).await;
    let declined = order_id();
    let (_, created) = sim.create(&manual_order(&declined, VISA, None)).await;
    sim.answer(created["data"]["payment_url"].as_str().unwrap(), "N")
        .await;
    let captured = sim.authorised_order(VISA, None).await;
    let body = json!({"amount": 500, "new_order_status": "completed"});
    assert_eq!(sim.capture(&captured, body.clone()).await.0, 200);

    for (id, why) in [
        (&collected, "collected at once: not a manual-capture order"),
        (&unanswered, "not authorised yet"),
        (&declined, "declined"),
        (&captured, "captured already"),
    ] {
        let before = sim.order(id).await;
        let (status, answer) = sim.capture(id, body.clone()).await;
        assert_eq!(
            (status, answer["error_code"].as_u64()),
            (409, Some(1000)),
            "{why}: {answer}"
        );
        assert_eq!(answer["success"], false, "{why}");
        assert_eq!(answer["data"], json!({}), "{why}");
        assert_eq!(sim.order(id).await, before, "{why}: unchanged");
    }

    let (status, answer) = sim.capture("no-such-order", body.clone()).await;
    assert_eq!((status, answer["error_code"].as_u64()), (404, Some(1006)));
    let authorised = sim.authorised_order(VISA, None).await;
    let r = sim
        .http
        .post(sim.url(&format!("/orders/{authorised}/capture")))
        .header("api_key", OTHER_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "another site's order");
    assert_eq!(
        sim.order(&authorised).await["financial_status"],
        "initialized"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_capture_above_the_authorisation_or_badly_formed_is_an_invalid_field() {
    let sim = spawn().await;
    let id = sim.authorised_order(VISA, None).await;
    let taken = sim.paid_order(None).await;
    let before = sim.order(&id).await;
    let too_long = "x".repeat(51);
    for (body, http, code, why) in [
        (
            json!({"amount": 1001, "new_order_status": "completed"}),
            400,
            1001,
            "above the authorisation",
        ),
        (
            json!({"amount": 0, "new_order_status": "completed"}),
            400,
            1001,
            "nothing",
        ),
        (
            json!({"amount": "10.00", "new_order_status": "completed"}),
            400,
            1001,
            "not minor units",
        ),
        (
            json!({"amount": -5, "new_order_status": "completed"}),
            400,
            1001,
            "negative",
        ),
        (json!({"amount": 500}), 400, 1000, "no new_order_status"),
        (
            json!({"amount": 500, "new_order_status": "shipped"}),
            400,
            1000,
            "a status other than completed",
        ),
        (
            json!({"amount": 500, "new_order_status": "completed", "new_order_id": too_long}),
            400,
            1006,
            "new_order_id over 50 characters",
        ),
        (
            json!({"amount": 500, "new_order_status": "completed", "new_order_id": taken}),
            409,
            1006,
            "new_order_id of another order",
        ),
    ] {
        let (status, answer) = sim.capture(&id, body).await;
        assert_eq!(
            (status, answer["error_code"].as_u64()),
            (http, Some(code)),
            "{why}: {answer}"
        );
        assert_eq!(sim.order(&id).await, before, "{why}: unchanged");
    }
    let r = sim
        .http
        .post(sim.url(&format!("/orders/{id}/capture")))
        .header("api_key", KEY)
        .header("content-type", "application/json")
        .body("[1000]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "not a JSON object");
    assert_eq!(sim.order(&taken).await["status"], "completed");
    sim.handle.stop().await;
}

#[tokio::test]
async fn the_capture_order_id_names_the_captured_order_and_no_other() {
    let sim = spawn().await;
    let id = sim.authorised_order(VISA, None).await;
    let new_id = format!("{id}-c");
    let body = json!({"amount": 700, "new_order_id": new_id, "new_order_status": "completed"});
    assert_eq!(sim.capture(&id, body).await.0, 200);
    assert_eq!(
        sim.order(&new_id).await,
        sim.order(&id).await,
        "GET by the capture's order id shows the captured order"
    );
    let (status, answer) = sim.create(&order_body(&new_id, PAID_CARD)).await;
    assert_eq!(
        (status, answer["error_code"].as_u64()),
        (409, Some(1006)),
        "an order cannot take it: {answer}"
    );
    let other = sim.authorised_order(VISA, None).await;
    let (status, answer) = sim
        .capture(
            &other,
            json!({"new_order_id": new_id, "new_order_status": "completed"}),
        )
        .await;
    assert_eq!(
        (status, answer["error_code"].as_u64()),
        (409, Some(1006)),
        "nor another capture: {answer}"
    );
    let r = sim
        .http
        .get(sim.url(&format!("/orders/{new_id}")))
        .header("api_key", OTHER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "another site does not see it");
    // A refused capture leaves its order id free.
    let third = sim.authorised_order(VISA, None).await;
    let spare = format!("{third}-c");
    let (status, _) = sim
        .capture(
            &third,
            json!({"amount": 5000, "new_order_id": spare, "new_order_status": "completed"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(sim.get_order(&spare).await.0, 404);
    assert_eq!(
        sim.create(&order_body(&spare, PAID_CARD)).await.0,
        200,
        "free for an order"
    );
    sim.handle.stop().await;
}
