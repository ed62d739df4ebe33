//! Point 5: the 3-D Secure flow over HTTP (the real browser is in `browser.rs`).

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

async fn challenged(sim: &TestSim) -> (String, Value) {
    let id = order_id();
    let (_, created) = sim.create(&order_body(&id, "4111111111111111")).await;
    (id, created["data"].clone())
}

/// The values of `attr="…"` in `html`, in order.
fn attrs(html: &str, attr: &str) -> Vec<String> {
    html.split(&format!("{attr}=\""))
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_create_answer_sends_the_shopper_to_the_simulator() {
    let sim = spawn().await;
    let (id, d) = challenged(&sim).await;
    assert_eq!(d["status"], "initialized");
    assert_eq!(d["financial_status"], "initialized");
    assert!(
        d["payment_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/sim/3ds/", sim.local()))
    );
    assert_eq!(
        d["cancel_url"],
        format!("https://shop.example/failed?lang=nl&transactionid={id}")
    );
    assert_eq!(d["customer_verification"]["type"], "form");
    sim.handle.stop().await;
}

#[tokio::test]
async fn the_challenge_page_is_one_form_with_three_buttons_posting_to_an_absolute_url() {
    let sim = spawn().await;
    let (_, d) = challenged(&sim).await;
    let page = sim
        .http
        .get(d["payment_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("<form").count(), 1, "{html}");
    assert!(html.contains("<form method=\"post\""), "{html}");
    let form = &html[html.find("<form").unwrap()..html.find("</form>").unwrap()];
    let action = &attrs(form, "action")[0];
    assert_eq!(
        action,
        d["payment_url"].as_str().unwrap(),
        "action must be absolute on the simulator"
    );
    assert_eq!(html.matches("<button").count(), 3);
    assert_eq!(attrs(form, "name"), vec!["result"; 3]);
    assert_eq!(attrs(form, "value"), vec!["Y", "N", "cancel"]);
    sim.handle.stop().await;
}

/// What a shopper sees: a bank's page that fits a phone, the amount as money, the card's last
/// digits, three buttons that say what they do; no simulator jargon, no internal ids.
#[tokio::test]
async fn the_challenge_page_reads_like_a_banks_verification_page() {
    let sim = spawn().await;
    let (id, d) = challenged(&sim).await;
    let html = sim
        .http
        .get(d["payment_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"),
        "{html}"
    );
    assert!(html.contains("<style>"), "styled: {html}");
    assert!(
        html.contains("€10.00"),
        "the order's 1000 EUR cents as money: {html}"
    );
    assert!(html.contains("•••• 1111"), "{html}");
    for label in ["Confirm payment", "Reject payment", "Cancel"] {
        assert!(html.contains(label), "{label}: {html}");
    }
    let session = d["payment_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let text_outside_the_form_action = html.replace(d["payment_url"].as_str().unwrap(), "");
    for internal in [
        id.as_str(),
        session,
        "minor units",
        "(Y)",
        "(N)",
        "simulator",
    ] {
        assert!(
            !text_outside_the_form_action.contains(internal),
            "{internal} on the page: {html}"
        );
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn each_answer_changes_the_order_before_the_303_to_the_right_url() {
    let sim = spawn().await;
    for (answer, status, url, cancel) in [
        ("Y", "completed", "https://shop.example/ok?lang=nl", None),
        ("N", "declined", "https://shop.example/failed?lang=nl", None),
        (
            "cancel",
            "declined",
            "https://shop.example/failed?lang=nl",
            Some("01"),
        ),
    ] {
        let (id, d) = challenged(&sim).await;
        let location = sim.answer(d["payment_url"].as_str().unwrap(), answer).await;
        assert_eq!(location, format!("{url}&transactionid={id}"), "{answer}");
        let o = sim.order(&id).await;
        assert_eq!(o["status"], status, "{answer}");
        let result = &o["payment_details"]["card_authentication_result"];
        assert_eq!(result["challenge_cancel"].as_str(), cancel, "{answer}");
        if answer != "Y" {
            assert_eq!(o["reason_code"], "3001", "{answer}");
            assert_eq!(result["status"], "N", "{answer}");
        }
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn the_verification_html_is_a_self_submitting_form_with_state_in_hidden_fields() {
    let sim = spawn().await;
    let (_, d) = challenged(&sim).await;
    let html = d["customer_verification"]["html"].as_str().unwrap();
    assert_eq!(html.matches("<form").count(), 1, "{html}");
    assert!(html.contains("method=\"post\""));
    let action = attrs(html, "action")[0].clone();
    assert!(
        action.starts_with(&sim.local()),
        "absolute on the simulator: {action}"
    );
    assert_eq!(html.matches("<script").count(), 1);
    assert!(!html.contains("<script src"), "the script is inline");
    assert!(!html.contains(" on"), "no inline event handlers: {html}");
    assert!(html.contains("<noscript>") && html.contains("type=\"submit\""));
    assert!(
        !html.contains("4111111111111111") && !html.contains("1111"),
        "no card data"
    );
    assert_eq!(attrs(html, "type")[0], "hidden");
    // Submit it as a browser would: its POST leads to the challenge page.
    let names = attrs(html, "name");
    let values = attrs(html, "value");
    let fields: Vec<(String, String)> = names.into_iter().zip(values).collect();
    let r = sim.http.post(&action).form(&fields).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], d["payment_url"].as_str().unwrap());
    assert!(r.headers().get("set-cookie").is_none(), "no cookies");
    sim.handle.stop().await;
}

#[tokio::test]
async fn an_unanswered_challenge_expires_after_the_window() {
    let sim = spawn_with(|c| c.challenge_expiry = Duration::from_millis(300)).await;
    let notify = receiver().await;
    let id = order_id();
    let url = format!("{}/ok", notify.uri());
    let (_, created) = sim
        .create(&notified_order(&id, "4111111111111111", &url, Some("POST")))
        .await;
    let d = &created["data"];
    assert_eq!(sim.order(&id).await["status"], "initialized");
    let o = sim
        .wait_status(&id, "expired", Duration::from_secs(5))
        .await;
    assert_eq!(
        (o["status"].as_str(), o["financial_status"].as_str()),
        (Some("expired"), Some("expired"))
    );
    // Answering afterwards changes nothing and still sends the shopper back (to cancel_url).
    let location = sim.answer(d["payment_url"].as_str().unwrap(), "Y").await;
    assert!(
        location.starts_with("https://shop.example/failed"),
        "{location}"
    );
    assert_eq!(sim.order(&id).await["status"], "expired");
    sim.handle.stop().await;
}
