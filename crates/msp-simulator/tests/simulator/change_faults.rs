//! The `capture_failure` and `cancel_failure` faults: the capture or the cancellation is made,
//! and notified, but its answer never comes; only the order tells what happened.

use std::time::Duration;

use serde_json::json;

use crate::after_payment::*;
use crate::helpers::*;

/// How long a test waits for an answer it expects never to come.
const GIVE_UP: Duration = Duration::from_millis(500);

#[tokio::test]
async fn both_faults_are_none_by_default_and_take_only_their_values() {
    let sim = spawn().await;
    let faults = sim.put_faults(json!({})).await;
    assert_eq!(
        (&faults["capture_failure"], &faults["cancel_failure"]),
        (&json!("none"), &json!("none"))
    );
    for field in ["capture_failure", "cancel_failure"] {
        for value in ["timeout", "none"] {
            assert_eq!(sim.put_faults(json!({field: value})).await[field], value);
        }
        let r = sim
            .http
            .put(format!("{}/sim/faults", sim.local()))
            .json(&json!({field: "declined"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{field}");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_capture_whose_answer_is_lost_is_made_and_notified() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = sim
        .authorised_order(VISA, Some(&format!("{}/ok", notify.uri())))
        .await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    sim.put_faults(json!({"capture_failure": "timeout"})).await;
    let r = sim
        .http
        .post(sim.url(&format!("/orders/{id}/capture")))
        .header("api_key", KEY)
        .timeout(GIVE_UP)
        .json(&json!({"amount": 600, "new_order_id": format!("{id}-c"), "new_order_status": "completed"}))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()), "the answer never comes");

    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["financial_status"].as_str()),
        (Some("completed"), Some("completed")),
        "{o}"
    );
    assert_eq!(o["payment_details"]["capture_remain"], 0);
    let captures: Vec<_> = o["related_transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "capture")
        .collect();
    assert_eq!(captures.len(), 1, "{o}");
    assert_eq!(
        (
            captures[0]["amount"].as_u64(),
            captures[0]["status"].as_str()
        ),
        (Some(600), Some("completed"))
    );
    let attempts = sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 2, "the capture is notified: {attempts:?}");

    // A refused capture is still answered under the fault: only a change made is held back.
    let (status, answer) = sim
        .capture(&id, json!({"amount": 100, "new_order_status": "completed"}))
        .await;
    assert_eq!((status, answer["success"].as_bool()), (409, Some(false)));
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_cancellation_whose_answer_is_lost_is_made() {
    let sim = spawn().await;
    sim.put_faults(json!({"cancel_failure": "timeout"})).await;
    // An authorisation, cancelled through PATCH /capture.
    let authorised = sim.authorised_order(VISA, None).await;
    let r = sim
        .http
        .patch(sim.url(&format!("/capture/{authorised}")))
        .header("api_key", KEY)
        .timeout(GIVE_UP)
        .json(&json!({"status": "cancelled", "reason": "other"}))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()), "the answer never comes");
    let o = sim.order(&authorised).await;
    assert_eq!(
        (o["status"].as_str(), o["financial_status"].as_str()),
        (Some("void"), Some("void"))
    );

    // An order waiting for 3-D Secure, cancelled through PATCH /orders.
    let id = order_id();
    let (status, _) = sim.create(&order_body(&id, "4111111111111111")).await;
    assert_eq!(status, 200);
    let r = sim
        .http
        .patch(sim.url(&format!("/orders/{id}")))
        .header("api_key", KEY)
        .timeout(GIVE_UP)
        .json(&json!({"status": "cancelled", "exclude_order": true}))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()), "the answer never comes");
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["financial_status"].as_str()),
        (Some("void"), Some("cancelled"))
    );
    sim.handle.stop().await;
}
