//! Refunds (design §10.1) against the simulator: reserved atomically, sent once, settled as
//! MultiSafepay settles them, never doubled after a lost answer.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(10);

impl TestApp {
    /// `POST /v1/checkouts/{id}/refunds` with `body`: the status and the JSON answer.
    async fn refund(&self, checkout_id: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .authed(
                Method::POST,
                &format!("/v1/checkouts/{checkout_id}/refunds"),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    async fn get_refund(&self, refund_id: &str) -> Value {
        let res = self
            .authed(Method::GET, &format!("/v1/refunds/{refund_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// Polls until the refund has `status` (MSP's notification arrives asynchronously).
    async fn wait_for_refund(&self, refund_id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let refund = self.get_refund(refund_id).await;
            if refund["status"] == status {
                return refund;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "refund {refund_id} did not become {status}: {refund}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The order as the simulator (MultiSafepay) has it.
    async fn msp_order(&self, id: &str) -> Value {
        let res = self
            .client
            .get(format!("{}/orders/{id}", self.sim.api_url()))
            .header("api_key", MSP_KEY)
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        body["data"].clone()
    }

    /// The refunds MultiSafepay received for order `id`.
    async fn msp_refunds(&self, id: &str) -> Vec<Value> {
        let order = self.msp_order(id).await;
        order["related_transactions"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|t| t["type"] == "refund")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Moves the simulator's clock (`PUT /sim/clock`): reserved refunds settle.
    async fn advance_msp_clock(&self, seconds: u64) {
        let res = self
            .client
            .put(format!("{}/sim/clock", self.sim.base_url()))
            .json(&json!({"advance_s": seconds}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// A checkout that succeeded at creation (frictionless card): 3495 minor units.
    async fn paid_checkout(&self) -> String {
        let checkout = self.create("374500000000015").await;
        assert_eq!(checkout["status"], "succeeded");
        checkout["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn partial_then_full_refund_settle_as_msp_settles_them() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;

    let (status, refund) = app
        .refund(&id, json!({"amount": 1000, "reason": "requested_by_customer", "metadata": {"ticket": "T-9"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    let refund_id = refund["id"].as_str().unwrap().to_owned();
    assert!(
        refund_id.starts_with("re_") && refund_id.len() == 35,
        "{refund}"
    );
    assert_eq!(refund["status"], "pending");
    assert_eq!(refund["amount"], 1000);
    assert_eq!(refund["currency"], "EUR");
    assert_eq!(refund["checkout_id"], id.as_str());
    assert_eq!(refund["reason"], "requested_by_customer");
    assert_eq!(refund["metadata"]["ticket"], "T-9");
    assert_eq!(refund["psp"]["refund_order_id"], refund_id.as_str());
    // MSP shows the request on the order at once; the checkout waits for the refund to complete.
    let checkout = app.get_checkout(&id).await;
    assert_eq!(
        (
            checkout["status"].as_str(),
            checkout["amount_refunded"].as_i64()
        ),
        (Some("succeeded"), Some(0))
    );

    app.advance_msp_clock(24 * 3600).await;
    let settled = app.wait_for_refund(&refund_id, "succeeded").await;
    assert_eq!(settled["psp"]["status"], "completed");
    let checkout = app.wait_for_status(&id, "partially_refunded", WAIT).await;
    assert_eq!(checkout["amount_refunded"], 1000);

    // No amount: everything that is left.
    let (status, rest) = app.refund(&id, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{rest}");
    assert_eq!(rest["amount"], 2495);
    app.advance_msp_clock(24 * 3600).await;
    app.wait_for_refund(rest["id"].as_str().unwrap(), "succeeded")
        .await;
    let checkout = app.wait_for_status(&id, "refunded", WAIT).await;
    assert_eq!(checkout["amount_refunded"], 3495);
    let trail = app.event_trail(&id).await;
    assert_eq!(
        trail,
        ["created", "succeeded", "partially_refunded", "refunded"]
    );

    let listed: Vec<Value> = app
        .authed(Method::GET, &format!("/v1/checkouts/{id}/refunds"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [refund_id.as_str(), rest["id"].as_str().unwrap()],
        "oldest first"
    );
    let (status, error) = app.refund(&id, json!({"amount": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "checkout_not_refundable");
    assert_eq!(
        app.msp_refunds(&id).await.len(),
        2,
        "MSP received each refund once"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_refund_requests_are_refused_and_reach_nobody() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    let cases = [
        (json!({"amount": 0}), "invalid_amount", Some("amount")),
        (json!({"amount": -5}), "invalid_amount", Some("amount")),
        (json!({"amount": "500"}), "invalid_type", Some("amount")),
        (json!({"amount": 3496}), "amount_too_large", Some("amount")),
        (
            json!({"reason": "whim"}),
            "invalid_parameter",
            Some("reason"),
        ),
        (json!({"amout": 500}), "unknown_field", Some("amout")),
    ];
    for (body, code, param) in cases {
        let (status, error) = app.refund(&id, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        assert_eq!(error["error"]["param"].as_str(), param, "{body}");
    }
    let (status, error) = app
        .refund("chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b", json!({}))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("resource_missing"))
    );
    // A checkout waiting for 3-D Secure has nothing to refund.
    let pending = app.create("4111111111111111").await;
    let (status, error) = app.refund(pending["id"].as_str().unwrap(), json!({})).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("checkout_not_refundable"))
    );
    assert!(
        app.msp_refunds(&id).await.is_empty(),
        "none of these reached MSP"
    );
    assert!(app.get_checkout(&id).await["status"] == "succeeded");
    app.stop().await;
}

/// Ten refunds at once, of ten different amounts (MSP refuses the same amount twice within five
/// minutes) of which any five fit and no six: exactly five are made, whatever the interleaving.
#[tokio::test]
async fn concurrent_refunds_never_exceed_the_amount() {
    let app = spawn_app().await;
    for round in 0..3 {
        let id = app.paid_checkout().await;
        let answers = futures_util::future::join_all(
            (0..10).map(|i| app.refund(&id, json!({"amount": 600 + 10 * i}))),
        )
        .await;
        let created = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        let too_large: Vec<_> = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::BAD_REQUEST)
            .map(|(_, e)| e["error"]["code"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(created, 5, "round {round}: {answers:?}");
        assert_eq!(too_large, vec!["amount_too_large"; 5], "round {round}");
        assert_eq!(
            app.msp_refunds(&id).await.len(),
            5,
            "round {round}: MSP received exactly five"
        );
    }
    app.stop().await;
}

/// MSP makes the refund but its answer never arrives: the refund stays pending, is found at MSP
/// by its refund_order_id, is not sent again, and succeeds when MSP settles it.
#[tokio::test]
async fn a_refund_whose_answer_was_lost_is_found_at_msp_not_sent_twice() {
    let app = spawn_app_with(Options {
        timeout_ms: 500,
        ..Options::default()
    })
    .await;
    let id = app.paid_checkout().await;
    app.set_faults(json!({"refund_failure": "timeout"})).await;
    let (status, refund) = app.refund(&id, json!({"amount": 700})).await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(refund["status"], "pending");
    assert_eq!(
        refund["psp"]["transaction_id"],
        Value::Null,
        "MSP's answer never came"
    );
    app.set_faults(json!({"refund_failure": "none"})).await;

    // The reconciler asks MSP, finds the refund by its refund_order_id, and leaves it at that.
    // (The gateway's clock moves less than the notification tolerance, 10 minutes, in all: MSP
    // signs its notifications with the real time.)
    let looked = app.pass_after(chrono::TimeDelta::minutes(1)).await.unwrap();
    assert!(looked >= 1);
    let refund_id = refund["id"].as_str().unwrap();
    let found = app.get_refund(refund_id).await;
    assert!(found["psp"]["transaction_id"].is_string(), "{found}");
    // The next look, after the reconciler's shortest interval (5 minutes), sends nothing either.
    assert_eq!(
        app.pass_after(chrono::TimeDelta::minutes(6)).await.unwrap(),
        1
    );
    assert_eq!(app.msp_refunds(&id).await.len(), 1, "never sent twice");

    app.advance_msp_clock(24 * 3600).await;
    app.wait_for_refund(refund_id, "succeeded").await;
    let checkout = app.wait_for_status(&id, "partially_refunded", WAIT).await;
    assert_eq!(checkout["amount_refunded"], 700);
    app.stop().await;
}

#[tokio::test]
async fn a_pending_refund_can_be_canceled_and_its_amount_is_free_again() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    let (_, refund) = app.refund(&id, json!({"amount": 3495})).await;
    let refund_id = refund["id"].as_str().unwrap().to_owned();
    let (status, _) = app.refund(&id, json!({"amount": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "everything is reserved");

    let cancel = |app: &TestApp| {
        app.authed(Method::POST, &format!("/v1/refunds/{refund_id}/cancel"))
            .send()
    };
    let res = cancel(&app).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let canceled: Value = res.json().await.unwrap();
    assert_eq!(canceled["status"], "canceled");
    let res = cancel(&app).await.unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let error: Value = res.json().await.unwrap();
    assert_eq!(error["error"]["code"], "refund_not_cancelable");

    let (status, again) = app.refund(&id, json!({"amount": 3495})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the amount is free again: {again}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_charged_back_checkout_is_charged_back_and_not_refundable() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    let res = app
        .client
        .post(format!("{}/sim/orders/{id}/chargeback", app.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    app.wait_for_status(&id, "charged_back", WAIT).await;
    let (status, error) = app.refund(&id, json!({})).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("checkout_not_refundable"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_refund_msp_declines_when_it_would_settle_fails_and_frees_its_amount() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    app.set_faults(json!({"refund_failure": "declined"})).await;
    let (status, refund) = app.refund(&id, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    app.set_faults(json!({"refund_failure": "none"})).await;
    app.advance_msp_clock(24 * 3600).await;
    let failed = app
        .wait_for_refund(refund["id"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(failed["failure"]["code"], "refund_declined");
    let checkout = app.get_checkout(&id).await;
    assert_eq!(
        (
            checkout["status"].as_str(),
            checkout["amount_refunded"].as_i64()
        ),
        (Some("succeeded"), Some(0))
    );
    let (status, again) = app.refund(&id, json!({"amount": 3495})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the amount is free again: {again}"
    );
    app.stop().await;
}
