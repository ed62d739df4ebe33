//! Merchant events and webhooks with a real receiver on loopback: signed so the
//! receiver's own code verifies them, retried on the documented schedule as the clock moves,
//! never lost by a crash, delivered once by two instances sharing the work.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gateway::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::webhook::{Mode, Receiver, verify};
use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(30);
/// Frictionless at the simulator: the checkout succeeds at creation.
const FRICTIONLESS: &str = "374500000000015";

async fn app_delivering_to(receiver: &Receiver) -> TestApp {
    spawn_app_with(Options {
        webhooks: Some(Webhooks::to(receiver.url())),
        ..Options::default()
    })
    .await
}

/// A wait in whole minutes, rounded: timestamps are shown to the second.
fn minutes(d: TimeDelta) -> i64 {
    (d.num_milliseconds() as f64 / 60_000.0).round() as i64
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// The checkout's event of type `kind`.
async fn event_of(app: &TestApp, checkout_id: &str, kind: &str) -> Value {
    let events = app.merchant_events(checkout_id).await;
    events
        .into_iter()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event for {checkout_id}"))
}

#[tokio::test]
async fn a_succeeded_checkout_is_delivered_signed_with_every_secret_and_recorded() {
    let mut receiver = Receiver::start(WEBHOOK_SECRET).await;
    let second_secret = "whsec_next_0123456789abcdef";
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks {
            secrets: vec![WEBHOOK_SECRET.into(), second_secret.into()],
            ..Webhooks::to(receiver.url())
        }),
        ..Options::default()
    })
    .await;

    let checkout = app.create(FRICTIONLESS).await;
    let id = id_of(&checkout);
    let got = receiver.wait_for_acknowledged(1, WAIT).await;
    let delivery = &got[0];
    assert!(delivery.verified, "{delivery:?}");
    // One v1 per secret: a receiver holding only the new secret verifies too (rotation).
    let header = delivery.signature.as_deref().unwrap();
    assert_eq!(header.matches("v1=").count(), 2, "{header}");
    let now = chrono::Utc::now().timestamp();
    verify(header, &delivery.body, second_secret, now, 300).unwrap();
    assert!(verify(header, &delivery.body, "whsec_wrong_0123456789", now, 300).is_err());
    // A tampered body fails.
    let mut tampered = delivery.body.clone();
    tampered[10] ^= 1;
    assert!(verify(header, &tampered, WEBHOOK_SECRET, now, 300).is_err());

    let body = delivery.json();
    assert_eq!(body["type"], "checkout.succeeded");
    assert_eq!(body["previous_status"], "created");
    assert_eq!(delivery.event_id.as_deref(), body["id"].as_str());
    // The object is the checkout as the API shows it.
    assert_eq!(body["data"]["object"], app.get_checkout(&id).await);
    assert!(!String::from_utf8_lossy(&delivery.body).contains(FRICTIONLESS));

    let event = app.event(body["id"].as_str().unwrap()).await;
    assert_eq!(event["delivery"]["status"], "delivered");
    let attempts = event["delivery"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["http_status"], 200);
    assert_eq!(attempts[0]["error"], Value::Null);
    assert_eq!(event["delivery"]["next_attempt_at"], Value::Null);
    assert_eq!(event["data"], body["data"]);

    receiver.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn down_then_500_then_slow_then_redirect_then_up_the_event_arrives_on_schedule() {
    let mut receiver = Receiver::down(WEBHOOK_SECRET).await;
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks {
            timeout_ms: 300,
            ..Webhooks::to(receiver.url())
        }),
        ..Options::default()
    })
    .await;
    let id = id_of(&app.create(FRICTIONLESS).await);
    let event_id = id_of(&event_of(&app, &id, "checkout.succeeded").await);
    let created = app.clock.now();

    // Down: refused at once, due again in about a minute.
    let event = app.wait_for_attempts(&event_id, 1).await;
    let delivery = &event["delivery"];
    assert_eq!(delivery["status"], "pending");
    assert_eq!(delivery["attempts"][0]["http_status"], Value::Null);
    assert_eq!(delivery["attempts"][0]["error"], "could not connect");
    let next = |e: &Value| {
        DateTime::parse_from_rfc3339(e["delivery"]["next_attempt_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    assert_eq!(minutes(next(&event) - created), 1);
    // Not due yet: a pass before the minute is up tries nothing.
    assert_eq!(app.deliver_after(TimeDelta::seconds(30)).await, 0);

    receiver.up().await;
    receiver.set_mode(Mode::Status(500));
    app.deliver_after(TimeDelta::seconds(30)).await;
    let event = app.wait_for_attempts(&event_id, 2).await;
    assert_eq!(event["delivery"]["attempts"][1]["http_status"], 500);
    assert_eq!(minutes(next(&event) - app.clock.now()), 5, "{event:#}");

    receiver.set_mode(Mode::Slow(Duration::from_secs(2)));
    app.deliver_after(TimeDelta::minutes(5)).await;
    let event = app.wait_for_attempts(&event_id, 3).await;
    let slow = &event["delivery"]["attempts"][2];
    assert_eq!(slow["http_status"], Value::Null);
    assert!(
        slow["error"]
            .as_str()
            .unwrap()
            .contains("webhooks.timeout_ms"),
        "{slow}"
    );
    assert_eq!(minutes(next(&event) - app.clock.now()), 30);

    receiver.set_mode(Mode::Redirect);
    app.deliver_after(TimeDelta::minutes(30)).await;
    let event = app.wait_for_attempts(&event_id, 4).await;
    let redirected = &event["delivery"]["attempts"][3];
    assert_eq!(redirected["http_status"], 302);
    assert!(
        redirected["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"),
        "{redirected}"
    );
    assert_eq!(minutes(next(&event) - app.clock.now()), 120);

    receiver.set_mode(Mode::Ok);
    app.deliver_after(TimeDelta::hours(2)).await;
    let event = app.wait_for_attempts(&event_id, 5).await;
    assert_eq!(event["delivery"]["status"], "delivered");
    assert_eq!(event["delivery"]["attempts"][4]["http_status"], 200);
    let acknowledged = receiver.wait_for_acknowledged(1, WAIT).await;
    assert_eq!(acknowledged[0].event_id.as_deref(), Some(event_id.as_str()));
    assert!(acknowledged[0].verified);
    // Every try carried the same event; the redirect was not followed (no request elsewhere).
    let tries = receiver.received();
    assert_eq!(tries.len(), 4, "the refused try never reached it");
    assert!(
        tries
            .iter()
            .all(|r| r.event_id.as_deref() == Some(&event_id))
    );

    // Every failed attempt left a log line naming the event, never a secret.
    let logs = captured_logs();
    let failures = logs
        .lines()
        .filter(|l| l.contains("webhook delivery attempt failed") && l.contains(&event_id))
        .count();
    assert_eq!(failures, 4);
    assert!(!logs.contains(WEBHOOK_SECRET));

    receiver.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn after_max_age_the_event_is_failed_and_redelivery_still_sends_it() {
    let mut receiver = Receiver::start(WEBHOOK_SECRET).await;
    receiver.set_mode(Mode::Status(503));
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks {
            max_age_s: 3_600,
            ..Webhooks::to(receiver.url())
        }),
        ..Options::default()
    })
    .await;
    let id = id_of(&app.create(FRICTIONLESS).await);
    let event_id = id_of(&event_of(&app, &id, "checkout.succeeded").await);
    app.wait_for_attempts(&event_id, 1).await;
    // 1 min, 5 min, 30 min: the next wait (2 h) would pass the hour, so the third retry is last.
    for (n, wait) in [(2, 1), (3, 5), (4, 30)] {
        app.deliver_after(TimeDelta::minutes(wait)).await;
        app.wait_for_attempts(&event_id, n).await;
    }
    let event = app.event(&event_id).await;
    assert_eq!(event["delivery"]["status"], "failed", "{event:#}");
    assert_eq!(event["delivery"]["next_attempt_at"], Value::Null);
    // Failed events are still listed.
    assert_eq!(
        event_of(&app, &id, "checkout.succeeded").await["id"],
        event_id.as_str()
    );

    receiver.set_mode(Mode::Ok);
    let res = app
        .authed(Method::POST, &format!("/v1/events/{event_id}/redeliver"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let queued: Value = res.json().await.unwrap();
    assert_eq!(queued["id"], event_id.as_str());
    let acknowledged = receiver.wait_for_acknowledged(1, WAIT).await;
    assert_eq!(acknowledged[0].event_id.as_deref(), Some(event_id.as_str()));
    let event = app.wait_for_attempts(&event_id, 5).await;
    assert_eq!(event["delivery"]["status"], "delivered");

    // A delivered event can be sent again too (a receiver that lost it).
    let res = app
        .authed(Method::POST, &format!("/v1/events/{event_id}/redeliver"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let acknowledged = receiver.wait_for_acknowledged(2, WAIT).await;
    assert!(
        acknowledged
            .iter()
            .all(|r| r.event_id.as_deref() == Some(&event_id))
    );

    receiver.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn two_instances_on_one_redis_deliver_each_event_once() {
    let mut receiver = Receiver::down(WEBHOOK_SECRET).await;
    let a = app_delivering_to(&receiver).await;
    let b = spawn_app_with(Options {
        webhooks: Some(Webhooks::to(receiver.url())),
        prefix: Some(a.prefix.clone()),
        ..Options::default()
    })
    .await;

    // Each instance makes some events while the receiver is down: every first attempt fails.
    const N: usize = 6;
    let mut events = Vec::new();
    for i in 0..N {
        let app = if i % 2 == 0 { &a } else { &b };
        let id = id_of(&app.create(FRICTIONLESS).await);
        events.push(id_of(&event_of(app, &id, "checkout.succeeded").await));
    }
    for e in &events {
        a.wait_for_attempts(e, 1).await;
    }

    // Both instances find every retry due at once and race for them.
    receiver.up().await;
    a.clock.advance(TimeDelta::minutes(1));
    b.clock.advance(TimeDelta::minutes(1));
    let (da, db) = tokio::join!(
        a.deliverer.as_ref().unwrap().pass(),
        b.deliverer.as_ref().unwrap().pass()
    );
    let (da, db) = (da.unwrap(), db.unwrap());
    assert!(da + db <= N, "{da} + {db} tries for {N} events");
    let got = receiver.wait_for_acknowledged(N, WAIT).await;
    for e in &events {
        let copies = got
            .iter()
            .filter(|r| r.event_id.as_deref() == Some(e))
            .count();
        assert_eq!(copies, 1, "event {e} was delivered {copies} times");
        let event = a.wait_for_attempts(e, 2).await;
        assert_eq!(event["delivery"]["status"], "delivered");
        assert_eq!(event["delivery"]["attempts"].as_array().unwrap().len(), 2);
    }

    receiver.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn an_event_whose_instance_was_killed_mid_delivery_is_delivered_by_a_restarted_one() {
    let mut receiver = Receiver::start(WEBHOOK_SECRET).await;
    // The receiver takes longer than the test: the first gateway is killed while it waits.
    receiver.set_mode(Mode::Slow(Duration::from_secs(120)));
    // The instance that delivers afterwards (in-process, on a clock the test moves), started
    // first so that the killed one can use its simulator.
    let after = app_delivering_to(&receiver).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut killed = crate::cli::gateway()
        .arg("serve")
        .env("RUST_LOG", "warn")
        .env("GATEWAY__SERVER__PORT", port.to_string())
        .env("GATEWAY__REDIS__URL", &after.redis_url)
        .env("GATEWAY__REDIS__KEY_PREFIX", &after.prefix)
        .env("GATEWAY__MULTISAFEPAY__BASE_URL", after.sim.api_url())
        .env("GATEWAY__MULTISAFEPAY__API_KEY", MSP_KEY)
        .env("GATEWAY__AUTH__API_KEYS", MERCHANT_KEY)
        .env("GATEWAY__CHECKOUT__RETURN_URL_HOSTS", "shop.example")
        .env("GATEWAY__RECONCILE__ENABLED", "false")
        .env("GATEWAY__WEBHOOKS__URL", receiver.url())
        .env("GATEWAY__WEBHOOKS__SECRETS", WEBHOOK_SECRET)
        .env("GATEWAY__WEBHOOKS__TIMEOUT_MS", "60000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let created = loop {
        let sent = after
            .client
            .post(format!("{base}/v1/checkouts"))
            .bearer_auth(MERCHANT_KEY)
            .json(&crate::common::checkout::CheckoutRequest::new(FRICTIONLESS).body())
            .send()
            .await;
        if let Ok(res) = sent {
            assert_eq!(res.status(), StatusCode::CREATED);
            break res.json::<Value>().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let id = id_of(&created);
    assert_eq!(created["status"], "succeeded");
    // Proof that the delivery is under way: the receiver holds it, unanswered.
    while receiver.received().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no delivery began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    killed.kill().unwrap(); // SIGKILL: nothing is finished or recorded
    killed.wait().unwrap();
    let killed_at = Utc::now();
    receiver.set_mode(Mode::Ok);

    let event_id = id_of(&event_of(&after, &id, "checkout.succeeded").await);
    assert_eq!(
        after.event(&event_id).await["delivery"]["status"],
        "pending"
    );
    // The dead instance's lease (timeout + 30 s) holds the event while it might still be in
    // flight: a pass finds the checkout's outbox but takes nothing...
    assert_eq!(after.deliver_after(TimeDelta::seconds(60)).await, 0);
    assert!(receiver.acknowledged().is_empty());
    // ...and once the lease has run out, the other instance takes the event over.
    let lease_over = killed_at + TimeDelta::seconds(91) - after.clock.now();
    assert_eq!(after.deliver_after(lease_over).await, 1);
    let got = receiver.wait_for_acknowledged(1, WAIT).await;
    assert_eq!(got[0].event_id.as_deref(), Some(event_id.as_str()));
    assert!(got[0].verified);
    let event = after.wait_for_attempts(&event_id, 1).await;
    assert_eq!(event["delivery"]["status"], "delivered");

    receiver.stop().await;
    after.stop().await;
}

#[tokio::test]
async fn an_endless_answer_body_holds_no_worker() {
    let mut receiver = Receiver::start(WEBHOOK_SECRET).await;
    receiver.set_mode(Mode::EndlessBody);
    let app = app_delivering_to(&receiver).await;
    let id = id_of(&app.create(FRICTIONLESS).await);
    let event_id = id_of(&event_of(&app, &id, "checkout.succeeded").await);
    let event = app.wait_for_attempts(&event_id, 1).await;
    // Delivered, not "no answer within …": an attempt that read the endless body would have run
    // into the 2 s timeout and been recorded as failed.
    assert_eq!(event["delivery"]["status"], "delivered");
    assert_eq!(event["delivery"]["attempts"][0]["error"], Value::Null);

    // The next event still goes out.
    receiver.set_mode(Mode::Ok);
    let second = id_of(&app.create(FRICTIONLESS).await);
    let second_event = id_of(&event_of(&app, &second, "checkout.succeeded").await);
    let event = app.wait_for_attempts(&second_event, 1).await;
    assert_eq!(event["delivery"]["status"], "delivered");

    receiver.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn refunds_make_events_and_a_full_refund_moves_the_checkout() {
    let mut receiver = Receiver::start(WEBHOOK_SECRET).await;
    let app = app_delivering_to(&receiver).await;
    let id = id_of(&app.create(FRICTIONLESS).await);
    let res = app
        .authed(Method::POST, &format!("/v1/checkouts/{id}/refunds"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let refund: Value = res.json().await.unwrap();
    let refund_id = id_of(&refund);
    // MSP settles the refund when its clock has moved a day.
    let res = app
        .client
        .put(format!("{}/sim/clock", app.sim.base_url()))
        .json(&json!({"advance_s": 24 * 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.wait_for_status(&id, "refunded", WAIT).await;

    let got = receiver.wait_for_acknowledged(4, WAIT).await;
    let mut types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "checkout.refunded",
            "checkout.succeeded",
            "refund.pending",
            "refund.succeeded"
        ]
    );
    let pending = got
        .iter()
        .map(Received::json)
        .find(|e| e["type"] == "refund.pending")
        .unwrap();
    assert_eq!(pending["previous_status"], Value::Null);
    assert_eq!(pending["data"]["object"]["id"], refund_id.as_str());
    assert_eq!(pending["data"]["object"]["status"], "pending");
    let refunded = got
        .iter()
        .map(Received::json)
        .find(|e| e["type"] == "checkout.refunded")
        .unwrap();
    assert_eq!(refunded["previous_status"], "succeeded");
    assert_eq!(refunded["data"]["object"]["amount_refunded"], 3495);
    assert!(got.iter().all(|r| r.verified));

    // Listed newest first: the refund's and checkout's settlement before the older two.
    let listed: Vec<String> = app
        .merchant_events(&id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[3], "checkout.succeeded");
    assert_eq!(listed[2], "refund.pending");

    receiver.stop().await;
    app.stop().await;
}

use crate::common::webhook::Received;

#[tokio::test]
async fn events_are_listed_newest_first_by_type_and_paged() {
    // No webhook URL: events are still kept for the API.
    let app = spawn_app().await;
    let mut checkouts = Vec::new();
    for _ in 0..3 {
        checkouts.push(id_of(&app.create(FRICTIONLESS).await));
        app.clock.advance(TimeDelta::seconds(1));
    }
    let page = |query: &'static str| {
        let app = &app;
        async move {
            let res = app
                .authed(Method::GET, &format!("/v1/events{query}"))
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (status, all) = page("?type=checkout.succeeded&limit=2").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let data = all["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(all["has_more"], true);
    assert_eq!(data[0]["data"]["object"]["id"], checkouts[2].as_str());
    assert_eq!(data[1]["data"]["object"]["id"], checkouts[1].as_str());
    // No delivery without a webhook URL.
    let one = app.event(data[0]["id"].as_str().unwrap()).await;
    assert_eq!(one["delivery"], Value::Null);

    let res = app
        .authed(
            Method::GET,
            &format!(
                "/v1/events?type=checkout.succeeded&limit=2&starting_after={}",
                data[1]["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    let rest: Value = res.json().await.unwrap();
    let rest_data = rest["data"].as_array().unwrap();
    assert_eq!(rest_data.len(), 1, "{rest}");
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest_data[0]["data"]["object"]["id"], checkouts[0].as_str());

    // Bad input names the parameter and changes nothing.
    for (query, param) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?type=checkout.nonsense", "type"),
        ("?checkout_id=chk_nope", "checkout_id"),
        ("?starting_after=evt_nope", "starting_after"),
        (
            "?starting_after=evt_0193a1b2c3d4e5f60718293a4b5c6d7e0000000301",
            "starting_after",
        ),
        ("?typ=checkout.succeeded", "typ"),
    ] {
        let (status, body) = page(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["param"], param, "{query}: {body}");
    }
    let res = app
        .authed(
            Method::GET,
            "/v1/events/evt_0193a1b2c3d4e5f60718293a4b5c6d7e0000000301",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .authed(
            Method::POST,
            &format!("/v1/events/{}/redeliver", data[0]["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhooks.url"),
        "{body}"
    );
    app.stop().await;
}

/// Pages run by the events' time, whatever their checkouts' age: a refund of an older checkout
/// is newer than a younger checkout's payment, and paging past it reaches that payment.
#[tokio::test]
async fn paging_past_an_older_checkouts_newer_event_reaches_the_rest() {
    let app = spawn_app().await;
    let older = id_of(&app.create(FRICTIONLESS).await);
    app.clock.advance(TimeDelta::seconds(1));
    let younger = id_of(&app.create(FRICTIONLESS).await);
    app.clock.advance(TimeDelta::seconds(1));
    let res = app
        .authed(Method::POST, &format!("/v1/checkouts/{older}/refunds"))
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("/v1/events?limit=1&starting_after={c}"),
            None => "/v1/events?limit=1".to_owned(),
        };
        let res = app.authed(Method::GET, &query).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 1);
        let Some(event) = data.first() else { break };
        seen.push((
            event["type"].as_str().unwrap().to_owned(),
            event["data"]["object"]["checkout_id"]
                .as_str()
                .or(event["data"]["object"]["id"].as_str())
                .unwrap()
                .to_owned(),
        ));
        cursor = Some(id_of(event));
        if page["has_more"] == false {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            ("refund.pending".to_owned(), older.clone()),
            ("checkout.succeeded".to_owned(), younger),
            ("checkout.succeeded".to_owned(), older),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn operators_see_deliveries_and_the_outbox_in_metrics() {
    let mut receiver = Receiver::down(WEBHOOK_SECRET).await;
    let app = app_delivering_to(&receiver).await;
    let id = id_of(&app.create(FRICTIONLESS).await);
    let event_id = id_of(&event_of(&app, &id, "checkout.succeeded").await);
    app.wait_for_attempts(&event_id, 1).await;
    let metrics = |app: &TestApp| {
        let url = app.url("/metrics");
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    // Overdue by ten minutes: the gauge says so.
    app.clock.advance(TimeDelta::minutes(11));
    receiver.up().await;
    receiver.set_mode(Mode::Status(500));
    app.deliver_after(TimeDelta::zero()).await;
    app.wait_for_attempts(&event_id, 2).await;
    let text = metrics(&app).await;
    assert!(
        text.contains("gateway_webhook_deliveries_total{outcome=\"retry\"}"),
        "{text}"
    );
    assert!(text.contains("gateway_webhook_outbox_depth"), "{text}");
    assert!(
        text.contains("gateway_webhook_outbox_overdue_seconds"),
        "{text}"
    );

    receiver.set_mode(Mode::Ok);
    app.deliver_after(TimeDelta::minutes(5)).await;
    app.wait_for_attempts(&event_id, 3).await;
    let text = metrics(&app).await;
    assert!(
        text.contains("gateway_webhook_deliveries_total{outcome=\"delivered\"}"),
        "{text}"
    );
    receiver.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn without_a_webhook_url_events_are_listed_and_redelivery_says_none_is_configured() {
    let app = spawn_app().await;
    let id = id_of(&app.create(FRICTIONLESS).await);
    let event_id = id_of(&event_of(&app, &id, "checkout.succeeded").await);

    let res = app
        .authed(Method::POST, &format!("/v1/events/{event_id}/redeliver"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "webhooks_not_configured", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhooks.url"),
        "{body}"
    );
    app.stop().await;
}
