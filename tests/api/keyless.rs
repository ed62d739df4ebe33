//! The endpoints that need no key: `/return`, `/cancel` and `/pay` carry no secret,
//! so a visit must not hurt a checkout, cannot make the gateway call MSP at will, and is
//! rate-limited per client address; GET notifications share their MSP call and are never dropped.

use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// A well-formed checkout id nobody created.
const UNKNOWN: &str = "chk_0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn a_strangers_visit_to_return_leaves_the_pay_link_and_the_shopper_still_pays() {
    let app = spawn_app().await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();

    // Someone who learnt the id visits the return URL before the shopper has done 3-D Secure.
    let res = app.get(&app.url(&format!("/return/{id}"))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        query_value(&location(&res), "status").as_deref(),
        Some("requires_action")
    );
    assert_eq!(app.msp_status_calls(id).await, 1, "the visit asked MSP");
    assert_eq!(app.get_checkout(id).await["status"], "requires_action");

    // The shopper, a little later, still gets the challenge from the pay link and pays.
    app.clock.advance(TimeDelta::seconds(30));
    let shop = app.pay_with_challenge(&checkout, "Y").await;
    assert_eq!(query_value(&shop, "status").as_deref(), Some("succeeded"));
    assert_eq!(app.get_checkout(id).await["status"], "succeeded");
    app.stop().await;
}

#[tokio::test]
async fn hammering_return_costs_one_msp_call_every_few_seconds() {
    let app = spawn_app().await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap().to_owned();
    let url = app.url(&format!("/return/{id}"));

    let visits = (0..40).map(|_| {
        let (client, url) = (app.client.clone(), url.clone());
        async move { client.get(&url).send().await.unwrap().status() }
    });
    let answers = futures_util::future::join_all(visits).await;
    assert!(
        answers.iter().all(|s| *s == StatusCode::SEE_OTHER),
        "{answers:?}"
    );
    assert_eq!(
        app.msp_status_calls(&id).await,
        1,
        "40 concurrent visits, one call"
    );

    // More visits within a few seconds are answered from the store.
    for _ in 0..10 {
        assert_eq!(app.get(&url).await.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(app.msp_status_calls(&id).await, 1);

    // Seconds later a visit asks MSP again (the shopper may have finished meanwhile).
    app.clock.advance(TimeDelta::seconds(6));
    assert_eq!(app.get(&url).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.msp_status_calls(&id).await, 2);
    assert_eq!(app.get_checkout(&id).await["status"], "requires_action");
    app.stop().await;
}

#[tokio::test]
async fn browser_paths_over_the_per_address_limit_get_an_html_429_with_retry_after() {
    let app = spawn_app_with(Options {
        keyless_rate_limit_per_s: 1,
        ..Options::default()
    })
    .await;
    // A burst of twice the rate goes through...
    for path in ["/return/", "/cancel/"] {
        let res = app.get(&app.url(&format!("{path}{UNKNOWN}"))).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // ...then every browser path answers 429, as a page, with the browser headers.
    for path in [
        format!("/return/{UNKNOWN}"),
        format!("/cancel/{UNKNOWN}"),
        "/pay/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
    ] {
        let res = app.get(&app.url(&path)).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        let retry_after: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        assert!(
            res.headers().contains_key("content-security-policy"),
            "{path}"
        );
        let page = res.text().await.unwrap();
        assert!(page.contains("Wait a few seconds"), "{page}");
    }
    // A second later there is a token again.
    app.clock.advance(TimeDelta::seconds(1));
    let res = app.get(&app.url(&format!("/return/{UNKNOWN}"))).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn get_notification(app: &TestApp, id: &str) -> reqwest::Response {
    let url = app.url(&format!(
        "/notifications/multisafepay?transactionid={id}&timestamp=1"
    ));
    app.client.get(url).send().await.unwrap()
}

#[tokio::test]
async fn get_notifications_share_one_msp_call_and_over_the_limit_get_503_not_429() {
    let app = spawn_app_with(Options {
        keyless_rate_limit_per_s: 10,
        ..Options::default()
    })
    .await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap().to_owned();

    // A burst of 20 (the limit's burst) while MSP takes a second to answer: all acknowledged,
    // two MSP calls at most (the first one was already running when the others arrived, so it
    // would not do for them; the next one, started after they all arrived, does).
    app.set_faults(serde_json::json!({"latency_ms": 1000}))
        .await;
    let burst = (0..20).map(|_| get_notification(&app, &id));
    let answers = futures_util::future::join_all(burst).await;
    for res in answers {
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.text().await.unwrap(), "OK");
    }
    app.set_faults(serde_json::json!({"latency_ms": 0})).await;
    let calls = app.msp_status_calls(&id).await;
    assert!(
        (1..=2).contains(&calls),
        "{calls} MSP calls for 20 notifications"
    );

    // Over the address's limit: 503 with Retry-After, so that MSP sends it again; never 429.
    let res = get_notification(&app, &id).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    // A notification whose signature fails is refused for its rate with 429.
    let res = app
        .client
        .post(app.url(&format!(
            "/notifications/multisafepay?transactionid={id}&timestamp=1"
        )))
        .header("Auth", "bm90LWEtc2lnbmF0dXJl")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));

    // Once the address has tokens again, MSP's resend is processed.
    app.clock.advance(TimeDelta::seconds(1));
    let res = get_notification(&app, &id).await;
    assert_eq!(res.status(), StatusCode::OK);
    let _: Value = app.get_checkout(&id).await;
    app.stop().await;
}

#[tokio::test]
async fn browser_visits_and_notifications_from_one_address_have_budgets_of_their_own() {
    let app = spawn_app_with(Options {
        keyless_rate_limit_per_s: 1,
        ..Options::default()
    })
    .await;
    let url = app.url(&format!("/return/{UNKNOWN}"));
    let browser = || app.get(&url);
    // The browser's burst (twice the rate) is used up...
    for _ in 0..2 {
        assert_eq!(browser().await.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(browser().await.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...and notifications from the same address still go through, a burst of their own...
    for _ in 0..2 {
        let res = get_notification(&app, UNKNOWN).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.text().await.unwrap(), "OK");
    }
    // ...until theirs is used up too, which leaves the browser's as it was: both empty now.
    let res = get_notification(&app, UNKNOWN).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(browser().await.status(), StatusCode::TOO_MANY_REQUESTS);

    // A second later each has a token again; the notification's leaves the browser's alone.
    app.clock.advance(TimeDelta::seconds(1));
    assert_eq!(
        get_notification(&app, UNKNOWN).await.status(),
        StatusCode::OK
    );
    assert_eq!(browser().await.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}
