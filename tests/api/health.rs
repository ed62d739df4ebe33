//! Operators' endpoints.

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

/// Sends `GET {path}` as written (no client-side normalising of dot segments or escapes, as a
/// URL library would do) and answers the status code and the body.
async fn raw_get(address: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    (status, answer)
}

/// The ops rule is decided on the path the router routes by (decoded, normalised), not on the
/// raw spelling: an escaped letter, either case of hex digit, a dot segment or a doubled slash
/// does not make `/metrics` or `/health/*` a public path.
#[tokio::test]
async fn with_an_ops_port_no_spelling_of_an_ops_path_answers_on_the_public_port() {
    let app = spawn_app_with(Options {
        ops_port: Some(0),
        ..Options::default()
    })
    .await;
    let ops = app.ops_address.clone().expect("an ops listener");
    let spellings = [
        ("/%6detrics", "gateway_"),
        ("/%6Detrics", "gateway_"),
        ("/%6D%65%74%72%69%63%73", "gateway_"),
        ("/%68ealth/ready", "\"redis\""),
        ("/health/%6Cive", "\"ok\""),
        ("/%68%65%61%6c%74%68/live", "\"ok\""),
        ("//metrics", ""),
        ("/health//live", ""),
        ("/v1/../metrics", ""),
        ("/v1/%2e%2e/metrics", ""),
        ("/v1/%2E%2E/%68ealth/live", ""),
        ("/./metrics", ""),
    ];
    for (path, body) in spellings {
        let (status, answer) = raw_get(&app.address, path).await;
        assert_eq!(status, 404, "{path} on the public port: {answer}");
        assert!(!answer.contains("gateway_http"), "{path}: {answer}");
        // On the ops port, a spelling the router takes for an ops route is that route.
        if !body.is_empty() {
            let (status, answer) = raw_get(&ops, path).await;
            assert_eq!(status, 200, "{path} on the ops port: {answer}");
            assert!(answer.contains(body), "{path} on the ops port: {answer}");
        }
    }
    // And the ops port serves nothing else, however it is spelt.
    for path in ["/v1/%63heckouts", "/%70ay/x", "/health/../v1/checkouts"] {
        let (status, answer) = raw_get(&ops, path).await;
        assert_eq!(status, 404, "{path} on the ops port: {answer}");
    }
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
