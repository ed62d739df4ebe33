//! `PATCH /orders/{id}` with `status: cancelled` cancels an order that is not finished, and is
//! refused, changing nothing, once the order is final or completed (an authorisation included).

use std::time::Duration;

use serde_json::{Value, json};

use crate::after_payment::*;
use crate::helpers::*;

impl TestSim {
    /// `PATCH /orders/{id}` `{"status": "cancelled", "exclude_order": true}`; returns (HTTP
    /// status, body).
    async fn cancel(&self, id: &str) -> (u16, Value) {
        let r = self
            .http
            .patch(self.url(&format!("/orders/{id}")))
            .header("api_key", KEY)
            .json(&json!({"status": "cancelled", "exclude_order": true}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A challenged order answered with `result`.
    async fn answered(&self, card: &str, result: &str, manual: bool) -> String {
        let id = order_id();
        let body = if manual {
            manual_order(&id, card, None)
        } else {
            order_body(&id, card)
        };
        let (_, created) = self.create(&body).await;
        self.answer(created["data"]["payment_url"].as_str().unwrap(), result)
            .await;
        id
    }
}

#[tokio::test]
async fn an_unfinished_order_is_cancelled_manual_capture_or_not() {
    let sim = spawn_with(|c| c.uncleared_delay = Duration::from_secs(180)).await;
    let initialized = order_id();
    sim.create(&order_body(&initialized, VISA)).await;
    let manual = order_id();
    sim.create(&manual_order(&manual, MASTERCARD, None)).await;
    let uncleared = sim.answered("4462000000000003", "Y", true).await;
    assert_eq!(sim.order(&uncleared).await["status"], "uncleared");
    for id in [&initialized, &manual, &uncleared] {
        let (status, answer) = sim.cancel(id).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer, json!({"success": true, "data": {}}));
        let o = sim.order(id).await;
        assert_eq!(
            (o["status"].as_str(), o["financial_status"].as_str()),
            (Some("void"), Some("cancelled")),
            "{o}"
        );
    }
    // The uncleared one stays cancelled when it would have cleared.
    let witness = sim.answered("4462000000000003", "Y", false).await;
    sim.advance(180).await;
    sim.wait_status(&witness, "completed", Duration::from_secs(1))
        .await;
    assert_eq!(sim.order(&uncleared).await["financial_status"], "cancelled");
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_final_or_completed_order_is_not_cancelled_and_nothing_changes() {
    let sim = spawn_with(|c| c.uncleared_delay = Duration::from_secs(180)).await;
    let notify = receiver().await;
    let url = format!("{}/ok", notify.uri());

    let completed = sim.paid_order(Some(&url)).await;
    let declined = sim.answered(VISA, "N", false).await;
    let expired = order_id();
    sim.create(&order_body(&expired, VISA)).await;
    let voided = sim.answered("4917300000000008", "Y", false).await;
    sim.advance(180).await;
    sim.wait_status(&voided, "void", Duration::from_secs(1))
        .await;
    sim.wait_status(&expired, "expired", Duration::from_secs(1))
        .await;
    let cancelled = order_id();
    sim.create(&order_body(&cancelled, VISA)).await;
    assert_eq!(sim.cancel(&cancelled).await.0, 200);
    let partly_refunded = sim.paid_order(None).await;
    sim.refund_ok(&partly_refunded, json!({"currency": "EUR", "amount": 100}))
        .await;
    let refunded = sim.paid_order(None).await;
    sim.refund_ok(&refunded, json!({"currency": "EUR"})).await;
    let charged_back = sim.paid_order(None).await;
    assert_eq!(sim.chargeback(&charged_back).await.0, 200);
    let authorised = sim.authorised_order(VISA, Some(&url)).await;
    let captured = sim.authorised_order(VISA, None).await;
    sim.capture(&captured, json!({"new_order_status": "completed"}))
        .await;
    let authorisation_voided = sim.authorised_order(MAESTRO, None).await;
    sim.cancel_authorization(&authorisation_voided, json!({"status": "cancelled"}))
        .await;
    for id in [&completed, &authorised] {
        sim.wait_attempts(id, 1, Duration::from_secs(5)).await;
    }

    for (id, why) in [
        (&completed, "completed"),
        (&declined, "declined"),
        (&expired, "expired"),
        (&voided, "voided by the scheme"),
        (&cancelled, "cancelled already"),
        (&partly_refunded, "partially refunded"),
        (&refunded, "refunded"),
        (&charged_back, "charged back"),
        (&authorised, "authorised (completed / initialized)"),
        (&captured, "captured"),
        (&authorisation_voided, "authorisation cancelled"),
    ] {
        let before = sim.order(id).await;
        let (status, answer) = sim.cancel(id).await;
        assert_eq!(
            (status, answer["error_code"].as_u64()),
            (409, Some(1000)),
            "{why}: {answer}"
        );
        assert_eq!(answer["success"], false, "{why}");
        assert_eq!(answer["data"], json!({}), "{why}");
        assert_eq!(sim.order(id).await, before, "{why}: unchanged");
    }
    let (_, answer) = sim.cancel(&authorised).await;
    assert!(
        answer["error_info"]
            .as_str()
            .unwrap()
            .contains("PATCH /capture/"),
        "an authorisation is cancelled another way: {answer}"
    );
    // No notification for a refusal: a later change is the next one.
    sim.refund_ok(&completed, json!({"currency": "EUR", "amount": 100}))
        .await;
    sim.cancel_authorization(&authorised, json!({"status": "cancelled"}))
        .await;
    for id in [&completed, &authorised] {
        let attempts = sim.wait_attempts(id, 2, Duration::from_secs(5)).await;
        assert_eq!(attempts.len(), 2, "{id}: {attempts:?}");
        assert_eq!(
            attempts[1]["order_status"],
            if *id == completed {
                "partial_refunded"
            } else {
                "void"
            }
        );
    }
    let (status, answer) = sim.cancel("no-such-order").await;
    assert_eq!((status, answer["error_code"].as_u64()), (404, Some(1006)));
    sim.handle.stop().await;
}
