//! Saved cards and merchant-initiated payments (issue 25), through the merchant API against the
//! simulator: save with and without a charge, pay off-session, MSP's one payment per 24 hours
//! (by moving the simulator's clock), card-on-file with the shopper present, update, delete,
//! every bad input, and a scan proving that MSP's token and the card number stay where they
//! belong.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::checkout::CheckoutRequest;
use crate::helpers::*;

const VISA: &str = "4111111111111111";
const MASTERCARD: &str = "5500000000000004";
const AMEX: &str = "374500000000015";
const WAIT: Duration = Duration::from_secs(30);

fn customer() -> String {
    format!("cus-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A checkout that saves `card` for `usage` under `customer`, charging the usual 34.95.
fn saving(card: &str, usage: &str, customer: &str) -> Value {
    let mut body = CheckoutRequest::new(card).body();
    body["save_card"] = json!(usage);
    body["customer"]["reference"] = json!(customer);
    body
}

/// A checkout that saves `card` without a charge: amount 0, no items.
fn zero_auth(card: &str, usage: &str, customer: &str) -> Value {
    let mut body = saving(card, usage, customer);
    let obj = body.as_object_mut().unwrap();
    obj.remove("items");
    obj.remove("shipping_amount");
    obj.insert("amount".into(), json!(0));
    body
}

/// A payment of 9.99 with payment method `pm`, no card, no return URL.
fn paying(pm: &str) -> Value {
    let mut body = CheckoutRequest::new(VISA).body();
    let obj = body.as_object_mut().unwrap();
    obj.remove("card");
    obj.remove("return_url");
    obj.remove("cancel_url");
    obj.remove("shipping_amount");
    obj.insert("payment_method".into(), json!(pm));
    obj.insert(
        "items".into(),
        json!([{"name": "Monthly plan", "quantity": 1, "unit_amount": 999}]),
    );
    obj.insert("amount".into(), json!(999));
    body
}

impl TestApp {
    async fn post_saved_card(&self, body: &Value) -> (StatusCode, Value) {
        let res = self.post_checkout(body).await;
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    /// Creates `body`, passes 3-D Secure, and returns the checkout once it shows its payment
    /// method.
    async fn save_card_through(&self, body: &Value) -> Value {
        let (status, checkout) = self.post_saved_card(body).await;
        assert_eq!(status, StatusCode::CREATED, "{checkout}");
        assert_eq!(checkout["status"], "requires_action", "{checkout}");
        assert!(
            checkout.get("payment_method").is_none(),
            "not saved before it is paid"
        );
        self.pay_with_challenge(&checkout, "Y").await;
        let id = checkout["id"].as_str().unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let c = self.get_checkout(id).await;
            if c["payment_method"].is_string() {
                assert_eq!(c["status"], "succeeded", "{c}");
                return c;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "checkout {id} never showed its payment method: {c}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn pm_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.authed(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    async fn move_sim_clock(&self, seconds: u64) {
        let res = self
            .client
            .put(format!("{}/sim/clock", self.sim.base_url()))
            .json(&json!({ "advance_s": seconds }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// MSP's tokens for `customer`, as the simulator's token API lists them.
    async fn msp_tokens(&self, customer: &str) -> Vec<Value> {
        let res = self
            .client
            .get(format!("{}/recurring/{customer}", self.sim.api_url()))
            .header("api_key", MSP_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["data"]["tokens"].as_array().unwrap().clone()
    }

    /// Checkouts listed under `reference`: what a refused request must not have made.
    async fn checkouts_with_reference(&self, reference: &str) -> usize {
        let (status, page) = self
            .pm_call(
                Method::GET,
                &format!("/v1/checkouts?reference={reference}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        page["data"].as_array().unwrap().len()
    }
}

/// How many orders the gateway sent MSP (`POST /orders`), by the simulator's record.
async fn orders_created(app: &TestApp) -> usize {
    let calls: Vec<Value> = reqwest::get(format!("{}/sim/requests", app.sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    calls
        .iter()
        .filter(|c| c["method"] == "POST" && c["path"] == "/v1/json/orders")
        .count()
}

#[tokio::test]
async fn a_saved_subscription_card_pays_without_the_shopper_once_per_24_hours() {
    let app = spawn_app().await;
    let cus = customer();
    let saved = app
        .save_card_through(&saving(VISA, "subscription", &cus))
        .await;
    let pm_id = saved["payment_method"].as_str().unwrap().to_owned();
    assert!(pm_id.starts_with("pm_") && pm_id.len() == 35, "{pm_id}");

    let (status, pm) = app
        .pm_call(Method::GET, &format!("/v1/payment_methods/{pm_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{pm}");
    assert_eq!(pm["customer_reference"], cus.as_str());
    assert_eq!(pm["usage"], "subscription");
    assert_eq!(pm["status"], "active");
    assert_eq!(pm["created_from"], saved["id"]);
    let created_at = pm["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && !created_at.contains('.'),
        "whole seconds, as every time the API writes: {created_at}"
    );
    assert_eq!(
        pm["card"],
        json!({"brand": "visa", "last4": "1111", "exp_month": 12, "exp_year": 2030})
    );
    let tokens = app.msp_tokens(&cus).await;
    assert_eq!(tokens.len(), 1, "MSP keeps the card under the reference");
    assert_eq!(tokens[0]["recurring_model"], "subscription");
    // The same card saved again for the same shopper is the same payment method.
    let again = app
        .save_card_through(&zero_auth(VISA, "subscription", &cus))
        .await;
    assert_eq!(again["payment_method"], pm_id.as_str());
    let (_, listed) = app
        .pm_call(
            Method::GET,
            &format!("/v1/payment_methods?customer_reference={cus}"),
            None,
        )
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");

    // The renewal: no card, no return URL, no shopper, no 3-D Secure.
    let (status, paid) = app.post_saved_card(&paying(&pm_id)).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["status"], "succeeded", "{paid}");
    assert_eq!(paid["amount"], 999);
    assert_eq!(paid["payment_method"], pm_id.as_str());
    assert_eq!(paid["next_action"], Value::Null);
    assert_eq!(paid["card"]["last4"], "1111");

    // A second within 24 hours: MSP's limit, a failed checkout that says when to retry.
    let (status, limited) = app.post_saved_card(&paying(&pm_id)).await;
    assert_eq!(status, StatusCode::CREATED, "{limited}");
    assert_eq!(limited["status"], "failed", "{limited}");
    assert_eq!(limited["failure"]["code"], "recurring_limit");
    assert_eq!(limited["failure"]["psp_reason_code"], "1024");
    let message = limited["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("one card recurring payment per 24 hours"),
        "{message}"
    );
    assert!(message.contains("A retry can succeed from 20"), "{message}");

    app.move_sim_clock(24 * 3600).await;
    let (status, next_day) = app.post_saved_card(&paying(&pm_id)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(next_day["status"], "succeeded", "{next_day}");

    // A saved card's payment is refunded like any other.
    let paid_id = paid["id"].as_str().unwrap();
    let (status, refund) = app
        .pm_call(
            Method::POST,
            &format!("/v1/checkouts/{paid_id}/refunds"),
            Some(json!({"amount": 500})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(refund["status"], "pending");
    app.stop().await;
}

#[tokio::test]
async fn a_card_is_saved_without_a_charge_and_amex_cannot_be() {
    let app = spawn_app().await;
    let cus = customer();
    let saved = app
        .save_card_through(&zero_auth(MASTERCARD, "unscheduled", &cus))
        .await;
    assert_eq!(saved["amount"], 0);
    assert_eq!(saved["status"], "succeeded");
    let pm_id = saved["payment_method"].as_str().unwrap();
    let (_, top_up) = app.post_saved_card(&paying(pm_id)).await;
    assert_eq!(top_up["status"], "succeeded", "{top_up}");
    assert_eq!(top_up["card"]["brand"], "mastercard");

    let reference = format!("amex-{cus}");
    let mut amex = zero_auth(AMEX, "unscheduled", &cus);
    amex["reference"] = json!(reference);
    let (status, refused) = app.post_saved_card(&amex).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["param"], "card.number");
    assert_eq!(app.checkouts_with_reference(&reference).await, 0);
    // Without save_card a zero amount is still no payment.
    let mut plain = zero_auth(VISA, "unscheduled", &cus);
    plain.as_object_mut().unwrap().remove("save_card");
    plain["customer"]
        .as_object_mut()
        .unwrap()
        .remove("reference");
    let (status, refused) = app.post_saved_card(&plain).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["param"], "items");
    app.stop().await;
}

#[tokio::test]
async fn a_card_on_file_payment_has_the_shopper_present_and_may_be_challenged() {
    let app = spawn_app().await;
    let cus = customer();
    let saved = app
        .save_card_through(&saving(VISA, "card_on_file", &cus))
        .await;
    let pm_id = saved["payment_method"].as_str().unwrap();

    let reference = format!("cof-{cus}");
    let mut no_return = paying(pm_id);
    no_return["reference"] = json!(reference);
    let (status, refused) = app.post_saved_card(&no_return).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["param"], "return_url");
    assert_eq!(app.checkouts_with_reference(&reference).await, 0);

    let mut one_click = paying(pm_id);
    one_click["return_url"] = json!("https://shop.example/checkout/return");
    let (status, pending) = app.post_saved_card(&one_click).await;
    assert_eq!(status, StatusCode::CREATED, "{pending}");
    assert_eq!(pending["status"], "requires_action", "{pending}");
    let back = app.pay_with_challenge(&pending, "Y").await;
    assert!(
        back.starts_with("https://shop.example/checkout/return"),
        "{back}"
    );
    let id = pending["id"].as_str().unwrap();
    let done = app.wait_for_status(id, "succeeded", WAIT).await;
    assert_eq!(done["payment_method"], pm_id);

    // A saved card's checkout waiting for the shopper is canceled and listed like any other.
    app.move_sim_clock(24 * 3600).await;
    let mut abandoned = one_click.clone();
    abandoned["reference"] = json!(format!("{reference}-2"));
    let (status, waiting) = app.post_saved_card(&abandoned).await;
    assert_eq!(status, StatusCode::CREATED, "{waiting}");
    assert_eq!(waiting["status"], "requires_action", "{waiting}");
    let (status, canceled) = app
        .pm_call(
            Method::POST,
            &format!("/v1/checkouts/{}/cancel", waiting["id"].as_str().unwrap()),
            Some(json!({"reason": "abandoned"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "canceled", "{canceled}");
    assert_eq!(canceled["payment_method"], pm_id);
    assert_eq!(
        app.checkouts_with_reference(&format!("{reference}-2"))
            .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn a_payment_method_is_listed_updated_and_deleted_at_msp_first() {
    let app = spawn_app().await;
    let cus = customer();
    let first = app
        .save_card_through(&zero_auth(VISA, "subscription", &cus))
        .await;
    let second = app
        .save_card_through(&zero_auth(MASTERCARD, "unscheduled", &cus))
        .await;
    let (first_id, second_id) = (
        first["payment_method"].as_str().unwrap(),
        second["payment_method"].as_str().unwrap(),
    );

    let (status, page) = app
        .pm_call(
            Method::GET,
            &format!("/v1/payment_methods?customer_reference={cus}&limit=1"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"][0]["id"], second_id, "newest first");
    let (_, rest) = app
        .pm_call(
            Method::GET,
            &format!(
                "/v1/payment_methods?customer_reference={cus}&limit=1&starting_after={second_id}"
            ),
            None,
        )
        .await;
    assert_eq!(rest["data"][0]["id"], first_id);
    assert_eq!(rest["has_more"], false);
    let (_, nobody) = app
        .pm_call(
            Method::GET,
            "/v1/payment_methods?customer_reference=nobody",
            None,
        )
        .await;
    assert_eq!(nobody, json!({"data": [], "has_more": false}));

    let path = format!("/v1/payment_methods/{first_id}");
    let (status, updated) = app
        .pm_call(
            Method::PATCH,
            &path,
            Some(json!({"exp_month": 11, "exp_year": 2031})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["card"]["exp_month"], 11);
    assert_eq!(updated["card"]["exp_year"], 2031);
    let tokens = app.msp_tokens(&cus).await;
    let visa = tokens.iter().find(|t| t["code"] == "VISA").unwrap();
    assert_eq!(visa["expiry_date"], "3111", "updated at MSP");
    for (body, param) in [
        (json!({"exp_month": 13, "exp_year": 2031}), "exp_month"),
        (json!({"exp_month": 1, "exp_year": 2001}), "exp_year"),
        (json!({"exp_month": 1}), "exp_year"),
        (json!({"exp_month": 1, "exp_year": 2031, "cvc": "1"}), "cvc"),
    ] {
        let (status, refused) = app.pm_call(Method::PATCH, &path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(refused["error"]["param"], param, "{refused}");
    }
    assert_eq!(
        app.pm_call(Method::GET, &path, None).await.1,
        updated,
        "refusals change nothing"
    );

    let (status, deleted) = app.pm_call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["status"], "deleted");
    let tokens = app.msp_tokens(&cus).await;
    assert!(
        tokens.iter().all(|t| t["code"] != "VISA"),
        "deleted at MSP: {tokens:?}"
    );

    let (status, refused) = app.post_saved_card(&paying(first_id)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "payment_method_inactive");
    assert_eq!(refused["error"]["param"], "payment_method");
    let (status, refused) = app
        .pm_call(
            Method::PATCH,
            &path,
            Some(json!({"exp_month": 1, "exp_year": 2032})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("payment_method_inactive"))
    );

    for wrong in [
        "pm_123",
        "chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b",
        "pm_0190F5A2C3D47E8F9A0B1C2D3E4F5A6B",
    ] {
        for method in [Method::GET, Method::DELETE] {
            let (status, _) = app
                .pm_call(
                    method.clone(),
                    &format!("/v1/payment_methods/{wrong}"),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {wrong}");
        }
    }
    let first_pm = gateway::domain::payment_method::PaymentMethodId::parse(first_id).unwrap();
    let events = gateway::store::PaymentMethods::payment_method_events(
        app.state.flows.store.as_ref(),
        &first_pm,
    );
    let kinds: Vec<String> = events
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "payment_method.saved",
            "payment_method.updated",
            "payment_method.deleted"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_saved_card_input_names_the_field_and_changes_nothing() {
    let app = spawn_app().await;
    let cus = customer();
    let saved = app
        .save_card_through(&zero_auth(VISA, "subscription", &cus))
        .await;
    let pm_id = saved["payment_method"].as_str().unwrap().to_owned();
    let unknown = format!("pm_{}", "0".repeat(32));

    let cases: Vec<(Value, StatusCode, &str)> = vec![
        // card and payment_method together
        (
            {
                let mut b = paying(&pm_id);
                b["card"] = CheckoutRequest::new(VISA).body()["card"].clone();
                b
            },
            StatusCode::BAD_REQUEST,
            "payment_method",
        ),
        // neither
        (
            {
                let mut b = paying(&pm_id);
                b.as_object_mut().unwrap().remove("payment_method");
                b
            },
            StatusCode::BAD_REQUEST,
            "card",
        ),
        // save_card without customer.reference
        (
            {
                let mut b = saving(VISA, "subscription", &cus);
                b["customer"].as_object_mut().unwrap().remove("reference");
                b
            },
            StatusCode::BAD_REQUEST,
            "customer.reference",
        ),
        // an unknown save_card value
        (
            saving(VISA, "cardOnFile", &cus),
            StatusCode::BAD_REQUEST,
            "save_card",
        ),
        (
            {
                let mut b = saving(VISA, "subscription", &cus);
                b["save_card"] = json!(true);
                b
            },
            StatusCode::BAD_REQUEST,
            "save_card",
        ),
        // a customer.reference other than the payment method's
        (
            {
                let mut b = paying(&pm_id);
                b["customer"]["reference"] = json!("someone-else");
                b
            },
            StatusCode::BAD_REQUEST,
            "customer.reference",
        ),
        // a card number inside customer.reference
        (
            saving(VISA, "subscription", "cus 4111 1111 1111 1111"),
            StatusCode::BAD_REQUEST,
            "customer.reference",
        ),
        (
            saving(VISA, "subscription", &"c".repeat(51)),
            StatusCode::BAD_REQUEST,
            "customer.reference",
        ),
        // a payment method id of the wrong shape, and one that names nothing
        (paying("pm_123"), StatusCode::BAD_REQUEST, "payment_method"),
        (paying(&unknown), StatusCode::NOT_FOUND, "payment_method"),
        // a saved card saved again
        (
            {
                let mut b = paying(&pm_id);
                b["save_card"] = json!("subscription");
                b
            },
            StatusCode::BAD_REQUEST,
            "save_card",
        ),
    ];
    for (i, (mut body, status, param)) in cases.into_iter().enumerate() {
        let reference = format!("bad-{i}-{cus}");
        body["reference"] = json!(reference);
        let (got, answer) = app.post_saved_card(&body).await;
        assert_eq!(got, status, "case {i}: {answer}");
        assert_eq!(answer["error"]["param"], param, "case {i}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("4111"),
            "case {i} repeats the card number: {message}"
        );
        assert_eq!(
            app.checkouts_with_reference(&reference).await,
            0,
            "case {i} made a checkout"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_keyed_saved_card_payment_is_replayed_not_charged_twice() {
    let app = spawn_app().await;
    let cus = customer();
    let saved = app
        .save_card_through(&zero_auth(VISA, "unscheduled", &cus))
        .await;
    let pm_id = saved["payment_method"].as_str().unwrap();
    let body = paying(pm_id);
    let before = orders_created(&app).await;
    let mut answers = Vec::new();
    for _ in 0..2 {
        let res = app
            .authed(Method::POST, "/v1/checkouts")
            .header("Idempotency-Key", format!("renewal-{cus}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let replayed = res.headers().get("Idempotent-Replayed").is_some();
        answers.push((replayed, res.json::<Value>().await.unwrap()));
    }
    assert_eq!(answers[0].1["status"], "succeeded", "{}", answers[0].1);
    assert!(!answers[0].0 && answers[1].0, "the second is the replay");
    assert_eq!(answers[0].1["id"], answers[1].1["id"]);
    assert_eq!(
        orders_created(&app).await - before,
        1,
        "one order at MSP for the two requests"
    );
    // The key keeps answering what it answered, even once the card is deleted.
    let (status, _) = app
        .pm_call(
            Method::DELETE,
            &format!("/v1/payment_methods/{pm_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let res = app
        .authed(Method::POST, "/v1/checkouts")
        .header("Idempotency-Key", format!("renewal-{cus}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("Idempotent-Replayed").is_some());
    let (status, fresh) = app.post_saved_card(&body).await;
    assert_eq!(
        (status, fresh["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("payment_method_inactive")),
        "without the key the deleted card cannot pay"
    );
    app.stop().await;
}

#[tokio::test]
async fn msps_token_and_the_card_number_appear_nowhere_they_must_not() {
    let app = spawn_app().await;
    let cus = customer();
    let saved = app
        .save_card_through(&saving(VISA, "subscription", &cus))
        .await;
    let pm_id = saved["payment_method"].as_str().unwrap().to_owned();
    let (_, paid) = app.post_saved_card(&paying(&pm_id)).await;
    assert_eq!(paid["status"], "succeeded");
    let (_, limited) = app.post_saved_card(&paying(&pm_id)).await;
    assert_eq!(limited["status"], "failed");
    let (status, _) = app
        .pm_call(
            Method::PATCH,
            &format!("/v1/payment_methods/{pm_id}"),
            Some(json!({"exp_month": 10, "exp_year": 2032})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = app.msp_tokens(&cus).await[0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.len() >= 10, "{token}");

    let mut answers = Vec::new();
    for path in [
        format!("/v1/checkouts/{}", saved["id"].as_str().unwrap()),
        format!("/v1/checkouts/{}", paid["id"].as_str().unwrap()),
        format!("/v1/checkouts/{}", limited["id"].as_str().unwrap()),
        format!("/v1/payment_methods/{pm_id}"),
        format!("/v1/payment_methods?customer_reference={cus}"),
        "/v1/events?limit=100".to_owned(),
        "/v1/checkouts?limit=100".to_owned(),
    ] {
        let res = app.authed(Method::GET, &path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        answers.push((path, res.text().await.unwrap()));
    }
    answers.push(("create answers".into(), format!("{saved}{paid}{limited}")));
    assert!(
        answers.iter().any(|(_, a)| a.contains(&pm_id)),
        "the scan reads the answers"
    );
    for (path, answer) in &answers {
        assert!(
            !answer.contains(&token),
            "MSP's token in the answer of {path}"
        );
        assert!(
            !answer.contains(VISA),
            "the card number in the answer of {path}"
        );
    }

    let dump = app.redis_dump().await;
    let holding: Vec<&String> = dump
        .iter()
        .filter(|(_, v)| v.contains(&token))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        holding,
        [&format!("{}:{{{pm_id}}}:pm", app.prefix)],
        "the token is stored beside the payment method only"
    );
    let pm_key = format!("{}:{{{pm_id}}}:pm", app.prefix);
    let ttl: i64 = {
        let client = redis::Client::open(app.redis_url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("TTL")
            .arg(&pm_key)
            .query_async(&mut con)
            .await
            .unwrap()
    };
    let until_2033 = chrono::DateTime::parse_from_rfc3339("2033-11-01T00:00:00Z")
        .unwrap()
        .timestamp()
        - chrono::Utc::now().timestamp();
    assert!(
        (ttl - until_2033).abs() < 60,
        "a year past the card's expiry: {ttl} vs {until_2033}"
    );
    for (key, value) in &dump {
        assert!(
            !value.contains(VISA),
            "the card number in Redis under {key}"
        );
    }
    let logs = captured_logs();
    assert!(logs.contains(&pm_id), "the scan sees this test's logs");
    assert!(!logs.contains(&token), "MSP's token in the logs");
    assert!(!logs.contains(VISA), "the card number in the logs");
    app.stop().await;
}

/// The whole page at `width` CSS pixels, as `NAME.png` under the screenshots artefacts.
async fn full_page_at(browser: &crate::common::browser::Browser, width: u32, name: &str) {
    let c = &browser.client;
    c.set_window_size(width, 800).await.unwrap();
    let sizes = c
        .execute(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]",
            vec![],
        )
        .await
        .unwrap();
    let height = sizes[0].as_u64().unwrap() + sizes[1].as_u64().unwrap();
    c.set_window_size(width, u32::try_from(height).unwrap())
        .await
        .unwrap();
    browser.screenshot(name).await;
    c.set_window_size(1280, 1000).await.unwrap();
}

/// Waits for the simulator's challenge page and answers it `Y`.
async fn confirm_at_the_bank(browser: &crate::common::browser::Browser) {
    use fantoccini::Locator;
    let c = &browser.client;
    for _ in 0..200 {
        if let Ok(button) = c.find(Locator::Css("button[value='Y']")).await {
            button.click().await.unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no challenge page at {}", c.current_url().await.unwrap());
}

async fn page_text(browser: &crate::common::browser::Browser) -> String {
    browser.text().await
}

/// The demo shop in headless Chromium: a shopper ticks "save this card", pays, and then pays
/// again in one click; a monthly order's card is charged again by the shop's button, and a second
/// charge the same day is refused in the shopper's words.
#[tokio::test]
async fn a_shopper_saves_a_card_in_the_demo_and_pays_again_in_one_click() {
    use fantoccini::Locator;
    let sandbox = crate::cli::Sandbox::start(&[]);
    let browser = crate::common::browser::Browser::start().await;
    let c = &browser.client;
    c.set_window_size(1280, 1000).await.unwrap();
    let result = format!("{}/demo/result", sandbox.base);

    c.goto(&format!("{}/demo", sandbox.base)).await.unwrap();
    assert!(!page_text(&browser).await.contains("Your saved cards"));
    c.find(Locator::Css("input[name='save_card']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form button[value='now']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    confirm_at_the_bank(&browser).await;
    let done = browser.wait_for_url(&result).await;
    assert!(
        done.query_pairs()
            .any(|(k, v)| k == "status" && v == "succeeded"),
        "{done}"
    );

    c.goto(&format!("{}/demo", sandbox.base)).await.unwrap();
    let text = page_text(&browser).await;
    assert!(text.contains("Your saved cards"), "{text}");
    assert!(text.contains("Pay again with Visa •••• 1111"), "{text}");
    assert!(!text.contains("pm_"), "no ids for the shopper: {text}");

    // The monthly order, with another card.
    let number = c
        .find(Locator::Css("input[name='card_number']"))
        .await
        .unwrap();
    number.clear().await.unwrap();
    number.send_keys("5500 0000 0000 0004").await.unwrap();
    c.find(Locator::Css("input[name='subscribe']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form button[value='now']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    confirm_at_the_bank(&browser).await;
    browser.wait_for_url(&result).await;

    c.goto(&format!("{}/demo", sandbox.base)).await.unwrap();
    let text = page_text(&browser).await;
    assert!(
        text.contains("Charge the monthly order again: Mastercard •••• 0004"),
        "{text}"
    );
    full_page_at(&browser, 1280, "saved-cards-1-checkout-1280").await;
    full_page_at(&browser, 390, "saved-cards-1-checkout-390").await;

    // One click: the saved Visa, confirmed at the bank as this card asks.
    c.find(Locator::XPath(
        "//button[contains(., 'Pay again with Visa')]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    confirm_at_the_bank(&browser).await;
    let again = browser.wait_for_url(&result).await;
    assert!(
        again
            .query_pairs()
            .any(|(k, v)| k == "status" && v == "succeeded"),
        "{again}"
    );
    full_page_at(&browser, 390, "saved-cards-2-paid-again-390").await;

    // The shop charges the monthly order: no bank page.
    for attempt in ["first", "second"] {
        c.goto(&format!("{}/demo", sandbox.base)).await.unwrap();
        c.find(Locator::XPath(
            "//button[contains(., 'Charge the monthly order again')]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        let charged = browser.wait_for_url(&result).await;
        let status = if attempt == "first" {
            "succeeded"
        } else {
            "failed"
        };
        assert!(
            charged
                .query_pairs()
                .any(|(k, v)| k == "status" && v == status),
            "{attempt}: {charged}"
        );
    }
    let text = page_text(&browser).await;
    assert!(
        text.contains("already charged in the last 24 hours"),
        "{text}"
    );
    full_page_at(&browser, 1280, "saved-cards-3-limit-1280").await;
    full_page_at(&browser, 390, "saved-cards-3-limit-390").await;
    browser.close().await;
    // The saved cards' events reached the shop and the support desk, verified by each.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let html = reqwest::get(format!("{}/demo/webhooks", sandbox.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let rows = crate::demo_endpoints::listed(&html);
        let got = |to: &str| {
            rows.iter()
                .filter(|(d, k)| d == to && k == "payment_method.saved")
                .count()
        };
        if got("Shop") == 2 && got("Support desk") == 2 {
            assert!(
                rows.iter()
                    .all(|(d, k)| d != "ERP" || !k.starts_with("payment_method.")),
                "{rows:?}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Neither the notification nor the shopper's return came: the reconciler's sync reads the
/// token from MSP's order and saves the card.
#[tokio::test]
async fn a_sync_reads_the_token_when_no_notification_came() {
    let app = spawn_app().await;
    app.set_faults(json!({"drop_notifications": true})).await;
    let cus = customer();
    let (status, checkout) = app
        .post_saved_card(&saving(VISA, "unscheduled", &cus))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{checkout}");
    let payment_url = app.open_challenge(&checkout).await;
    app.answer_challenge(&payment_url, "Y").await;
    let id = checkout["id"].as_str().unwrap();
    assert_eq!(app.get_checkout(id).await["status"], "requires_action");
    let looked_at = app.pass_after(chrono::TimeDelta::minutes(2)).await.unwrap();
    assert!(looked_at >= 1);
    let synced = app.get_checkout(id).await;
    assert_eq!(synced["status"], "succeeded", "{synced}");
    let pm_id = synced["payment_method"]
        .as_str()
        .expect("saved by the sync");
    let (status, pm) = app
        .pm_call(Method::GET, &format!("/v1/payment_methods/{pm_id}"), None)
        .await;
    assert_eq!(
        (status, pm["usage"].clone()),
        (StatusCode::OK, json!("unscheduled"))
    );
    app.stop().await;
}

/// A card MSP no longer knows (deleted in MSP's own back office, say): the payment is a failed
/// checkout that says so, with MSP's code.
#[tokio::test]
async fn a_token_msp_refuses_is_a_failed_checkout_with_payment_method_invalid() {
    let app = spawn_app().await;
    let cus = customer();
    let saved = app
        .save_card_through(&zero_auth(VISA, "unscheduled", &cus))
        .await;
    let pm_id = saved["payment_method"].as_str().unwrap();
    let token = app.msp_tokens(&cus).await[0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .client
        .delete(format!(
            "{}/recurring/{cus}/remove/{token}",
            app.sim.api_url()
        ))
        .header("api_key", MSP_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let (status, refused) = app.post_saved_card(&paying(pm_id)).await;
    assert_eq!(status, StatusCode::CREATED, "{refused}");
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["failure"]["code"], "payment_method_invalid");
    assert_eq!(refused["failure"]["psp_reason_code"], "1000");
    assert!(!refused.to_string().contains(&token));
    app.stop().await;
}

#[tokio::test]
async fn payment_method_events_reach_every_webhook_and_the_events_api_like_any_event() {
    use crate::common::webhook::Receiver;
    let url_receiver = Receiver::start(WEBHOOK_SECRET).await;
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks::to(url_receiver.url())),
        ..Options::default()
    })
    .await;
    // An endpoint that takes only payment method events, and one that takes everything.
    let cards = Receiver::start("unused").await;
    let everything = Receiver::start("unused").await;
    let mut secrets = Vec::new();
    for (url, filter) in [(cards.url(), "payment_method.*"), (everything.url(), "*")] {
        let (status, endpoint) = app
            .pm_call(
                Method::POST,
                "/v1/webhook_endpoints",
                Some(json!({"url": url, "events": [filter]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{endpoint}");
        secrets.push(endpoint["secret"].as_str().unwrap().to_owned());
    }
    let cus = customer();
    let checkout = app
        .save_card_through(&saving(VISA, "subscription", &cus))
        .await;
    let checkout_id = checkout["id"].as_str().unwrap();
    let pm = checkout["payment_method"].as_str().unwrap().to_owned();
    let path = format!("/v1/payment_methods/{pm}");
    let (status, _) = app
        .pm_call(
            Method::PATCH,
            &path,
            Some(json!({"exp_month": 1, "exp_year": 2032})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = app.msp_tokens(&cus).await[0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app.pm_call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK);

    let kinds = [
        "payment_method.saved",
        "payment_method.updated",
        "payment_method.deleted",
    ];
    // The filtered endpoint gets the three, once each, signed for the Standard Webhooks
    // library, showing the payment method and never MSP's token.
    let got = cards.wait_for_acknowledged(3, WAIT).await;
    let mut ids: Vec<String> = got.iter().map(|r| r.json()["id"].to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each event once: {ids:?}");
    let mut types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    let mut expected = kinds.map(str::to_owned).to_vec();
    expected.sort();
    assert_eq!(types, expected);
    for r in &got {
        let body = r.json();
        assert_eq!(body["data"]["object"]["id"], pm.as_str(), "{body}");
        assert_eq!(body["data"]["object"]["customer_reference"], cus.as_str());
        assert!(
            !String::from_utf8_lossy(&r.body).contains(&token),
            "MSP's token in a delivery"
        );
    }
    let deleted = got
        .iter()
        .map(|r| r.json())
        .find(|b| b["type"] == "payment_method.deleted")
        .unwrap();
    assert_eq!(deleted["data"]["object"]["status"], "deleted");
    let recorded: Vec<_> = got
        .iter()
        .map(|r| (r.headers.clone(), r.body.clone()))
        .collect();
    assert_eq!(
        crate::standard_webhooks::python_verifies(&secrets[0], &recorded).await,
        ["ok", "ok", "ok"]
    );
    // `*` and webhooks.url get them too (beside the checkout's own events), webhooks.url's
    // signed with its secret.
    for receiver in [&everything, &url_receiver] {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mine: Vec<_> = receiver
                .acknowledged()
                .into_iter()
                .filter(|r| {
                    r.json()["type"]
                        .as_str()
                        .unwrap()
                        .starts_with("payment_method.")
                })
                .collect();
            if mine.len() == 3 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} payment method events delivered",
                mine.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        url_receiver
            .acknowledged()
            .iter()
            .all(|r| r.verified && !String::from_utf8_lossy(&r.body).contains(&token))
    );

    // Listed by GET /v1/events, filtered by type, and read one by one with their deliveries.
    let list = |query: String| {
        let app = &app;
        async move {
            let (status, page) = app.pm_call(Method::GET, &query, None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page["data"].as_array().unwrap().clone()
        }
    };
    let all = list("/v1/events?limit=100".into()).await;
    for kind in kinds {
        assert!(all.iter().any(|e| e["type"] == kind), "{kind} not listed");
        let only = list(format!("/v1/events?type={kind}")).await;
        assert_eq!(only.len(), 1, "{kind}: {only:?}");
        assert_eq!(only[0]["type"], kind);
        assert_eq!(only[0]["data"]["object"]["id"], pm.as_str());
        let id = only[0]["id"].as_str().unwrap();
        let (status, shown) = app
            .pm_call(Method::GET, &format!("/v1/events/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{shown}");
        assert_eq!(shown["delivery"]["status"], "delivered", "{shown}");
        assert_eq!(shown["deliveries"].as_array().unwrap().len(), 2, "{shown}");
        assert!(!shown.to_string().contains(&token));
    }
    // The saving checkout's events show the card it saved, and nothing that happened to the
    // card later.
    let of_checkout = list(format!("/v1/events?checkout_id={checkout_id}&limit=100")).await;
    let types: Vec<&str> = of_checkout
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"payment_method.saved"), "{types:?}");
    assert!(types.contains(&"checkout.succeeded"), "{types:?}");
    assert!(!types.contains(&"payment_method.updated"), "{types:?}");
    let only_saved = list(format!(
        "/v1/events?checkout_id={checkout_id}&type=payment_method.saved"
    ))
    .await;
    assert_eq!(only_saved.len(), 1);
    // Redelivered on request, under the same id.
    let saved_id = only_saved[0]["id"].as_str().unwrap();
    let (status, _) = app
        .pm_call(
            Method::POST,
            &format!("/v1/events/{saved_id}/redeliver"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let again = cards.wait_for_acknowledged(4, WAIT).await;
    assert_eq!(
        again.iter().filter(|r| r.json()["id"] == saved_id).count(),
        2
    );
    app.stop().await;
}
