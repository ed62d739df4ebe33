//! Disputes against the simulator: a chargeback becomes one dispute wherever it is
//! seen first, blocks refunds while it is open, and a won dispute gives the money back; evidence
//! is checked by its own bytes before anything goes to MultiSafepay.

use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(30);

/// A PDF's first bytes, padded to `len`.
pub fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n% evidence\n".to_vec();
    bytes.resize(len.max(bytes.len()), b' ');
    bytes
}

pub fn png() -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend_from_slice(b"\0\0\0\rIHDR");
    bytes
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl TestApp {
    pub async fn paid(&self) -> String {
        let checkout = self.create("374500000000015").await;
        assert_eq!(checkout["status"], "succeeded");
        checkout["id"].as_str().unwrap().to_owned()
    }

    /// `POST /sim/orders/{id}/chargeback` with `body`: the order as MSP shows it then.
    pub async fn charge_back(&self, id: &str, body: Value) -> Value {
        let res = self
            .client
            .post(format!(
                "{}/sim/orders/{id}/chargeback",
                self.sim.base_url()
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// The chargeback's transaction id in MSP's order.
    pub fn chargeback_tx(order: &Value) -> u64 {
        order["related_transactions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "chargeback")
            .unwrap()["transaction_id"]
            .as_u64()
            .unwrap()
    }

    /// `PUT /sim/disputes/{tx}` with `body`.
    pub async fn move_dispute(&self, tx: u64, body: Value) {
        let res = self
            .client
            .put(format!("{}/sim/disputes/{tx}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
    }

    pub async fn refresh(&self, id: &str) -> Value {
        let res = self
            .authed(Method::GET, &format!("/v1/checkouts/{id}?refresh=true"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.authed(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }

    pub async fn disputes_of(&self, checkout_id: &str) -> Vec<Value> {
        let (status, page) = self
            .api(
                Method::GET,
                &format!("/v1/disputes?checkout_id={checkout_id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["data"].as_array().unwrap().clone()
    }

    pub async fn wait_for_dispute(&self, checkout_id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let disputes = self.disputes_of(checkout_id).await;
            if let Some(d) = disputes.iter().find(|d| d["status"] == status) {
                return d.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no dispute of {checkout_id} became {status}: {disputes:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The evidence MSP holds for the order.
    pub async fn msp_files(&self, id: &str) -> Vec<Value> {
        self.client
            .get(format!("{}/sim/orders/{id}/files", self.sim.base_url()))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    pub async fn refund_status(&self, id: &str) -> (StatusCode, Value) {
        self.api(
            Method::POST,
            &format!("/v1/checkouts/{id}/refunds"),
            Some(json!({"amount": 100})),
        )
        .await
    }
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .rev()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_notified_chargeback_is_one_dispute_that_blocks_refunds_until_it_is_won() {
    let app = spawn_app().await;
    let id = app.paid().await;
    let order = app
        .charge_back(&id, json!({"amount": 1000, "reason_code": "4837"}))
        .await;
    let tx = TestApp::chargeback_tx(&order);
    let checkout = app.wait_for_status(&id, "charged_back", WAIT).await;
    assert_eq!(checkout["amount_disputed"], 1000, "{checkout}");

    // Seen again by a sync: still the one dispute.
    app.refresh(&id).await;
    let disputes = app.disputes_of(&id).await;
    assert_eq!(disputes.len(), 1, "{disputes:?}");
    let d = &disputes[0];
    assert!(d["id"].as_str().unwrap().starts_with("dp_"));
    assert_eq!(d["checkout_id"], id.as_str());
    assert_eq!(
        (d["amount"].clone(), d["currency"].clone()),
        (json!(1000), json!("EUR"))
    );
    assert_eq!(d["status"], "needs_response");
    assert_eq!(d["reason_code"], "4837");
    assert_eq!(
        d["psp"],
        json!({"transaction_id": tx.to_string(), "status": "new"})
    );
    assert!(d["evidence_submitted_at"].is_null());
    let respond_by =
        chrono::DateTime::parse_from_rfc3339(d["respond_by"].as_str().unwrap()).unwrap();
    let days = (respond_by.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!(
        (14 * 24 - 2..=14 * 24).contains(&days),
        "about 14 days ahead: {d}"
    );
    let (status, one) = app
        .api(
            Method::GET,
            &format!("/v1/disputes/{}", d["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!((status, &one), (StatusCode::OK, d));

    let (status, refused) = app.refund_status(&id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "checkout_disputed");

    app.move_dispute(tx, json!({"outcome": "won"})).await;
    let won = app.wait_for_dispute(&id, "won").await;
    assert_eq!(won["psp"]["status"], "closed");
    let checkout = app.wait_for_status(&id, "succeeded", WAIT).await;
    assert_eq!(checkout["amount_disputed"], 0);
    let trail = types(&app.merchant_events(&id).await);
    assert_eq!(
        trail,
        [
            "checkout.succeeded",
            "checkout.charged_back",
            "dispute.created",
            // One change: the checkout's event first, then its dispute's.
            "checkout.succeeded",
            "dispute.closed"
        ],
        "{trail:?}"
    );
    let closed = app
        .merchant_events(&id)
        .await
        .into_iter()
        .find(|e| e["type"] == "dispute.closed")
        .unwrap();
    assert_eq!(closed["data"]["object"]["status"], "won");
    assert_eq!(closed["previous_status"], "needs_response");

    let (status, refund) = app.refund_status(&id).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "decided: refunds again: {refund}"
    );
    app.stop().await;
}

#[tokio::test]
async fn dispute_events_reach_the_webhook_signed_like_every_event() {
    let receiver = crate::common::webhook::Receiver::start(WEBHOOK_SECRET).await;
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks::to(receiver.url())),
        ..Options::default()
    })
    .await;
    let id = app.paid().await;
    let order = app
        .charge_back(&id, json!({"amount": 1000, "reason_code": "4837"}))
        .await;
    app.wait_for_dispute(&id, "needs_response").await;
    app.move_dispute(TestApp::chargeback_tx(&order), json!({"outcome": "lost"}))
        .await;
    app.wait_for_dispute(&id, "lost").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got: Vec<Value> = receiver
            .acknowledged()
            .iter()
            .filter(|r| r.verified)
            .map(|r| r.json())
            .collect();
        let has = |kind: &str| got.iter().any(|e| e["type"] == kind);
        if has("dispute.created") && has("dispute.closed") && has("checkout.charged_back") {
            let closed = got.iter().find(|e| e["type"] == "dispute.closed").unwrap();
            assert_eq!(closed["data"]["object"]["status"], "lost", "{closed}");
            assert_eq!(closed["data"]["object"]["checkout_id"], id.as_str());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the webhook got {:?}",
            got.iter().map(|e| e["type"].clone()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_chargeback_without_a_notification_is_found_by_an_order_sync_and_lost() {
    let app = spawn_app().await;
    let id = app.paid().await;
    let order = app.charge_back(&id, json!({"notify": false})).await;
    let tx = TestApp::chargeback_tx(&order);
    let checkout = app.refresh(&id).await;
    assert_eq!(checkout["status"], "charged_back", "{checkout}");
    assert_eq!(checkout["amount_disputed"], 3495);
    assert_eq!(app.disputes_of(&id).await[0]["status"], "needs_response");

    app.move_dispute(tx, json!({"status": "submitted"})).await;
    app.wait_for_dispute(&id, "under_review").await;
    app.move_dispute(tx, json!({"status": "closed", "outcome": "lost"}))
        .await;
    let lost = app.wait_for_dispute(&id, "lost").await;
    assert_eq!(lost["psp"]["status"], "closed");
    let checkout = app.get_checkout(&id).await;
    assert_eq!(
        (
            checkout["status"].clone(),
            checkout["amount_disputed"].clone()
        ),
        (json!("charged_back"), json!(3495)),
        "lost keeps the money with the shopper"
    );
    let trail = types(&app.merchant_events(&id).await);
    assert_eq!(
        trail,
        [
            "checkout.succeeded",
            "checkout.charged_back",
            "dispute.created",
            "dispute.updated",
            "dispute.closed"
        ]
    );
    // Decided: the status rule answers now.
    let (status, refused) = app.refund_status(&id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["code"], "checkout_not_refundable");
    app.stop().await;
}

#[tokio::test]
async fn a_dispute_not_answered_by_its_respond_by_is_lost() {
    let app = spawn_app().await;
    let id = app.paid().await;
    app.charge_back(&id, json!({})).await;
    app.wait_for_dispute(&id, "needs_response").await;
    app.clock.advance(chrono::TimeDelta::days(15));
    app.refresh(&id).await;
    let lost = app.disputes_of(&id).await.remove(0);
    assert_eq!(lost["status"], "lost", "{lost}");
    let (status, refused) = app
        .api(
            Method::POST,
            &format!("/v1/disputes/{}/evidence", lost["id"].as_str().unwrap()),
            Some(json!({"files": [{"name": "a.pdf", "type": "pdf", "content_base64": b64(&pdf(100)), "description": "Invoice"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["code"], "dispute_not_open");
    app.stop().await;
}

#[tokio::test]
async fn evidence_is_checked_by_its_own_bytes_and_sent_to_msp_only_while_it_is_needed() {
    let app = spawn_app().await;
    let id = app.paid().await;
    let order = app.charge_back(&id, json!({})).await;
    let tx = TestApp::chargeback_tx(&order);
    let dispute = app.wait_for_dispute(&id, "needs_response").await;
    let path = format!("/v1/disputes/{}/evidence", dispute["id"].as_str().unwrap());
    let file = |name: &str, kind: &str, bytes: &[u8]| json!({"name": name, "type": kind, "content_base64": b64(bytes), "description": "Signed proof of delivery"});
    let too_many: Vec<Value> = (0..11)
        .map(|i| file(&format!("{i}.pdf"), "pdf", &pdf(10)))
        .collect();
    for (body, param, why) in [
        (
            json!({"files": [file("a.pdf", "pdf", &png())]}),
            "files[0].content_base64",
            "a PNG sent as pdf",
        ),
        (
            json!({"files": [file("a.pdf", "pdf", &pdf(10)), file("b.png", "png", b"GIF89a...")]}),
            "files[1].content_base64",
            "bytes of no type it takes",
        ),
        (
            json!({"files": [{"name": "a.pdf", "type": "pdf", "content_base64": "%%%not base64", "description": "x"}]}),
            "files[0].content_base64",
            "not base64",
        ),
        (
            json!({"files": [file("big.pdf", "pdf", &pdf(4 * 1024 * 1024 + 1))]}),
            "files[0].content_base64",
            "over 4 MiB",
        ),
        (json!({"files": too_many}), "files", "eleven files"),
        (json!({"files": []}), "files", "none"),
        (json!({}), "files", "no files field"),
        (
            json!({"files": [{"type": "pdf", "content_base64": b64(&pdf(10))}]}),
            "files[0].name",
            "no name",
        ),
        (
            json!({"files": [file("a.gif", "gif", &pdf(10))]}),
            "files[0].type",
            "a type it does not take",
        ),
        (
            json!({"files": [{"name": "a.pdf", "type": "pdf", "content_base64": b64(&pdf(10)), "size": 10}]}),
            "files[0].size",
            "an unknown field",
        ),
    ] {
        let (status, answer) = app.api(Method::POST, &path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {answer}");
        assert_eq!(answer["error"]["param"], param, "{why}: {answer}");
    }
    assert!(app.msp_files(&id).await.is_empty(), "nothing was sent");

    // Two files, one of them well over the API's 64 KiB body limit: the endpoint has its own.
    let body = json!({"files": [
        file("invoice.pdf", "pdf", &pdf(300 * 1024)),
        {"name": "label.png", "type": "png", "content_base64": b64(&png())},
    ]});
    let (status, answered) = app.api(Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(answered["id"], dispute["id"]);
    assert_eq!(answered["status"], "needs_response");
    assert!(answered["evidence_submitted_at"].is_string(), "{answered}");
    let files = app.msp_files(&id).await;
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(
        (
            files[0]["name"].clone(),
            files[0]["type"].clone(),
            files[0]["size"].clone()
        ),
        (json!("invoice.pdf"), json!("PDF"), json!(300 * 1024))
    );
    assert_eq!(files[0]["description"], "Signed proof of delivery");
    assert_eq!(
        (files[1]["type"].clone(), files[1]["description"].clone()),
        (json!("PNG"), json!("label.png"))
    );
    let updated = app
        .merchant_events(&id)
        .await
        .into_iter()
        .find(|e| e["type"] == "dispute.updated")
        .expect("the evidence is an update");
    assert!(updated["data"]["object"]["evidence_submitted_at"].is_string());

    // Once MSP reviews it, the dispute takes no more.
    app.move_dispute(tx, json!({"status": "submitted"})).await;
    app.wait_for_dispute(&id, "under_review").await;
    let (status, refused) = app
        .api(
            Method::POST,
            &path,
            Some(json!({"files": [file("c.pdf", "pdf", &pdf(10))]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "dispute_not_open");
    assert_eq!(app.msp_files(&id).await.len(), 2, "nothing more was sent");

    // The other endpoints keep the 64 KiB limit.
    let mut big = crate::common::checkout::CheckoutRequest::new("374500000000015").body();
    big["description"] = json!("x".repeat(70 * 1024));
    assert_eq!(
        app.post_checkout(&big).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    app.stop().await;
}

#[tokio::test]
async fn disputes_are_listed_newest_first_and_filtered() {
    let app = spawn_app().await;
    let (a, b) = (app.paid().await, app.paid().await);
    app.charge_back(&a, json!({})).await;
    app.wait_for_dispute(&a, "needs_response").await;
    let order_b = app.charge_back(&b, json!({})).await;
    app.wait_for_dispute(&b, "needs_response").await;
    app.move_dispute(TestApp::chargeback_tx(&order_b), json!({"outcome": "lost"}))
        .await;
    app.wait_for_dispute(&b, "lost").await;

    let (status, all) = app.api(Method::GET, "/v1/disputes", None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let ids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["checkout_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b.as_str(), a.as_str()], "newest first");
    assert_eq!(all["has_more"], false);
    let (_, first) = app.api(Method::GET, "/v1/disputes?limit=1", None).await;
    assert_eq!(first["has_more"], true);
    let after = first["data"][0]["id"].as_str().unwrap();
    let (_, second) = app
        .api(
            Method::GET,
            &format!("/v1/disputes?limit=1&starting_after={after}"),
            None,
        )
        .await;
    assert_eq!(second["data"][0]["checkout_id"], a.as_str());
    assert_eq!(second["has_more"], false);
    let (_, open) = app
        .api(Method::GET, "/v1/disputes?status=needs_response", None)
        .await;
    assert_eq!(open["data"].as_array().unwrap().len(), 1);
    assert_eq!(open["data"][0]["checkout_id"], a.as_str());
    let (_, lost) = app
        .api(
            Method::GET,
            &format!("/v1/disputes?status=lost&checkout_id={a}"),
            None,
        )
        .await;
    assert_eq!(lost["data"], json!([]));

    for (query, param) in [
        ("status=open", "status"),
        ("checkout_id=nope", "checkout_id"),
        ("limit=0", "limit"),
        ("colour=red", "colour"),
    ] {
        let (status, answer) = app
            .api(Method::GET, &format!("/v1/disputes?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["error"]["param"], param, "{answer}");
    }
    let (status, missing) = app
        .api(
            Method::GET,
            "/v1/disputes/dp_0193a1b2c3d4e5f60718293a4b5c6d7e00",
            None,
        )
        .await;
    assert_eq!(
        (status, missing["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("resource_missing"))
    );
    app.stop().await;
}

/// The simulator's origin, from the demo's CSP (its `form-action` lists it).
async fn sandbox_simulator(base: &str) -> String {
    let res = reqwest::get(format!("{base}/demo")).await.unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    csp.split(';')
        .find_map(|d| d.trim().strip_prefix("form-action"))
        .and_then(|targets| targets.split_whitespace().find(|t| t.starts_with("http")))
        .unwrap_or_else(|| panic!("no simulator origin in {csp}"))
        .trim_end_matches('/')
        .to_owned()
}

#[tokio::test]
async fn the_demo_order_page_shows_a_dispute_and_sends_a_pdf_as_its_evidence() {
    use fantoccini::Locator;
    let sandbox = crate::cli::Sandbox::start(&[]);
    let sim = sandbox_simulator(&sandbox.base).await;
    let http = crate::common::http_client();
    let mut body = crate::common::checkout::CheckoutRequest::new("374500000000015").body();
    body["return_url"] = json!(format!("{}/demo/result", sandbox.base));
    body["cancel_url"] = json!(format!("{}/demo/result", sandbox.base));
    let created: Value = http
        .post(format!("{}/v1/checkouts", sandbox.base))
        .bearer_auth(&sandbox.key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["status"], "succeeded", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let res = http
        .post(format!("{sim}/sim/orders/{id}/chargeback"))
        .json(&json!({"reason_code": "4853"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let c: Value = http
            .get(format!("{}/v1/checkouts/{id}", sandbox.base))
            .bearer_auth(&sandbox.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if c["status"] == "charged_back" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let browser = crate::common::browser::Browser::start().await;
    let c = &browser.client;
    let page = format!("{}/demo/result?checkout_id={id}", sandbox.base);
    // The page's text; empty while a navigation replaces the page under it (its body is then
    // a stale element).
    let text = |c: &fantoccini::Client| {
        let c = c.clone();
        async move {
            match c.find(Locator::Css("body")).await {
                Ok(body) => body.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        }
    };
    for (width, name) in [(1280, "dispute-1280-open"), (390, "dispute-390-open")] {
        c.set_window_size(width, 1400).await.unwrap();
        c.goto(&page).await.unwrap();
        let shown = text(c).await;
        assert!(shown.contains("Needs your answer"), "{shown}");
        assert!(shown.contains("Not as described"), "the reason: {shown}");
        assert!(shown.contains("Respond by"), "{shown}");
        browser.screenshot(name).await;
    }
    let pdf_path = std::env::temp_dir().join(format!("evidence-{id}.pdf"));
    std::fs::write(&pdf_path, pdf(20_000)).unwrap();
    c.set_window_size(1280, 1400).await.unwrap();
    c.find(Locator::Css("input[type='file'][name='file']"))
        .await
        .unwrap()
        .send_keys(pdf_path.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Css("input[name='description']"))
        .await
        .unwrap()
        .send_keys("Invoice and signed proof of delivery")
        .await
        .unwrap();
    c.find(Locator::Css("#disputes button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let shown = text(c).await;
        if shown.contains("Evidence sent") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.screenshot("dispute-1280-evidence-sent").await;
    c.set_window_size(390, 1400).await.unwrap();
    browser.screenshot("dispute-390-evidence-sent").await;
    let _ = std::fs::remove_file(&pdf_path);
    let files: Value = http
        .get(format!("{sim}/sim/orders/{id}/files"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(files.as_array().unwrap().len(), 1, "{files}");
    assert_eq!(
        (
            files[0]["type"].clone(),
            files[0]["size"].clone(),
            files[0]["description"].clone()
        ),
        (
            json!("PDF"),
            json!(20_000),
            json!("Invoice and signed proof of delivery")
        )
    );
    browser.close().await;
}
