//! The shopper's browser: pay links, returns, security headers.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn assert_security_headers(res: &reqwest::Response, what: &str) {
    let h = res.headers();
    assert_eq!(h["cache-control"], "no-store", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
}

#[tokio::test]
async fn every_browser_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();
    let pay_url = &pay_link(&checkout);
    for (what, url) in [
        ("pay redirect", pay_url.to_owned()),
        ("unknown pay link", app.url("/pay/nope")),
        (
            "expired-looking pay link",
            app.url(&format!("/pay/{}", "A".repeat(43))),
        ),
        ("return", app.url(&format!("/return/{id}"))),
        ("cancel", app.url(&format!("/cancel/{id}"))),
        (
            "unknown return",
            app.url("/return/chk_0123456789abcdef0123456789abcdef"),
        ),
    ] {
        let res = app.get(&url).await;
        assert_security_headers(&res, what);
    }
    app.stop().await;
}

#[tokio::test]
async fn the_pay_link_is_unguessable_reusable_and_sends_finished_checkouts_back_to_the_shop() {
    let app = spawn_app().await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();
    let pay_url = pay_link(&checkout);
    let token = pay_url.rsplit('/').next().unwrap();
    assert!(
        !token.contains(&id[4..]),
        "the token is not the checkout id"
    );
    assert!(token.len() >= 22, "at least 128 bits");

    // Re-opening the link works while the shopper still has to act.
    // (Whoever reads the logs must not be able to open the shopper's pay link.)
    let first = location(&app.get(&pay_url).await);
    let second = location(&app.get(&pay_url).await);
    assert_eq!(first, second);

    assert!(
        !captured_logs().contains(token),
        "a pay token reached the logs"
    );
    let unknown = app.get(&app.url("/pay/unknown-token")).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(
        unknown.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let gone = app.get(&app.url(&format!("/pay/{}", "A".repeat(43)))).await;
    assert_eq!(gone.status(), StatusCode::GONE);

    app.answer_challenge(&first, "Y").await;
    app.wait_for_status(id, "succeeded", Duration::from_secs(10))
        .await;
    let res = app.get(&pay_url).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let shop = location(&res);
    assert!(shop.starts_with("https://shop.example/checkout/return"));
    assert_eq!(query_value(&shop, "status").as_deref(), Some("succeeded"));
    app.stop().await;
}

#[tokio::test]
async fn a_return_before_the_notification_syncs_with_msp() {
    let app = spawn_app().await;
    // Notifications are held back: only the browser return can tell the gateway.
    app.set_faults(json!({"drop_notifications": true})).await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();
    let shop = app.pay_with_challenge(&checkout, "Y").await;
    assert_eq!(query_value(&shop, "status").as_deref(), Some("succeeded"));
    let events = app.events(id).await;
    let last = events.last().unwrap();
    assert_eq!(last["to"], "succeeded");
    assert_eq!(last["source"], "browser_return");
    app.stop().await;
}

#[tokio::test]
async fn a_return_while_msp_is_unreachable_marks_processing_and_still_redirects() {
    let app = spawn_app_with(Options {
        timeout_ms: 1_000,
        ..Options::default()
    })
    .await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();
    // MSP stops answering in time before the shopper comes back.
    app.set_faults(json!({"latency_ms": 3000})).await;
    let res = app.get(&app.url(&format!("/return/{id}"))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let shop = location(&res);
    assert_eq!(query_value(&shop, "status").as_deref(), Some("processing"));
    assert_eq!(app.get_checkout(id).await["status"], "processing");
    let last = app.events(id).await.pop().unwrap();
    assert_eq!(last["source"], "browser_return");
    app.stop().await;
}

/// Near misses of the shopper's paths (a trailing slash, a missing token, another method) are
/// pages with the security headers, never the API's JSON.
#[tokio::test]
async fn near_misses_of_browser_paths_are_html_pages_with_the_security_headers() {
    let app = spawn_app().await;
    let checkout = app.create("4111111111111111").await;
    let pay_url = pay_link(&checkout);
    for (what, method, url, status) in [
        ("/pay", "GET", app.url("/pay"), StatusCode::NOT_FOUND),
        ("/pay/", "GET", app.url("/pay/"), StatusCode::NOT_FOUND),
        (
            "/pay/{token}/",
            "GET",
            format!("{pay_url}/"),
            StatusCode::NOT_FOUND,
        ),
        (
            "/return/",
            "GET",
            app.url("/return/"),
            StatusCode::NOT_FOUND,
        ),
        (
            "/cancel/",
            "GET",
            app.url("/cancel/"),
            StatusCode::NOT_FOUND,
        ),
        (
            "/return/a/b",
            "GET",
            app.url("/return/a/b"),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST /pay/{token}",
            "POST",
            pay_url.clone(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let res = app
            .client
            .request(method.parse().unwrap(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{what}");
        assert_security_headers(&res, what);
        let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{what}: {content_type}"
        );
        let page = res.text().await.unwrap();
        assert!(!page.trim_start().starts_with('{'), "{what}: {page}");
        assert!(page.contains("go back to the shop"), "{what}: {page}");
    }
    // The API's own misses stay JSON.
    let res = app.get(&app.url("/v1/nope")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["content-type"], "application/json");
    app.stop().await;
}
