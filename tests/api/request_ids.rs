//! Every answer carries a `Request-Id`: the caller's `X-Request-Id` or `traceparent` when well
//! formed, else a new one; it is in the request's log lines and error bodies, and its trace goes
//! on to MultiSafepay.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::checkout::CheckoutRequest;
use crate::helpers::*;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn request_id(res: &reqwest::Response) -> String {
    res.headers()
        .get("request-id")
        .unwrap_or_else(|| panic!("no Request-Id on {} {}", res.status(), res.url()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn every_kind_of_answer_carries_a_request_id_and_takes_the_callers() {
    let app = spawn_app_with(Options {
        ops_port: Some(0),
        ..Options::default()
    })
    .await;
    let ops = app.ops_address.clone().unwrap();
    let checkout = app.create("4242424242424242").await;
    let id = checkout["id"].as_str().unwrap();
    let requests = [
        (
            app.authed(reqwest::Method::GET, &format!("/v1/checkouts/{id}")),
            StatusCode::OK,
        ),
        (
            app.client.get(app.url("/v1/checkouts")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            app.client.get(app.url("/pay/no-such-link")),
            StatusCode::NOT_FOUND,
        ),
        (
            app.client
                .post(app.url("/notifications/multisafepay?transactionid=x"))
                .body("{}"),
            // (One without a timestamp is acknowledged and ignored.)
            StatusCode::OK,
        ),
        (app.client.get(format!("{ops}/health/live")), StatusCode::OK),
        (app.client.get(format!("{ops}/metrics")), StatusCode::OK),
    ];
    for (request, status) in requests {
        let again = request.try_clone().unwrap();
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), status, "{}", res.url());
        let generated = request_id(&res);
        assert!(is_generated(&generated), "{generated} for {}", res.url());

        let res = again
            .try_clone()
            .unwrap()
            .header("X-Request-Id", "lb-7f3a.01:edge_9")
            .send()
            .await
            .unwrap();
        assert_eq!(request_id(&res), "lb-7f3a.01:edge_9", "{}", res.url());
        let res = again
            .header("traceparent", TRACEPARENT)
            .send()
            .await
            .unwrap();
        assert_eq!(request_id(&res), TRACE_ID, "{}", res.url());
    }
    let a = app.get(&app.url("/health/live")).await;
    let b = app.get(&app.url("/pay/no-such-link")).await;
    assert_ne!(
        request_id(&a),
        request_id(&b),
        "each request has an id of its own"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_incoming_id_is_replaced_and_never_echoed() {
    let app = spawn_app().await;
    let long = "a".repeat(129);
    for (header, value) in [
        ("X-Request-Id", "<script>alert(1)</script>"),
        ("X-Request-Id", "two words"),
        ("X-Request-Id", long.as_str()),
        (
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ),
        (
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ),
        ("traceparent", "garbage"),
    ] {
        let res = app
            .client
            .get(app.url("/v1/checkouts"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        let id = request_id(&res);
        assert!(is_generated(&id), "{header}: {value:?} answered {id}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["request_id"], id.as_str());
        assert!(!body.to_string().contains(value), "{body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn every_error_body_names_the_request_id_of_its_answer() {
    let app = spawn_app().await;
    let bad_card = CheckoutRequest::new("4242424242424241").body();
    let too_large = "x".repeat(70_000);
    let requests = [
        app.client.get(app.url("/v1/checkouts")),
        app.authed(reqwest::Method::POST, "/v1/checkouts")
            .json(&bad_card),
        app.authed(reqwest::Method::POST, "/v1/checkouts")
            .header("content-type", "application/json")
            .body("{not json"),
        app.authed(reqwest::Method::POST, "/v1/checkouts")
            .header("content-type", "application/json")
            .body(too_large),
        app.authed(reqwest::Method::GET, "/v1/checkouts?limit=0"),
        app.authed(reqwest::Method::DELETE, "/v1/checkouts"),
        app.authed(reqwest::Method::GET, "/v1/nothing-here"),
        app.authed(
            reqwest::Method::GET,
            "/v1/checkouts/chk_0193a1b2c3d4e5f60718293a4b5c6d7e",
        ),
    ];
    for request in requests {
        let res = request
            .header("X-Request-Id", "merchant-quotes-this")
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert!(status.is_client_error(), "{status} {}", res.url());
        assert_eq!(request_id(&res), "merchant-quotes-this");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["error"]["request_id"], "merchant-quotes-this",
            "{status}: {body}"
        );
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_log_lines_of_a_request_carry_the_id_it_was_answered_with() {
    let app = spawn_app().await;
    let given = format!("log-test-{}", unique_suffix());
    let res = app
        .authed(reqwest::Method::POST, "/v1/checkouts")
        .header("X-Request-Id", &given)
        .json(&CheckoutRequest::new("4242424242424242").body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(request_id(&res), given);
    let checkout: Value = res.json().await.unwrap();
    let id = checkout["id"].as_str().unwrap();
    let logs = captured_logs();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| l.contains(&given))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l.to_string().contains(id)),
        "no line of the create names {id}: {lines:?}"
    );
    for line in &lines {
        let spans = line["spans"].as_array().unwrap();
        assert_eq!(spans[0]["name"], "request", "{line}");
        assert_eq!(spans[0]["request_id"], given.as_str(), "{line}");
    }
    // And the other way round: every line the create flow logged for this checkout (MSP's call,
    // the status change, …) carries the id, none without it.
    let of_create: Vec<Value> = logs
        .lines()
        .filter(|l| l.contains(id))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["name"] == "create_checkout"))
        })
        .collect();
    assert!(of_create.len() >= 2, "{of_create:?}");
    for line in &of_create {
        assert_eq!(line["spans"][0]["request_id"], given.as_str(), "{line}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_callers_trace_goes_on_to_multisafepay() {
    let app = spawn_app().await;
    let res = app
        .authed(reqwest::Method::POST, "/v1/checkouts")
        .header("traceparent", TRACEPARENT)
        .json(&CheckoutRequest::new("4242424242424242").body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let checkout: Value = res.json().await.unwrap();
    let id = checkout["id"].as_str().unwrap();
    // Without a traceparent, the call still starts a trace: the request's own id.
    let res = app
        .authed(
            reqwest::Method::GET,
            &format!("/v1/checkouts/{id}?refresh=true"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let own = request_id(&res);

    let calls: Vec<Value> = app
        .client
        .get(format!("{}/sim/requests", app.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| {
            (
                c["method"].as_str().unwrap(),
                c["traceparent"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no traceparent: {c}")),
            )
        })
        .collect();
    let parts = |t: &str| t.split('-').map(str::to_owned).collect::<Vec<_>>();
    let (_, create) = sent
        .iter()
        .find(|(m, _)| *m == "POST")
        .expect("the create call");
    let create = parts(create);
    assert_eq!(create[0], "00");
    assert_eq!(create[1], TRACE_ID, "the caller's trace");
    assert_ne!(
        create[2], "00f067aa0ba902b7",
        "a parent id of the gateway's own"
    );
    assert_eq!(create[2].len(), 16);
    assert_eq!(create[3], "01", "the caller's flags");
    let (_, refresh) = sent
        .iter()
        .find(|(m, _)| *m == "GET")
        .expect("the refresh call");
    assert_eq!(parts(refresh)[1], own);
    app.stop().await;
}

fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
