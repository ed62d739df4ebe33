//! An authorisation not captured in time is voided by the scheme: Visa after 7 days,
//! Mastercard and Maestro after 30, on the simulator's clock.

use std::time::Duration;

use serde_json::{Value, json};

use crate::after_payment::*;
use crate::helpers::*;

const DAY_S: u64 = 24 * 3600;
/// How soon after an advance a due change must show (the margin is for a loaded machine).
const PROMPTLY: Duration = Duration::from_secs(1);

fn statuses(o: &Value) -> (String, String) {
    (
        o["status"].as_str().unwrap_or_default().to_owned(),
        o["financial_status"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn authorised() -> (String, String) {
    ("completed".to_owned(), "initialized".to_owned())
}

fn void() -> (String, String) {
    ("void".to_owned(), "void".to_owned())
}

#[tokio::test]
async fn a_visa_authorisation_not_captured_is_voided_after_7_days_and_notified() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = sim
        .authorised_order(VISA, Some(&format!("{}/ok", notify.uri())))
        .await;
    // Authorised in the create answer (not enrolled in 3-D Secure) rather than on the challenge.
    let at_creation = order_id();
    let (status, created) = sim
        .create(&manual_order(&at_creation, "4012001038443335", None))
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(statuses(&created["data"]), authorised());
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    sim.advance(7 * DAY_S - 60).await;
    for id in [&id, &at_creation] {
        assert_eq!(statuses(&sim.order(id).await), authorised(), "not yet");
    }
    sim.advance(60).await;
    let o = sim
        .wait_order(&at_creation, PROMPTLY, |o| statuses(o) == void())
        .await;
    assert_eq!(statuses(&o), void(), "{o}");
    let o = sim
        .wait_order(&id, PROMPTLY, |o| statuses(o) == void())
        .await;
    assert_eq!(statuses(&o), void(), "{o}");
    assert_eq!(o["payment_details"]["capture_remain"], 0);
    let attempts = sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    let notified = posted_orders(&notify, &id).await.pop().unwrap();
    assert_eq!(statuses(&notified), void());
    let (status, answer) = sim
        .capture(
            &id,
            json!({"amount": 1000, "new_order_status": "completed"}),
        )
        .await;
    assert_eq!(
        (status, answer["error_code"].as_u64()),
        (409, Some(1000)),
        "too late to capture: {answer}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn mastercard_and_maestro_authorisations_last_30_days() {
    let sim = spawn().await;
    let mastercard = sim.authorised_order(MASTERCARD, None).await;
    let maestro = sim.authorised_order(MAESTRO, None).await;
    sim.advance(7 * DAY_S).await;
    // A Visa authorised now expires 7 days on, before the other two: once it has, their 7th
    // day has had its chance.
    let witness = sim.authorised_order(VISA, None).await;
    sim.advance(7 * DAY_S).await;
    let w = sim
        .wait_order(&witness, PROMPTLY, |o| statuses(o) == void())
        .await;
    assert_eq!(statuses(&w), void());
    for id in [&mastercard, &maestro] {
        assert_eq!(statuses(&sim.order(id).await), authorised(), "14 days on");
    }
    sim.advance(16 * DAY_S - 60).await;
    for id in [&mastercard, &maestro] {
        assert_eq!(
            statuses(&sim.order(id).await),
            authorised(),
            "a minute short"
        );
    }
    sim.advance(60).await;
    for id in [&mastercard, &maestro] {
        let o = sim
            .wait_order(id, PROMPTLY, |o| statuses(o) == void())
            .await;
        assert_eq!(statuses(&o), void(), "{o}");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_captured_or_cancelled_authorisation_is_left_alone_when_it_would_have_expired() {
    let sim = spawn().await;
    let notify = receiver().await;
    let url = format!("{}/ok", notify.uri());
    let captured = sim.authorised_order(VISA, Some(&url)).await;
    sim.capture(
        &captured,
        json!({"amount": 400, "new_order_status": "completed"}),
    )
    .await;
    let cancelled = sim.authorised_order(VISA, Some(&url)).await;
    sim.cancel_authorization(&cancelled, json!({"status": "cancelled", "reason": "r"}))
        .await;
    for id in [&captured, &cancelled] {
        sim.wait_attempts(id, 2, Duration::from_secs(5)).await;
    }
    let before = [sim.order(&captured).await, sim.order(&cancelled).await];
    let witness = sim.authorised_order(VISA, None).await;
    sim.advance(7 * DAY_S).await;
    let w = sim
        .wait_order(&witness, PROMPTLY, |o| statuses(o) == void())
        .await;
    assert_eq!(statuses(&w), void(), "the witness expired after them");
    assert_eq!(sim.order(&captured).await, before[0], "captured: unchanged");
    assert_eq!(
        sim.order(&cancelled).await,
        before[1],
        "cancelled: unchanged"
    );
    for id in [&captured, &cancelled] {
        assert_eq!(
            sim.attempts(id).await.len(),
            2,
            "{id}: nothing more notified"
        );
    }
    sim.handle.stop().await;
}
