//! Point 6: notifications, their signature, the acknowledgement rule and the retries.

use std::time::Duration;

use msp_simulator::signature;
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

use crate::common::msp::{PHP_SDK_API_KEY, PHP_SDK_AUTH, PHP_SDK_NOTIFICATION, PHP_SDK_TIMESTAMP};
use crate::helpers::*;

#[test]
fn the_signer_reproduces_the_php_sdk_vector() {
    // Independent check that the vector is what we think it is...
    assert_eq!(
        verify_auth(PHP_SDK_API_KEY, PHP_SDK_AUTH, PHP_SDK_NOTIFICATION),
        Some(PHP_SDK_TIMESTAMP)
    );
    // ...and the simulator's signer produces exactly it.
    assert_eq!(
        signature::auth_header(PHP_SDK_API_KEY, PHP_SDK_TIMESTAMP, PHP_SDK_NOTIFICATION),
        PHP_SDK_AUTH
    );
    assert_eq!(
        verify_auth("a-fake-API-key", PHP_SDK_AUTH, PHP_SDK_NOTIFICATION),
        None
    );
}

#[tokio::test]
async fn a_post_notification_is_the_compact_order_signed_with_the_creating_key() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = order_id();
    let url = format!("{}/ok?shop=eu&x=1", notify.uri());
    // Created with the second site's key: signed with that key.
    let (_, created) = sim
        .create_as(
            OTHER_KEY,
            &notified_order(&id, "374500000000015", &url, Some("POST")),
        )
        .await;
    assert_eq!(created["data"]["status"], "completed");
    let attempts = sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["acknowledged"], true);
    let r = &received_for(&notify, &id).await[0];
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(
        query(r, "shop").as_deref(),
        Some("eu"),
        "the URL's own query is kept"
    );
    assert_eq!(query(r, "x").as_deref(), Some("1"));
    let ts: i64 = query(r, "timestamp").unwrap().parse().unwrap();
    assert!(
        (unix_now() - ts).abs() <= 2,
        "timestamp is the current Unix time in seconds"
    );
    let auth = r.headers["auth"].to_str().unwrap();
    assert_eq!(
        verify_auth(OTHER_KEY, auth, &r.body),
        Some(ts),
        "Auth signs the exact body"
    );
    assert_eq!(
        verify_auth(KEY, auth, &r.body),
        None,
        "not signed with another site's key"
    );
    let order: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(order["order_id"], id.as_str());
    assert_eq!(order["status"], "completed");
    assert!(
        order.get("success").is_none(),
        "the bare order, no envelope"
    );
    // Compact, as MSP sends it (the Python SDK re-serialises compactly before verifying).
    assert_eq!(
        serde_json::to_string(&order).unwrap(),
        String::from_utf8(r.body.clone()).unwrap()
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_get_notification_has_no_body_and_is_the_default() {
    let sim = spawn().await;
    let notify = receiver().await;
    for method in [None, Some("GET")] {
        let id = order_id();
        let url = format!("{}/ok?shop=eu", notify.uri());
        sim.create(&notified_order(&id, "374500000000015", &url, method))
            .await;
        sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
        let r = &received_for(&notify, &id).await[0];
        assert_eq!(r.method.as_str(), "GET", "{method:?}");
        assert!(r.body.is_empty());
        assert_eq!(query(r, "shop").as_deref(), Some("eu"));
        assert!(query(r, "timestamp").is_some());
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn every_status_change_is_notified_and_an_initialized_creation_is_not() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = order_id();
    let url = format!("{}/ok", notify.uri());
    let (_, created) = sim
        .create(&notified_order(&id, "4111111111111111", &url, Some("POST")))
        .await;
    sim.answer(created["data"]["payment_url"].as_str().unwrap(), "Y")
        .await;
    // An `initialized` notification would have gone out at creation, ahead of this one.
    let first = sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    assert_eq!(
        first[0]["order_status"], "completed",
        "initialized is not notified: {first:?}"
    );
    let refund = |amount: u64| {
        sim.http
            .post(sim.url(&format!("/orders/{id}/refunds")))
            .header("api_key", KEY)
            .json(&json!({"currency": "EUR", "amount": amount}))
            .send()
    };
    assert!(refund(300).await.unwrap().status().is_success());
    sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;
    assert!(refund(700).await.unwrap().status().is_success());
    sim.wait_attempts(&id, 3, Duration::from_secs(5)).await;
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
    assert_eq!(statuses, ["completed", "partial_refunded", "refunded"]);
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_notification_answered_500_is_retried_exactly_3_times_on_time_and_resigned() {
    let interval = Duration::from_millis(1100);
    let sim = spawn_with(|c| c.notification_retry_interval = interval).await;
    let notify = receiver().await;
    let id = order_id();
    sim.create(&notified_order(
        &id,
        "374500000000015",
        &format!("{}/fail", notify.uri()),
        Some("POST"),
    ))
    .await;
    let attempts = sim.wait_attempts(&id, 4, Duration::from_secs(10)).await;
    // A fifth attempt would be due one interval after the fourth: give it two.
    sim.wait_retry_intervals(2).await;
    let attempts_after = sim.attempts(&id).await;
    assert_eq!(
        attempts_after.len(),
        4,
        "1 attempt + exactly 3 retries: {attempts_after:?}"
    );
    let received = received_for(&notify, &id).await;
    assert_eq!(received.len(), 4);
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], i + 1);
        assert_eq!(a["status"], 500);
        assert_eq!(a["acknowledged"], false);
        assert_eq!(a["method"], "POST");
        assert!(a["body"].as_str().unwrap().contains("failed"));
    }
    for w in attempts.windows(2) {
        let gap = w[1]["at_ms"].as_u64().unwrap() - w[0]["at_ms"].as_u64().unwrap();
        assert!(
            gap >= interval.as_millis() as u64 && gap <= interval.as_millis() as u64 + 100,
            "a retry goes out within 100 ms of its due time: gap {gap} ms"
        );
    }
    let mut seen = std::collections::HashSet::new();
    for r in &received {
        let ts: i64 = query(r, "timestamp").unwrap().parse().unwrap();
        let auth = r.headers["auth"].to_str().unwrap();
        assert_eq!(
            verify_auth(KEY, auth, &r.body),
            Some(ts),
            "each attempt signed with its own time"
        );
        assert!(seen.insert(ts), "every attempt carries a fresh timestamp");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn only_a_200_with_ok_in_the_first_100_characters_acknowledges() {
    let sim = spawn().await;
    let notify = receiver().await;
    let padded = format!("{}OK", " ".repeat(99));
    for (p, status, body) in [
        ("/msp-ok", 200, "MULTISAFEPAY_OK"),
        ("/ok-late", 200, padded.as_str()),
        ("/no-ok", 200, "received"),
        ("/no-content", 204, ""),
        ("/moved", 302, "OK"),
    ] {
        Mock::given(path(p))
            .respond_with(ResponseTemplate::new(status).set_body_string(body))
            .mount(&notify)
            .await;
    }
    let mut orders = vec![];
    for (p, acked) in [
        ("/ok", true),
        ("/msp-ok", true),
        ("/ok-late", false),
        ("/no-ok", false),
        ("/no-content", false),
        ("/moved", false),
    ] {
        let id = order_id();
        sim.create(&notified_order(
            &id,
            "374500000000015",
            &format!("{}{p}", notify.uri()),
            None,
        ))
        .await;
        orders.push((id, p, acked));
    }
    for (id, _, acked) in &orders {
        if !acked {
            sim.wait_attempts(id, 4, Duration::from_secs(5)).await;
        }
    }
    // Every retry that could still come (a second attempt for an acknowledged order, a fifth
    // for the others) was due within one interval of an attempt seen by now: give it two.
    sim.wait_retry_intervals(2).await;
    for (id, p, acked) in orders {
        let attempts = sim.attempts(&id).await;
        let expected = if acked { 1 } else { 4 };
        assert_eq!(attempts.len(), expected, "{p}: {attempts:?}");
        assert_eq!(attempts.last().unwrap()["acknowledged"], acked, "{p}");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_retry_carries_the_order_as_it_was_when_it_changed() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = order_id();
    sim.create(&notified_order(
        &id,
        "374500000000015",
        &format!("{}/fail", notify.uri()),
        Some("POST"),
    ))
    .await;
    let refund = sim
        .http
        .post(sim.url(&format!("/orders/{id}/refunds")))
        .header("api_key", KEY)
        .json(&json!({"currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert!(refund.status().is_success());
    sim.wait_attempts(&id, 8, Duration::from_secs(5)).await;
    let mut by_status = std::collections::HashMap::<String, usize>::new();
    for r in received_for(&notify, &id).await {
        let o: Value = serde_json::from_slice(&r.body).unwrap();
        *by_status
            .entry(o["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(by_status.get("completed"), Some(&4), "{by_status:?}");
    assert_eq!(by_status.get("refunded"), Some(&4), "{by_status:?}");
    sim.handle.stop().await;
}
