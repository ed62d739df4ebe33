//! Point 4: MultiSafepay's test cards decide the outcome.

use std::time::Duration;

use crate::helpers::*;

/// (card, status after `Y` on the challenge, reason_code)
const CHALLENGED: &[(&str, &str, &str)] = &[
    ("4111111111111111", "completed", ""),
    ("4761340000000019", "completed", ""),
    ("5500000000000004", "completed", ""),
    ("4012001037461114", "declined", "3001"),
    ("374200000000004", "declined", "3001"),
    ("4012001038488884", "declined", "4002"),
    ("4917300000000008", "uncleared", ""),
    ("4462000000000003", "uncleared", ""),
    // Any other Luhn-valid number.
    ("4000000000000002", "completed", ""),
];

#[tokio::test]
async fn challenged_cards_end_as_the_table_says_after_y() {
    let sim = spawn().await;
    for (card, status, reason_code) in CHALLENGED {
        let id = order_id();
        let (http, created) = sim.create(&order_body(&id, card)).await;
        assert_eq!(http, 200, "{card}: {created}");
        assert_eq!(created["data"]["status"], "initialized", "{card}");
        let url = created["data"]["payment_url"].as_str().unwrap().to_owned();
        sim.answer(&url, "Y").await;
        let o = sim.order(&id).await;
        assert_eq!(o["status"], *status, "{card}: {o}");
        assert_eq!(o["financial_status"], *status, "{card}");
        assert_eq!(o["reason_code"], *reason_code, "{card}");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn frictionless_and_not_enrolled_cards_complete_at_creation() {
    let sim = spawn().await;
    for (card, flow) in [
        ("374500000000015", Some("frictionless")),
        ("4012001038443335", None),
    ] {
        let id = order_id();
        let (_, created) = sim.create(&order_body(&id, card)).await;
        let d = &created["data"];
        assert_eq!(d["status"], "completed", "{card}: {d}");
        assert!(d["customer_verification"].is_null(), "{card}");
        assert_eq!(
            d["payment_url"],
            format!("https://shop.example/ok?lang=nl&transactionid={id}"),
            "{card}"
        );
        assert_eq!(
            d["payment_details"]["card_authentication_details"]["flow"].as_str(),
            flow,
            "{card}"
        );
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn uncleared_cards_later_complete_or_void() {
    let sim = spawn_with(|c| c.uncleared_delay = Duration::from_millis(300)).await;
    for (card, later) in [
        ("4917300000000008", "void"),
        ("4462000000000003", "completed"),
    ] {
        let id = order_id();
        let (_, created) = sim.create(&order_body(&id, card)).await;
        let url = created["data"]["payment_url"].as_str().unwrap().to_owned();
        sim.answer(&url, "Y").await;
        assert_eq!(sim.order(&id).await["status"], "uncleared", "{card}");
        let o = sim.wait_status(&id, later, Duration::from_secs(5)).await;
        assert_eq!(o["status"], later, "{card}");
        assert_eq!(o["financial_status"], later, "{card}");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn card_4242_is_declined_at_creation_with_1024() {
    let sim = spawn().await;
    let id = order_id();
    let (http, answer) = sim.create(&order_body(&id, "4242424242424242")).await;
    assert_eq!(http, 402);
    assert_eq!(answer["success"], false);
    assert_eq!(answer["error_code"], 1024);
    sim.handle.stop().await;
}
