//! Refunds after the request: each has its own entry in `related_transactions`, `reserved` until
//! it settles on the simulator's clock, voidable while reserved, and notified at each change.

use std::time::Duration;

use serde_json::{Value, json};

use crate::after_payment::*;
use crate::helpers::*;

/// `SimulatorConfig::for_tests` keeps a refund reserved this long.
const REFUND_DELAY_S: u64 = 60;
const PROMPTLY: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_refund_is_reserved_on_the_order_then_completes_when_the_clock_passes_the_delay() {
    let sim = spawn().await;
    let id = sim.paid_order(None).await;
    let refund_id = sim
        .refund_ok(
            &id,
            json!({"currency": "EUR", "amount": 400, "refund_order_id": "re-42", "description": "one mug"}),
        )
        .await;
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("partial_refunded"), Some(400)),
        "the order shows the refund at once"
    );
    let r = related(&o, refund_id);
    assert_eq!(r["type"], "refund", "{o}");
    assert_eq!(r["status"], "reserved");
    assert_eq!(r["amount"], 400);
    assert_eq!(r["currency"], "EUR");
    assert_eq!(r["refund_order_id"], "re-42");
    assert_eq!(r["description"], "one mug");
    assert_eq!(r["order_id"], id.as_str());
    assert_eq!(r["reference_transaction_id"], o["transaction_id"]);
    for t in ["created", "modified"] {
        let s = r[t].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok(),
            "{t}: {s}"
        );
    }

    sim.advance(REFUND_DELAY_S - 5).await;
    assert_eq!(
        related(&sim.order(&id).await, refund_id)["status"],
        "reserved",
        "not yet"
    );
    sim.advance(5).await;
    let o = sim
        .wait_order(&id, PROMPTLY, |o| {
            related(o, refund_id)["status"] == "completed"
        })
        .await;
    assert_eq!(related(&o, refund_id)["status"], "completed", "{o}");
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("partial_refunded"), Some(400)),
        "settling changes only the refund"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn the_default_refund_id_is_the_order_id() {
    let sim = spawn().await;
    let id = sim.paid_order(None).await;
    let refund_id = sim.refund_ok(&id, json!({"currency": "EUR"})).await;
    let o = sim.order(&id).await;
    assert_eq!(related(&o, refund_id)["refund_order_id"], id.as_str());
    assert_eq!(related(&o, refund_id)["amount"], 1000);
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_voided_refund_gives_its_amount_back_and_never_settles() {
    let sim = spawn().await;
    let id = sim.paid_order(None).await;
    let small = sim
        .refund_ok(&id, json!({"currency": "EUR", "amount": 300}))
        .await;
    let large = sim
        .refund_ok(&id, json!({"currency": "EUR", "amount": 700}))
        .await;
    assert_eq!(sim.order(&id).await["status"], "refunded");

    let (status, answer) = sim
        .patch_refund(
            &id,
            &large.to_string(),
            json!({"status": "void", "description": "oops"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"success": true, "data": {}}));
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("partial_refunded"), Some(300))
    );
    assert_eq!(related(&o, large)["status"], "void");
    assert_eq!(related(&o, large)["amount"], 700, "the entry stays, voided");

    let (status, answer) = sim
        .patch_refund(&id, &small.to_string(), json!({"status": "void"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let o = sim.order(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["amount_refunded"].as_u64()),
        (Some("completed"), Some(0)),
        "back to completed"
    );

    // A refund made after these settles after them; once it has, they have had their turn.
    let later = sim.paid_order(None).await;
    let witness = sim.refund_ok(&later, json!({"currency": "EUR"})).await;
    sim.advance(REFUND_DELAY_S).await;
    let settled = sim
        .wait_order(&later, PROMPTLY, |o| {
            related(o, witness)["status"] == "completed"
        })
        .await;
    assert_eq!(related(&settled, witness)["status"], "completed");
    let o = sim.order(&id).await;
    assert_eq!(related(&o, small)["status"], "void");
    assert_eq!(related(&o, large)["status"], "void");
    assert_eq!(o["amount_refunded"], 0);
    sim.handle.stop().await;
}

#[tokio::test]
async fn only_a_reserved_refund_of_this_order_and_site_can_be_voided() {
    let sim = spawn().await;
    let id = sim.paid_order(None).await;
    let done = sim
        .refund_ok(&id, json!({"currency": "EUR", "amount": 100}))
        .await;
    sim.advance(REFUND_DELAY_S).await;
    sim.wait_order(&id, PROMPTLY, |o| related(o, done)["status"] == "completed")
        .await;
    let reserved = sim
        .refund_ok(&id, json!({"currency": "EUR", "amount": 200}))
        .await;
    let void = json!({"status": "void"});
    let cases: Vec<(String, String, Value, u16, u64, &str)> = vec![
        (
            id.clone(),
            done.to_string(),
            void.clone(),
            409,
            1000,
            "completed",
        ),
        (
            id.clone(),
            "123".into(),
            void.clone(),
            404,
            1006,
            "unknown refund",
        ),
        (
            id.clone(),
            "not-a-number".into(),
            void.clone(),
            404,
            1006,
            "not an id",
        ),
        (
            "no-such-order".into(),
            reserved.to_string(),
            void.clone(),
            404,
            1006,
            "unknown order",
        ),
        (
            id.clone(),
            reserved.to_string(),
            json!({"status": "completed"}),
            400,
            1000,
            "only void",
        ),
    ];
    for (order, refund, body, http, code, why) in cases {
        let (status, answer) = sim.patch_refund(&order, &refund, body).await;
        assert_eq!(
            (status, answer["error_code"].as_u64()),
            (http, Some(code)),
            "{why}: {answer}"
        );
        assert_eq!(answer["success"], false, "{why}");
    }
    let r = sim
        .http
        .patch(sim.url(&format!("/orders/{id}/refunds/{reserved}")))
        .header("api_key", OTHER_KEY)
        .json(&void)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "another site's order");
    assert_eq!(
        related(&sim.order(&id).await, reserved)["status"],
        "reserved",
        "refusals change nothing"
    );
    let (status, _) = sim
        .patch_refund(&id, &reserved.to_string(), void.clone())
        .await;
    assert_eq!(status, 200);
    let (status, answer) = sim.patch_refund(&id, &reserved.to_string(), void).await;
    assert_eq!(
        (status, answer["error_code"].as_u64()),
        (409, Some(1000)),
        "voided already: {answer}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn the_same_amount_is_refused_for_five_minutes_of_the_simulator_clock() {
    let sim = spawn().await;
    let id = sim.paid_order(None).await;
    sim.refund_ok(&id, json!({"currency": "EUR", "amount": 100}))
        .await;
    let (status, answer) = sim
        .refund(&id, json!({"currency": "EUR", "amount": 100}))
        .await;
    assert_eq!((status, answer["error_code"].as_u64()), (422, Some(1034)));
    sim.advance(290).await;
    let (status, answer) = sim
        .refund(&id, json!({"currency": "EUR", "amount": 100}))
        .await;
    assert_eq!(
        (status, answer["error_code"].as_u64()),
        (422, Some(1034)),
        "4:50 later"
    );
    sim.advance(10).await;
    sim.refund_ok(&id, json!({"currency": "EUR", "amount": 100}))
        .await;
    assert_eq!(sim.order(&id).await["amount_refunded"], 200);
    sim.handle.stop().await;
}

#[tokio::test]
async fn each_change_of_a_refund_is_notified_with_the_order_as_it_then_was() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = sim.paid_order(Some(&format!("{}/ok", notify.uri()))).await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let settles = sim
        .refund_ok(&id, json!({"currency": "EUR", "amount": 400}))
        .await;
    sim.wait_attempts(&id, 2, Duration::from_secs(5)).await;
    let voided = sim
        .refund_ok(&id, json!({"currency": "EUR", "amount": 600}))
        .await;
    sim.wait_attempts(&id, 3, Duration::from_secs(5)).await;
    let (status, _) = sim
        .patch_refund(&id, &voided.to_string(), json!({"status": "void"}))
        .await;
    assert_eq!(status, 200);
    sim.wait_attempts(&id, 4, Duration::from_secs(5)).await;
    sim.advance(REFUND_DELAY_S).await;
    let attempts = sim.wait_attempts(&id, 5, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 5, "{attempts:?}");

    let posted = posted_orders(&notify, &id).await;
    let seen: Vec<(String, u64, String, String)> = posted
        .iter()
        .map(|o| {
            (
                o["status"].as_str().unwrap().to_owned(),
                o["amount_refunded"].as_u64().unwrap(),
                related(o, settles)["status"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned(),
                related(o, voided)["status"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned(),
            )
        })
        .collect();
    let expected = [
        ("completed", 0, "-", "-"),
        ("partial_refunded", 400, "reserved", "-"),
        ("refunded", 1000, "reserved", "reserved"),
        ("partial_refunded", 400, "reserved", "void"),
        ("partial_refunded", 400, "completed", "void"),
    ]
    .map(|(s, a, x, y)| (s.to_owned(), a, x.to_owned(), y.to_owned()));
    assert_eq!(seen, expected);
    for r in received_for(&notify, &id).await {
        let ts: i64 = query(&r, "timestamp").unwrap().parse().unwrap();
        assert_eq!(
            verify_auth(KEY, r.headers["auth"].to_str().unwrap(), &r.body),
            Some(ts),
            "signed as any notification"
        );
        assert!(
            (unix_now() - ts).abs() <= 2,
            "real time, clock moved or not"
        );
    }
    sim.handle.stop().await;
}
