//! Surviving what happens to the processes around the gateway (issue 8): Redis restarting under
//! busy and idle instances, and a gateway killed in the middle of a keyed request.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::checkout::CheckoutRequest;
use crate::common::redis_server::TestRedis;
use crate::helpers::*;

async fn keyed_create(app: &TestApp, key: &str) -> reqwest::Response {
    app.authed(reqwest::Method::POST, "/v1/checkouts")
        .header("Idempotency-Key", key)
        .json(&CheckoutRequest::new("4111111111111111").body())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn after_redis_restarts_busy_and_idle_instances_answer_their_next_requests() {
    let redis = TestRedis::start();
    let options = Options {
        redis_url: Some(redis.url().to_owned()),
        ..Options::default()
    };
    let busy = spawn_app_with(options.clone()).await;
    let idle = spawn_app_with(options).await;
    // Both have a working connection to the first Redis process.
    for app in [&busy, &idle] {
        assert_eq!(
            app.get(&app.url("/health/ready")).await.status(),
            StatusCode::OK
        );
        app.create("4111111111111111").await;
    }

    redis.stop();
    // The busy instance keeps being asked during the outage; the idle one is not.
    let res = busy
        .post_checkout(&CheckoutRequest::new("4111111111111111").body())
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    redis.restart();

    // The very next request of each succeeds: a keyed create (a claim script, an insert, a
    // compare-and-set), then a read and readiness.
    for (name, app) in [("idle", &idle), ("busy", &busy)] {
        let res = keyed_create(app, &format!("after-restart-{name}")).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{name} instance: {body}");
        let id = body["id"].as_str().unwrap();
        assert_eq!(app.get_checkout(id).await["status"], "requires_action");
        let ready = app.get(&app.url("/health/ready")).await;
        assert_eq!(ready.status(), StatusCode::OK, "{name} instance readiness");
    }
    busy.stop().await;
    idle.stop().await;
}
