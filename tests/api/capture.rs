//! Capture and cancel tell the truth (issue 23): a capture whose answer was lost is learned from
//! MSP's order, a resumed request that had succeeded answers its success, a cancel shows MSP's
//! new status, and a refund MSP refuses for its same-amount rule says so.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::checkout::CheckoutRequest;
use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(30);
/// A Visa card that is not enrolled in 3-D Secure: authorised in the create answer.
const VISA_NO_3DS: &str = "4012001038443335";
/// A frictionless Amex: paid in the create answer.
const AMEX_PAID: &str = "374500000000015";

async fn post(app: &TestApp, path: &str, body: Value, key: Option<&str>) -> reqwest::Response {
    let mut req = app.authed(Method::POST, path).json(&body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    req.send().await.unwrap()
}

async fn post_json(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let res = post(app, path, body, None).await;
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// A manual-capture checkout that MSP authorised: `requires_capture`. Returns its id.
async fn authorised(app: &TestApp) -> String {
    let mut body = CheckoutRequest::new(VISA_NO_3DS).body();
    body["capture_method"] = json!("manual");
    let res = app.post_checkout(&body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let checkout: Value = res.json().await.unwrap();
    let id = checkout["id"].as_str().unwrap().to_owned();
    app.wait_for_status(&id, "requires_capture", WAIT).await;
    id
}

async fn refreshed(app: &TestApp, id: &str) -> Value {
    let res = app
        .authed(Method::GET, &format!("/v1/checkouts/{id}?refresh=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Refunds are limited to what was captured: one more is too much, everything is that.
async fn assert_refunds_limited_to(app: &TestApp, id: &str, captured: i64) {
    let path = format!("/v1/checkouts/{id}/refunds");
    let (status, error) = post_json(app, &path, json!({"amount": captured + 1})).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("amount_too_large")),
        "{error}"
    );
    let (status, refund) = post_json(app, &path, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(refund["amount"], captured, "{refund}");
}

/// Short MSP timeouts: the lost answers below are given up on quickly.
fn impatient() -> Options {
    Options {
        timeout_ms: 1_000,
        ..Options::default()
    }
}

#[tokio::test]
async fn a_capture_whose_answer_was_lost_is_learned_from_msp_by_refresh_and_by_the_reconciler() {
    let app = spawn_app_with(impatient()).await;
    // Only asking MSP can tell: no notification comes.
    app.set_faults(json!({"drop_notifications": true})).await;
    let by_refresh = authorised(&app).await;
    let by_reconciler = authorised(&app).await;
    // MSP captures; its answer never comes.
    app.set_faults(json!({"capture_failure": "timeout"})).await;
    for id in [&by_refresh, &by_reconciler] {
        let res = post(
            &app,
            &format!("/v1/checkouts/{id}/capture"),
            json!({"amount": 3000}),
            None,
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
        let error: Value = res.json().await.unwrap();
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("whether it captured the payment is not known"),
            "{message}"
        );
        let stored = app.get_checkout(id).await;
        assert_eq!(stored["status"], "requires_capture", "nothing assumed");
    }

    let checkout = refreshed(&app, &by_refresh).await;
    assert_eq!(
        (
            checkout["status"].as_str(),
            checkout["amount_captured"].as_i64()
        ),
        (Some("succeeded"), Some(3000)),
        "{checkout}"
    );
    assert_refunds_limited_to(&app, &by_refresh, 3000).await;

    app.pass_after(chrono::TimeDelta::seconds(1)).await.unwrap();
    let checkout = app.get_checkout(&by_reconciler).await;
    assert_eq!(
        (
            checkout["status"].as_str(),
            checkout["amount_captured"].as_i64()
        ),
        (Some("succeeded"), Some(3000)),
        "{checkout}"
    );
    assert_refunds_limited_to(&app, &by_reconciler, 3000).await;
    app.stop().await;
}

#[tokio::test]
async fn a_capture_heard_only_from_msps_notification_counts_what_was_captured() {
    let app = spawn_app_with(impatient()).await;
    let id = authorised(&app).await;
    app.set_faults(json!({"capture_failure": "timeout"})).await;
    let res = post(
        &app,
        &format!("/v1/checkouts/{id}/capture"),
        json!({"amount": 1000}),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    // MSP's notification of the capture is all the gateway hears.
    app.wait_for_acknowledged_notification(&id, "completed", WAIT)
        .await;
    let checkout = app.wait_for_status(&id, "succeeded", WAIT).await;
    assert_eq!(checkout["amount_captured"], 1000, "{checkout}");
    assert_refunds_limited_to(&app, &id, 1000).await;
    app.stop().await;
}

/// Claims `key` for `POST {path}` with `body` as a request that began and never finished (the
/// gateway stopped before it stored its answer): what `api::lifecycle` claims.
async fn interrupted_claim(app: &TestApp, path: &str, id: &str, key: &str, body: &Value) {
    use gateway::clock::Clock;
    let bytes = serde_json::to_vec(body).unwrap();
    let fingerprint = gateway::api::idempotency::fingerprint_json(&app.state, &bytes);
    let claim = gateway::store::Claim {
        fingerprint: &fingerprint,
        resource: Some(id),
        now_ms: app.clock.now().timestamp_millis(),
        in_flight_ms: Some(60_000),
    };
    let scoped = gateway::api::idempotency::IdempotencyKey::parse(key)
        .unwrap()
        .scoped(&format!("POST {path}"));
    app.state
        .flows
        .store
        .idempotency_claim(scoped.as_str(), &claim)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_resumed_capture_or_cancel_that_had_succeeded_answers_its_success_and_replays_it() {
    let app = spawn_app().await;
    app.set_faults(json!({"drop_notifications": true})).await;

    // A capture: the interrupted request captured and recorded it, then the gateway stopped
    // before storing its answer.
    let captured = authorised(&app).await;
    let path = format!("/v1/checkouts/{captured}/capture");
    let body = json!({"amount": 3000});
    interrupted_claim(&app, &path, &captured, "capture-1", &body).await;
    let (status, done) = post_json(&app, &path, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{done}");

    // A cancel: the interrupted request reached MSP, which cancelled the order, and the
    // gateway stopped before recording it.
    let checkout = app.create("4111111111111111").await;
    let canceled = checkout["id"].as_str().unwrap().to_owned();
    let cancel_path = format!("/v1/checkouts/{canceled}/cancel");
    let cancel_body = json!({"reason": "abandoned"});
    interrupted_claim(&app, &cancel_path, &canceled, "cancel-1", &cancel_body).await;
    let res = app
        .client
        .patch(format!("{}/orders/{canceled}", app.sim.api_url()))
        .header("api_key", MSP_KEY)
        .json(&json!({"status": "cancelled", "exclude_order": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.get_checkout(&canceled).await["status"],
        "requires_action"
    );

    // Their retries take the keys over once the in-flight time is over.
    app.clock.advance(chrono::TimeDelta::seconds(61));
    for (path, body, key, status, field, value) in [
        (
            &path,
            &body,
            "capture-1",
            "succeeded",
            "amount_captured",
            json!(3000),
        ),
        (
            &cancel_path,
            &cancel_body,
            "cancel-1",
            "canceled",
            "id",
            json!(canceled),
        ),
    ] {
        let res = post(&app, path, body.clone(), Some(key)).await;
        assert_eq!(res.status(), StatusCode::OK, "{key}");
        assert!(res.headers().get("idempotent-replayed").is_none(), "{key}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["status"], status, "{key}: {answer}");
        assert_eq!(answer[field], value, "{key}: {answer}");
        // And that success is what the key replays from now on.
        let res = post(&app, path, body.clone(), Some(key)).await;
        assert_eq!(res.status(), StatusCode::OK, "{key}");
        assert_eq!(res.headers()["idempotent-replayed"], "true", "{key}");
        let replayed: Value = res.json().await.unwrap();
        assert_eq!(replayed["status"], status, "{key}: {replayed}");
    }
    app.stop().await;
}

#[tokio::test]
async fn after_a_cancel_the_checkout_shows_msps_new_status() {
    let app = spawn_app().await;
    // The cancel's own answer must say it: no notification comes to say it instead.
    app.set_faults(json!({"drop_notifications": true})).await;
    let waiting = app.create("4111111111111111").await;
    assert_eq!(waiting["psp"]["status"], "initialized");
    let authorisation = authorised(&app).await;
    assert_eq!(
        app.get_checkout(&authorisation).await["psp"]["status"],
        "completed"
    );
    for id in [waiting["id"].as_str().unwrap(), &authorisation] {
        let (status, canceled) =
            post_json(&app, &format!("/v1/checkouts/{id}/cancel"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{canceled}");
        assert_eq!(
            (
                canceled["status"].as_str(),
                canceled["psp"]["status"].as_str()
            ),
            (Some("canceled"), Some("void")),
            "{canceled}"
        );
        let events = app.events(id).await;
        let last = events.last().unwrap();
        assert_eq!(
            (last["to"].as_str(), last["psp_status"].as_str()),
            (Some("canceled"), Some("void")),
            "{events:?}"
        );
        // What MSP says indeed.
        let res = app
            .client
            .get(format!("{}/orders/{id}", app.sim.api_url()))
            .header("api_key", MSP_KEY)
            .send()
            .await
            .unwrap();
        let order: Value = res.json().await.unwrap();
        assert_eq!(order["data"]["status"], "void", "{order}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_refund_of_a_canceled_refunds_amount_within_five_minutes_says_msps_rule_first() {
    let app = spawn_app().await;
    let paid = app.create(AMEX_PAID).await;
    let id = paid["id"].as_str().unwrap();
    app.wait_for_status(id, "succeeded", WAIT).await;
    let path = format!("/v1/checkouts/{id}/refunds");
    let (status, first) = post_json(&app, &path, json!({"amount": 500})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/refunds/{}/cancel", first["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let (status, again) = post_json(&app, &path, json!({"amount": 500})).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["status"], "failed", "{again}");
    assert_eq!(again["failure"]["code"], "refund_refused");
    assert_eq!(again["failure"]["psp_reason_code"], "1034");
    let message = again["failure"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("MultiSafepay refuses a refund of the same amount"),
        "{message}"
    );
    let requested = chrono::DateTime::parse_from_rfc3339(first["created_at"].as_str().unwrap())
        .unwrap()
        .to_utc();
    let lifts = (requested + chrono::TimeDelta::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(
        message.contains(&format!("refunded again from {lifts}")),
        "{message}"
    );
    // Another amount is not refused.
    let (status, other) = post_json(&app, &path, json!({"amount": 400})).await;
    assert_eq!(
        (status, other["status"].as_str()),
        (StatusCode::CREATED, Some("pending")),
        "{other}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_capturable_amount_is_what_msp_says_remains_and_a_capture_takes_at_most_that() {
    let app = spawn_app().await;
    let id = authorised(&app).await;
    let checkout = refreshed(&app, &id).await;
    let amount = checkout["amount"].as_i64().unwrap();
    assert_eq!(checkout["amount_capturable"], amount, "{checkout}");
    // MSP's signed notification says less is left to capture (part of it was captured in
    // MSP's dashboard): that is what the checkout shows, and what a capture may take.
    let mut order = app.msp_order(&id).await;
    order["payment_details"]["capture_remain"] = json!(1200);
    let body = serde_json::to_vec(&order).unwrap();
    let at = chrono::Utc::now().timestamp();
    let res = app
        .client
        .post(format!(
            "{}/notifications/multisafepay?transactionid={id}&timestamp={at}",
            app.address
        ))
        .header("content-type", "application/json")
        .header(
            "Auth",
            crate::common::msp::sign_notification(MSP_KEY, at, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let checkout = app.get_checkout(&id).await;
    assert_eq!(
        (
            checkout["status"].as_str(),
            checkout["amount_capturable"].as_i64()
        ),
        (Some("requires_capture"), Some(1200)),
        "{checkout}"
    );
    let path = format!("/v1/checkouts/{id}/capture");
    let (status, error) = post_json(&app, &path, json!({"amount": 1201})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["error"]["param"], "amount", "{error}");
    let (status, captured) = post_json(&app, &path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{captured}");
    assert_eq!(
        (
            captured["status"].as_str(),
            captured["amount_captured"].as_i64(),
            captured["amount_capturable"].as_i64()
        ),
        (Some("succeeded"), Some(1200), Some(0)),
        "{captured}"
    );
    // An automatic-capture checkout has nothing to capture.
    let paid = app.create(AMEX_PAID).await;
    assert_eq!(paid["amount_capturable"], Value::Null, "{paid}");
    app.stop().await;
}
