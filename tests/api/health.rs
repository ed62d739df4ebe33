//! Operators' endpoints (design §9).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn liveness_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let live = app.get(&app.url("/health/live")).await;
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.json::<Value>().await.unwrap()["status"], "ok");
    let trace = app
        .client
        .request(reqwest::Method::TRACE, app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(trace.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(trace.headers()["allow"], "GET");
    let ready = app.get(&app.url("/health/ready")).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["redis"]["status"], "ok");

    app.create("374500000000015").await;
    let metrics = app.get(&app.url("/metrics")).await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    for needle in [
        "gateway_http_requests_total{route=\"/v1/checkouts\",method=\"POST\",status=\"201\"}",
        "gateway_http_request_duration_seconds_bucket",
        "gateway_psp_requests_total{operation=\"create_order\"",
        "gateway_psp_request_duration_seconds_bucket",
        "gateway_transitions_total{from=\"created\",to=\"succeeded\"",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics");
    }
    app.stop().await;
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_request_id() {
    let app = spawn_app().await;
    let checkout = app.create("4242424242424242").await;
    let id = checkout["id"].as_str().unwrap();
    let logs = captured_logs();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| l.contains(id))
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let spans = line["spans"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let request_id = spans.iter().find_map(|s| s["request_id"].as_str());
        assert!(
            request_id.is_some_and(|r| r.len() >= 32),
            "no request id: {line}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn with_an_ops_port_health_and_metrics_are_served_there_only() {
    let app = spawn_app_with(Options {
        ops_port: Some(0),
        ..Options::default()
    })
    .await;
    let ops = app.ops_address.clone().expect("an ops listener");
    assert_ne!(ops, app.address);
    for path in ["/health/live", "/health/ready", "/metrics"] {
        let on_ops = app.get(&format!("{ops}{path}")).await;
        assert_eq!(on_ops.status(), StatusCode::OK, "{path} on the ops port");
        let public = app.get(&app.url(path)).await;
        assert_eq!(
            public.status(),
            StatusCode::NOT_FOUND,
            "{path} on the public port"
        );
    }
    // The ops listener serves nothing else: not the API, not the shopper's pages.
    for path in ["/v1/checkouts", "/pay/x"] {
        let res = app.get(&format!("{ops}{path}")).await;
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "{path} on the ops port"
        );
    }
    // And the public one still serves the API.
    app.create("374500000000015").await;
    app.stop().await;
}

#[tokio::test]
async fn readiness_names_the_failing_check_without_redis_error_text() {
    let redis = crate::common::redis_server::TestRedis::start();
    let app = spawn_app_with(Options {
        redis_url: Some(redis.url().to_owned()),
        ..Options::default()
    })
    .await;
    let ready = app.get(&app.url("/health/ready")).await;
    assert_eq!(ready.status(), StatusCode::OK);

    redis.stop();
    let res = app.get(&app.url("/health/ready")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["failing"], serde_json::json!(["redis"]), "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "error", "{body}");
    let error = body["checks"]["redis"]["error"].as_str().unwrap();
    assert!(error.starts_with("Redis did not answer"), "{body}");
    let text = body.to_string().to_lowercase();
    for raw in [
        "refused",
        "broken pipe",
        "os error",
        "io error",
        "connection",
        "127.0.0.1",
    ] {
        assert!(!text.contains(raw), "`{raw}` in {body}");
    }
    app.stop().await;
}
