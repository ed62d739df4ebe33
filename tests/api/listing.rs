//! `GET /v1/checkouts` as a storefront sees it: newest first, page by page both
//! ways with an exact `has_more`, the filters, the retention, and errors that name the parameter.

use chrono::{SecondsFormat, TimeDelta};
use gateway::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::checkout::CheckoutRequest;
use crate::helpers::{TestApp, spawn_app};

const FRICTIONLESS: &str = "374500000000015"; // succeeded at once
const CHALLENGED: &str = "4111111111111111"; // requires_action
const DECLINED: &str = "4242424242424242"; // failed at once

async fn list(app: &TestApp, query: &str) -> (Vec<String>, bool, Value) {
    let res = app
        .authed(Method::GET, &format!("/v1/checkouts{query}"))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let ids = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, body["has_more"].as_bool().unwrap(), body)
}

async fn create(app: &TestApp, card: &str, reference: &str) -> String {
    let res = app
        .post_checkout(&CheckoutRequest::new(card).reference(reference).body())
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// The gateway's clock, as a query parameter wants it.
fn now(app: &TestApp) -> String {
    app.clock.now().to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn strs(ids: &[&String]) -> Vec<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

#[tokio::test]
async fn checkouts_are_listed_newest_first_as_fetched_and_paged_both_ways() {
    let app = spawn_app().await;
    let mut c = Vec::new();
    for i in 0..5 {
        c.push(create(&app, FRICTIONLESS, &format!("order-{i}")).await);
        app.clock.advance(TimeDelta::minutes(1));
    }

    let (ids, more, body) = list(&app, "").await;
    assert_eq!(ids, strs(&[&c[4], &c[3], &c[2], &c[1], &c[0]]));
    assert!(!more);
    // Each checkout exactly as GET /v1/checkouts/{id} shows it.
    for shown in body["data"].as_array().unwrap() {
        let fetched = app.get_checkout(shown["id"].as_str().unwrap()).await;
        assert_eq!(*shown, fetched);
    }

    let (ids, more, _) = list(&app, "?limit=2").await;
    assert_eq!((ids, more), (strs(&[&c[4], &c[3]]), true));
    let (ids, more, _) = list(&app, &format!("?limit=2&starting_after={}", c[3])).await;
    assert_eq!((ids, more), (strs(&[&c[2], &c[1]]), true));
    let (ids, more, _) = list(&app, &format!("?limit=2&starting_after={}", c[1])).await;
    assert_eq!((ids, more), (strs(&[&c[0]]), false), "the last page");
    // Back again from the oldest: the page before it, newest first.
    let (ids, more, _) = list(&app, &format!("?limit=2&ending_before={}", c[0])).await;
    assert_eq!((ids, more), (strs(&[&c[2], &c[1]]), true));
    let (ids, more, _) = list(&app, &format!("?limit=2&ending_before={}", c[2])).await;
    assert_eq!(
        (ids, more),
        (strs(&[&c[4], &c[3]]), false),
        "the first page"
    );
    app.stop().await;
}

#[tokio::test]
async fn filters_find_one_shop_order_one_status_and_a_time_window() {
    let app = spawn_app().await;
    let paid = create(&app, FRICTIONLESS, "order-A").await;
    app.clock.advance(TimeDelta::minutes(1));
    let window_start = now(&app);
    let pending = create(&app, CHALLENGED, "order-A").await;
    app.clock.advance(TimeDelta::minutes(1));
    let window_end = now(&app);
    let declined = create(&app, DECLINED, "order B/é").await;

    let (ids, more, _) = list(&app, "?reference=order-A").await;
    assert_eq!((ids, more), (strs(&[&pending, &paid]), false));
    let (ids, _, _) = list(&app, "?reference=order%20B%2F%C3%A9").await;
    assert_eq!(ids, strs(&[&declined]), "any reference, URL-encoded");
    let (ids, _, _) = list(&app, "?reference=order-C").await;
    assert!(ids.is_empty());

    let (ids, _, _) = list(&app, "?status=succeeded").await;
    assert_eq!(ids, strs(&[&paid]));
    let (ids, _, _) = list(&app, "?status=failed").await;
    assert_eq!(ids, strs(&[&declined]));
    let (ids, _, _) = list(&app, "?status=requires_action&reference=order-A").await;
    assert_eq!(ids, strs(&[&pending]));

    let (ids, _, _) = list(
        &app,
        &format!("?created_gte={window_start}&created_lt={window_end}"),
    )
    .await;
    assert_eq!(
        ids,
        strs(&[&pending]),
        "created_gte inclusive, created_lt not"
    );

    // The shopper pays: the checkout now shows under its new status, and only there.
    let checkout = app.get_checkout(&pending).await;
    app.pay_with_challenge(&checkout, "Y").await;
    app.wait_for_status(&pending, "succeeded", std::time::Duration::from_secs(10))
        .await;
    let (ids, _, _) = list(&app, "?status=succeeded").await;
    assert_eq!(ids, strs(&[&pending, &paid]));
    let (ids, _, _) = list(&app, "?status=requires_action").await;
    assert!(ids.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn checkouts_older_than_the_retention_are_no_longer_listed() {
    let app = spawn_app().await; // checkout.retention_s: 30 days
    let old = create(&app, FRICTIONLESS, "order-1").await;
    app.clock.advance(TimeDelta::days(29));
    let recent = create(&app, FRICTIONLESS, "order-1").await;
    let (ids, _, _) = list(&app, "").await;
    assert_eq!(ids, strs(&[&recent, &old]));

    app.clock
        .advance(TimeDelta::days(1) + TimeDelta::minutes(1));
    let (ids, more, _) = list(&app, "").await;
    assert_eq!((ids, more), (strs(&[&recent]), false));
    let (ids, _, _) = list(&app, "?reference=order-1").await;
    assert_eq!(ids, strs(&[&recent]));
    app.stop().await;
}

#[tokio::test]
async fn bad_queries_are_400_naming_the_parameter_and_saying_what_to_send() {
    let app = spawn_app().await;
    let known = create(&app, FRICTIONLESS, "order-1").await;
    let unknown = "chk_0123456789abcdef0123456789abcdef";
    let cases: Vec<(String, &str, &str)> = vec![
        ("limit=0".into(), "limit", "from 1 to 100"),
        ("limit=101".into(), "limit", "from 1 to 100"),
        ("limit=ten".into(), "limit", "from 1 to 100"),
        ("lmit=5".into(), "lmit", "did you mean `limit`"),
        (
            "starting_after=chk_123".into(),
            "starting_after",
            "checkout id",
        ),
        (
            format!("starting_after={unknown}"),
            "starting_after",
            "No checkout",
        ),
        (
            format!("ending_before={unknown}"),
            "ending_before",
            "No checkout",
        ),
        (
            format!("starting_after={known}&ending_before={known}"),
            "ending_before",
            "not both",
        ),
        ("status=paid".into(), "status", "succeeded"),
        ("created_gte=yesterday".into(), "created_gte", "RFC 3339"),
        ("created_lt=2026-11-24".into(), "created_lt", "RFC 3339"),
        ("reference=".into(), "reference", "order reference"),
        ("limit=2&limit=3".into(), "limit", "twice"),
    ];
    for (query, param, says) in cases {
        let res = app
            .authed(Method::GET, &format!("/v1/checkouts?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = res.json().await.unwrap();
        let error = &body["error"];
        assert_eq!(error["type"], "invalid_request_error", "{query}: {body}");
        assert_eq!(error["param"], param, "{query}: {body}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
    app.stop().await;
}

#[tokio::test]
async fn listing_needs_the_merchant_key() {
    let app = spawn_app().await;
    create(&app, FRICTIONLESS, "order-1").await;
    let res = app.get(&app.url("/v1/checkouts")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(body.get("data").is_none());
    app.stop().await;
}
