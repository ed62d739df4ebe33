//! Point 3: the order object, and no full card number or CVC anywhere.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_order_object_has_the_documented_fields() {
    let sim = spawn().await;
    let id = order_id();
    let (_, created) = sim.create(&order_body(&id, "4111111111111111")).await;
    let c = &created["data"];
    assert!(c["payment_url"].is_string() && c["customer_verification"].is_object());
    let payment_url = c["payment_url"].as_str().unwrap().to_owned();
    sim.answer(&payment_url, "Y").await;
    let o = sim.order(&id).await;
    assert!(o["transaction_id"].is_u64(), "{o}");
    assert_eq!(o["transaction_id"], c["transaction_id"]);
    assert_eq!(o["order_id"], id.as_str());
    assert_eq!(o["status"], "completed");
    assert_eq!(o["financial_status"], "completed");
    assert_eq!(o["reason_code"], "");
    assert!(o["reason"].is_string());
    assert_eq!(o["amount"], 1000);
    assert_eq!(o["amount_refunded"], 0);
    assert_eq!(o["currency"], "EUR");
    for t in ["created", "modified"] {
        let s = o[t].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok(),
            "{t}: {s}"
        );
    }
    assert_eq!(o["customer"]["email"], "j@example.com");
    assert_eq!(o["customer"]["country"], "NL");
    let pd = &o["payment_details"];
    assert_eq!(pd["type"], "VISA");
    assert_eq!(pd["last4"], "1111");
    assert_eq!(pd["card_expiry_date"], "3012");
    assert_eq!(pd["card_authentication_result"]["status"], "Y");
    let pm = &o["payment_methods"][0];
    assert_eq!(
        (
            pm["type"].as_str(),
            pm["status"].as_str(),
            pm["amount"].as_u64()
        ),
        (Some("VISA"), Some("completed"), Some(1000))
    );
    assert!(o["related_transactions"].is_null());
    sim.handle.stop().await;
}

#[tokio::test]
async fn no_answer_and_no_notification_carries_the_card_number_or_the_cvc() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = order_id();
    let mut body = notified_order(
        &id,
        "374500000000015",
        &format!("{}/ok", notify.uri()),
        Some("POST"),
    );
    body["gateway_info"]["card_cvc"] = json!("7319");
    let (_, created) = sim.create(&body).await;
    let got = sim.order(&id).await;
    let received = sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    let posted = received_for(&notify, &id).await;
    let texts = [
        created.to_string(),
        got.to_string(),
        String::from_utf8(posted[0].body.clone()).unwrap(),
        serde_json::to_string(&received).unwrap(),
    ];
    for t in texts {
        assert!(
            !t.contains("374500000000015"),
            "full card number leaked: {t}"
        );
        assert!(!t.contains("7319"), "CVC leaked: {t}");
        assert!(!t.contains("cvc"), "a CVC field leaked: {t}");
    }
    sim.handle.stop().await;
}
