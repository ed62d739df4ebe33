//! `POST|GET /notifications/multisafepay`, driven directly with signed bodies.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::msp::{PHP_SDK_NOTIFICATION, sign_notification};
use crate::helpers::*;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A compact order object as MSP would POST it.
fn order_body(order_id: &str, status: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "amount": 3495, "amount_refunded": 0, "currency": "EUR", "order_id": order_id,
        "status": status, "financial_status": status, "transaction_id": 4680345,
        "reason": "", "reason_code": "",
        "payment_details": {"type": "VISA", "last4": "1111", "card_expiry_date": "3012"},
        "items": null, "related_transactions": null
    }))
    .unwrap()
}

impl TestApp {
    async fn notify(
        &self,
        transactionid: &str,
        body: &[u8],
        auth: Option<String>,
        with_timestamp: bool,
    ) -> (StatusCode, String) {
        let mut url = format!(
            "{}/notifications/multisafepay?transactionid={transactionid}",
            self.address
        );
        if with_timestamp {
            url.push_str(&format!("&timestamp={}", now()));
        }
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(auth) = auth {
            req = req.header("Auth", auth);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    }

    pub(crate) async fn signed_notify(&self, id: &str, status: &str) -> (StatusCode, String) {
        let body = order_body(id, status);
        self.notify(
            id,
            &body,
            Some(sign_notification(MSP_KEY, now(), &body)),
            true,
        )
        .await
    }
}

/// A 3DS checkout left waiting for the shopper (the simulator sends nothing for it yet).
async fn waiting_checkout(app: &TestApp) -> String {
    let checkout = app.create("4111111111111111").await;
    checkout["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_signed_notification_is_applied_and_acknowledged_with_ok() {
    let app = spawn_app().await;
    let id = waiting_checkout(&app).await;
    let (status, body) = app.signed_notify(&id, "completed").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "OK"));
    let checkout = app.get_checkout(&id).await;
    assert_eq!(checkout["status"], "succeeded");
    assert_eq!(checkout["psp"]["transaction_id"], "4680345");
    let last = app.events(&id).await.pop().unwrap();
    assert_eq!(last["source"], "notification");
    assert_eq!(last["psp_status"], "completed");
    app.stop().await;
}

#[tokio::test]
async fn bad_missing_stale_or_future_signatures_are_401_and_change_nothing() {
    let app = spawn_app().await;
    let id = waiting_checkout(&app).await;
    let body = order_body(&id, "completed");
    let cases = [
        ("missing", None),
        (
            "wrong key",
            Some(sign_notification("not-the-key", now(), &body)),
        ),
        (
            "stale",
            Some(sign_notification(MSP_KEY, now() - 3_600, &body)),
        ),
        (
            "an hour in the future",
            Some(sign_notification(MSP_KEY, now() + 3_600, &body)),
        ),
        ("garbage", Some("bm90IGEgc2lnbmF0dXJl".to_owned())),
        (
            "another body",
            Some(sign_notification(
                MSP_KEY,
                now(),
                &order_body(&id, "declined"),
            )),
        ),
    ];
    for (name, auth) in cases {
        let (status, _) = app.notify(&id, &body, auth, true).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
    }
    assert_eq!(app.get_checkout(&id).await["status"], "requires_action");
    assert_eq!(app.event_trail(&id).await, ["created", "requires_action"]);
    app.stop().await;
}

#[tokio::test]
async fn a_notification_without_timestamp_is_ignored_with_ok() {
    let app = spawn_app().await;
    let id = waiting_checkout(&app).await;
    let body = order_body(&id, "completed");
    // Even unsigned: MSP's rule says such calls are to be ignored, and acknowledging stops retries.
    let (status, text) = app.notify(&id, &body, None, false).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(app.get_checkout(&id).await["status"], "requires_action");
    app.stop().await;
}

#[tokio::test]
async fn a_signed_body_replayed_against_another_checkout_changes_nothing() {
    let app = spawn_app().await;
    let cheap = waiting_checkout(&app).await;
    let target = waiting_checkout(&app).await;
    let body = order_body(&cheap, "completed");
    let (status, text) = app
        .notify(
            &target,
            &body,
            Some(sign_notification(MSP_KEY, now(), &body)),
            true,
        )
        .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(app.get_checkout(&target).await["status"], "requires_action");
    assert_eq!(app.get_checkout(&cheap).await["status"], "requires_action");
    app.stop().await;
}

#[tokio::test]
async fn notifications_for_orders_that_are_not_ours_are_acknowledged() {
    let app = spawn_app().await;
    for id in ["chk_0123456789abcdef0123456789abcdef", "order-182"] {
        let body = order_body(id, "completed");
        let (status, text) = app
            .notify(
                id,
                &body,
                Some(sign_notification(MSP_KEY, now(), &body)),
                true,
            )
            .await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "OK"), "{id}");
    }
    app.stop().await;
}

#[tokio::test]
async fn duplicates_and_out_of_order_notifications_never_move_a_checkout_back() {
    let app = spawn_app().await;
    let id = waiting_checkout(&app).await;
    for status in [
        "completed",
        "completed",
        "initialized",
        "uncleared",
        "declined",
        "expired",
    ] {
        let (code, text) = app.signed_notify(&id, status).await;
        assert_eq!((code, text.as_str()), (StatusCode::OK, "OK"), "{status}");
    }
    assert_eq!(app.get_checkout(&id).await["status"], "succeeded");
    assert_eq!(
        app.event_trail(&id).await,
        ["created", "requires_action", "succeeded"]
    );
    // Void on a succeeded checkout changes nothing; MSP's `partial_refunded` / `refunded` order
    // statuses alone do not either (the checkout follows completed refunds, and
    // these carry none); a chargeback is final.
    app.signed_notify(&id, "void").await;
    app.signed_notify(&id, "partial_refunded").await;
    app.signed_notify(&id, "refunded").await;
    app.signed_notify(&id, "chargedback").await;
    app.signed_notify(&id, "refunded").await;
    assert_eq!(
        app.event_trail(&id).await,
        ["created", "requires_action", "succeeded", "charged_back"]
    );
    let metrics = app.get(&app.url("/metrics")).await.text().await.unwrap();
    assert!(
        metrics.contains("gateway_transition_anomalies_total"),
        "anomalies are counted"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_php_sdk_vector_body_is_readable_as_an_order() {
    // MSP's real payloads type fields loosely (numbers or strings); the parser takes both.
    let body = PHP_SDK_NOTIFICATION;
    let order = gateway::psp::multisafepay::parse_notification(body).unwrap();
    assert_eq!(order.order_id, "182");
    assert_eq!(order.status_text, "completed");
    assert_eq!(order.transaction_id.as_deref(), Some("4680345"));
    let _: Value = serde_json::from_slice(body).unwrap();
}
