//! Strict input: what the API does not
//! understand is refused with the field's path, changes nothing, and no error repeats a value.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::checkout::CheckoutRequest;
use crate::helpers::*;

/// Sends `body` as it is (bytes, so that duplicate keys survive) and returns the error.
async fn refused(app: &TestApp, body: String) -> Value {
    let res = app
        .authed(reqwest::Method::POST, "/v1/checkouts")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    body["error"].clone()
}

#[tokio::test]
async fn a_misspelt_or_unknown_field_is_refused_and_nothing_is_created() {
    let app = spawn_app().await;
    let mut body = CheckoutRequest::new("4111111111111111").body();
    let shipping = body["shipping_amount"].take();
    body.as_object_mut().unwrap().remove("shipping_amount");
    body["shiping_amount"] = shipping;
    let error = refused(&app, body.to_string()).await;
    assert_eq!(error["code"], "unknown_field");
    assert_eq!(error["param"], "shiping_amount");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `shipping_amount`?"),
        "{error}"
    );

    // A misspelt `capture_method` is not silently ignored either (it would capture the money the
    // merchant meant only to authorise).
    let mut body = CheckoutRequest::new("4111111111111111").body();
    body["capture_mode"] = json!("manual");
    let error = refused(&app, body.to_string()).await;
    assert_eq!(error["param"], "capture_mode");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `capture_method`?"),
        "{error}"
    );
    for (path, value) in [
        (
            "items",
            json!([{"name": "T", "quantity": 1, "unit_amount": 100, "tax_rat": "0.21"}]),
        ),
        (
            "card",
            json!({"number": "4111111111111111", "exp_month": 12, "exp_year": 2030, "cvc": "123", "pin": "1234"}),
        ),
    ] {
        let mut body = CheckoutRequest::new("4111111111111111").body();
        body[path] = value;
        let error = refused(&app, body.to_string()).await;
        assert_eq!(error["code"], "unknown_field", "{error}");
        assert!(
            ["items[0].tax_rat", "card.pin"].contains(&error["param"].as_str().unwrap()),
            "{error}"
        );
    }
    assert!(
        app.redis_dump().await.is_empty(),
        "a refused request stores nothing (and so never reached MultiSafepay)"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_card_number_of_the_wrong_type_is_named_but_never_echoed() {
    let app = spawn_app().await;
    let body = CheckoutRequest::new("4111111111111111")
        .body()
        .to_string()
        .replace("\"4111111111111111\"", "4111111111111111");
    let res = app
        .authed(reqwest::Method::POST, "/v1/checkouts")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let text = res.text().await.unwrap();
    assert!(!text.contains("4111111111111111"), "{text}");
    let error: Value = serde_json::from_str::<Value>(&text).unwrap()["error"].clone();
    assert_eq!(error["code"], "invalid_type");
    assert_eq!(error["param"], "card.number");
    assert_eq!(
        error["message"],
        "`card.number` must be a string, not a number"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_key_given_twice_is_refused() {
    let app = spawn_app().await;
    let body = CheckoutRequest::new("4111111111111111").body().to_string();
    let body = body.replacen('{', "{\"shipping_amount\": 0, ", 1);
    let error = refused(&app, body).await;
    assert_eq!(error["code"], "duplicate_field");
    assert_eq!(error["param"], "shipping_amount");
    app.stop().await;
}

#[tokio::test]
async fn free_text_is_plain_text_and_amounts_have_a_ceiling() {
    let app = spawn_app().await;
    let cases = [
        ("reference", json!("<img src=x onerror=alert(1)>")),
        ("reference", json!("4111 1111 1111 1111")),
        ("description", json!("pay\u{202E}gpj.exe")),
        ("metadata", json!({"note": "5500000000000004"})),
        ("shipping_amount", json!(100_000_000)),
    ];
    for (field, value) in cases {
        let mut body = CheckoutRequest::new("4111111111111111").body();
        body[field] = value;
        let error = refused(&app, body.to_string()).await;
        assert!(
            error["param"].as_str().unwrap().starts_with(field),
            "{field}: {error}"
        );
    }
    let mut body = CheckoutRequest::new("4111111111111111").body();
    body["currency"] = json!("eur");
    let error = refused(&app, body.to_string()).await;
    assert_eq!(error["code"], "invalid_currency");
    assert!(
        error["message"].as_str().unwrap().contains("upper case"),
        "{error}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_misspelt_query_parameter_is_refused_not_ignored() {
    let app = spawn_app().await;
    let res = app
        .authed(
            reqwest::Method::GET,
            "/v1/checkouts/chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b?refesh=true",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let error = res.json::<Value>().await.unwrap()["error"].clone();
    assert_eq!(
        (error["code"].as_str(), error["param"].as_str()),
        (Some("unknown_field"), Some("refesh"))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `refresh`?")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    for scheme in ["BEARER", "bearer", "Bearer"] {
        let res = app
            .client
            .get(app.url("/v1/checkouts/chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b"))
            .header("Authorization", format!("{scheme} {MERCHANT_KEY}"))
            .send()
            .await
            .unwrap();
        // Authenticated: the checkout is unknown, not the key.
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{scheme}");
    }
    app.stop().await;
}

/// A checkout that succeeded at creation (frictionless card): 3495 minor units.
async fn paid_checkout(app: &TestApp) -> String {
    let checkout = app.create("374500000000015").await;
    assert_eq!(checkout["status"], "succeeded", "{checkout}");
    checkout["id"].as_str().unwrap().to_owned()
}

/// `POST path` with `body` as JSON: the status and the answer.
async fn post_json(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let res = app
        .authed(reqwest::Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

/// `"amount": null` is not "leave it out" (everything): it is refused, naming the field, and
/// nothing is refunded or captured.
#[tokio::test]
async fn a_null_amount_refunds_and_captures_nothing() {
    let app = spawn_app().await;
    let id = paid_checkout(&app).await;
    let (status, body) = post_json(
        &app,
        &format!("/v1/checkouts/{id}/refunds"),
        json!({"amount": null}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        (
            body["error"]["code"].as_str(),
            body["error"]["param"].as_str()
        ),
        (Some("invalid_type"), Some("amount")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("leave the field out"),
        "{body}"
    );
    let refunds: Value = app
        .authed(reqwest::Method::GET, &format!("/v1/checkouts/{id}/refunds"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        refunds,
        json!({"data": [], "has_more": false}),
        "nothing was refunded"
    );

    // A manual-capture authorisation (a Visa card without 3-D Secure).
    let mut request = CheckoutRequest::new("4012001038443335").body();
    request["capture_method"] = json!("manual");
    let res = app.post_checkout(&request).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let authorised: Value = res.json().await.unwrap();
    let authorised = authorised["id"].as_str().unwrap();
    app.wait_for_status(
        authorised,
        "requires_capture",
        std::time::Duration::from_secs(10),
    )
    .await;
    let (status, body) = post_json(
        &app,
        &format!("/v1/checkouts/{authorised}/capture"),
        json!({"amount": null}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "amount", "{body}");
    let after = app.get_checkout(authorised).await;
    assert_eq!(
        after["status"], "requires_capture",
        "nothing was captured: {after}"
    );
    assert_eq!(after["amount_captured"], Value::Null, "{after}");
    app.stop().await;
}

/// Every endpoint that takes a JSON body, with a body it would accept as JSON (ids that name
/// nothing: with a JSON type the answer is a 404, not a 415).
fn json_endpoints() -> Vec<(String, String)> {
    let checkout = "chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b";
    vec![
        (
            "/v1/checkouts".to_owned(),
            CheckoutRequest::new("4111111111111111").body().to_string(),
        ),
        (
            format!("/v1/checkouts/{checkout}/refunds"),
            r#"{"amount": 100}"#.to_owned(),
        ),
        (
            format!("/v1/checkouts/{checkout}/cancel"),
            r#"{"reason": "out of stock"}"#.to_owned(),
        ),
        (
            format!("/v1/checkouts/{checkout}/capture"),
            r#"{"amount": 100}"#.to_owned(),
        ),
        (
            "/v1/refunds/re_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b/cancel".to_owned(),
            "{}".to_owned(),
        ),
        (
            "/v1/events/evt_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b0000000201/redeliver".to_owned(),
            "{}".to_owned(),
        ),
    ]
}

/// A body is JSON only when it says so: text, a form or multipart is 415 with a message that
/// says to send `application/json`, on every JSON endpoint, and nothing is created.
#[tokio::test]
async fn a_body_not_sent_as_json_is_415_on_every_json_endpoint() {
    let app = spawn_app().await;
    let types = [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=b"),
        None,
    ];
    for (path, body) in json_endpoints() {
        for content_type in types {
            let mut req = app.authed(reqwest::Method::POST, &path).body(body.clone());
            if let Some(t) = content_type {
                req = req.header("Content-Type", t);
            }
            let res = req.send().await.unwrap();
            assert_eq!(
                res.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{path} as {content_type:?}"
            );
            let error = res.json::<Value>().await.unwrap()["error"].clone();
            assert_eq!(
                (error["code"].as_str(), error["param"].as_str()),
                (Some("unsupported_media_type"), Some("Content-Type")),
                "{path}: {error}"
            );
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .contains("Content-Type: application/json"),
                "{error}"
            );
        }
        // Declared as JSON (any case, with parameters), the same body is read.
        for content_type in ["application/json", "Application/JSON; charset=utf-8"] {
            let res = app
                .authed(reqwest::Method::POST, &path)
                .header("Content-Type", content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_ne!(
                res.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{path} as {content_type}"
            );
        }
    }
    // The text/plain checkout above was not created: the only checkout is the JSON one.
    let list: Value = app
        .authed(reqwest::Method::GET, "/v1/checkouts")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    // The key is checked first: without one, the answer is still 401.
    let res = app
        .client
        .post(app.url("/v1/checkouts"))
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// An empty body of an all-optional POST is accepted whatever its type.
#[tokio::test]
async fn an_empty_body_needs_no_json_type() {
    let app = spawn_app().await;
    let id = paid_checkout(&app).await;
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let res = app
            .authed(
                reqwest::Method::POST,
                "/v1/checkouts/chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b/cancel",
            )
            .header("Content-Type", content_type)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{content_type}");
    }
    // A blank body is empty too: a refund of everything.
    let res = app
        .authed(
            reqwest::Method::POST,
            &format!("/v1/checkouts/{id}/refunds"),
        )
        .header("Content-Type", "text/plain")
        .body(" \n")
        .send()
        .await
        .unwrap();
    let status = res.status();
    let refund: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(refund["amount"], 3495, "{refund}");
    app.stop().await;
}
