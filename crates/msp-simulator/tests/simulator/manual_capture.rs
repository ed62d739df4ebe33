//! Manual capture, the authorisation: `capture: "manual"` orders on Visa, Mastercard and Maestro
//! end `completed` / `initialized` when the payment is approved, nothing collected yet.

use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use serde_json::{Value, json};

use crate::after_payment::*;
use crate::helpers::*;

fn stamp(o: &Value, field: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(o[field].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S").unwrap()
}

fn close(a: NaiveDateTime, b: NaiveDateTime) -> bool {
    (a - b).abs() <= TimeDelta::seconds(1)
}

#[tokio::test]
async fn an_authenticated_manual_order_is_authorised_and_notified_as_such() {
    let sim = spawn().await;
    let notify = receiver().await;
    let url = format!("{}/ok", notify.uri());
    for (card, scheme, days) in [
        (VISA, "VISA", 7),
        (MASTERCARD, "MASTERCARD", 30),
        (MAESTRO, "MAESTRO", 30),
    ] {
        let id = order_id();
        let (status, created) = sim.create(&manual_order(&id, card, Some(&url))).await;
        assert_eq!(status, 200, "{card}: {created}");
        assert_eq!(created["data"]["status"], "initialized", "{card}");
        let location = sim
            .answer(created["data"]["payment_url"].as_str().unwrap(), "Y")
            .await;
        assert_eq!(
            location,
            format!("https://shop.example/ok?lang=nl&transactionid={id}"),
            "back to the shop as a success"
        );

        let o = sim.order(&id).await;
        assert_eq!(
            (o["status"].as_str(), o["financial_status"].as_str()),
            (Some("completed"), Some("initialized")),
            "{card}: {o}"
        );
        assert_eq!(
            (o["amount"].as_u64(), o["amount_refunded"].as_u64()),
            (Some(1000), Some(0))
        );
        assert_eq!(o["payment_methods"][0]["status"], "initialized", "{card}");
        assert!(
            o["related_transactions"].is_null(),
            "{card}: nothing captured"
        );
        let pd = &o["payment_details"];
        assert_eq!(pd["type"], scheme);
        assert_eq!(pd["card_authentication_result"]["status"], "Y");
        assert_eq!(pd["capture"], "manual", "{card}: {pd}");
        assert_eq!(pd["capture_remain"], 1000, "{card}");
        assert!(
            close(
                stamp(pd, "capture_expiry"),
                stamp(&o, "modified") + TimeDelta::days(days)
            ),
            "{card}: authorised for {days} days: {pd}"
        );

        let attempts = sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
        assert_eq!(attempts.len(), 1, "{card}: {attempts:?}");
        let notified = posted_orders(&notify, &id).await.pop().unwrap();
        assert_eq!(
            (
                notified["status"].as_str(),
                notified["financial_status"].as_str()
            ),
            (Some("completed"), Some("initialized")),
            "{card}"
        );
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_manual_order_approved_without_a_challenge_is_authorised_in_the_create_answer() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = order_id();
    // MSP's Visa that is not enrolled in 3-D Secure: approved at once.
    let (status, created) = sim
        .create(&manual_order(
            &id,
            "4012001038443335",
            Some(&format!("{}/ok", notify.uri())),
        ))
        .await;
    assert_eq!(status, 200, "{created}");
    let d = &created["data"];
    assert_eq!(
        (d["status"].as_str(), d["financial_status"].as_str()),
        (Some("completed"), Some("initialized")),
        "{d}"
    );
    assert!(d["customer_verification"].is_null());
    assert_eq!(d["payment_details"]["capture_remain"], 1000);
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let notified = posted_orders(&notify, &id).await;
    assert_eq!(notified.len(), 1);
    assert_eq!(notified[0]["financial_status"], "initialized");
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_manual_order_that_fails_or_clears_goes_as_any_other_except_that_it_is_authorised() {
    let sim = spawn_with(|c| c.uncleared_delay = Duration::from_secs(180)).await;
    let declined = order_id();
    let (_, created) = sim.create(&manual_order(&declined, VISA, None)).await;
    sim.answer(created["data"]["payment_url"].as_str().unwrap(), "N")
        .await;
    let o = sim.order(&declined).await;
    assert_eq!(
        (o["status"].as_str(), o["financial_status"].as_str()),
        (Some("declined"), Some("declined"))
    );
    assert_eq!(o["payment_details"]["capture_remain"], 0);
    assert!(o["payment_details"]["capture_expiry"].is_null(), "{o}");

    // An uncleared Visa that clears: authorised, not collected.
    let cleared = order_id();
    let (_, created) = sim
        .create(&manual_order(&cleared, "4462000000000003", None))
        .await;
    sim.answer(created["data"]["payment_url"].as_str().unwrap(), "Y")
        .await;
    assert_eq!(sim.order(&cleared).await["status"], "uncleared");
    sim.advance(180).await;
    let o = sim
        .wait_order(&cleared, Duration::from_secs(1), |o| {
            o["status"] != "uncleared"
        })
        .await;
    assert_eq!(
        (o["status"].as_str(), o["financial_status"].as_str()),
        (Some("completed"), Some("initialized")),
        "{o}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn manual_capture_on_another_scheme_or_an_unknown_capture_value_is_an_invalid_field() {
    let sim = spawn().await;
    for (card, capture, why) in [
        (PAID_CARD, json!("manual"), "American Express"),
        (
            "374200000000004",
            json!("manual"),
            "American Express, challenged",
        ),
        (VISA, json!("automatic"), "not a documented value"),
        (VISA, json!("MANUAL"), "MSP's value is lower case"),
        (VISA, json!(true), "not a string"),
    ] {
        let id = order_id();
        let mut body = order_body(&id, card);
        body["capture"] = capture;
        let (status, answer) = sim.create(&body).await;
        assert_eq!(
            (status, answer["error_code"].as_u64()),
            (400, Some(1000)),
            "{why}: {answer}"
        );
        assert_eq!(answer["success"], false);
        assert!(
            answer["error_info"].as_str().unwrap().contains("capture"),
            "{why}: names the field: {answer}"
        );
        assert_eq!(sim.get_order(&id).await.0, 404, "{why}: no order made");
    }
    // Absent, null or empty: collected at once, and no capture fields on the order.
    for capture in [None, Some(Value::Null), Some(json!(""))] {
        let id = order_id();
        let mut body = order_body(&id, PAID_CARD);
        if let Some(c) = capture.clone() {
            body["capture"] = c;
        }
        let (status, created) = sim.create(&body).await;
        assert_eq!(status, 200, "{capture:?}: {created}");
        let d = &created["data"];
        assert_eq!(d["financial_status"], "completed", "{capture:?}");
        let pd = d["payment_details"].as_object().unwrap();
        assert!(
            !pd.contains_key("capture") && !pd.contains_key("capture_remain"),
            "{capture:?}: {pd:?}"
        );
    }
    sim.handle.stop().await;
}
