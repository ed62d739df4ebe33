//! Recurring payments: initial orders make tokens (zero authorisations too), subsequent token
//! orders pay with them (one per token per 24 hours of simulator time), and the token API.

use serde_json::{Value, json};

use crate::helpers::*;

fn reference() -> String {
    format!("cus-{}", uuid::Uuid::new_v4().simple())
}

/// An initial order of `amount` with `card`, saved under `reference` for `model`.
fn initial(card: &str, reference: &str, model: &str, amount: u64) -> (String, Value) {
    let id = order_id();
    let mut body = order_body(&id, card);
    body["recurring_model"] = json!(model);
    body["customer"]["reference"] = json!(reference);
    body["amount"] = json!(amount);
    (id, body)
}

/// A subsequent order paying `amount` with `token`.
fn subsequent(token: &str, reference: &str, model: &str) -> (String, Value) {
    let id = order_id();
    let body = json!({
        "type": "direct",
        "order_id": id,
        "currency": "EUR",
        "amount": 1500,
        "description": "Renewal",
        "recurring_id": token,
        "recurring_model": model,
        "payment_options": {"redirect_url": "https://shop.example/ok"},
        "customer": {"reference": reference, "ip_address": "1.2.3.4", "country": "NL"}
    });
    (id, body)
}

impl TestSim {
    /// Saves `card` (challenged, answered Y) and returns its token.
    async fn save(&self, card: &str, reference: &str, model: &str, amount: u64) -> String {
        let (id, body) = initial(card, reference, model, amount);
        let (status, created) = self.create(&body).await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["data"]["status"], "initialized", "challenged first");
        assert_eq!(
            created["data"]["payment_details"]["recurring_id"],
            Value::Null,
            "no token before the order completes"
        );
        let url = created["data"]["payment_url"].as_str().unwrap().to_owned();
        self.answer(&url, "Y").await;
        let order = self.order(&id).await;
        assert_eq!(order["status"], "completed", "{order}");
        assert_eq!(order["amount"], amount);
        assert_eq!(order["customer"]["reference"], reference);
        assert_eq!(order["payment_details"]["recurring_model"], model);
        order["payment_details"]["recurring_id"]
            .as_str()
            .expect("the completed order shows its token")
            .to_owned()
    }

    async fn token_api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("api_key", KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

#[tokio::test]
async fn an_initial_order_makes_one_token_per_card_and_reference() {
    let sim = spawn().await;
    let cus = reference();
    let visa = sim
        .save("4111111111111111", &cus, "subscription", 1000)
        .await;
    let again = sim.save("4111111111111111", &cus, "cardOnFile", 500).await;
    assert_eq!(visa, again, "the same card under the same reference");
    let mc = sim.save("5500000000000004", &cus, "unscheduled", 0).await;
    assert_ne!(visa, mc);
    let other = sim
        .save("4111111111111111", &reference(), "subscription", 100)
        .await;
    assert_ne!(visa, other, "another reference has its own token");

    let (status, list) = sim
        .token_api(reqwest::Method::GET, &format!("/recurring/{cus}"), None)
        .await;
    assert_eq!(status, 200, "{list}");
    let tokens = list["data"]["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{list}");
    let v = tokens.iter().find(|t| t["token"] == visa.as_str()).unwrap();
    assert_eq!(v["code"], "VISA");
    assert_eq!(v["last4"], "1111");
    assert_eq!(v["bin"], "411111");
    assert_eq!(v["expiry_date"], "3012");
    assert_eq!(v["expired"], 0);
    assert_eq!(v["display"], "Card xxxx xxxx xxxx 1111");
    assert_eq!(v["model"], "cardOnFile", "saved again: the newest model");
    let raw = list.to_string();
    assert!(!raw.contains("4111111111111111"), "{raw}");

    let (_, page) = sim
        .token_api(
            reqwest::Method::GET,
            &format!("/recurring/{cus}?limit=1&offset=1"),
            None,
        )
        .await;
    assert_eq!(page["data"]["tokens"].as_array().unwrap().len(), 1);
    let (status, empty) = sim
        .token_api(
            reqwest::Method::GET,
            &format!("/recurring/{}", reference()),
            None,
        )
        .await;
    assert_eq!((status, empty["data"]["tokens"].clone()), (200, json!([])));
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_declined_initial_order_makes_no_token() {
    let sim = spawn().await;
    let cus = reference();
    let (id, body) = initial("4111111111111111", &cus, "subscription", 1000);
    let (_, created) = sim.create(&body).await;
    sim.answer(created["data"]["payment_url"].as_str().unwrap(), "N")
        .await;
    let order = sim.order(&id).await;
    assert_eq!(order["status"], "declined");
    assert_eq!(order["payment_details"]["recurring_id"], Value::Null);
    let (_, list) = sim
        .token_api(reqwest::Method::GET, &format!("/recurring/{cus}"), None)
        .await;
    assert_eq!(list["data"]["tokens"], json!([]));
    sim.handle.stop().await;
}

#[tokio::test]
async fn zero_authorisation_is_for_visa_mastercard_and_maestro_only() {
    let sim = spawn().await;
    let (_, amex) = initial("374500000000015", &reference(), "subscription", 0);
    let (status, answer) = sim.create(&amex).await;
    assert_eq!((status, answer["error_code"].clone()), (400, json!(1000)));
    assert!(
        answer["error_info"].as_str().unwrap().contains("AMEX"),
        "{answer}"
    );
    // Amount 0 stays invalid on an ordinary order.
    let mut plain = order_body(&order_id(), "4111111111111111");
    plain["amount"] = json!(0);
    assert_eq!(sim.create(&plain).await.1["error_code"], 1001);
    // A recurring order names its customer.
    let (_, mut anonymous) = initial("4111111111111111", "x", "subscription", 0);
    anonymous["customer"]
        .as_object_mut()
        .unwrap()
        .remove("reference");
    assert_eq!(sim.create(&anonymous).await.1["error_code"], 1000);
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_subscription_payment_needs_no_shopper_and_waits_24_hours_for_the_next() {
    let sim = spawn().await;
    let cus = reference();
    let token = sim.save("4111111111111111", &cus, "subscription", 0).await;

    let (id, body) = subsequent(&token, &cus, "subscription");
    let (status, created) = sim.create(&body).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["data"]["status"], "completed", "no 3-D Secure");
    let details = &created["data"]["payment_details"];
    assert_eq!(details["recurring_id"], token.as_str());
    assert_eq!(details["recurring_flow"], "token");
    assert_eq!(details["last4"], "1111");
    assert_eq!(details["type"], "VISA");
    assert_eq!(sim.order(&id).await["amount"], 1500);

    let (_, again) = subsequent(&token, &cus, "subscription");
    let (status, refused) = sim.create(&again).await;
    assert_eq!((status, refused["error_code"].clone()), (402, json!(1024)));
    let info = refused["error_info"].as_str().unwrap();
    assert!(info.contains("24 hours"), "{info}");
    assert!(info.contains("possible from 20"), "names when: {info}");
    assert_eq!(
        sim.get_order(again["order_id"].as_str().unwrap()).await.0,
        404
    );

    sim.advance(24 * 3600).await;
    let (_, later) = subsequent(&token, &cus, "unscheduled");
    let (status, paid) = sim.create(&later).await;
    assert_eq!(
        (status, paid["data"]["status"].clone()),
        (200, json!("completed"))
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_card_on_file_payment_follows_the_cards_3ds_rule() {
    let sim = spawn().await;
    let cus = reference();
    let token = sim.save("4111111111111111", &cus, "cardOnFile", 100).await;
    let (id, body) = subsequent(&token, &cus, "cardOnFile");
    let (_, created) = sim.create(&body).await;
    assert_eq!(created["data"]["status"], "initialized", "{created}");
    sim.answer(created["data"]["payment_url"].as_str().unwrap(), "Y")
        .await;
    assert_eq!(sim.order(&id).await["status"], "completed");
    sim.handle.stop().await;
}

#[tokio::test]
async fn unknown_deleted_or_foreign_tokens_are_refused_with_410() {
    let sim = spawn().await;
    let cus = reference();
    let token = sim.save("5500000000000004", &cus, "unscheduled", 0).await;
    for (tok, who) in [
        ("nosuchtoken", cus.as_str()),
        (token.as_str(), "someone-else"),
    ] {
        let (_, body) = subsequent(tok, who, "unscheduled");
        let (status, refused) = sim.create(&body).await;
        assert_eq!(
            (status, refused["error_code"].clone()),
            (410, json!(1000)),
            "{tok} {who}"
        );
    }
    // Another site does not see the token.
    let (_, body) = subsequent(&token, &cus, "unscheduled");
    assert_eq!(sim.create_as(OTHER_KEY, &body).await.0, 410);
    // The gateway is absent, empty or the token's code.
    let (_, mut wrong) = subsequent(&token, &cus, "unscheduled");
    wrong["gateway"] = json!("VISA");
    assert_eq!(sim.create(&wrong).await.1["error_code"], 1023);
    let (_, mut named) = subsequent(&token, &cus, "unscheduled");
    named["gateway"] = json!("MASTERCARD");
    assert_eq!(sim.create(&named).await.0, 200);

    let path = format!("/recurring/{cus}/token/{token}");
    let (status, got) = sim.token_api(reqwest::Method::GET, &path, None).await;
    assert_eq!(
        (status, got["data"]["code"].clone()),
        (200, json!("MASTERCARD"))
    );
    let (status, updated) = sim
        .token_api(
            reqwest::Method::PATCH,
            &format!("/recurring/{cus}/update/{token}"),
            Some(json!({"expiry_date": "3111"})),
        )
        .await;
    assert_eq!(
        (status, updated["data"]["updated"].clone()),
        (200, json!(true))
    );
    assert_eq!(
        sim.token_api(reqwest::Method::GET, &path, None).await.1["data"]["expiry_date"],
        "3111"
    );
    let (status, bad) = sim
        .token_api(
            reqwest::Method::PATCH,
            &format!("/recurring/{cus}/update/{token}"),
            Some(json!({"expiry_date": "3113"})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    let remove = format!("/recurring/{cus}/remove/{token}");
    let (status, removed) = sim.token_api(reqwest::Method::DELETE, &remove, None).await;
    assert_eq!(
        (status, removed["data"]["removed"].clone()),
        (200, json!(true))
    );
    for (method, p) in [
        (reqwest::Method::GET, path.clone()),
        (reqwest::Method::DELETE, remove.clone()),
    ] {
        let (status, gone) = sim.token_api(method, &p, None).await;
        assert_eq!(
            (status, gone["error_code"].clone()),
            (410, json!(1000)),
            "{p}"
        );
    }
    let (_, after) = subsequent(&token, &cus, "unscheduled");
    assert_eq!(sim.create(&after).await.0, 410, "deleted");
    sim.handle.stop().await;
}

#[tokio::test]
async fn the_official_python_sdks_recurring_manager_lists_gets_and_deletes_tokens() {
    let python = tokio::task::spawn_blocking(|| {
        test_support::tools::python_venv("python-sdk", &["multisafepay[requests]==3.1.0"])
    })
    .await
    .unwrap();
    let sim = spawn().await;
    let cus = reference();
    let visa = sim.save("4111111111111111", &cus, "subscription", 0).await;
    let mc = sim.save("5500000000000004", &cus, "cardOnFile", 100).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/simulator/sdk/python_recurring.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("{}/v1/", sim.local()))
        .arg(KEY)
        .arg(&cus)
        .arg(&visa)
        .arg(&mc)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python SDK's RecurringManager failed against the simulator:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        6,
        "{stdout}"
    );
    // What the SDK deleted is gone for orders too.
    let (_, body) = subsequent(&visa, &cus, "subscription");
    assert_eq!(sim.create(&body).await.0, 410);
    sim.handle.stop().await;
}
