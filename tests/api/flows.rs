//! Whole payments, as a storefront and a shopper's browser drive them.

use std::time::Duration;

use gateway::configuration::{NotificationMethod, ThreeDsMode};
use reqwest::StatusCode;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn three_d_secure_in_redirect_mode_ends_succeeded_and_back_at_the_shop() {
    let app = spawn_app().await;
    let checkout = app.create("4111111111111111").await;
    assert_eq!(checkout["status"], "requires_action");
    assert_eq!(checkout["amount"], 3495);
    assert_eq!(checkout["card"]["last4"], "1111");
    assert_eq!(checkout["card"]["brand"], "visa");
    assert_eq!(checkout["next_action"]["type"], "redirect_to_url");
    let id = checkout["id"].as_str().unwrap();
    assert_eq!(checkout["psp"]["order_id"], id);

    let shop = app.pay_with_challenge(&checkout, "Y").await;
    assert!(
        shop.starts_with("https://shop.example/checkout/return?"),
        "{shop}"
    );
    assert_eq!(
        query_value(&shop, "cart").as_deref(),
        Some("c-77"),
        "the shop's own query is kept"
    );
    assert_eq!(query_value(&shop, "checkout_id").as_deref(), Some(id));
    assert_eq!(query_value(&shop, "status").as_deref(), Some("succeeded"));

    let done = app.wait_for_status(id, "succeeded", WAIT).await;
    assert!(done["next_action"].is_null());
    assert_eq!(done["psp"]["status"], "completed");
    assert_eq!(
        app.event_trail(id).await,
        ["created", "requires_action", "succeeded"]
    );
    app.stop().await;
}

#[tokio::test]
async fn three_d_secure_in_form_mode_serves_msps_form_and_ends_succeeded() {
    let app = spawn_app_with(Options {
        three_ds_mode: ThreeDsMode::Form,
        ..Options::default()
    })
    .await;
    let checkout = app.create("5500000000000004").await;
    let id = checkout["id"].as_str().unwrap();
    let pay_url = &pay_link(&checkout);

    let page = app.get(pay_url).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("'sha256-"),
        "inline script allowed by hash only: {csp}"
    );
    assert!(
        csp.contains(&app.sim.base_url()),
        "form-action names the simulator: {csp}"
    );
    let html = page.text().await.unwrap();

    // Submit MSP's form as the browser would (its script only calls submit()).
    let action = form_action(&html).unwrap();
    assert!(action.starts_with(&app.sim.base_url()));
    let res = app
        .client
        .post(&action)
        .form(&hidden_fields(&html))
        .send()
        .await
        .unwrap();
    let challenge_url = match res.status() {
        StatusCode::SEE_OTHER => location(&res),
        StatusCode::OK => action.clone(),
        other => panic!("unexpected answer {other} to MSP's form"),
    };
    let back = if res.status() == StatusCode::SEE_OTHER {
        app.answer_challenge(&challenge_url, "Y").await
    } else {
        let html = res.text().await.unwrap();
        let action = form_action(&html).unwrap();
        let mut fields = hidden_fields(&html);
        fields.push(("result".into(), "Y".into()));
        location(&app.client.post(&action).form(&fields).send().await.unwrap())
    };
    let shop = location(&app.get(&back).await);
    assert_eq!(query_value(&shop, "status").as_deref(), Some("succeeded"));
    app.wait_for_status(id, "succeeded", WAIT).await;
    app.stop().await;
}

#[tokio::test]
async fn a_frictionless_card_succeeds_in_the_create_answer() {
    let app = spawn_app().await;
    let checkout = app.create("374500000000015").await;
    assert_eq!(checkout["status"], "succeeded");
    assert!(checkout["next_action"].is_null());
    assert_eq!(checkout["card"]["brand"], "amex");
    let id = checkout["id"].as_str().unwrap();
    // The simulator also notifies `completed`: a duplicate that must add no event. Once the
    // gateway has acknowledged it, it has processed it.
    app.wait_for_acknowledged_notification(id, "completed", WAIT)
        .await;
    assert_eq!(app.event_trail(id).await, ["created", "succeeded"]);
    app.stop().await;
}

#[tokio::test]
async fn a_card_declined_at_creation_is_a_failed_checkout_not_an_error() {
    let app = spawn_app().await;
    let checkout = app.create("4242424242424242").await;
    assert_eq!(checkout["status"], "failed");
    assert_eq!(checkout["failure"]["code"], "card_declined");
    assert_eq!(checkout["failure"]["psp_reason_code"], "1024");
    assert!(checkout["next_action"].is_null());
    app.stop().await;
}

#[tokio::test]
async fn a_card_declined_after_3ds_fails_with_the_reason() {
    let app = spawn_app().await;
    let checkout = app.create("4012001038488884").await;
    let id = checkout["id"].as_str().unwrap();
    let shop = app.pay_with_challenge(&checkout, "Y").await;
    assert_eq!(query_value(&shop, "status").as_deref(), Some("failed"));
    let failed = app.wait_for_status(id, "failed", WAIT).await;
    assert_eq!(failed["failure"]["code"], "insufficient_funds");
    assert_eq!(failed["failure"]["psp_reason_code"], "4002");

    let checkout = app.create("4012001037461114").await;
    let id = checkout["id"].as_str().unwrap();
    app.pay_with_challenge(&checkout, "Y").await;
    let failed = app.wait_for_status(id, "failed", WAIT).await;
    assert_eq!(failed["failure"]["code"], "authentication_failed");
    app.stop().await;
}

#[tokio::test]
async fn an_uncleared_card_goes_processing_then_succeeded() {
    let app = spawn_app().await;
    let checkout = app.create("4462000000000003").await;
    let id = checkout["id"].as_str().unwrap();
    let shop = app.pay_with_challenge(&checkout, "Y").await;
    assert_eq!(query_value(&shop, "status").as_deref(), Some("processing"));
    app.wait_for_status(id, "succeeded", Duration::from_secs(15))
        .await;
    assert_eq!(
        app.event_trail(id).await,
        ["created", "requires_action", "processing", "succeeded"]
    );
    app.stop().await;
}

#[tokio::test]
async fn the_shopper_cancelling_3ds_lands_on_the_cancel_url_as_failed() {
    let app = spawn_app().await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();
    let shop = app.pay_with_challenge(&checkout, "cancel").await;
    assert!(shop.starts_with("https://shop.example/cart?"), "{shop}");
    assert_eq!(query_value(&shop, "status").as_deref(), Some("failed"));
    let failed = app.wait_for_status(id, "failed", WAIT).await;
    assert_eq!(failed["failure"]["code"], "authentication_failed");
    app.stop().await;
}

#[tokio::test]
async fn get_notifications_are_pulled_from_msp() {
    let app = spawn_app_with(Options {
        notification_method: NotificationMethod::Get,
        ..Options::default()
    })
    .await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();
    let payment_url = app.open_challenge(&checkout).await;
    // Answer the challenge but never come back: only the GET notification can tell the gateway.
    app.answer_challenge(&payment_url, "Y").await;
    let done = app.wait_for_status(id, "succeeded", WAIT).await;
    assert_eq!(done["psp"]["status"], "completed");
    let events = app.events(id).await;
    assert_eq!(events.last().unwrap()["source"], "notification");
    app.stop().await;
}
