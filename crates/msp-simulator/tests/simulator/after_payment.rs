//! Calls for what happens after the payment: the simulator's clock, refunds and their voiding,
//! chargebacks. Kept beside `helpers` so that each file changes for its own reasons.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// A frictionless card: the order is `completed` in the create answer.
pub const PAID_CARD: &str = "374500000000015";

/// MSP's challenged test cards of the three schemes that offer manual capture.
pub const VISA: &str = "4111111111111111";
pub const MASTERCARD: &str = "5500000000000004";
pub const MAESTRO: &str = "6799990000000000011";

/// A manual-capture order (`capture: "manual"`), notified by POST to `notify_url` when given.
pub fn manual_order(id: &str, card: &str, notify_url: Option<&str>) -> Value {
    let mut body = match notify_url {
        Some(url) => notified_order(id, card, url, Some("POST")),
        None => order_body(id, card),
    };
    body["capture"] = json!("manual");
    body
}

impl TestSim {
    /// `PUT /sim/clock {"advance_s": s}`; returns the answer (the new time).
    pub async fn advance(&self, s: u64) -> Value {
        let r = self
            .http
            .put(format!("{}/sim/clock", self.local()))
            .json(&json!({ "advance_s": s }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.unwrap()
    }

    /// `GET /sim/clock`
    pub async fn clock(&self) -> Value {
        self.http
            .get(format!("{}/sim/clock", self.local()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A paid order (frictionless card), notified by POST to `notify_url` when given.
    pub async fn paid_order(&self, notify_url: Option<&str>) -> String {
        let id = order_id();
        let body = match notify_url {
            Some(url) => notified_order(&id, PAID_CARD, url, Some("POST")),
            None => order_body(&id, PAID_CARD),
        };
        let (status, created) = self.create(&body).await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["data"]["status"], "completed");
        id
    }

    /// A manual-capture order on `card`, authorised by `Y` on the challenge: `completed` /
    /// `initialized`.
    pub async fn authorised_order(&self, card: &str, notify_url: Option<&str>) -> String {
        let id = order_id();
        let (status, created) = self.create(&manual_order(&id, card, notify_url)).await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["data"]["status"], "initialized", "{created}");
        self.answer(created["data"]["payment_url"].as_str().unwrap(), "Y")
            .await;
        let o = self.order(&id).await;
        assert_eq!(
            (o["status"].as_str(), o["financial_status"].as_str()),
            (Some("completed"), Some("initialized")),
            "{o}"
        );
        id
    }

    /// `POST /orders/{id}/refunds` with `body`; returns (HTTP status, body).
    pub async fn refund(&self, id: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(&format!("/orders/{id}/refunds")))
            .header("api_key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A refund that must be accepted; returns its `refund_id`.
    pub async fn refund_ok(&self, id: &str, body: Value) -> u64 {
        let (status, answer) = self.refund(id, body).await;
        assert_eq!(status, 200, "{answer}");
        answer["data"]["refund_id"].as_u64().unwrap()
    }

    /// `POST /orders/{id}/capture` with `body`; returns (HTTP status, body).
    pub async fn capture(&self, id: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(&format!("/orders/{id}/capture")))
            .header("api_key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// `PATCH /capture/{id}` with `body`; returns (HTTP status, body).
    pub async fn cancel_authorization(&self, id: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .patch(self.url(&format!("/capture/{id}")))
            .header("api_key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// `PATCH /orders/{id}/refunds/{refund_id}` with `body`; returns (HTTP status, body).
    pub async fn patch_refund(&self, id: &str, refund_id: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .patch(self.url(&format!("/orders/{id}/refunds/{refund_id}")))
            .header("api_key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// `POST /sim/orders/{id}/chargeback` (no key); returns (HTTP status, body).
    pub async fn chargeback(&self, id: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/sim/orders/{id}/chargeback", self.local()))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Waits (up to `within`) until `pred` holds for the order; returns the last order seen.
    pub async fn wait_order(
        &self,
        id: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let o = self.order(id).await;
            if pred(&o) || tokio::time::Instant::now() > deadline {
                return o;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The order's related transaction with `transaction_id`.
pub fn related(order: &Value, transaction_id: u64) -> Value {
    order["related_transactions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["transaction_id"] == transaction_id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The order objects POSTed to `server` for `id`, in arrival order.
pub async fn posted_orders(server: &wiremock::MockServer, id: &str) -> Vec<Value> {
    received_for(server, id)
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}
