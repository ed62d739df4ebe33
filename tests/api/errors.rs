//! Every row of the error table, in the error body's shape.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::checkout::CheckoutRequest;
use crate::common::redis_server::TestRedis;
use crate::helpers::*;

/// Asserts the design's error body and returns it.
async fn error_of(res: reqwest::Response, status: StatusCode, kind: &str) -> Value {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["type"], kind, "{body}");
    assert!(
        error["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{body}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| m.len() > 10),
        "{body}"
    );
    assert!(
        error.get("param").is_some(),
        "param is always present: {body}"
    );
    body
}

#[tokio::test]
async fn malformed_json_and_invalid_fields_are_400_naming_the_param() {
    let app = spawn_app().await;
    let res = app
        .authed(reqwest::Method::POST, "/v1/checkouts")
        .header("content-type", "application/json")
        .body("{\"currency\": ")
        .send()
        .await
        .unwrap();
    error_of(res, StatusCode::BAD_REQUEST, "invalid_request_error").await;

    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "card.number",
            Box::new(|b| b["card"]["number"] = json!("4111111111111112")),
            "invalid_card_number",
        ),
        (
            "card.cvc",
            Box::new(|b| b["card"]["cvc"] = json!("12")),
            "invalid_cvc",
        ),
        (
            "currency",
            Box::new(|b| b["currency"] = json!("EURO")),
            "invalid_currency",
        ),
        (
            "amount",
            Box::new(|b| b["amount"] = json!(3494)),
            "amount_mismatch",
        ),
        (
            "customer.email",
            Box::new(|b| b["customer"]["email"] = json!("not-an-email")),
            "invalid_email",
        ),
        (
            "return_url",
            Box::new(|b| b["return_url"] = json!("https://evil.example/x")),
            "url_host_not_allowed",
        ),
        (
            "items",
            Box::new(|b| {
                b.as_object_mut()
                    .unwrap()
                    .remove("items")
                    .map(|_| ())
                    .unwrap()
            }),
            "parameter_missing",
        ),
    ];
    for (param, mutate, code) in cases {
        let mut body = CheckoutRequest::new("4111111111111111").body();
        mutate(&mut body);
        let res = app.post_checkout(&body).await;
        let err = error_of(res, StatusCode::BAD_REQUEST, "invalid_request_error").await;
        assert_eq!(err["error"]["param"], param, "{err}");
        assert_eq!(err["error"]["code"], code, "{err}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_unknown_key_is_401() {
    let app = spawn_app().await;
    let body = CheckoutRequest::new("4111111111111111").body();
    let res = app
        .client
        .post(app.url("/v1/checkouts"))
        .json(&body)
        .send()
        .await
        .unwrap();
    error_of(res, StatusCode::UNAUTHORIZED, "authentication_error").await;
    let res = app
        .client
        .post(app.url("/v1/checkouts"))
        .bearer_auth("not-a-key-0123456789")
        .json(&body)
        .send()
        .await
        .unwrap();
    error_of(res, StatusCode::UNAUTHORIZED, "authentication_error").await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_checkouts_routes_and_methods_are_404_and_405_in_the_same_shape() {
    let app = spawn_app().await;
    for id in ["chk_0123456789abcdef0123456789abcdef", "chk_nope", "42"] {
        for path in [
            format!("/v1/checkouts/{id}"),
            format!("/v1/checkouts/{id}/events"),
        ] {
            let res = app
                .authed(reqwest::Method::GET, &path)
                .send()
                .await
                .unwrap();
            error_of(res, StatusCode::NOT_FOUND, "invalid_request_error").await;
        }
    }
    let res = app
        .authed(reqwest::Method::GET, "/v1/nothing")
        .send()
        .await
        .unwrap();
    error_of(res, StatusCode::NOT_FOUND, "invalid_request_error").await;
    let res = app
        .authed(reqwest::Method::DELETE, "/v1/checkouts")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["allow"],
        "GET, POST",
        "RFC 9110: a 405 lists the allowed methods"
    );
    error_of(res, StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error").await;
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(Options {
        body_limit_bytes: 4_096,
        ..Options::default()
    })
    .await;
    let body = CheckoutRequest::new("4111111111111111")
        .description("x".repeat(5_000))
        .body();
    let res = app.post_checkout(&body).await;
    error_of(res, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error").await;
    app.stop().await;
}

#[tokio::test]
async fn too_many_requests_are_429_with_retry_after() {
    let app = spawn_app_with(Options {
        rate_limit_per_s: 1,
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = app
            .authed(
                reqwest::Method::GET,
                "/v1/checkouts/chk_0123456789abcdef0123456789abcdef",
            )
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.headers().contains_key("retry-after"));
            error_of(res, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error").await;
            statuses.push(429);
        } else {
            statuses.push(res.status().as_u16());
        }
    }
    assert_eq!(
        statuses,
        [404, 404, 429, 429],
        "a burst of two, then refused"
    );
    app.stop().await;
}

#[tokio::test]
async fn msp_refusing_the_order_for_a_non_card_reason_is_502_naming_msps_code() {
    // The wrong site key: MSP answers 1032.
    let msp = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"success": false, "data": {}, "error_code": 1032, "error_info": "Invalid API key"})))
        .expect(1)
        .mount(&msp)
        .await;
    let app = spawn_app_with(Options {
        msp_base_url: Some(msp.uri()),
        ..Options::default()
    })
    .await;
    let res = app
        .post_checkout(&CheckoutRequest::new("4111111111111111").body())
        .await;
    let err = error_of(res, StatusCode::BAD_GATEWAY, "psp_error").await;
    assert!(
        err["error"]["message"].as_str().unwrap().contains("1032"),
        "{err}"
    );
    app.stop().await;
}

#[tokio::test]
async fn msp_unreachable_is_201_processing_never_failed() {
    // Nothing listens there: connection refused.
    let app = spawn_app_with(Options {
        msp_base_url: Some("http://127.0.0.1:9/v1/json".into()),
        ..Options::default()
    })
    .await;
    let checkout = app.create("4111111111111111").await;
    assert_eq!(checkout["status"], "processing");
    assert!(checkout["next_action"].is_null());
    app.stop().await;

    // A slow MSP: the call times out.
    let msp = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&msp)
        .await;
    let app = spawn_app_with(Options {
        msp_base_url: Some(msp.uri()),
        timeout_ms: 300,
        ..Options::default()
    })
    .await;
    assert_eq!(app.create("4111111111111111").await["status"], "processing");
    app.stop().await;
}

#[tokio::test]
async fn redis_down_is_503_with_retry_after_and_nothing_sent_to_msp() {
    let redis = TestRedis::start();
    let msp = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&msp)
        .await;
    let app = spawn_app_with(Options {
        msp_base_url: Some(msp.uri()),
        redis_url: Some(redis.url().to_owned()),
        ..Options::default()
    })
    .await;
    redis.stop();
    let res = app
        .post_checkout(&CheckoutRequest::new("4111111111111111").body())
        .await;
    assert!(res.headers().contains_key("retry-after"));
    error_of(res, StatusCode::SERVICE_UNAVAILABLE, "api_error").await;
    let ready = app.get(&app.url("/health/ready")).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key("retry-after"));
    let metrics = app.get(&app.url("/metrics")).await.text().await.unwrap();
    // On a single node the create flow's writes before MSP (listing entries, record,
    // reconciler index) are one script.
    assert!(
        metrics.contains("gateway_store_errors_total{operation=\"insert_new\"}"),
        "Redis errors are counted"
    );
    redis.restart();
    app.stop().await;
    msp.verify().await;
}

#[tokio::test]
async fn idempotency_replays_refuses_a_changed_body_and_409s_while_in_flight() {
    let app = spawn_app().await;
    let body = CheckoutRequest::new("4111111111111111").body();
    let send = |key: &'static str, body: Value| {
        let client = app.client.clone();
        let url = app.url("/v1/checkouts");
        async move {
            client
                .post(url)
                .bearer_auth(MERCHANT_KEY)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send("key-1", body.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = send("key-1", body.clone()).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"], "a replay, not a second checkout");

    // The same JSON with other whitespace and key order is the same request.
    let reordered = {
        let mut fields: Vec<(String, Value)> =
            body.as_object().unwrap().clone().into_iter().collect();
        fields.reverse();
        let text = fields
            .iter()
            .map(|(k, v)| format!("{k:?} : {v}"))
            .collect::<Vec<_>>()
            .join(",\n  ");
        format!("{{\n  {text}\n}}")
    };
    let res = app
        .authed(reqwest::Method::POST, "/v1/checkouts")
        .header("Idempotency-Key", "key-1")
        .header("content-type", "application/json")
        .body(reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["idempotent-replayed"], "true");

    let other = CheckoutRequest::new("4111111111111111")
        .reference("order-1002")
        .body();
    let res = send("key-1", other).await;
    error_of(res, StatusCode::BAD_REQUEST, "idempotency_error").await;

    // In flight: make MSP slow, send twice at once.
    app.set_faults(json!({"latency_ms": 1500})).await;
    let (a, b) = tokio::join!(send("key-2", body.clone()), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send("key-2", body.clone()).await
    });
    assert_eq!(a.status(), StatusCode::CREATED);
    error_of(b, StatusCode::CONFLICT, "idempotency_error").await;
    app.stop().await;
}

/// Sends `head` (request line and headers, announcing a 1000-byte body) and then the body one
/// byte every 100 ms, as a slow-loris client does; returns everything the gateway answered until
/// it closed the connection.
async fn trickle(address: &str, head: &str) -> String {
    use std::io::{Read, Write};
    let host = address.trim_start_matches("http://").to_owned();
    let head = head.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        // Without the body timeout the gateway would wait for the rest of the body for as long
        // as it keeps coming: this read would then fail the test after 10 s.
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut writer = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..1000 {
                if writer.write_all(b" ").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                // The trickle's next byte after the close may draw a reset: the connection is
                // closed either way.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !answer.is_empty() => {
                    break;
                }
                Err(e) => panic!("the gateway did not close the connection: {e}"),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_with_408_and_a_closed_connection() {
    let app = spawn_app_with(Options {
        body_timeout_ms: 500,
        ..Options::default()
    })
    .await;
    let merchant = format!(
        "POST /v1/checkouts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {MERCHANT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    let answer = trickle(&app.address, &merchant).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    // Answered by a middleware, not a handler: still with the request's id, header and body.
    let id = answer
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("request-id: ")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no Request-Id: {answer}"));
    assert!(
        answer.contains(&format!("\"request_id\":\"{}\"", id.trim())),
        "{answer}"
    );

    // A keyless endpoint, which reads its body before anything else: the same.
    let notification = "POST /notifications/multisafepay?transactionid=x&timestamp=1 HTTP/1.1\r\n\
         Host: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    let answer = trickle(&app.address, notification).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );

    // A body that arrives in time is served as usual.
    app.create("374500000000015").await;
    app.stop().await;
}

/// A refused request leaves a log line that says why (its code and the field it names), so
/// that an operator can tell a merchant what their integration sends wrong, and never the
/// value it refused (a card number, here).
#[tokio::test]
async fn a_refused_request_is_logged_with_its_code_and_field_never_its_value() {
    let app = spawn_app().await;
    let mut body = crate::common::checkout::CheckoutRequest::new("4111111111111111").body();
    body["capture_method"] = serde_json::json!("manual-please");
    let res = app.post_checkout(&body).await;
    assert_eq!(res.status(), reqwest::StatusCode::BAD_REQUEST);
    let request_id = res.headers()["request-id"].to_str().unwrap().to_owned();
    let logs = captured_logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&request_id) && l.contains("request refused"))
        .unwrap_or_else(|| panic!("no `request refused` line for request {request_id}"));
    assert!(line.contains(r#""code":"invalid_parameter""#), "{line}");
    assert!(line.contains(r#""param":"capture_method""#), "{line}");
    assert!(!line.contains("manual-please"), "{line}");
    assert!(!logs.contains("4111111111111111"));
    app.stop().await;
}
