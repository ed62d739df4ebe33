//! The reconciler (design §7): checkouts whose news never came are resolved by asking MSP, and
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
