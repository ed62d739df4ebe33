//! Chargebacks with disputes, dispute outcomes, dashboard refunds and the evidence upload.

use std::time::Duration;

use serde_json::{Value, json};

use crate::after_payment::*;
use crate::helpers::*;

fn entries(order: &Value, kind: &str) -> Vec<Value> {
    order["related_transactions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["type"] == kind)
        .cloned()
        .collect()
}

fn amsterdam(stamp: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::NaiveDateTime::parse_from_str(stamp.as_str().unwrap(), "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_local_timezone(chrono_tz::Europe::Amsterdam)
        .earliest()
        .unwrap()
        .with_timezone(&chrono::Utc)
}

impl TestSim {
    pub async fn sim_post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.local()))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn sim_put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.local()))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn a_chargeback_carries_a_new_dispute_due_in_14_days_and_can_be_won() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = sim.paid_order(Some(&format!("{}/ok", notify.uri()))).await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let (status, o) = sim
        .sim_post(
            &format!("/sim/orders/{id}/chargeback"),
            json!({"amount": 600, "reason_code": "4853", "notify": true}),
        )
        .await;
    assert_eq!(status, 200, "{o}");
    let cb = entries(&o, "chargeback").pop().unwrap();
    assert_eq!(cb["amount"], 600);
    assert_eq!(cb["dispute"]["status"], "new");
    assert_eq!(cb["dispute"]["reason_code"], "4853");
    assert!(cb["dispute"]["reason_description"].as_str().unwrap().len() > 3);
    let due = amsterdam(&cb["dispute"]["merchant_response_date"]);
    let created = amsterdam(&cb["created"]);
    assert_eq!((due - created).num_days(), 14, "{cb}");
    assert_eq!(o["status"], "void");
    sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;

    let tx = cb["transaction_id"].as_u64().unwrap();
    let (status, o) = sim
        .sim_put(
            &format!("/sim/disputes/{tx}"),
            json!({"status": "submitted"}),
        )
        .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(
        entries(&o, "chargeback")[0]["dispute"]["status"],
        "submitted"
    );
    let (status, o) = sim
        .sim_put(&format!("/sim/disputes/{tx}"), json!({"outcome": "won"}))
        .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(entries(&o, "chargeback")[0]["dispute"]["status"], "closed");
    let reversed = entries(&o, "reverse-chargeback");
    assert_eq!(reversed.len(), 1, "{o}");
    assert_eq!(reversed[0]["amount"], 600);
    assert_eq!(o["status"], "completed", "the money is back");
    // Every move notifies, like every change of an order.
    sim.wait_attempts(&id, 4, Duration::from_secs(5)).await;

    assert_eq!(
        sim.sim_put("/sim/disputes/1", json!({"outcome": "won"}))
            .await
            .0,
        404
    );
    assert_eq!(
        sim.sim_put(&format!("/sim/disputes/{tx}"), json!({"outcome": "maybe"}))
            .await
            .0,
        400
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_lost_dispute_keeps_the_order_charged_back_and_a_silent_chargeback_notifies_nobody() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = sim.paid_order(Some(&format!("{}/ok", notify.uri()))).await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let (status, o) = sim
        .sim_post(
            &format!("/sim/orders/{id}/chargeback"),
            json!({"notify": false}),
        )
        .await;
    assert_eq!(status, 200, "{o}");
    let tx = entries(&o, "chargeback")[0]["transaction_id"]
        .as_u64()
        .unwrap();
    let (_, o) = sim
        .sim_put(
            &format!("/sim/disputes/{tx}"),
            json!({"status": "closed", "outcome": "lost"}),
        )
        .await;
    assert!(entries(&o, "reverse-chargeback").is_empty());
    assert_eq!(o["status"], "void");
    // The lost outcome notifies; once that has arrived, nothing told of the silent chargeback.
    let dispute_status = |b: &Value| {
        entries(b, "chargeback")
            .first()
            .map(|c| c["dispute"]["status"].clone())
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let bodies = loop {
        let bodies = posted_orders(&notify, &id).await;
        if bodies
            .iter()
            .any(|b| dispute_status(b) == Some(json!("closed")))
            || tokio::time::Instant::now() > deadline
        {
            break bodies;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        bodies
            .iter()
            .any(|b| dispute_status(b) == Some(json!("closed")))
    );
    assert!(
        bodies
            .iter()
            .all(|b| dispute_status(b) != Some(json!("new"))),
        "{bodies:?}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_dashboard_refund_without_notification_settles_silently() {
    let sim = spawn_with(|c| c.refund_delay = Duration::from_secs(60)).await;
    let notify = receiver().await;
    let id = sim.paid_order(Some(&format!("{}/ok", notify.uri()))).await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let (status, o) = sim
        .sim_post(
            &format!("/sim/orders/{id}/dashboard_refund"),
            json!({"amount": 250, "notify": false}),
        )
        .await;
    assert_eq!(status, 200, "{o}");
    let refund = entries(&o, "refund").pop().unwrap();
    assert_eq!(
        (refund["amount"].clone(), refund["status"].clone()),
        (json!(250), json!("reserved"))
    );
    sim.advance(61).await;
    let o = sim
        .wait_order(&id, Duration::from_secs(5), |o| {
            entries(o, "refund")[0]["status"] == "completed"
        })
        .await;
    assert_eq!(o["status"], "partial_refunded");
    // A notified refund afterwards: once its notification has arrived, no notification told
    // of the silent one alone (made or completed).
    sim.sim_post(
        &format!("/sim/orders/{id}/dashboard_refund"),
        json!({"amount": 100}),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let bodies = loop {
        let bodies = posted_orders(&notify, &id).await;
        if bodies.iter().any(|b| entries(b, "refund").len() == 2)
            || tokio::time::Instant::now() > deadline
        {
            break bodies;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        bodies.iter().any(|b| entries(b, "refund").len() == 2),
        "the notified refund arrived"
    );
    assert!(
        bodies.iter().all(|b| entries(b, "refund").len() != 1),
        "nothing told of the silent refund alone: {bodies:?}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn evidence_files_are_stored_and_listed() {
    let sim = spawn().await;
    let id = sim.paid_order(None).await;
    let upload = |body: Value| {
        sim.http
            .post(sim.url(&format!("/orders/{id}/files")))
            .header("api_key", KEY)
            .json(&body)
            .send()
    };
    let pdf = base64_encode(b"%PDF-1.4 evidence");
    let r = upload(
        json!({"type": "PDF", "base64": pdf, "description": "Invoice", "name": "invoice.pdf"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"success": true, "data": {}})
    );
    let r = upload(json!({"type": "PDF", "base64": pdf, "name": "x.pdf"}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "description is required");
    let files: Value = sim
        .http
        .get(format!("{}/sim/orders/{id}/files", sim.local()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(files.as_array().unwrap().len(), 1, "{files}");
    assert_eq!(files[0]["name"], "invoice.pdf");
    assert_eq!(files[0]["size"], 17);
    assert_eq!(files[0]["head_hex"], hex_encode(b"%PDF-1.4"));
    sim.handle.stop().await;
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
