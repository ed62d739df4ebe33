//! What the operator console reads (`gateway::activity`): every MSP call and notification of a
//! checkout, in its capped logs that expire with it, and the hourly statistics; and that
//! recording them never fails a payment.

use chrono::{TimeDelta, Timelike};
use gateway::activity::{last_24h, msp_calls, notifications};
use gateway::clock::Clock;
use gateway::domain::checkout::CheckoutId;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::msp::sign_notification;
use crate::helpers::*;

const FRICTIONLESS: &str = "374500000000015";
const THREE_DS: &str = "4111111111111111";
const DECLINED: &str = "4242424242424242";

fn id_of(checkout: &serde_json::Value) -> CheckoutId {
    CheckoutId::parse(checkout["id"].as_str().unwrap()).unwrap()
}

impl TestApp {
    async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    async fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut self.redis().await)
            .await
            .unwrap()
    }

    /// A POST notification for `id` with `auth` as its `Auth` header.
    async fn post_notification(&self, id: &CheckoutId, auth: &str) -> StatusCode {
        let body = serde_json::to_vec(&json!({
            "amount": 3495, "amount_refunded": 0, "currency": "EUR", "order_id": id.as_str(),
            "status": "completed", "financial_status": "completed", "transaction_id": 4680345,
            "reason": "", "reason_code": "", "items": null, "related_transactions": null
        }))
        .unwrap();
        let auth = match auth {
            "signed" => sign_notification(MSP_KEY, self.clock.now().timestamp(), &body),
            forged => forged.to_owned(),
        };
        let url = format!(
            "{}/notifications/multisafepay?transactionid={id}&timestamp={}",
            self.address,
            self.clock.now().timestamp()
        );
        let res = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("Auth", auth)
            .body(body)
            .send()
            .await
            .unwrap();
        res.status()
    }

    async fn get_notification(&self, id: &CheckoutId) -> StatusCode {
        let url = format!(
            "{}/notifications/multisafepay?transactionid={id}&timestamp=1",
            self.address
        );
        self.client.get(url).send().await.unwrap().status()
    }
}

#[tokio::test]
async fn a_three_ds_checkout_then_a_refund_records_its_msp_calls_in_order() {
    let app = spawn_app().await;
    let checkout = app.create(THREE_DS).await;
    assert_eq!(checkout["status"], "requires_action");
    let id = id_of(&checkout);
    app.pay_with_challenge(&checkout, "Y").await;
    app.wait_for_status(id.as_str(), "succeeded", std::time::Duration::from_secs(30))
        .await;
    let res = app
        .authed(Method::POST, &format!("/v1/checkouts/{id}/refunds"))
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let calls = msp_calls(&app.state, &id).await.unwrap();
    let operations: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    // Newest first: the refund, then whatever the 3-D Secure return asked, the create last.
    assert_eq!(operations.first(), Some(&"refund"), "{operations:?}");
    assert_eq!(operations.last(), Some(&"create_order"), "{operations:?}");
    assert!(calls.windows(2).all(|w| w[0].at >= w[1].at), "{calls:?}");
    for call in &calls {
        assert_eq!(call.http_status, Some(200), "{call:?}");
        assert_eq!(call.msp_error_code, None, "{call:?}");
        assert_eq!(call.outcome, "ok", "{call:?}");
    }
    // Nothing of the card or MSP's answer is in the log.
    let stored = format!("{:?}", app.redis_dump().await);
    assert!(!stored.contains(THREE_DS));
    app.stop().await;
}

#[tokio::test]
async fn a_refused_order_is_logged_with_msps_error_code() {
    let app = spawn_app().await;
    let checkout = app.create(DECLINED).await;
    assert_eq!(checkout["status"], "failed");
    let calls = msp_calls(&app.state, &id_of(&checkout)).await.unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].operation, "create_order");
    assert_eq!(calls[0].msp_error_code, Some(1024));
    assert_eq!(calls[0].outcome, "msp_error");
    assert!(calls[0].http_status.is_some());
    app.stop().await;
}

#[tokio::test]
async fn rejected_and_accepted_notifications_are_logged_with_the_reason() {
    let app = spawn_app().await;
    // The simulator's own notifications are dropped: this test sends them.
    app.set_faults(json!({"drop_notifications": true})).await;
    let checkout = app.create(THREE_DS).await;
    let id = id_of(&checkout);
    assert_eq!(
        app.post_notification(&id, "dGltZTpmb3JnZWQ=").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.post_notification(&id, "signed").await, StatusCode::OK);
    assert_eq!(app.get_notification(&id).await, StatusCode::OK);

    let log = notifications(&app.state, &id).await.unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    // Newest first.
    assert_eq!(
        (
            log[0].kind.as_str(),
            log[0].verified,
            log[0].reason.as_deref()
        ),
        ("get", true, None)
    );
    assert_eq!(
        (
            log[1].kind.as_str(),
            log[1].verified,
            log[1].reason.as_deref()
        ),
        ("post", true, None)
    );
    assert_eq!(log[1].msp_status.as_deref(), Some("completed"));
    assert_eq!(
        (
            log[2].kind.as_str(),
            log[2].verified,
            log[2].reason.as_deref()
        ),
        ("post", false, Some("bad signature"))
    );
    assert_eq!(log[2].msp_status, None, "a forged body is not read");

    // A notification for a checkout that does not exist leaves no trace.
    let unknown = CheckoutId::generate();
    app.post_notification(&unknown, "dGltZTpmb3JnZWQ=").await;
    assert!(
        notifications(&app.state, &unknown)
            .await
            .unwrap()
            .is_empty()
    );
    let keys = app.redis_dump().await;
    assert!(
        !keys.iter().any(|(k, _)| k.contains(unknown.as_str())),
        "{keys:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_logs_keep_the_newest_100_and_expire_with_the_checkout() {
    let app = spawn_app().await;
    app.set_faults(json!({"drop_notifications": true})).await;
    let checkout = app.create(THREE_DS).await;
    let id = id_of(&checkout);
    // 101 GET notifications: each asks MSP once.
    for _ in 0..101 {
        assert_eq!(app.get_notification(&id).await, StatusCode::OK);
    }
    let log = notifications(&app.state, &id).await.unwrap();
    assert_eq!(log.len(), 100);
    let calls = msp_calls(&app.state, &id).await.unwrap();
    assert_eq!(calls.len(), 100);
    assert!(
        calls.iter().all(|c| c.operation == "get_order"),
        "the oldest, the create, was dropped: {:?}",
        calls.last()
    );

    let record = format!("{}:{{{id}}}:checkout", app.prefix);
    let record_ttl = app.pttl(&record).await;
    assert!(record_ttl > 0);
    for log in ["msplog", "ntflog"] {
        let ttl = app.pttl(&format!("{}:{{{id}}}:{log}", app.prefix)).await;
        assert!(
            ttl > 0 && (record_ttl - ttl).abs() < 5_000,
            "{log}: {ttl} ms against the checkout's {record_ttl} ms"
        );
    }
    // Once the checkout is gone, nothing more is written for its id.
    let _: () = redis::cmd("DEL")
        .arg(&record)
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    app.get_notification(&id).await;
    assert_eq!(notifications(&app.state, &id).await.unwrap(), log);
    app.stop().await;
}

#[tokio::test]
async fn the_last_24_hours_count_outcomes_and_authorisations_by_hour() {
    let app = spawn_app().await;
    // Start of an hour, so that the next one is an hour on.
    let now = app.clock.now();
    app.clock.set(
        now.with_minute(5)
            .and_then(|t| t.with_second(0))
            .unwrap_or(now),
    );
    let first_hour = app.clock.now();
    assert_eq!(app.create(FRICTIONLESS).await["status"], "succeeded");
    assert_eq!(app.create(FRICTIONLESS).await["status"], "succeeded");
    app.clock.advance(TimeDelta::hours(1));
    assert_eq!(app.create(DECLINED).await["status"], "failed");
    assert_eq!(app.create(FRICTIONLESS).await["status"], "succeeded");

    let hours = last_24h(&app.state, app.clock.now()).await.unwrap();
    assert_eq!(hours.len(), 24);
    assert!(hours.windows(2).all(|w| w[0].hour_start < w[1].hour_start));
    let (before, last_two) = hours.split_at(22);
    assert!(
        before.iter().all(|h| h.outcomes.is_empty()
            && h.auth_attempts == 0
            && h.msp_latency_p50_ms.is_none()),
        "{before:?}"
    );
    let (h1, h2) = (&last_two[0], &last_two[1]);
    assert_eq!(
        h1.hour_start.timestamp(),
        first_hour.timestamp() / 3600 * 3600
    );
    assert_eq!(h1.outcomes.get("succeeded"), Some(&2), "{h1:?}");
    assert_eq!((h1.auth_attempts, h1.auth_successes), (2, 2));
    assert_eq!(h2.outcomes.get("succeeded"), Some(&1), "{h2:?}");
    assert_eq!(h2.outcomes.get("failed"), Some(&1), "{h2:?}");
    assert_eq!((h2.auth_attempts, h2.auth_successes), (2, 1));
    for h in [h1, h2] {
        let (p50, p99) = (h.msp_latency_p50_ms.unwrap(), h.msp_latency_p99_ms.unwrap());
        assert!(p50 > 0.0 && p50 <= p99, "{h:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_redis_error_while_recording_does_not_fail_the_checkout() {
    let app = spawn_app().await;
    // This hour's statistics hold a string: every counter written to it is refused by Redis.
    let hour = app.clock.now().timestamp().div_euclid(3600);
    let key = format!("{}:{{stats}}:h:{hour}", app.prefix);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("not a hash")
        .arg("EX")
        .arg(600)
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    let checkout = app.create(FRICTIONLESS).await;
    assert_eq!(checkout["status"], "succeeded");
    let id = id_of(&checkout);
    assert_eq!(app.get_checkout(id.as_str()).await["status"], "succeeded");
    // The checkout's records went with it; the hour's counts wait in the instance and are
    // written every few seconds, or before the console reads them: Redis refuses them, that
    // is logged, and the broken hour is not read as zero.
    assert_eq!(msp_calls(&app.state, &id).await.unwrap().len(), 1);
    assert_eq!(app.get_notification(&id).await, StatusCode::OK);
    assert!(
        last_24h(&app.state, app.clock.now()).await.is_err(),
        "the broken hour is not read as zero"
    );
    assert!(
        captured_logs().contains("could not record the console's activity"),
        "the failure is logged"
    );
    // The counts Redis refused were kept: once it takes them, they are all there.
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    let hours = last_24h(&app.state, app.clock.now()).await.unwrap();
    let now = hours.last().unwrap();
    assert_eq!(now.outcomes.get("succeeded"), Some(&1), "{now:?}");
    assert_eq!((now.auth_attempts, now.auth_successes), (1, 1), "{now:?}");
    app.stop().await;
}

/// Recording costs a checkout no Redis round trip of its own, on a Redis of the test's own
/// with nothing else running: a frictionless create is its insert and its compare-and-set (the
/// console's search entries, the MSP call and the transaction id ride on them), and MSP's
/// notification of the status the create already knew is one read that also records it.
#[tokio::test]
async fn the_consoles_records_ride_on_the_checkouts_own_redis_commands() {
    let redis = crate::common::redis_server::TestRedis::start();
    let app = spawn_app_with(Options {
        redis_url: Some(redis.url().to_owned()),
        ..Options::default()
    })
    .await;
    // MSP's notification comes a second after its order: after the create's answer is
    // stored, so that it changes nothing (sooner, it would race the create's compare-and-set).
    app.set_faults(json!({"notification_delay_ms": 1_000}))
        .await;
    let wait = std::time::Duration::from_secs(30);
    // Once first, so that Redis has loaded every script (a fresh server answers a script's
    // first call NOSCRIPT, and the client loads it: two more commands).
    let warm = app.create(FRICTIONLESS).await;
    app.wait_for_acknowledged_notification(warm["id"].as_str().unwrap(), "completed", wait)
        .await;

    let mut monitor = RedisMonitor::start(redis.url()).await;
    let checkout = app.create(FRICTIONLESS).await;
    assert_eq!(checkout["status"], "succeeded", "{checkout}");
    let id = id_of(&checkout);
    app.wait_for_acknowledged_notification(id.as_str(), "completed", wait)
        .await;
    let commands = monitor.commands().await;
    assert_eq!(
        commands,
        ["evalsha", "evalsha", "evalsha"],
        "the insert, the compare-and-set, and the notification's read"
    );

    // And everything was recorded.
    assert_eq!(msp_calls(&app.state, &id).await.unwrap().len(), 1);
    let received = notifications(&app.state, &id).await.unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].msp_status.as_deref(), Some("completed"));
    let tx = app.get_checkout(id.as_str()).await["psp"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    use gateway::store::console::{ConsoleSlot, SearchIndex};
    let by_tx = app
        .state
        .flows
        .store
        .console_list(ConsoleSlot::Index(SearchIndex::MspTransaction, &tx), 10)
        .await
        .unwrap();
    assert_eq!(by_tx, [id.as_str()]);
    app.stop().await;
}
