//! Point 8: faults set at run time, and the delivery log.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn faults_start_harmless_and_put_merges_fields() {
    let sim = spawn().await;
    let url = format!("{}/sim/faults", sim.local());
    let initial: Value = sim
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        initial,
        json!({"latency_ms": 0, "notification_delay_ms": 0, "create_failure": "none",
               "refund_failure": "none", "capture_failure": "none", "cancel_failure": "none",
               "drop_notifications": false, "duplicate_notifications": false,
               "reorder_notifications": false, "stale_timestamps": false, "bad_signatures": false})
    );
    let after = sim
        .put_faults(json!({"latency_ms": 5, "bad_signatures": true}))
        .await;
    assert_eq!(
        (
            after["latency_ms"].as_u64(),
            after["bad_signatures"].as_bool()
        ),
        (Some(5), Some(true))
    );
    let after = sim.put_faults(json!({"create_failure": "timeout"})).await;
    assert_eq!(after["latency_ms"], 5, "unset fields keep their value");
    assert_eq!(after["create_failure"], "timeout");
    let shown: Value = sim
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, after);
    let bad = sim
        .http
        .put(&url)
        .json(&json!({"create_failure": "sometimes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    sim.handle.stop().await;
}

#[tokio::test]
async fn latency_delays_api_answers() {
    let sim = spawn().await;
    sim.put_faults(json!({"latency_ms": 300})).await;
    let started = Instant::now();
    let (status, _) = sim
        .create(&order_body(&order_id(), "4111111111111111"))
        .await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn create_failures_answer_500_or_success_false_and_create_nothing() {
    let sim = spawn().await;
    for (failure, http, code) in [
        ("http_500", 500, None),
        ("success_false_200", 200, Some(1024)),
    ] {
        sim.put_faults(json!({"create_failure": failure})).await;
        let id = order_id();
        let r = sim
            .http
            .post(sim.url("/orders"))
            .header("api_key", KEY)
            .json(&order_body(&id, "4111111111111111"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), http, "{failure}");
        if let Some(code) = code {
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                (body["success"].as_bool(), body["error_code"].as_u64()),
                (Some(false), Some(code))
            );
        }
        assert_eq!(sim.get_order(&id).await.0, 404, "{failure}: no order");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_create_timeout_still_creates_the_order() {
    let sim = spawn().await;
    sim.put_faults(json!({"create_failure": "timeout"})).await;
    let id = order_id();
    let r = sim
        .http
        .post(sim.url("/orders"))
        .header("api_key", KEY)
        .timeout(Duration::from_millis(500))
        .json(&order_body(&id, "374500000000015"))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()), "the answer never comes");
    assert_eq!(
        sim.order(&id).await["status"],
        "completed",
        "the outcome exists; ask for it"
    );
    sim.handle.stop().await;
}

async fn posted(sim: &TestSim, notify: &wiremock::MockServer, card: &str) -> String {
    let id = order_id();
    sim.create(&notified_order(
        &id,
        card,
        &format!("{}/ok", notify.uri()),
        Some("POST"),
    ))
    .await;
    id
}

#[tokio::test]
async fn dropped_notifications_are_never_sent() {
    let sim = spawn().await;
    let notify = receiver().await;
    sim.put_faults(json!({"drop_notifications": true})).await;
    let dropped = posted(&sim, &notify, "374500000000015").await;
    sim.put_faults(json!({"drop_notifications": false})).await;
    let id = posted(&sim, &notify, "374500000000015").await;
    assert_eq!(
        sim.wait_attempts(&id, 1, Duration::from_secs(5))
            .await
            .len(),
        1,
        "the control case"
    );
    // Had it not been dropped, the first notification would have gone out before the control
    // case's; a retry interval more leaves it time to arrive.
    sim.wait_retry_intervals(1).await;
    assert!(received_for(&notify, &dropped).await.is_empty());
    assert!(sim.attempts(&dropped).await.is_empty());
    sim.handle.stop().await;
}

#[tokio::test]
async fn duplicated_notifications_arrive_twice() {
    let sim = spawn().await;
    let notify = receiver().await;
    sim.put_faults(json!({"duplicate_notifications": true}))
        .await;
    let id = posted(&sim, &notify, "374500000000015").await;
    sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;
    // A third copy would follow the second at once, a retry one interval after the first.
    sim.wait_retry_intervals(1).await;
    let got = received_for(&notify, &id).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body, "the same notification twice");
    sim.handle.stop().await;
}

#[tokio::test]
async fn reordered_notifications_arrive_newest_first() {
    let sim = spawn().await;
    let notify = receiver().await;
    sim.put_faults(json!({"reorder_notifications": true})).await;
    let id = posted(&sim, &notify, "374500000000015").await;
    let r = sim
        .http
        .post(sim.url(&format!("/orders/{id}/refunds")))
        .header("api_key", KEY)
        .json(&json!({"currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;
    let statuses: Vec<String> = received_for(&notify, &id)
        .await
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses, ["refunded", "completed"]);
    // A lone notification is still delivered once its hold ends.
    let lone = posted(&sim, &notify, "374500000000015").await;
    assert_eq!(
        sim.wait_attempts(&lone, 1, Duration::from_secs(5))
            .await
            .len(),
        1
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn stale_timestamps_and_bad_signatures_are_what_they_say() {
    let sim = spawn().await;
    let notify = receiver().await;
    sim.put_faults(json!({"stale_timestamps": true})).await;
    let id = posted(&sim, &notify, "374500000000015").await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let r = &received_for(&notify, &id).await[0];
    let signed =
        verify_auth(KEY, r.headers["auth"].to_str().unwrap(), &r.body).expect("validly signed");
    assert!(
        (unix_now() - 3600 - signed).abs() <= 2,
        "signed an hour ago: {signed}"
    );
    let query_ts: i64 = query(r, "timestamp").unwrap().parse().unwrap();
    assert_eq!(query_ts, signed);

    sim.put_faults(json!({"stale_timestamps": false, "bad_signatures": true}))
        .await;
    let id = posted(&sim, &notify, "374500000000015").await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let r = &received_for(&notify, &id).await[0];
    assert_eq!(
        verify_auth(KEY, r.headers["auth"].to_str().unwrap(), &r.body),
        None
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn notification_delay_holds_the_first_attempt() {
    let sim = spawn().await;
    let notify = receiver().await;
    sim.put_faults(json!({"notification_delay_ms": 400})).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let id = posted(&sim, &notify, "374500000000015").await;
    let attempts = sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let at = attempts[0]["at_ms"].as_u64().unwrap();
    assert!(
        at >= before + 400,
        "sent {} ms after the change",
        at - before
    );
    sim.handle.stop().await;
}
