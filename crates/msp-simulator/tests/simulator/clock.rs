//! The simulator's clock: `PUT /sim/clock` moves it, every timer reads it, and
//! notifications are still signed with the real time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

/// How soon after an advance a due change must show (design: within about 100 ms; the margin
/// is for a loaded machine).
const PROMPTLY: Duration = Duration::from_secs(1);

#[tokio::test]
async fn the_clock_starts_at_the_real_time_and_only_moves_forward() {
    let sim = spawn().await;
    let c = sim.clock().await;
    assert!((c["unix"].as_i64().unwrap() - unix_now()).abs() <= 2, "{c}");
    assert_eq!(c["advanced_s"], 0);
    let now = chrono::DateTime::parse_from_rfc3339(c["now"].as_str().unwrap()).unwrap();
    assert!((now.timestamp() - unix_now()).abs() <= 2, "{c}");

    let moved = sim.advance(3600).await;
    assert!(
        (moved["unix"].as_i64().unwrap() - (unix_now() + 3600)).abs() <= 2,
        "{moved}"
    );
    assert_eq!(moved["advanced_s"], 3600);
    assert_eq!(sim.advance(0).await["advanced_s"], 3600, "0 is a no-op");

    let url = format!("{}/sim/clock", sim.local());
    for (body, why) in [
        (json!({"advance_s": -5}), "backwards"),
        (json!({"advance_s": 1.5}), "not whole seconds"),
        (json!({"advance": 5}), "unknown field"),
        (json!({}), "nothing to do"),
        (json!({"advance_s": 10_000_000_000_u64}), "too far"),
    ] {
        let r = sim.http.put(&url).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{why}");
        let answer: Value = r.json().await.unwrap();
        assert!(answer["error"].is_string(), "{why}: {answer}");
    }
    assert_eq!(
        sim.clock().await["advanced_s"],
        3600,
        "refusals change nothing"
    );

    // Orders are stamped with the simulator's time, as MSP writes it: Amsterdam wall time.
    let id = sim.paid_order(None).await;
    let created = chrono::NaiveDateTime::parse_from_str(
        sim.order(&id).await["created"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S",
    )
    .unwrap();
    let created = created
        .and_local_timezone(chrono_tz::Europe::Amsterdam)
        .earliest()
        .unwrap();
    assert!(
        (created.timestamp() - (unix_now() + 3600)).abs() <= 2,
        "{created}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn an_unanswered_challenge_expires_when_the_clock_passes_its_window() {
    let sim = spawn_with(|c| c.challenge_expiry = Duration::from_secs(3600)).await;
    let id = order_id();
    sim.create(&order_body(&id, "4111111111111111")).await;
    sim.advance(3590).await;
    assert_eq!(sim.order(&id).await["status"], "initialized", "not yet");
    sim.advance(10).await;
    let moved = Instant::now();
    let o = sim.wait_status(&id, "expired", PROMPTLY).await;
    assert_eq!(
        o["status"],
        "expired",
        "{:?} after the advance",
        moved.elapsed()
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn an_uncleared_payment_settles_when_the_clock_passes_the_delay() {
    let sim = spawn_with(|c| c.uncleared_delay = Duration::from_secs(180)).await;
    for (card, settled) in [
        ("4462000000000003", "completed"),
        ("4917300000000008", "void"),
    ] {
        let id = order_id();
        let (_, created) = sim.create(&order_body(&id, card)).await;
        sim.answer(created["data"]["payment_url"].as_str().unwrap(), "Y")
            .await;
        assert_eq!(sim.order(&id).await["status"], "uncleared", "{card}");
        sim.advance(180).await;
        let o = sim.wait_status(&id, settled, PROMPTLY).await;
        assert_eq!(o["status"], settled, "{card}");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_retry_comes_due_with_the_clock_and_is_signed_with_the_real_time() {
    // MSP's own interval: nothing is retried unless the clock moves.
    let sim = spawn_with(|c| c.notification_retry_interval = Duration::from_secs(900)).await;
    let notify = receiver().await;
    let id = sim
        .paid_order(Some(&format!("{}/fail", notify.uri())))
        .await;
    assert_eq!(
        sim.wait_attempts(&id, 1, Duration::from_secs(5))
            .await
            .len(),
        1
    );
    sim.advance(900).await;
    let attempts = sim.wait_attempts(&id, 2, PROMPTLY).await;
    assert_eq!(attempts.len(), 2, "the first retry came due: {attempts:?}");
    assert_eq!(attempts[1]["attempt"], 2);
    let second = &received_for(&notify, &id).await[1];
    let ts: i64 = query(second, "timestamp").unwrap().parse().unwrap();
    assert!(
        (unix_now() - ts).abs() <= 2,
        "the real Unix time, not the simulator's: {ts}"
    );
    assert_eq!(
        verify_auth(KEY, second.headers["auth"].to_str().unwrap(), &second.body),
        Some(ts)
    );
    // The rest come due one interval apart, on the simulator's clock.
    for n in [3, 4] {
        sim.advance(900).await;
        assert_eq!(sim.wait_attempts(&id, n, PROMPTLY).await.len(), n);
    }
    sim.handle.stop().await;
}
