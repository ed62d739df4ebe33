//! Cancel and manual capture against the simulator.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::checkout::CheckoutRequest;
use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(30);
/// A Visa card that is not enrolled in 3-D Secure: authorised in the create answer.
const VISA_NO_3DS: &str = "4012001038443335";

impl TestApp {
    async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .authed(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    /// A manual-capture checkout that MSP authorised: `requires_capture`.
    async fn authorised_checkout(&self) -> Value {
        let mut body = CheckoutRequest::new(VISA_NO_3DS).body();
        body["capture_method"] = json!("manual");
        let res = self.post_checkout(&body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let checkout: Value = res.json().await.unwrap();
        let id = checkout["id"].as_str().unwrap();
        self.wait_for_status(id, "requires_capture", WAIT).await
    }

    async fn msp_status(&self, id: &str) -> String {
        let res = self
            .client
            .get(format!("{}/orders/{id}", self.sim.api_url()))
            .header("api_key", MSP_KEY)
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        body["data"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

#[tokio::test]
async fn an_authorisation_is_captured_later_and_refunds_count_against_the_capture() {
    let app = spawn_app().await;
    let checkout = app.authorised_checkout().await;
    let id = checkout["id"].as_str().unwrap();
    assert_eq!(checkout["capture_method"], "manual");
    let created =
        chrono::DateTime::parse_from_rfc3339(checkout["created_at"].as_str().unwrap()).unwrap();
    let before =
        chrono::DateTime::parse_from_rfc3339(checkout["capture_before"].as_str().unwrap()).unwrap();
    assert_eq!(
        (before - created).num_days(),
        7,
        "Visa authorisations last 7 days"
    );

    let (status, captured) = app
        .post_json(
            &format!("/v1/checkouts/{id}/capture"),
            json!({"amount": 3000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{captured}");
    assert_eq!(captured["status"], "succeeded");
    assert_eq!(captured["amount_captured"], 3000);
    let trail = app.event_trail(id).await;
    assert_eq!(trail.last().map(String::as_str), Some("succeeded"));
    assert_eq!(trail.iter().filter(|t| *t == "succeeded").count(), 1);

    // Refunds apply to what was captured.
    let (status, error) = app
        .post_json(
            &format!("/v1/checkouts/{id}/refunds"),
            json!({"amount": 3001}),
        )
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("amount_too_large"))
    );
    let (status, refund) = app
        .post_json(&format!("/v1/checkouts/{id}/refunds"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(refund["amount"], 3000);

    // Captured once: a second capture is refused.
    let (status, error) = app
        .post_json(&format!("/v1/checkouts/{id}/capture"), json!({}))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("checkout_not_capturable"))
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_capture_and_cancel_requests_are_refused_without_calling_msp() {
    let app = spawn_app().await;
    let checkout = app.authorised_checkout().await;
    let id = checkout["id"].as_str().unwrap();
    for (body, code) in [
        (json!({"amount": 0}), "invalid_amount"),
        (json!({"amount": 3496}), "invalid_amount"),
        (json!({"amount": "100"}), "invalid_type"),
        (json!({"amout": 100}), "unknown_field"),
    ] {
        let (status, error) = app
            .post_json(&format!("/v1/checkouts/{id}/capture"), body.clone())
            .await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
    }
    let (status, error) = app
        .post_json(
            &format!("/v1/checkouts/{id}/cancel"),
            json!({"reason": "bored"}),
        )
        .await;
    assert_eq!(
        (status, error["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reason"))
    );
    assert_eq!(
        app.get_checkout(id).await["status"],
        "requires_capture",
        "nothing changed"
    );
    assert_eq!(
        app.msp_status(id).await,
        "completed",
        "MSP still has the authorisation"
    );

    // Manual capture with a card MSP cannot capture manually, or an unknown method.
    let mut amex = CheckoutRequest::new("374500000000015").body();
    amex["capture_method"] = json!("manual");
    let mut later = CheckoutRequest::new(VISA_NO_3DS).body();
    later["capture_method"] = json!("later");
    for body in [amex, later] {
        let res = app.post_checkout(&body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let error: Value = res.json().await.unwrap();
        assert_eq!(error["error"]["param"], "capture_method");
    }
    // Not an authorisation: capture 409; a succeeded checkout: cancel 409, naming the status.
    let paid = app.create("374500000000015").await;
    let paid_id = paid["id"].as_str().unwrap();
    let (status, error) = app
        .post_json(&format!("/v1/checkouts/{paid_id}/capture"), json!({}))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("checkout_not_capturable"))
    );
    let (status, error) = app
        .post_json(&format!("/v1/checkouts/{paid_id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("checkout_not_cancelable"))
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("succeeded"),
        "{error}"
    );
    let (status, _) = app
        .post_json(
            "/v1/checkouts/chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b/cancel",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn a_checkout_waiting_for_3ds_is_canceled_and_its_pay_link_goes_back_to_the_shop() {
    let app = spawn_app().await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();
    let (status, canceled) = app
        .post_json(
            &format!("/v1/checkouts/{id}/cancel"),
            json!({"reason": "abandoned"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
    // Canceled once. Whichever wrote it first, this request or MSP's notification of the void
    // (they race), the other found it done.
    let events = app.events(id).await;
    let canceled: Vec<&Value> = events.iter().filter(|e| e["to"] == "canceled").collect();
    assert_eq!(canceled.len(), 1, "{events:?}");
    assert_eq!(canceled[0]["from"], "requires_action");
    assert!(
        ["api", "notification"].contains(&canceled[0]["source"].as_str().unwrap()),
        "{events:?}"
    );
    let shop = location(&app.get(&pay_link(&checkout)).await);
    assert_eq!(query_value(&shop, "status").as_deref(), Some("canceled"));
    let (status, _) = app
        .post_json(&format!("/v1/checkouts/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn an_authorisation_can_be_canceled_or_expires_when_msp_voids_it() {
    let app = spawn_app().await;
    let first = app.authorised_checkout().await;
    let id = first["id"].as_str().unwrap();
    let (status, canceled) = app
        .post_json(&format!("/v1/checkouts/{id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (status, canceled["status"].as_str()),
        (StatusCode::OK, Some("canceled")),
        "{canceled}"
    );
    assert_eq!(app.msp_status(id).await, "void");

    // Never captured: MSP voids a Visa authorisation after 7 days.
    let second = app.authorised_checkout().await;
    let id = second["id"].as_str().unwrap();
    let res = app
        .client
        .put(format!("{}/sim/clock", app.sim.base_url()))
        .json(&json!({"advance_s": 8 * 24 * 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.wait_for_status(id, "canceled", WAIT).await;
    app.stop().await;
}

/// Cancel races the shopper's 3-D Secure answer (and MSP's notification), many times: the
/// checkout always ends where MSP ends, with each transition recorded once.
#[tokio::test]
async fn cancel_racing_the_shoppers_answer_ends_where_msp_ends() {
    let app = spawn_app().await;
    for round in 0..8 {
        let checkout = app.create("4111111111111111").await;
        let id = checkout["id"].as_str().unwrap().to_owned();
        let payment_url = app.open_challenge(&checkout).await;
        let cancel_path = format!("/v1/checkouts/{id}/cancel");
        let cancel = app.post_json(&cancel_path, json!({}));
        let answer = async {
            let html = app.get(&payment_url).await.text().await.unwrap();
            // When the cancel reached MSP first, its page no longer offers the challenge.
            let action = form_action(&html)?;
            let mut fields = hidden_fields(&html);
            fields.push(("result".into(), "Y".into()));
            Some(app.client.post(&action).form(&fields).send().await.unwrap())
        };
        let ((status, _), _) = tokio::join!(cancel, answer);
        assert!(
            status == StatusCode::OK || status == StatusCode::CONFLICT,
            "round {round}: {status}"
        );
        let expected = match app.msp_status(&id).await.as_str() {
            "completed" => "succeeded",
            "void" | "cancelled" => "canceled",
            other => panic!("round {round}: MSP ended {other}"),
        };
        app.wait_for_status(&id, expected, WAIT).await;
        let trail = app.event_trail(&id).await;
        let mut seen = trail.clone();
        seen.dedup();
        assert_eq!(seen, trail, "round {round}: each transition once");
        assert_eq!(
            trail.last().map(String::as_str),
            Some(expected),
            "round {round}"
        );
    }
    app.stop().await;
}

/// No final status is ever overwritten: MultiSafepay reporting a completed payment (or a sync)
/// after a cancel changes nothing, and the anomaly is counted.
#[tokio::test]
async fn a_late_completed_notification_after_a_cancel_changes_nothing() {
    let app = spawn_app().await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();
    let (status, _) = app
        .post_json(&format!("/v1/checkouts/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, text) = app.signed_notify(id, "completed").await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, "OK"),
        "acknowledged"
    );
    let res = app
        .authed(Method::GET, &format!("/v1/checkouts/{id}?refresh=true"))
        .send()
        .await
        .unwrap();
    let refreshed: Value = res.json().await.unwrap();
    assert_eq!(refreshed["status"], "canceled");
    assert_eq!(
        app.event_trail(id).await,
        ["created", "requires_action", "canceled"]
    );
    let metrics = app.get(&app.url("/metrics")).await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gateway_transition_anomalies_total")
                && l.contains("from=\"canceled\"")),
        "the anomaly is counted: {metrics}"
    );
    app.stop().await;
}
