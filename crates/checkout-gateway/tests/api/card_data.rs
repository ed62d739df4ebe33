//! No card number and no CVC, ever, in any Redis value or log line (design §3, §6).

use std::time::Duration;

use crate::common::checkout::CheckoutRequest;
use crate::helpers::*;

const TEST_CARDS: &[&str] = &[
    "4111111111111111",
    "374500000000015",
    "4242424242424242",
    "4012001038488884",
    "4462000000000003",
];

#[tokio::test]
async fn no_card_number_or_cvc_reaches_redis_or_the_logs() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for card in TEST_CARDS {
        let checkout = app.create(card).await;
        ids.push(checkout["id"].as_str().unwrap().to_owned());
        if checkout["status"] == "requires_action" {
            app.pay_with_challenge(&checkout, "Y").await;
        }
    }
    // Idempotent requests store a response and a fingerprint: scan those too.
    let res = app
        .authed(reqwest::Method::POST, "/v1/checkouts")
        .header("Idempotency-Key", "scan-me")
        .json(&CheckoutRequest::new("5500000000000004").body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let dump = app.redis_dump().await;
    assert!(
        dump.len() >= TEST_CARDS.len() * 2,
        "the scan sees the stored keys: {}",
        dump.len()
    );
    assert!(
        dump.iter()
            .any(|(_, v)| v.contains(&ids[0]) && v.contains("last4")),
        "the scan reads the stored values as text"
    );
    let logs = captured_logs();
    assert!(logs.contains(&ids[0]), "the scan sees this test's logs");
    for card in TEST_CARDS.iter().chain(["5500000000000004"].iter()) {
        for (key, value) in &dump {
            assert!(!value.contains(card), "card number in Redis under {key}");
        }
        assert!(!logs.contains(card), "card number in the logs");
    }
    for (key, value) in &dump {
        let lower = value.to_lowercase();
        assert!(
            !lower.contains("cvc"),
            "a CVC field in Redis under {key}: {value}"
        );
        assert!(
            !lower.contains("card_number"),
            "a card number field in Redis under {key}"
        );
    }
    for line in logs.lines() {
        let lower = line.to_lowercase();
        assert!(
            !lower.contains("\"cvc\"") && !lower.contains("card_cvc"),
            "a CVC in a log line: {line}"
        );
    }
    app.stop().await;
}
