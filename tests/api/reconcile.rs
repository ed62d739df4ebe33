//! The reconciler: checkouts whose news never came are resolved by asking MSP, and
//! a 3DS session nobody finished expires. Passes are driven by moving the gateway's clock.

use chrono::TimeDelta;

use crate::helpers::*;

#[tokio::test]
async fn an_abandoned_3ds_session_expires_once_its_window_is_over() {
    let app = spawn_app().await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();
    let pay_url = pay_link(&checkout);

    // Within the window: MSP still says initialized, nothing changes.
    let looked = app.pass_after(TimeDelta::minutes(2)).await.unwrap();
    assert_eq!(looked, 1);
    assert_eq!(app.get_checkout(id).await["status"], "requires_action");

    // Past MSP's hour plus our margin.
    app.pass_after(TimeDelta::hours(3)).await.unwrap();
    let expired = app.get_checkout(id).await;
    assert_eq!(expired["status"], "expired");
    let last = app.events(id).await.pop().unwrap();
    assert_eq!(last["source"], "expiry");
    // The link now sends the shopper back to the shop with the final status.
    let shop = location(&app.get(&pay_url).await);
    assert_eq!(query_value(&shop, "status").as_deref(), Some("expired"));
    app.stop().await;
}

#[tokio::test]
async fn a_checkout_whose_notification_was_lost_is_resolved_by_asking_msp() {
    let app = spawn_app().await;
    let id = &app.authenticated_but_unheard("4111111111111111").await;

    app.pass_after(TimeDelta::minutes(2)).await.unwrap();
    assert_eq!(app.get_checkout(id).await["status"], "succeeded");
    let last = app.events(id).await.pop().unwrap();
    assert_eq!(last["source"], "reconcile");
    // Settled checkouts leave the index: the next pass looks at nothing.
    assert_eq!(app.pass_after(TimeDelta::hours(1)).await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn refresh_true_syncs_on_demand() {
    let app = spawn_app().await;
    let id = &app.authenticated_but_unheard("4111111111111111").await;
    let res = app
        .authed(
            reqwest::Method::GET,
            &format!("/v1/checkouts/{id}?refresh=true"),
        )
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "succeeded");
    assert_eq!(app.events(id).await.pop().unwrap()["source"], "refresh");
    app.stop().await;
}

#[tokio::test]
async fn a_record_that_does_not_decode_is_skipped_and_later_checkouts_are_still_reconciled() {
    use gateway::clock::Clock;
    use gateway::domain::checkout::CheckoutId;
    use gateway::store::keys::Keys;

    let app = spawn_app().await;
    let id = &app.authenticated_but_unheard("4111111111111111").await;
    // A record that does not decode, first in the reconciler's line (due at the epoch).
    let broken = CheckoutId::parse("chk_00000000000000000000000000000001").unwrap();
    let keys = Keys::new(app.prefix.clone());
    let client = redis::Client::open(app.redis_url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    redis::pipe()
        .cmd("HSET")
        .arg(keys.checkout(&broken))
        .arg("data")
        .arg("{not json")
        .arg("version")
        .arg(1)
        .cmd("PEXPIRE")
        .arg(keys.checkout(&broken))
        .arg(600_000)
        .cmd("ZADD")
        .arg(keys.sync_due())
        .arg(0)
        .arg(broken.as_str())
        .exec_async(&mut con)
        .await
        .unwrap();

    let looked = app.pass_after(TimeDelta::minutes(2)).await.unwrap();
    assert_eq!(looked, 2, "the broken record and the real checkout");
    assert_eq!(app.get_checkout(id).await["status"], "succeeded");

    // The broken record is back in the index, an hour on, not dropped and not first forever.
    let due: f64 = redis::cmd("ZSCORE")
        .arg(keys.sync_due())
        .arg(broken.as_str())
        .query_async(&mut con)
        .await
        .unwrap();
    let now = app.clock.now().timestamp() as f64;
    assert!(due >= now + 3_000.0, "due at {due}, now {now}");
    assert_eq!(app.pass_after(TimeDelta::minutes(5)).await.unwrap(), 0);
    assert_eq!(app.pass_after(TimeDelta::hours(1)).await.unwrap(), 1);
    app.stop().await;
}

/// MSP created a 3-D Secure order but its answer, the only place its pay link comes in, never
/// reached the gateway: the merchant heard `processing`, and nobody can ever finish the
/// challenge. The reconciler's first look finds MSP waiting for the shopper and cancels the
/// order, instead of leaving it `processing` until MSP expires it.
#[tokio::test]
async fn a_3ds_checkout_whose_create_answer_was_lost_is_cancelled_at_its_first_look() {
    let app = spawn_app_with(Options {
        timeout_ms: 1_000,
        ..Options::default()
    })
    .await;
    app.set_faults(serde_json::json!({"create_failure": "timeout"}))
        .await;
    let checkout = app.create("4111111111111111").await;
    let id = checkout["id"].as_str().unwrap();
    assert_eq!(checkout["status"], "processing", "{checkout}");
    assert!(checkout["next_action"].is_null(), "{checkout}");
    let at_msp = app.msp_order_status(id).await;
    assert_eq!(
        at_msp, "initialized",
        "MSP made the order and waits for 3-D Secure"
    );

    app.pass_after(TimeDelta::minutes(2)).await.unwrap();
    let after = app.get_checkout(id).await;
    assert_eq!(after["status"], "canceled", "{after}");
    // The reconciler's cancel made it, or MSP's notification of that cancel, when it arrived
    // before the cancel's own answer was stored.
    let last = app.events(id).await.pop().unwrap();
    assert_eq!(last["to"], "canceled", "{last}");
    assert!(
        last["source"] == "reconcile" || last["source"] == "notification",
        "{last}"
    );
    assert_eq!(app.msp_order_status(id).await, "void");
    // Final: the next pass has nothing to look at.
    assert_eq!(app.pass_after(TimeDelta::minutes(10)).await.unwrap(), 0);
    app.stop().await;
}
