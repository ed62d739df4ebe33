//! The sandbox's demo webhook endpoints: beside the shop (`webhooks.url`) it makes
//! an ERP endpoint (`checkout.*`) and a support desk (`refund.*`, `payment_method.*`), verifies what each gets by
//! its Standard Webhooks signature, and `/demo/webhooks` shows which destination got which
//! event, at a desktop's width and a phone's in headless Chromium.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::Sandbox;
use crate::common::browser::Browser;
use crate::demo::{screenshot_at, wait_for_text};

const WAIT: Duration = Duration::from_secs(30);

/// `(destination, event type)` of every delivery the page lists, newest first.
pub fn listed(html: &str) -> Vec<(String, String)> {
    html.split("<summary>")
        .skip(1)
        .map(|summary| {
            let pills: Vec<String> = summary
                .split("<span class=\"pill ")
                .skip(1)
                .take(2)
                .map(|p| {
                    let text = p.split_once('>').map_or("", |(_, t)| t);
                    text.split('<').next().unwrap_or_default().to_owned()
                })
                .collect();
            (pills[0].clone(), pills[1].clone())
        })
        .collect()
}

#[tokio::test]
async fn the_webhooks_page_shows_which_endpoint_got_which_event() {
    let sandbox = Sandbox::start(&[]);
    let client = crate::common::http_client();
    // The sandbox made its two endpoints.
    let endpoints: Value = client
        .get(format!("{}/v1/webhook_endpoints", sandbox.base))
        .bearer_auth(&sandbox.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoints = endpoints["data"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "{endpoints:?}");

    // A frictionless payment, then a refund of it.
    let body = crate::common::checkout::CheckoutRequest::new("374500000000015")
        .return_url(format!("{}/demo/result", sandbox.base))
        .without_cancel_url()
        .body();
    let created: Value = client
        .post(format!("{}/v1/checkouts", sandbox.base))
        .bearer_auth(&sandbox.key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["status"], "succeeded", "{created}");
    let id = created["id"].as_str().unwrap();
    let refund = client
        .post(format!("{}/v1/checkouts/{id}/refunds", sandbox.base))
        .bearer_auth(&sandbox.key)
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), 201);

    let page = || async {
        client
            .get(format!("{}/demo/webhooks", sandbox.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let has = |rows: &[(String, String)], to: &str, kind: &str| {
        rows.iter().any(|(d, k)| d == to && k == kind)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let rows = loop {
        let rows = listed(&page().await);
        if has(&rows, "ERP", "checkout.succeeded")
            && has(&rows, "Support desk", "refund.pending")
            && has(&rows, "Shop", "checkout.succeeded")
            && has(&rows, "Shop", "refund.pending")
        {
            break rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Each endpoint got only what its filter takes.
    for (to, kind) in &rows {
        match to.as_str() {
            "ERP" => assert!(kind.starts_with("checkout."), "{rows:?}"),
            "Support desk" => assert!(
                kind.starts_with("refund.") || kind.starts_with("payment_method."),
                "{rows:?}"
            ),
            "Shop" => {}
            other => panic!("an unknown destination {other}: {rows:?}"),
        }
    }

    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/demo/webhooks", sandbox.base))
        .await
        .unwrap();
    let text = wait_for_text(&browser, false, |t| t.contains("Support desk")).await;
    assert!(
        text.contains("Each event goes to every destination"),
        "{text}"
    );
    for width in [1280, 390] {
        screenshot_at(&browser, width, &format!("demo-webhooks-endpoints-{width}")).await;
    }
    browser.close().await;
}
