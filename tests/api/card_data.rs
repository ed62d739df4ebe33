//! No card number and no CVC, ever, in any Redis value or log line.

use std::time::Duration;

use crate::common::checkout::CheckoutRequest;
use crate::helpers::*;

/// The simulator's test cards, each with the last status MSP notifies for it here (3-D Secure,
/// where the card asks for it, is answered `Y`): the uncleared card is notified `uncleared`,
/// then `completed` once it clears; a card declined at creation is refused with an error, and
/// there is no order to notify about.
const TEST_CARDS: &[(&str, Option<&str>)] = &[
    ("4111111111111111", Some("completed")),
    ("374500000000015", Some("completed")),
    ("4242424242424242", None),
    ("4012001038488884", Some("declined")),
    ("4462000000000003", Some("completed")),
];
/// The card of the idempotent request, left waiting for 3-D Secure (nothing is notified).
const IDEMPOTENT_CARD: &str = "5500000000000004";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn no_card_number_or_cvc_reaches_redis_or_the_logs() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for (card, _) in TEST_CARDS {
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
        .json(&CheckoutRequest::new(IDEMPOTENT_CARD).body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Scan only once every notification has been processed (the gateway acknowledges one only
    // after storing it), so that what the notifications wrote and logged is scanned too.
    for ((_, last_notified), id) in TEST_CARDS.iter().zip(&ids) {
        if let Some(status) = last_notified {
            app.wait_for_acknowledged_notification(id, status, WAIT)
                .await;
        }
    }

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
    for card in TEST_CARDS
        .iter()
        .map(|(card, _)| *card)
        .chain([IDEMPOTENT_CARD])
    {
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

/// A card number typed into free text is refused whatever digits it is typed in (fullwidth from
/// a CJK input method, Arabic-Indic, Persian), and the email address is free text too: no card
/// number, no invisible or bidirectional characters, no markup. Nothing is created, and no
/// message repeats the value.
#[tokio::test]
async fn card_numbers_in_any_digits_and_invisible_text_are_refused_in_free_text_and_email() {
    use serde_json::{Value, json};
    let app = spawn_app().await;
    let fullwidth = "\u{FF14}\u{FF11}\u{FF11}\u{FF11} \u{FF11}\u{FF11}\u{FF11}\u{FF11} \u{FF11}\u{FF11}\u{FF11}\u{FF11} \u{FF11}\u{FF11}\u{FF11}\u{FF11}";
    let arabic_indic = "\u{665}\u{665}\u{660}\u{660}\u{660}\u{660}\u{660}\u{660}\u{660}\u{660}\u{660}\u{660}\u{660}\u{660}\u{660}\u{664}";
    let persian = "\u{6F4}\u{6F1}\u{6F1}\u{6F1}-\u{6F1}\u{6F1}\u{6F1}\u{6F1}-\u{6F1}\u{6F1}\u{6F1}\u{6F1}-\u{6F1}\u{6F1}\u{6F1}\u{6F1}";
    let cases: Vec<(&str, &str, Value)> = vec![
        ("reference", "reference", json!(fullwidth)),
        (
            "description",
            "description",
            json!(format!("Order {arabic_indic}")),
        ),
        ("metadata", "metadata.note", json!({"note": persian})),
        (
            "customer.email",
            "customer.email",
            json!(format!("{}@example.com", fullwidth.replace(' ', ""))),
        ),
        (
            "customer.email",
            "customer.email",
            json!(format!("{arabic_indic}@example.com")),
        ),
        (
            "customer.email",
            "customer.email",
            json!("jo\u{200B}@example.com"),
        ),
        (
            "customer.email",
            "customer.email",
            json!("\u{202E}moc.elpmaxe@oj"),
        ),
        (
            "customer.email",
            "customer.email",
            json!("jo\u{2066}@example.com"),
        ),
        (
            "customer.email",
            "customer.email",
            json!("<jo@example.com>"),
        ),
        (
            "customer.email",
            "customer.email",
            json!("jo<b>@example.com"),
        ),
    ];
    for (field, param, value) in cases {
        let mut body = CheckoutRequest::new("4111111111111111").body();
        match field.split_once('.') {
            Some((outer, inner)) => body[outer][inner] = value.clone(),
            None => body[field] = value.clone(),
        }
        let res = app.post_checkout(&body).await;
        assert_eq!(res.status(), 400, "{field} = {value}");
        let error = res.json::<Value>().await.unwrap()["error"].clone();
        assert_eq!(error["param"], param, "{value}: {error}");
        let message = error["message"].as_str().unwrap();
        for digits in [fullwidth, arabic_indic, persian] {
            assert!(!message.contains(digits), "{message}");
        }
    }
    // Nothing was stored.
    let list: Value = app
        .authed(reqwest::Method::GET, "/v1/checkouts")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"], json!([]), "{list}");
    // Digits of other scripts that are no card number stay welcome.
    let mut body = CheckoutRequest::new("4111111111111111").body();
    body["reference"] = json!("\u{FF11}\u{FF10}\u{FF10}\u{FF11}");
    body["customer"]["email"] = json!("zoë@例え.jp");
    assert_eq!(app.post_checkout(&body).await.status(), 201);
    app.stop().await;
}
