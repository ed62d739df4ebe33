//! Calls for what happens after the payment: the simulator's clock. Kept beside `helpers` so
//! that each file changes for its own reasons.

use serde_json::{Value, json};

use crate::helpers::*;

/// A frictionless card: the order is `completed` in the create answer.
pub const PAID_CARD: &str = "374500000000015";

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
}
