//! Strict input (design §3 "Request bodies are parsed strictly"): what the API does not
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
