//! Point 2: the `/v1/json` endpoints, authentication, envelope and error codes.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn the_three_authentication_forms_work_and_unknown_query_parameters_are_ignored() {
    let sim = spawn().await;
    let id = order_id();
    // Bearer (the Python SDK), with the `locale` parameter it adds.
    let r = sim
        .http
        .post(sim.url("/orders?locale=nl_NL"))
        .bearer_auth(KEY)
        .json(&order_body(&id, "4111111111111111"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Query parameter (Hyperswitch), plus parameters the simulator does not know.
    let r = sim
        .http
        .get(sim.url(&format!(
            "/orders/{id}?api_key={KEY}&locale=nl_NL&order_id={id}"
        )))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["order_id"], id.as_str());
    // Header (PHP SDK).
    assert_eq!(sim.order(&id).await["order_id"], id.as_str());
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_1032_with_401_and_the_error_envelope() {
    let sim = spawn().await;
    for key in [None, Some("wrong-key")] {
        let mut req = sim.http.get(sim.url("/orders/x"));
        if let Some(k) = key {
            req = req.header("api_key", k);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "key {key:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["data"], json!({}));
        assert_eq!(body["error_code"], 1032);
        assert!(body["error_info"].as_str().unwrap().contains("API key"));
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn an_order_is_visible_only_to_the_key_that_created_it() {
    let sim = spawn().await;
    let id = order_id();
    let (status, _) = sim.create(&order_body(&id, "4111111111111111")).await;
    assert_eq!(status, 200);
    let r = sim
        .http
        .get(sim.url(&format!("/orders/{id}")))
        .header("api_key", OTHER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_code"], 1006);
    // Another site may use the same order id.
    let (status, _) = sim
        .create_as(OTHER_KEY, &order_body(&id, "4111111111111111"))
        .await;
    assert_eq!(status, 200);
    let (status, body) = sim.get_order("no-such-order").await;
    assert_eq!((status, body["error_code"].clone()), (404, json!(1006)));
    sim.handle.stop().await;
}

#[tokio::test]
async fn invalid_orders_get_msp_error_codes_and_a_fitting_4xx() {
    let sim = spawn().await;
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, u16, u16)> = vec![
        (
            "amount missing",
            |b| {
                b.as_object_mut().unwrap().remove("amount");
            },
            1001,
            400,
        ),
        (
            "amount as a decimal string",
            |b| b["amount"] = json!("10.00"),
            1001,
            400,
        ),
        ("amount negative", |b| b["amount"] = json!(-5), 1001, 400),
        (
            "amount in major units",
            |b| b["amount"] = json!(10.5),
            1001,
            400,
        ),
        (
            "unknown currency",
            |b| b["currency"] = json!("XXX"),
            1002,
            400,
        ),
        (
            "bad IP",
            |b| b["customer"]["ip_address"] = json!("999.1.1.1"),
            1007,
            400,
        ),
        (
            "description missing",
            |b| {
                b.as_object_mut().unwrap().remove("description");
            },
            1008,
            400,
        ),
        (
            "description too long",
            |b| b["description"] = json!("x".repeat(201)),
            1008,
            400,
        ),
        (
            "country not ISO",
            |b| b["customer"]["country"] = json!("Netherlands"),
            1018,
            400,
        ),
        (
            "declined card",
            |b| b["gateway_info"]["card_number"] = json!("4242424242424242"),
            1024,
            402,
        ),
        (
            "not a card number",
            |b| b["gateway_info"]["card_number"] = json!("4111111111111112"),
            1024,
            402,
        ),
        (
            "CVC of 2 digits",
            |b| b["gateway_info"]["card_cvc"] = json!("12"),
            1024,
            402,
        ),
        (
            "expired card",
            |b| b["gateway_info"]["card_expiry_date"] = json!("2001"),
            1024,
            402,
        ),
        (
            "gateway not a card",
            |b| b["gateway"] = json!("IDEAL"),
            1023,
            400,
        ),
    ];
    for (name, edit, code, http) in cases {
        let id = order_id();
        let mut body = order_body(&id, "4111111111111111");
        edit(&mut body);
        let (status, answer) = sim.create(&body).await;
        assert_eq!(status, http, "{name}: {answer}");
        assert_eq!(answer["success"], false, "{name}");
        assert_eq!(answer["error_code"], code, "{name}: {answer}");
        assert_eq!(answer["data"], json!({}), "{name}");
        assert_eq!(
            sim.get_order(&id).await.0,
            404,
            "{name}: no order may be left behind"
        );
    }
    let id = order_id();
    assert_eq!(
        sim.create(&order_body(&id, "4111111111111111")).await.0,
        200
    );
    let (status, answer) = sim.create(&order_body(&id, "4111111111111111")).await;
    assert_eq!(
        (status, answer["error_code"].clone()),
        (409, json!(1006)),
        "duplicate order id"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn card_gateways_loopback_urls_any_cvc_and_no_browser_are_accepted() {
    let sim = spawn().await;
    for (gateway, card, cvc) in [
        ("VISA", "4111111111111111", "1234"),
        ("MASTERCARD", "5500000000000004", "123"),
        ("AMEX", "374500000000015", "123"),
        ("AMEX", "374500000000015", "1234"),
        ("MAESTRO", "6799990000000000011", "123"),
        ("CREDITCARD", "4111111111111111", "999"),
    ] {
        let mut body = order_body(&order_id(), card);
        body["gateway"] = json!(gateway);
        body["gateway_info"]["card_cvc"] = json!(cvc);
        // MSP's production rules (https, no port) are not enforced.
        body["payment_options"]["notification_url"] = json!("http://127.0.0.1:1/notify");
        body["payment_options"]["redirect_url"] = json!("http://localhost:8080/ok");
        let (status, answer) = sim.create(&body).await;
        assert_eq!(status, 200, "{gateway} {card} {cvc}: {answer}");
    }
    // Without customer.browser the card table alone decides.
    for card in ["4111111111111111", "374500000000015"] {
        let with = sim.create(&order_body(&order_id(), card)).await.1;
        let mut body = order_body(&order_id(), card);
        body["customer"].as_object_mut().unwrap().remove("browser");
        let without = sim.create(&body).await.1;
        assert_eq!(with["data"]["status"], without["data"]["status"], "{card}");
        assert_eq!(
            with["data"]["customer_verification"].is_null(),
            without["data"]["customer_verification"].is_null(),
            "{card}"
        );
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn patch_cancelled_voids_an_unfinished_order_and_refuses_a_finished_one() {
    let sim = spawn().await;
    let id = order_id();
    sim.create(&order_body(&id, "4111111111111111")).await;
    let patch = |id: &str| {
        sim.http
            .patch(sim.url(&format!("/orders/{id}")))
            .header("api_key", KEY)
            .json(&json!({"status": "cancelled", "exclude_order": true}))
            .send()
    };
    let r = patch(&id).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"success": true, "data": {}})
    );
    let order = sim.order(&id).await;
    assert_eq!(
        (order["status"].as_str(), order["financial_status"].as_str()),
        (Some("void"), Some("cancelled"))
    );

    let done = order_id();
    sim.create(&order_body(&done, "374500000000015")).await;
    let r = patch(&done).await.unwrap();
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(sim.order(&done).await["status"], "completed");
    assert_eq!(patch("unknown").await.unwrap().status().as_u16(), 404);
    sim.handle.stop().await;
}
