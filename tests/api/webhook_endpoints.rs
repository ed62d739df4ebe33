//! Webhook endpoints the merchant manages: the API, delivery per endpoint (each its
//! own record, attempts and retries, verified by the `standardwebhooks` libraries), filters,
//! rotation, 410 and long failure disabling an endpoint, `Retry-After`, one stuck endpoint
//! beside a healthy one, two instances, redelivery, the address guard, metrics.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::webhook::{Mode, Receiver};
use crate::helpers::*;
use crate::standard_webhooks::{Lang, LibraryReceiver, python_verifies};

const WAIT: Duration = Duration::from_secs(30);
const FRICTIONLESS: &str = "374500000000015";

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn app() -> TestApp {
    spawn_app_with(Options::default()).await
}

impl TestApp {
    async fn post_endpoint(&self, body: Value) -> (StatusCode, Value) {
        let res = self
            .authed(Method::POST, "/v1/webhook_endpoints")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    async fn create_endpoint(&self, url: &str, events: &[&str]) -> Value {
        let (status, body) = self
            .post_endpoint(json!({"url": url, "events": events}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn endpoint_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.authed(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    /// The checkout's one event of type `kind`.
    async fn event_of(&self, checkout_id: &str, kind: &str) -> String {
        let events = self.merchant_events(checkout_id).await;
        id_of(
            events
                .iter()
                .find(|e| e["type"] == kind)
                .unwrap_or_else(|| panic!("no {kind} event")),
        )
    }

    /// Polls `GET /v1/events/{id}` until its delivery to `endpoint` has `n` attempts.
    async fn wait_for_endpoint_attempts(&self, event: &str, endpoint: &str, n: usize) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.event(event).await;
            let delivery = endpoint_delivery(&got, endpoint);
            let attempts = delivery
                .as_ref()
                .and_then(|d| d["attempts"].as_array().map(Vec::len))
                .unwrap_or(0);
            if attempts >= n {
                return delivery.unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{event} has {attempts} attempts at {endpoint}, expected {n}: {got:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn checkout_event(&self, kind: &str) -> String {
        let id = id_of(&self.create(FRICTIONLESS).await);
        self.event_of(&id, kind).await
    }
}

/// The event's delivery to `endpoint`, as `GET /v1/events/{id}` shows it.
fn endpoint_delivery(event: &Value, endpoint: &str) -> Option<Value> {
    event["deliveries"]
        .as_array()?
        .iter()
        .find(|d| d["endpoint"] == endpoint)
        .cloned()
}

fn types_received(receiver: &Receiver) -> Vec<String> {
    receiver
        .received()
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_endpoint_is_created_listed_read_changed_and_deleted_and_its_secret_is_shown_once() {
    let app = app().await;
    let made = app
        .create_endpoint(
            "https://127.0.0.1:9/hooks",
            &["checkout.*", "refund.succeeded"],
        )
        .await;
    let id = id_of(&made);
    assert!(id.starts_with("we_"), "{made}");
    let secret = made["secret"].as_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(made["events"], json!(["checkout.*", "refund.succeeded"]));
    assert_eq!(made["disabled"], false);
    assert_eq!(made["disabled_reason"], Value::Null);
    assert_eq!(made["url"], "https://127.0.0.1:9/hooks");

    let second = app.create_endpoint("https://127.0.0.1:9/erp", &["*"]).await;
    let (status, page) = app
        .endpoint_call(Method::GET, "/v1/webhook_endpoints?limit=1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["id"], second["id"], "newest first");
    assert_eq!(page["has_more"], true);
    let (_, rest) = app
        .endpoint_call(
            Method::GET,
            &format!(
                "/v1/webhook_endpoints?limit=1&starting_after={}",
                id_of(&second)
            ),
            None,
        )
        .await;
    assert_eq!(rest["data"][0]["id"], id.as_str());
    assert_eq!(rest["has_more"], false);
    let (_, got) = app
        .endpoint_call(Method::GET, &format!("/v1/webhook_endpoints/{id}"), None)
        .await;
    // The secret is never shown again.
    for shown in [&page, &rest, &got] {
        assert!(!shown.to_string().contains(secret), "{shown}");
    }
    assert_eq!(got["id"], id.as_str());

    let (status, changed) = app
        .endpoint_call(
            Method::PATCH,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(json!({"url": "https://127.0.0.1:9/v2", "events": ["*"], "description": "ERP", "disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["url"], "https://127.0.0.1:9/v2");
    assert_eq!(changed["events"], json!(["*"]));
    assert_eq!(changed["description"], "ERP");
    assert_eq!(changed["disabled"], true);
    assert_eq!(changed["disabled_reason"], "merchant");
    assert!(changed.get("secret").is_none());
    let (_, enabled) = app
        .endpoint_call(
            Method::PATCH,
            &format!("/v1/webhook_endpoints/{id}"),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(enabled["disabled"], false);
    assert_eq!(enabled["disabled_reason"], Value::Null);

    let (status, deleted) = app
        .endpoint_call(Method::DELETE, &format!("/v1/webhook_endpoints/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["id"], id.as_str());
    let (status, missing) = app
        .endpoint_call(Method::GET, &format!("/v1/webhook_endpoints/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    app.stop().await;
}

#[tokio::test]
async fn bad_endpoint_input_is_refused_naming_the_field_and_changes_nothing() {
    let app = spawn_app_with(Options {
        endpoint_guard: EndpointGuard {
            allow_private_networks: false,
            allow_http_hosts: vec![],
            resolver: None,
        },
        ..Options::default()
    })
    .await;
    let cases = [
        (
            json!({"url": "https://93.184.215.14/h", "events": ["checkout.*", "chekout.succeeded"]}),
            "events[1]",
        ),
        (
            json!({"url": "https://93.184.215.14/h", "events": ["payment.*"]}),
            "events[0]",
        ),
        (
            json!({"url": "https://93.184.215.14/h", "events": []}),
            "events",
        ),
        (json!({"url": "https://93.184.215.14/h"}), "events"),
        (json!({"events": ["*"]}), "url"),
        (json!({"url": "/hooks", "events": ["*"]}), "url"),
        (
            json!({"url": "https://user:pw@93.184.215.14/h", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "http://93.184.215.14/h", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "ftp://93.184.215.14/h", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "https://127.1/h", "events": ["*"]}), "url"),
        (
            json!({"url": "https://2130706433/h", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "https://0x7f.1/h", "events": ["*"]}), "url"),
        (
            json!({"url": "https://[::ffff:127.0.0.1]/h", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "https://localhost./h", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "https://10.0.0.7/h", "events": ["*"]}), "url"),
        (
            json!({"url": "https://169.254.169.254/h", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "https://100.64.1.1/h", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "https://[fe80::1]/h", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "https://0.0.0.0/h", "events": ["*"]}), "url"),
        (
            json!({"url": "https://does-not-resolve.invalid/h", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "https://93.184.215.14/h", "events": ["*"], "secret": "mine"}),
            "secret",
        ),
    ];
    for (body, param) in cases {
        let (status, answer) = app.post_endpoint(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["error"]["param"], param, "{body} → {answer}");
    }
    let (_, page) = app
        .endpoint_call(Method::GET, "/v1/webhook_endpoints", None)
        .await;
    assert_eq!(page["data"], json!([]), "nothing was made");
    // A public address is fine, and a PATCH is checked the same way.
    let made = app.create_endpoint("https://93.184.215.14/h", &["*"]).await;
    let (status, answer) = app
        .endpoint_call(
            Method::PATCH,
            &format!("/v1/webhook_endpoints/{}", id_of(&made)),
            Some(json!({"url": "https://127.0.0.1/h"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["param"], "url");
    let (_, got) = app
        .endpoint_call(
            Method::GET,
            &format!("/v1/webhook_endpoints/{}", id_of(&made)),
            None,
        )
        .await;
    assert_eq!(got["url"], "https://93.184.215.14/h");
    app.stop().await;
}

#[tokio::test]
async fn each_endpoint_gets_its_own_signed_delivery_that_its_library_verifies() {
    let app = app().await;
    // Two endpoints, each with its own secret, verified by the README's receivers.
    let python = app
        .create_endpoint("http://127.0.0.1:1/placeholder", &["checkout.*"])
        .await;
    let py_receiver =
        LibraryReceiver::start(Lang::Python, python["secret"].as_str().unwrap()).await;
    let (status, _) = app
        .endpoint_call(
            Method::PATCH,
            &format!("/v1/webhook_endpoints/{}", id_of(&python)),
            Some(json!({"url": py_receiver.url})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let node = app
        .create_endpoint("http://127.0.0.1:1/placeholder", &["*"])
        .await;
    let node_receiver = LibraryReceiver::start(Lang::Node, node["secret"].as_str().unwrap()).await;
    app.endpoint_call(
        Method::PATCH,
        &format!("/v1/webhook_endpoints/{}", id_of(&node)),
        Some(json!({"url": node_receiver.url})),
    )
    .await;

    let event = app.checkout_event("checkout.succeeded").await;
    py_receiver.wait_for_verified(&event).await;
    node_receiver.wait_for_verified(&event).await;
    let shown = app.event(&event).await;
    // No webhooks.url: its delivery is null; each endpoint has its own.
    assert_eq!(shown["delivery"], Value::Null, "{shown:#}");
    for endpoint in [&python, &node] {
        let d = app
            .wait_for_endpoint_attempts(&event, &id_of(endpoint), 1)
            .await;
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"][0]["http_status"], 204);
    }
    app.stop().await;
}

#[tokio::test]
async fn filters_choose_the_events_and_webhooks_url_keeps_getting_everything() {
    let url_receiver = Receiver::start(WEBHOOK_SECRET).await;
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks::to(url_receiver.url())),
        ..Options::default()
    })
    .await;
    let refunds = Receiver::start("unused").await;
    let checkouts = Receiver::start("unused").await;
    let everything = Receiver::start("unused").await;
    app.create_endpoint(&refunds.url(), &["refund.*"]).await;
    app.create_endpoint(&checkouts.url(), &["checkout.succeeded"])
        .await;
    app.create_endpoint(&everything.url(), &["*"]).await;

    let id = id_of(&app.create(FRICTIONLESS).await);
    checkouts.wait_for_acknowledged(1, WAIT).await;
    let res = app
        .authed(Method::POST, &format!("/v1/checkouts/{id}/refunds"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    refunds.wait_for_acknowledged(1, WAIT).await;
    // `everything` got both, and so did webhooks.url: both were fanned out with the others.
    everything.wait_for_acknowledged(2, WAIT).await;
    url_receiver.wait_for_acknowledged(2, WAIT).await;
    assert_eq!(types_received(&checkouts), ["checkout.succeeded"]);
    assert_eq!(types_received(&refunds), ["refund.pending"]);
    let mut all = types_received(&everything);
    all.sort();
    assert_eq!(all, ["checkout.succeeded", "refund.pending"]);
    app.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_for_24_hours() {
    let app = app().await;
    let receiver = Receiver::start("unused").await;
    let made = app.create_endpoint(&receiver.url(), &["checkout.*"]).await;
    let old = made["secret"].as_str().unwrap().to_owned();
    let (status, rotated) = app
        .endpoint_call(
            Method::POST,
            &format!("/v1/webhook_endpoints/{}/rotate_secret", id_of(&made)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    app.checkout_event("checkout.succeeded").await;
    let got = receiver.wait_for_acknowledged(1, WAIT).await;
    let first = &got[0];
    assert_eq!(
        first
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    let recorded = [(first.headers.clone(), first.body.clone())];
    assert_eq!(python_verifies(&old, &recorded).await, ["ok"]);
    assert_eq!(python_verifies(&new, &recorded).await, ["ok"]);

    // A day later only the new secret signs.
    app.clock
        .advance(TimeDelta::hours(24) + TimeDelta::seconds(1));
    app.checkout_event("checkout.succeeded").await;
    let got = receiver.wait_for_acknowledged(2, WAIT).await;
    let later = &got[1];
    let signature = later.header("webhook-signature").unwrap();
    assert_eq!(signature.split(' ').count(), 1, "{signature}");
    // (The libraries would refuse a timestamp a day ahead of the real clock: checked by hand.)
    let sign = |secret: &str| {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let signed = [
            format!(
                "{}.{}.",
                later.header("webhook-id").unwrap(),
                later.header("webhook-timestamp").unwrap()
            )
            .as_bytes(),
            &later.body[..],
        ]
        .concat();
        let mac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key),
            &signed,
        );
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac)
        )
    };
    assert_eq!(signature, sign(&new));
    assert_ne!(signature, sign(&old));
    app.stop().await;
}

/// An endpoint the merchant disables gets nothing, not even what was queued for it before, until
/// it is enabled again; the other endpoints go on.
#[tokio::test]
async fn an_endpoint_the_merchant_disables_gets_nothing_until_enabled() {
    let app = app().await;
    let paused = Receiver::start("unused").await;
    let other = Receiver::start("unused").await;
    let paused_id = id_of(&app.create_endpoint(&paused.url(), &["checkout.*"]).await);
    let other_id = id_of(&app.create_endpoint(&other.url(), &["checkout.*"]).await);
    let (status, changed) = app
        .endpoint_call(
            Method::PATCH,
            &format!("/v1/webhook_endpoints/{paused_id}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["disabled"], true);

    let while_disabled = app.checkout_event("checkout.succeeded").await;
    let d = app
        .wait_for_endpoint_attempts(&while_disabled, &other_id, 1)
        .await;
    assert_eq!(d["status"], "delivered");
    assert!(paused.received().is_empty());
    assert!(endpoint_delivery(&app.event(&while_disabled).await, &paused_id).is_none());

    app.endpoint_call(
        Method::PATCH,
        &format!("/v1/webhook_endpoints/{paused_id}"),
        Some(json!({"disabled": false})),
    )
    .await;
    let enabled = app.checkout_event("checkout.succeeded").await;
    let d = app
        .wait_for_endpoint_attempts(&enabled, &paused_id, 1)
        .await;
    assert_eq!(d["status"], "delivered");
    let got: Vec<_> = paused
        .received()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert!(!got.contains(&while_disabled), "{got:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_until_it_is_enabled_again() {
    let app = app().await;
    let gone = Receiver::start("unused").await;
    gone.set_mode(Mode::Status(410));
    let healthy = Receiver::start("unused").await;
    let gone_endpoint = app.create_endpoint(&gone.url(), &["checkout.*"]).await;
    let watcher = app.create_endpoint(&healthy.url(), &["*"]).await;
    let gone_id = id_of(&gone_endpoint);

    let first = app.checkout_event("checkout.succeeded").await;
    let d = app.wait_for_endpoint_attempts(&first, &gone_id, 1).await;
    assert_eq!(d["attempts"][0]["http_status"], 410);
    let (_, shown) = app
        .endpoint_call(
            Method::GET,
            &format!("/v1/webhook_endpoints/{gone_id}"),
            None,
        )
        .await;
    assert_eq!(shown["disabled"], true, "{shown}");
    assert_eq!(shown["disabled_reason"], "gone");
    // The other endpoint hears of it.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !types_received(&healthy).contains(&"webhook_endpoint.disabled".to_owned()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            types_received(&healthy)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let notice = healthy
        .received()
        .into_iter()
        .find(|r| r.json()["type"] == "webhook_endpoint.disabled")
        .unwrap()
        .json();
    assert_eq!(notice["data"]["object"]["id"], gone_id.as_str());
    assert_eq!(notice["data"]["object"]["disabled"], true);
    assert_eq!(notice["data"]["object"]["disabled_reason"], "gone");
    assert!(!notice.to_string().contains("whsec_"), "{notice}");
    // It is an event like the others.
    let shown = app.event(notice["id"].as_str().unwrap()).await;
    assert_eq!(shown["type"], "webhook_endpoint.disabled");
    assert_eq!(
        gone.received().len(),
        1,
        "not sent to the endpoint it is about"
    );

    // Disabled: the next event goes to the healthy endpoint only.
    let second = app.checkout_event("checkout.succeeded").await;
    app.wait_for_endpoint_attempts(&second, &id_of(&watcher), 1)
        .await;
    assert_eq!(gone.received().len(), 1);
    assert!(endpoint_delivery(&app.event(&second).await, &gone_id).is_none());
    // The first event's retry, due now, is given up, not sent: counted as `disabled`.
    app.deliver_after(TimeDelta::minutes(2)).await;
    assert!(endpoint_counted(&app, &gone_id, "disabled").await);
    assert_eq!(gone.received().len(), 1);

    // Enabled again, it gets the next one.
    gone.set_mode(Mode::Ok);
    app.endpoint_call(
        Method::PATCH,
        &format!("/v1/webhook_endpoints/{gone_id}"),
        Some(json!({"disabled": false})),
    )
    .await;
    let third = app.checkout_event("checkout.succeeded").await;
    let d = app.wait_for_endpoint_attempts(&third, &gone_id, 1).await;
    assert_eq!(d["status"], "delivered");
    app.stop().await;
}

#[tokio::test]
async fn an_endpoint_failing_for_max_age_without_a_success_is_disabled() {
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks {
            max_age_s: 3_600,
            ..Webhooks::to("http://127.0.0.1:9/unused".into())
        }),
        ..Options::default()
    })
    .await;
    let failing = Receiver::start("unused").await;
    failing.set_mode(Mode::Status(500));
    let endpoint = app.create_endpoint(&failing.url(), &["checkout.*"]).await;
    let id = id_of(&endpoint);
    let first = app.checkout_event("checkout.succeeded").await;
    app.wait_for_endpoint_attempts(&first, &id, 1).await;
    app.deliver_after(TimeDelta::minutes(30)).await;
    app.wait_for_endpoint_attempts(&first, &id, 2).await;
    let (_, shown) = app
        .endpoint_call(Method::GET, &format!("/v1/webhook_endpoints/{id}"), None)
        .await;
    assert_eq!(shown["disabled"], false, "not yet: {shown}");
    // An hour of failures without a success: the next failure disables it.
    app.clock.advance(TimeDelta::minutes(31));
    let second = app.checkout_event("checkout.succeeded").await;
    app.wait_for_endpoint_attempts(&second, &id, 1).await;
    let (_, shown) = app
        .endpoint_call(Method::GET, &format!("/v1/webhook_endpoints/{id}"), None)
        .await;
    assert_eq!(shown["disabled"], true, "{shown}");
    assert_eq!(shown["disabled_reason"], "failing");
    app.stop().await;
}

#[tokio::test]
async fn retry_after_on_429_and_503_is_honoured() {
    let app = app().await;
    let receiver = Receiver::start("unused").await;
    receiver.set_mode(Mode::RetryAfter(503, 900));
    let endpoint = app.create_endpoint(&receiver.url(), &["checkout.*"]).await;
    let id = id_of(&endpoint);
    let event = app.checkout_event("checkout.succeeded").await;
    let d = app.wait_for_endpoint_attempts(&event, &id, 1).await;
    let next = |d: &Value| {
        chrono::DateTime::parse_from_rfc3339(d["next_attempt_at"].as_str().unwrap()).unwrap()
    };
    let at =
        chrono::DateTime::parse_from_rfc3339(d["attempts"][0]["at"].as_str().unwrap()).unwrap();
    assert_eq!((next(&d) - at).num_seconds(), 900, "{d}");
    // Not before: the schedule's minute passes with no attempt.
    assert_eq!(app.deliver_after(TimeDelta::minutes(2)).await, 0);
    receiver.set_mode(Mode::RetryAfter(429, 60));
    app.deliver_after(TimeDelta::minutes(13)).await;
    let d = app.wait_for_endpoint_attempts(&event, &id, 2).await;
    assert_eq!(d["attempts"][1]["http_status"], 429);
    // A shorter Retry-After than the schedule's next wait (5 min) keeps the schedule.
    let at =
        chrono::DateTime::parse_from_rfc3339(d["attempts"][1]["at"].as_str().unwrap()).unwrap();
    assert_eq!((next(&d) - at).num_minutes(), 5, "{d}");
    // A longer one on a 429 than the schedule's next wait (30 min) holds the retry back as long
    // as it asks.
    receiver.set_mode(Mode::RetryAfter(429, 3_600));
    app.deliver_after(TimeDelta::minutes(6)).await;
    let d = app.wait_for_endpoint_attempts(&event, &id, 3).await;
    let at =
        chrono::DateTime::parse_from_rfc3339(d["attempts"][2]["at"].as_str().unwrap()).unwrap();
    assert_eq!((next(&d) - at).num_seconds(), 3_600, "{d}");

    // Each attempt was the same event, signed afresh at its own time.
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    let ids: Vec<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|i| *i == Some(event.as_str())), "{ids:?}");
    let stamps: Vec<i64> = got
        .iter()
        .map(|r| r.header("webhook-timestamp").unwrap().parse().unwrap())
        .collect();
    assert!(stamps[0] < stamps[1] && stamps[1] < stamps[2], "{stamps:?}");
    assert_ne!(
        got[0].header("webhook-signature"),
        got[1].header("webhook-signature")
    );
    assert!(endpoint_counted(&app, &id, "retry").await);
    app.stop().await;
}

/// Whether `/metrics` counts a delivery to endpoint `id` with `outcome` (waiting for it, as a
/// delivery is counted just after its receiver answered).
async fn endpoint_counted(app: &TestApp, id: &str, outcome: &str) -> bool {
    let wanted = [
        format!("endpoint=\"{id}\""),
        format!("outcome=\"{outcome}\""),
    ];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = app.get(&app.url("/metrics")).await.text().await.unwrap();
        let found = metrics.lines().any(|l| {
            l.starts_with("gateway_webhook_endpoint_deliveries_total{")
                && wanted.iter().all(|w| l.contains(w.as_str()))
                && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) > Some(0.0)
        });
        if found || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gateway whose attempts time out after `timeout_ms`, with two endpoints for every event: one
/// whose receiver never answers, and a healthy one.
async fn stuck_and_healthy(timeout_ms: u64) -> (TestApp, Receiver, Receiver) {
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks {
            timeout_ms,
            ..Webhooks::to("http://127.0.0.1:9/unused".into())
        }),
        ..Options::default()
    })
    .await;
    let stuck = Receiver::start("unused").await;
    stuck.set_mode(Mode::Slow(Duration::from_secs(600)));
    let healthy = Receiver::start("unused").await;
    app.create_endpoint(&stuck.url(), &["*"]).await;
    app.create_endpoint(&healthy.url(), &["*"]).await;
    (app, stuck, healthy)
}

#[tokio::test]
async fn a_stuck_endpoint_costs_only_its_own_timeouts() {
    let (app, stuck, healthy) = stuck_and_healthy(10_000).await;
    // More events than the stuck receiver has attempts in flight: the healthy one gets each
    // at once, long before the stuck one's first timeout (10 s) is over.
    const N: usize = gateway::webhooks::PER_DESTINATION * 2;
    for _ in 0..N {
        app.create(FRICTIONLESS).await;
    }
    healthy
        .wait_for_acknowledged(N, Duration::from_secs(8))
        .await;
    assert!(stuck.acknowledged().is_empty());
    app.stop().await;
}

/// The same, on one checkout: while its attempts to the stuck endpoint hang, the checkout's
/// next events (refunds, each with its own events) still reach the healthy endpoint at once.
#[tokio::test]
async fn a_stuck_endpoint_does_not_hold_up_a_healthy_one_on_the_same_checkout() {
    let (app, stuck, healthy) = stuck_and_healthy(20_000).await;
    let id = id_of(&app.create(FRICTIONLESS).await);
    healthy
        .wait_for_acknowledged(1, Duration::from_secs(5))
        .await;
    // Six refunds, one after the other, while the stuck endpoint holds the first attempts.
    for _ in 0..6 {
        let res = app
            .authed(Method::POST, &format!("/v1/checkouts/{id}/refunds"))
            .json(&json!({"amount": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    // Each refund's event at the healthy endpoint long before the stuck one's first timeout.
    let got = healthy
        .wait_for_acknowledged(7, Duration::from_secs(10))
        .await;
    let refunds = got
        .iter()
        .filter(|r| {
            r.json()["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("refund."))
        })
        .count();
    assert!(refunds >= 6, "{refunds} refund events");
    assert!(stuck.acknowledged().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn two_instances_deliver_each_event_once_per_endpoint() {
    let a = app().await;
    let b = spawn_app_with(Options {
        prefix: Some(a.prefix.clone()),
        ..Options::default()
    })
    .await;
    let mut first = Receiver::down("unused").await;
    let mut second = Receiver::down("unused").await;
    let e1 = a.create_endpoint(&first.url(), &["*"]).await;
    let e2 = b.create_endpoint(&second.url(), &["checkout.*"]).await;
    const N: usize = 6;
    let mut events = Vec::new();
    for i in 0..N {
        let app = if i % 2 == 0 { &a } else { &b };
        events.push(app.checkout_event("checkout.succeeded").await);
    }
    for e in &events {
        a.wait_for_endpoint_attempts(e, &id_of(&e1), 1).await;
        a.wait_for_endpoint_attempts(e, &id_of(&e2), 1).await;
    }
    first.up().await;
    second.up().await;
    a.clock.advance(TimeDelta::minutes(1));
    b.clock.advance(TimeDelta::minutes(1));
    let (da, db) = tokio::join!(
        a.deliverer.as_ref().unwrap().pass(),
        b.deliverer.as_ref().unwrap().pass()
    );
    assert!(da.unwrap() + db.unwrap() <= 2 * N);
    for receiver in [&first, &second] {
        let got = receiver.wait_for_acknowledged(N, WAIT).await;
        for e in &events {
            let copies = got
                .iter()
                .filter(|r| r.header("webhook-id") == Some(e.as_str()))
                .count();
            assert_eq!(copies, 1, "{e} arrived {copies} times");
        }
    }
    first.stop().await;
    second.stop().await;
    a.stop().await;
    b.stop().await;
}

/// An endpoint made on one instance is not seen by another for up to 10 s (its cached "no
/// endpoints"): the events that other instance makes meanwhile are queued for the endpoint once
/// it looks again (its deliverer asks every second of its clock while such events wait, with no
/// further traffic); what it made before the endpoint existed is not.
#[tokio::test]
async fn events_made_elsewhere_before_an_instance_sees_a_new_endpoint_still_reach_it() {
    let a = app().await;
    let b = spawn_app_with(Options {
        prefix: Some(a.prefix.clone()),
        ..Options::default()
    })
    .await;
    // b looks and sees no endpoint: it caches that answer.
    let before = b.checkout_event("checkout.succeeded").await;
    // Longer than the clock skew allowed between instances.
    a.clock.advance(TimeDelta::seconds(3));
    b.clock.advance(TimeDelta::seconds(3));
    let mut receiver = Receiver::start("unused").await;
    let endpoint = a.create_endpoint(&receiver.url(), &["checkout.*"]).await;
    // Made on b after the endpoint, while b still believes there is none (b's answer is 3 s
    // old): not queued when made, then caught up.
    let after = b.checkout_event("checkout.succeeded").await;
    let delivery = b
        .wait_for_endpoint_attempts(&after, &id_of(&endpoint), 1)
        .await;
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    let got = receiver.wait_for_acknowledged(1, WAIT).await;
    let ids: Vec<_> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert!(ids.contains(&after.as_str()), "{ids:?}");
    // Every event of b's second checkout arrived (it has them all queued now); the first
    // checkout's, made before the endpoint, did not.
    assert!(!ids.contains(&before.as_str()), "{ids:?}");
    assert!(
        endpoint_delivery(&b.event(&before).await, &id_of(&endpoint)).is_none(),
        "an event older than the endpoint is not queued for it"
    );
    receiver.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn redelivery_goes_to_every_endpoint_or_to_the_one_named() {
    let app = app().await;
    let one = Receiver::start("unused").await;
    let two = Receiver::start("unused").await;
    let e1 = app.create_endpoint(&one.url(), &["*"]).await;
    let e2 = app.create_endpoint(&two.url(), &["*"]).await;
    let event = app.checkout_event("checkout.succeeded").await;
    one.wait_for_acknowledged(1, WAIT).await;
    two.wait_for_acknowledged(1, WAIT).await;

    let (status, answer) = app
        .endpoint_call(
            Method::POST,
            &format!("/v1/events/{event}/redeliver?endpoint={}", id_of(&e2)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    two.wait_for_acknowledged(2, WAIT).await;
    let (status, _) = app
        .endpoint_call(Method::POST, &format!("/v1/events/{event}/redeliver"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    one.wait_for_acknowledged(2, WAIT).await;
    two.wait_for_acknowledged(3, WAIT).await;
    assert_eq!(one.received().len(), 2);
    for r in one.received().iter().chain(two.received().iter()) {
        assert_eq!(r.header("webhook-id"), Some(event.as_str()));
    }
    let d = app.wait_for_endpoint_attempts(&event, &id_of(&e1), 2).await;
    assert_eq!(d["status"], "delivered");
    let (status, answer) = app
        .endpoint_call(
            Method::POST,
            &format!("/v1/events/{event}/redeliver?endpoint=we_00000000000000000000000000000000"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"]["param"], "endpoint");
    app.stop().await;
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_only_at_delivery_gets_nothing() {
    let resolver = Arc::new(gateway::webhooks::address::FixedResolver::default());
    let app = spawn_app_with(Options {
        endpoint_guard: EndpointGuard {
            allow_private_networks: false,
            allow_http_hosts: vec!["shop.test".into()],
            resolver: Some(resolver.clone()),
        },
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start("unused").await;
    let port = receiver
        .url()
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // Public when the endpoint is made…
    resolver.set("shop.test", vec!["93.184.215.14".parse().unwrap()]);
    let endpoint = app
        .create_endpoint(&format!("http://shop.test:{port}/webhooks"), &["*"])
        .await;
    // …loopback (where the receiver listens) when the event goes out.
    resolver.set("shop.test", vec!["127.0.0.1".parse().unwrap()]);
    let event = app.checkout_event("checkout.succeeded").await;
    let d = app
        .wait_for_endpoint_attempts(&event, &id_of(&endpoint), 1)
        .await;
    assert_eq!(d["status"], "pending");
    let error = d["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("127.0.0.1"), "{error}");
    assert!(receiver.received().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_deliveries_per_endpoint_by_id_never_by_url() {
    let app = app().await;
    let receiver = Receiver::start("unused").await;
    let url = format!("{}?token=s3cr3t-in-the-url", receiver.url());
    let endpoint = app.create_endpoint(&url, &["*"]).await;
    app.checkout_event("checkout.succeeded").await;
    receiver.wait_for_acknowledged(1, WAIT).await;
    let id = id_of(&endpoint);
    let counted = |metrics: &str| {
        metrics.contains(&format!(
            "gateway_webhook_endpoint_deliveries_total{{endpoint=\"{id}\",outcome=\"delivered\"}}"
        )) || metrics.contains(&format!(
            "gateway_webhook_endpoint_deliveries_total{{outcome=\"delivered\",endpoint=\"{id}\"}}"
        ))
    };
    // The delivery is counted once its answer is read, just after the receiver sent it.
    let deadline = tokio::time::Instant::now() + WAIT;
    let metrics = loop {
        let metrics = app.get(&app.url("/metrics")).await.text().await.unwrap();
        if counted(&metrics) || tokio::time::Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(counted(&metrics), "{metrics}");
    assert!(
        metrics.lines().any(
            |l| l.starts_with("gateway_webhook_delivery_duration_seconds")
                && l.contains(&format!("endpoint=\"{id}\""))
        ),
        "the latency by endpoint: {metrics}"
    );
    assert!(!metrics.contains("s3cr3t"));
    assert!(!captured_logs().contains("s3cr3t"));
    assert!(!captured_logs().contains(endpoint["secret"].as_str().unwrap()));
    app.stop().await;
}

#[tokio::test]
async fn a_redirect_is_never_followed() {
    let app = app().await;
    let receiver = Receiver::start("unused").await;
    receiver.set_mode(Mode::Redirect);
    let endpoint = app.create_endpoint(&receiver.url(), &["*"]).await;
    let event = app.checkout_event("checkout.succeeded").await;
    let d = app
        .wait_for_endpoint_attempts(&event, &id_of(&endpoint), 1)
        .await;
    assert_eq!(d["status"], "pending", "{d}");
    assert_eq!(d["attempts"][0]["http_status"], 302);
    assert!(
        d["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed")
    );
    // One request, to the endpoint's own path: the Location was not visited.
    assert_eq!(receiver.received().len(), 1);
    app.stop().await;
}
