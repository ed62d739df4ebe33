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
