//! Refunds against the simulator: reserved atomically, sent once, settled as
//! MultiSafepay settles them, never doubled after a lost answer.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(30);

impl TestApp {
    /// `POST /v1/checkouts/{id}/refunds` with `body`: the status and the JSON answer.
    async fn refund(&self, checkout_id: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .authed(
                Method::POST,
                &format!("/v1/checkouts/{checkout_id}/refunds"),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    async fn get_refund(&self, refund_id: &str) -> Value {
        let res = self
            .authed(Method::GET, &format!("/v1/refunds/{refund_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// Polls until the refund has `status` (MSP's notification arrives asynchronously).
    async fn wait_for_refund(&self, refund_id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let refund = self.get_refund(refund_id).await;
            if refund["status"] == status {
                return refund;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "refund {refund_id} did not become {status}: {refund}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The refunds MultiSafepay received for order `id`.
    async fn msp_refunds(&self, id: &str) -> Vec<Value> {
        let order = self.msp_order(id).await;
        order["related_transactions"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|t| t["type"] == "refund")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Moves the simulator's clock (`PUT /sim/clock`): reserved refunds settle.
    async fn advance_msp_clock(&self, seconds: u64) {
        let res = self
            .client
            .put(format!("{}/sim/clock", self.sim.base_url()))
            .json(&json!({"advance_s": seconds}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// A checkout that succeeded at creation (frictionless card): 3495 minor units.
    async fn paid_checkout(&self) -> String {
        let checkout = self.create("374500000000015").await;
        assert_eq!(checkout["status"], "succeeded");
        checkout["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn partial_then_full_refund_settle_as_msp_settles_them() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;

    let (status, refund) = app
        .refund(&id, json!({"amount": 1000, "reason": "requested_by_customer", "metadata": {"ticket": "T-9"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    let refund_id = refund["id"].as_str().unwrap().to_owned();
    assert!(
        refund_id.starts_with("re_") && refund_id.len() == 35,
        "{refund}"
    );
    assert_eq!(refund["status"], "pending");
    assert_eq!(refund["amount"], 1000);
    assert_eq!(refund["currency"], "EUR");
    assert_eq!(refund["checkout_id"], id.as_str());
    assert_eq!(refund["reason"], "requested_by_customer");
    assert_eq!(refund["metadata"]["ticket"], "T-9");
    assert_eq!(refund["psp"]["refund_order_id"], refund_id.as_str());
    // MSP shows the request on the order at once; the checkout waits for the refund to complete.
    let checkout = app.get_checkout(&id).await;
    assert_eq!(
        (
            checkout["status"].as_str(),
            checkout["amount_refunded"].as_i64()
        ),
        (Some("succeeded"), Some(0))
    );

    app.advance_msp_clock(24 * 3600).await;
    let settled = app.wait_for_refund(&refund_id, "succeeded").await;
    assert_eq!(settled["psp"]["status"], "completed");
    let checkout = app.wait_for_status(&id, "partially_refunded", WAIT).await;
    assert_eq!(checkout["amount_refunded"], 1000);

    // No amount: everything that is left.
    let (status, rest) = app.refund(&id, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{rest}");
    assert_eq!(rest["amount"], 2495);
    app.advance_msp_clock(24 * 3600).await;
    app.wait_for_refund(rest["id"].as_str().unwrap(), "succeeded")
        .await;
    let checkout = app.wait_for_status(&id, "refunded", WAIT).await;
    assert_eq!(checkout["amount_refunded"], 3495);
    let trail = app.event_trail(&id).await;
    assert_eq!(
        trail,
        ["created", "succeeded", "partially_refunded", "refunded"]
    );

    let listed = app.listed_refunds(&id).await;
    let ids: Vec<&str> = listed.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [refund_id.as_str(), rest["id"].as_str().unwrap()],
        "oldest first"
    );
    let (status, error) = app.refund(&id, json!({"amount": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "checkout_not_refundable");
    assert_eq!(
        app.msp_refunds(&id).await.len(),
        2,
        "MSP received each refund once"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_refund_requests_are_refused_and_reach_nobody() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    let cases = [
        (json!({"amount": 0}), "invalid_amount", Some("amount")),
        (json!({"amount": -5}), "invalid_amount", Some("amount")),
        (json!({"amount": "500"}), "invalid_type", Some("amount")),
        (json!({"amount": 3496}), "amount_too_large", Some("amount")),
        (
            json!({"reason": "whim"}),
            "invalid_parameter",
            Some("reason"),
        ),
        (json!({"amout": 500}), "unknown_field", Some("amout")),
    ];
    for (body, code, param) in cases {
        let (status, error) = app.refund(&id, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        assert_eq!(error["error"]["param"].as_str(), param, "{body}");
    }
    let (status, error) = app
        .refund("chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b", json!({}))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("resource_missing"))
    );
    // A checkout waiting for 3-D Secure has nothing to refund.
    let pending = app.create("4111111111111111").await;
    let (status, error) = app.refund(pending["id"].as_str().unwrap(), json!({})).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("checkout_not_refundable"))
    );
    assert!(
        app.msp_refunds(&id).await.is_empty(),
        "none of these reached MSP"
    );
    assert!(app.get_checkout(&id).await["status"] == "succeeded");
    app.stop().await;
}

/// Ten refunds at once, of ten different amounts (MSP refuses the same amount twice within five
/// minutes) of which any five fit and no six: exactly five are made, whatever the interleaving.
#[tokio::test]
async fn concurrent_refunds_never_exceed_the_amount() {
    let app = spawn_app().await;
    for round in 0..3 {
        let id = app.paid_checkout().await;
        let answers = futures_util::future::join_all(
            (0..10).map(|i| app.refund(&id, json!({"amount": 600 + 10 * i}))),
        )
        .await;
        let created = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        let too_large: Vec<_> = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::BAD_REQUEST)
            .map(|(_, e)| e["error"]["code"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(created, 5, "round {round}: {answers:?}");
        assert_eq!(too_large, vec!["amount_too_large"; 5], "round {round}");
        assert_eq!(
            app.msp_refunds(&id).await.len(),
            5,
            "round {round}: MSP received exactly five"
        );
    }
    app.stop().await;
}

/// MSP makes the refund but its answer never arrives: the refund stays pending, is found at MSP
/// by its refund_order_id, is not sent again, and succeeds when MSP settles it.
#[tokio::test]
async fn a_refund_whose_answer_was_lost_is_found_at_msp_not_sent_twice() {
    let app = spawn_app_with(Options {
        timeout_ms: 500,
        ..Options::default()
    })
    .await;
    let id = app.paid_checkout().await;
    app.set_faults(json!({"refund_failure": "timeout"})).await;
    let (status, refund) = app.refund(&id, json!({"amount": 700})).await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(refund["status"], "pending");
    assert_eq!(
        refund["psp"]["transaction_id"],
        Value::Null,
        "MSP's answer never came"
    );
    app.set_faults(json!({"refund_failure": "none"})).await;

    // The reconciler asks MSP, finds the refund by its refund_order_id, and leaves it at that.
    // (The gateway's clock moves less than the notification tolerance, 10 minutes, in all: MSP
    // signs its notifications with the real time.)
    let looked = app.pass_after(chrono::TimeDelta::minutes(1)).await.unwrap();
    assert!(looked >= 1);
    let refund_id = refund["id"].as_str().unwrap();
    let found = app.get_refund(refund_id).await;
    assert!(found["psp"]["transaction_id"].is_string(), "{found}");
    // The next look, after the reconciler's shortest interval (5 minutes), sends nothing either.
    assert_eq!(
        app.pass_after(chrono::TimeDelta::minutes(6)).await.unwrap(),
        1
    );
    assert_eq!(app.msp_refunds(&id).await.len(), 1, "never sent twice");

    app.advance_msp_clock(24 * 3600).await;
    app.wait_for_refund(refund_id, "succeeded").await;
    let checkout = app.wait_for_status(&id, "partially_refunded", WAIT).await;
    assert_eq!(checkout["amount_refunded"], 700);
    app.stop().await;
}

#[tokio::test]
async fn a_pending_refund_can_be_canceled_and_its_amount_is_free_again() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    let (_, refund) = app.refund(&id, json!({"amount": 3495})).await;
    let refund_id = refund["id"].as_str().unwrap().to_owned();
    let (status, _) = app.refund(&id, json!({"amount": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "everything is reserved");

    let cancel = |app: &TestApp| {
        app.authed(Method::POST, &format!("/v1/refunds/{refund_id}/cancel"))
            .send()
    };
    let res = cancel(&app).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let canceled: Value = res.json().await.unwrap();
    assert_eq!(canceled["status"], "canceled");
    let res = cancel(&app).await.unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let error: Value = res.json().await.unwrap();
    assert_eq!(error["error"]["code"], "refund_not_cancelable");

    let (status, again) = app.refund(&id, json!({"amount": 3495})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the amount is free again: {again}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_charged_back_checkout_is_charged_back_and_not_refundable() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    let res = app
        .client
        .post(format!("{}/sim/orders/{id}/chargeback", app.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    app.wait_for_status(&id, "charged_back", WAIT).await;
    // Its dispute is open, which is checked before the status.
    let (status, error) = app.refund(&id, json!({})).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("checkout_disputed"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_refund_msp_declines_when_it_would_settle_fails_and_frees_its_amount() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    app.set_faults(json!({"refund_failure": "declined"})).await;
    let (status, refund) = app.refund(&id, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    app.set_faults(json!({"refund_failure": "none"})).await;
    app.advance_msp_clock(24 * 3600).await;
    let failed = app
        .wait_for_refund(refund["id"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(failed["failure"]["code"], "refund_declined");
    let checkout = app.get_checkout(&id).await;
    assert_eq!(
        (
            checkout["status"].as_str(),
            checkout["amount_refunded"].as_i64()
        ),
        (Some("succeeded"), Some(0))
    );
    let (status, again) = app.refund(&id, json!({"amount": 3495})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the amount is free again: {again}"
    );
    app.stop().await;
}

/// A refund's cost in Redis round trips, on a Redis of the test's own with nothing else
/// running: MSP's notifications are dropped, the reconciler is off.
#[tokio::test]
async fn a_refund_costs_a_few_redis_round_trips() {
    let redis = crate::common::redis_server::TestRedis::start();
    let app = spawn_app_with(Options {
        redis_url: Some(redis.url().to_owned()),
        ..Options::default()
    })
    .await;
    app.set_faults(json!({"drop_notifications": true})).await;
    let id = app.paid_checkout().await;
    let keyed_refund = |key: &'static str, amount: i64| {
        app.authed(Method::POST, &format!("/v1/checkouts/{id}/refunds"))
            .header("Idempotency-Key", key)
            .json(&json!({"amount": amount}))
            .send()
    };
    // Once with and once without a key first, so that Redis has loaded every script (a fresh
    // server answers a script's first call NOSCRIPT, and the client loads it: two more).
    assert_eq!(
        app.refund(&id, json!({"amount": 10})).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        keyed_refund("rt-0", 20).await.unwrap().status(),
        StatusCode::CREATED
    );

    let mut monitor = RedisMonitor::start(redis.url()).await;
    let (status, refund) = app.refund(&id, json!({"amount": 100})).await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    let keyless = monitor.commands().await;
    let res = keyed_refund("rt-1", 200).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let keyed = monitor.commands().await;

    eprintln!(
        "keyless {}: {keyless:?}; keyed {}: {keyed:?}",
        keyless.len(),
        keyed.len()
    );
    assert!(keyless.len() <= 3, "keyless refund: {keyless:?}");
    assert!(keyed.len() <= 5, "keyed refund: {keyed:?}");
    app.stop().await;
}

impl TestApp {
    /// Claims `key` for refund `body` of checkout `id` as `POST /v1/checkouts/{id}/refunds`
    /// does, recording `refund_id`: what a request does first. Answers the claim's owner token.
    async fn claim_refund_key(
        &self,
        id: &str,
        key: &str,
        body: &Value,
        refund_id: &gateway::domain::refund::RefundId,
    ) -> String {
        let key = gateway::api::idempotency::IdempotencyKey::parse(key)
            .unwrap()
            .scoped(&format!("POST /v1/checkouts/{id}/refunds"));
        let fingerprint = gateway::api::idempotency::fingerprint_json(
            &self.state,
            &serde_json::to_vec(body).unwrap(),
        );
        let claim = gateway::store::Claim {
            fingerprint: &fingerprint,
            resource: Some(refund_id.as_str()),
            now_ms: self.state.flows.clock.now().timestamp_millis(),
            in_flight_ms: Some(60_000),
        };
        match self
            .state
            .flows
            .store
            .idempotency_claim(key.as_str(), &claim)
            .await
            .unwrap()
        {
            gateway::store::IdempotencyBegin::Started { owner, .. } => owner,
            other => panic!("a fresh key: {other:?}"),
        }
    }

    /// Releases a claim as a request that failed with "nothing was sent" does.
    async fn release_refund_key(&self, id: &str, key: &str, owner: &str) {
        let key = gateway::api::idempotency::IdempotencyKey::parse(key)
            .unwrap()
            .scoped(&format!("POST /v1/checkouts/{id}/refunds"));
        self.state
            .flows
            .store
            .idempotency_abort(key.as_str(), owner)
            .await
            .unwrap();
    }

    /// Reserves pending refund `refund_id` of `amount` on checkout `id` in the store alone, as
    /// a reservation lands when its writer is gone.
    async fn land_reservation(
        &self,
        id: &str,
        refund_id: &gateway::domain::refund::RefundId,
        amount: i64,
    ) {
        use gateway::domain::checkout::{CheckoutId, EventSource};
        use gateway::domain::refund::{Refund, RefundPsp, RefundStatus};
        let now = self.state.flows.clock.now();
        let refund = Refund {
            id: refund_id.clone(),
            source: Default::default(),
            amount: gateway::domain::money::MinorUnits::new(amount).unwrap(),
            status: RefundStatus::Pending,
            reason: None,
            failure: None,
            metadata: Default::default(),
            psp: RefundPsp::default(),
            created_at: now,
            updated_at: now,
        };
        gateway::flows::apply::apply(
            &self.state.flows,
            &CheckoutId::parse(id).unwrap(),
            EventSource::Api,
            gateway::flows::transition::News::RefundRequested(&refund),
        )
        .await
        .unwrap();
    }

    /// A checkout that succeeded at creation for `amount` minor units (one item, no shipping).
    async fn paid_checkout_of(&self, amount: i64) -> String {
        let mut body = crate::common::checkout::CheckoutRequest::new("374500000000015").body();
        body["items"] = json!([{"name": "Crate", "sku": "CR-1", "quantity": 1, "unit_amount": amount, "tax_rate": "0.21"}]);
        body["shipping_amount"] = json!(0);
        body["amount"] = json!(amount);
        let res = self.post_checkout(&body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let checkout: Value = res.json().await.unwrap();
        assert_eq!(checkout["status"], "succeeded", "{checkout}");
        checkout["id"].as_str().unwrap().to_owned()
    }

    /// A refund under an `Idempotency-Key`: the status, whether it was a replay, and the JSON.
    async fn keyed_refund(
        &self,
        checkout_id: &str,
        key: &str,
        body: Value,
    ) -> (StatusCode, bool, Value) {
        let res = self
            .authed(
                Method::POST,
                &format!("/v1/checkouts/{checkout_id}/refunds"),
            )
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let replayed = res.headers().get("Idempotent-Replayed").is_some();
        (res.status(), replayed, res.json().await.unwrap())
    }

    /// The checkout's refunds as `GET /v1/checkouts/{id}/refunds` lists them.
    async fn listed_refunds(&self, id: &str) -> Vec<Value> {
        let page: Value = self
            .authed(
                Method::GET,
                &format!("/v1/checkouts/{id}/refunds?limit=100"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["has_more"], false, "{page}");
        serde_json::from_value(page["data"].clone()).unwrap()
    }

    /// Whether MSP has received a refund call for order `id` (by the simulator's record).
    async fn msp_got_refund_call(&self, id: &str) -> bool {
        let calls: Vec<Value> = reqwest::get(format!("{}/sim/requests", self.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        calls
            .iter()
            .any(|c| c["method"] == "POST" && c["path"] == format!("/v1/json/orders/{id}/refunds"))
    }
}

/// A hundred keyed refunds of one checkout at once, of a hundred different amounts that fit
/// together: every one is made (none fails for the others' sake), and each retried with its key,
/// once MSP would take the same amount again, replays its refund instead of making another.
#[tokio::test]
async fn a_hundred_keyed_refunds_at_once_all_succeed_and_each_retry_replays_its_own() {
    // Redis is not the subject: a loaded test machine must not make it look unavailable.
    let app = spawn_app_with(Options {
        redis_command_timeout_ms: 5_000,
        ..Options::default()
    })
    .await;
    let id = app.paid_checkout_of(10_000).await;
    let refund = |i: i64| {
        let (app, id) = (&app, &id);
        async move {
            app.keyed_refund(id, &format!("burst-{i}"), json!({"amount": i}))
                .await
        }
    };
    let first = futures_util::future::join_all((1..=100).map(refund)).await;
    for (i, (status, _, body)) in first.iter().enumerate() {
        assert_eq!(*status, StatusCode::CREATED, "refund {}: {body}", i + 1);
        assert_eq!(body["status"], "pending", "refund {}: {body}", i + 1);
    }
    assert_eq!(app.msp_refunds(&id).await.len(), 100);

    // Past MSP's five-minute window, a second refund of the same amount would be made.
    app.advance_msp_clock(6 * 60).await;
    let again = futures_util::future::join_all((1..=100).map(refund)).await;
    for ((_, _, before), (status, replayed, after)) in first.iter().zip(&again) {
        assert_eq!(*status, StatusCode::CREATED, "{after}");
        assert!(replayed, "a replay: {after}");
        assert_eq!(after["id"], before["id"]);
    }
    assert_eq!(app.msp_refunds(&id).await.len(), 100, "MSP holds each once");
    assert_eq!(
        app.listed_refunds(&id).await.len(),
        100,
        "and the gateway too"
    );
    app.stop().await;
}

/// Redis stalls (longer than the gateway's command timeout) while MSP is making the refund: the
/// answer is MSP's (201, pending, with MSP's transaction id), never "nothing was sent", and the
/// retry with the same key, once Redis is back, gives that refund, not a second one.
#[tokio::test]
async fn a_redis_stall_mid_refund_answers_the_refund_msp_made_and_makes_no_second() {
    let redis = crate::common::redis_server::TestRedis::start();
    let app = spawn_app_with(Options {
        redis_url: Some(redis.url().to_owned()),
        // Short, so that the stall is an error well within MSP's second.
        redis_command_timeout_ms: 500,
        ..Options::default()
    })
    .await;
    let id = app.paid_checkout().await;
    // MSP takes a second to answer: Redis stops meanwhile, after the reservation.
    app.set_faults(json!({"latency_ms": 1_000, "drop_notifications": true}))
        .await;
    let refund = tokio::spawn({
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/v1/checkouts/{id}/refunds")),
        );
        async move {
            let res = client
                .post(url)
                .bearer_auth(MERCHANT_KEY)
                .header("Idempotency-Key", "stall-1")
                .json(&json!({"amount": 700}))
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    while !app.msp_got_refund_call(&id).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refund never reached MSP"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let paused = redis.pause();
    let (status, answer) = refund.await.unwrap();
    paused.resume();
    app.set_faults(json!({"latency_ms": 0})).await;

    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["status"], "pending", "{answer}");
    assert!(
        answer["psp"]["transaction_id"].is_string(),
        "MSP's answer: {answer}"
    );
    let refund_id = answer["id"].as_str().unwrap();
    assert_eq!(app.get_refund(refund_id).await["id"], refund_id);

    let retry = || app.keyed_refund(&id, "stall-1", json!({"amount": 700}));
    let (mut status, _, mut again) = retry().await;
    if status == StatusCode::CONFLICT {
        // The stored answer was lost with the stall (its write never ran): the key stays in
        // flight for `idempotency.in_flight_ttl_s`, then the retry resumes the refund.
        assert_eq!(again["error"]["code"], "idempotency_key_in_use", "{again}");
        app.clock.advance(chrono::TimeDelta::seconds(61));
        (status, _, again) = retry().await;
    }
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], refund_id);
    assert_eq!(app.msp_refunds(&id).await.len(), 1, "MSP made it once");
    app.stop().await;
}

/// A refund reserved in Redis whose writer never sent it (its reservation landed after the
/// writer had stopped waiting) is followed up by the reconciler without anything else touching
/// the checkout: MSP does not have it, so it fails, its amount free again, and nothing is sent.
#[tokio::test]
async fn a_refund_reserved_but_never_sent_is_failed_by_the_reconciler() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    let refund_id = gateway::domain::refund::RefundId::generate();
    // The reservation alone, as it lands when its writer is gone.
    app.land_reservation(&id, &refund_id, 500).await;
    assert_eq!(
        app.get_refund(refund_id.as_str()).await["status"],
        "pending"
    );

    let looked = app.pass_after(chrono::TimeDelta::minutes(1)).await.unwrap();
    assert_eq!(looked, 1, "the checkout is in the reconciler's index");
    let failed = app.get_refund(refund_id.as_str()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failure"]["code"], "refund_not_received");
    assert!(app.msp_refunds(&id).await.is_empty(), "nothing was sent");
    let (status, again) = app.refund(&id, json!({"amount": 3495})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the amount is free again: {again}"
    );
    app.stop().await;
}

/// A keyed refund's reservation lands in Redis after its request gave up waiting for it (a
/// stalled or restarted Redis), so the request answered 503 "nothing was sent" and released its
/// key. The retry the answer asks for, with the same key, sends that refund, the only one: before,
/// it reserved a second refund under a new id, and the first was failed by the reconciler as
/// never received, a refund the merchant never got as an answer (the soak's finding).
#[tokio::test]
async fn the_retry_of_a_refund_whose_reservation_landed_late_sends_that_refund_and_no_other() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    let body = json!({"amount": 800});
    let refund_id = gateway::domain::refund::RefundId::generate();
    // What the first request did: claim the key with its refund id, send its reservation (which
    // lands, late), give up on it with 503, and release the key.
    let owner = app.claim_refund_key(&id, "late-1", &body, &refund_id).await;
    app.land_reservation(&id, &refund_id, 800).await;
    app.release_refund_key(&id, "late-1", &owner).await;
    app.clock.advance(chrono::TimeDelta::seconds(2));

    let (status, replayed, retried) = app.keyed_refund(&id, "late-1", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{retried}");
    assert!(!replayed);
    assert_eq!(retried["id"], refund_id.as_str(), "the same refund");
    assert_eq!(retried["status"], "pending", "{retried}");
    assert!(
        retried["psp"]["transaction_id"].is_string(),
        "sent to MSP now: {retried}"
    );
    assert_eq!(app.msp_refunds(&id).await.len(), 1);
    let listed = app.listed_refunds(&id).await;
    assert_eq!(listed.len(), 1, "one refund for one key: {listed:?}");

    // The reconciler finds it at MSP: it is never failed as unreceived.
    app.pass_after(chrono::TimeDelta::minutes(1)).await.unwrap();
    let later = app.get_refund(refund_id.as_str()).await;
    assert_ne!(later["status"], "failed", "{later}");
    let (status, replayed, again) = app.keyed_refund(&id, "late-1", body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(again["id"], refund_id.as_str());
    app.stop().await;
}

/// A keyed refund whose request never finished (the gateway stopped after MSP made the refund,
/// before anything recorded MSP's answer): its key is in flight for `idempotency.in_flight_ttl_s`
/// only, then the retry resumes the same refund by asking MSP, and never refunds again.
#[tokio::test]
async fn a_keyed_refund_interrupted_after_msp_resumes_by_asking_msp() {
    let app = spawn_app().await;
    let id = app.paid_checkout().await;
    let body = json!({"amount": 900});
    let refund_id = gateway::domain::refund::RefundId::generate();
    // What the interrupted request did: claim the key (recording its refund id), reserve the
    // refund, and send it to MSP.
    app.claim_refund_key(&id, "crash-1", &body, &refund_id)
        .await;
    app.land_reservation(&id, &refund_id, 900).await;
    let res = app
        .client
        .post(format!("{}/orders/{id}/refunds", app.sim.api_url()))
        .header("api_key", MSP_KEY)
        .json(&json!({"currency": "EUR", "amount": 900, "refund_order_id": refund_id.as_str()}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    // Past MSP's five-minute window: a second refund of 900 would be made.
    app.advance_msp_clock(6 * 60).await;

    let (status, _, early) = app.keyed_refund(&id, "crash-1", body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "still in flight: {early}");
    assert_eq!(early["error"]["code"], "idempotency_key_in_use");

    app.clock.advance(chrono::TimeDelta::seconds(61));
    let (status, replayed, resumed) = app.keyed_refund(&id, "crash-1", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{resumed}");
    assert!(!replayed);
    assert_eq!(resumed["id"], refund_id.as_str(), "the same refund");
    assert!(
        resumed["psp"]["transaction_id"].is_string(),
        "found at MSP: {resumed}"
    );
    // MSP settled it meanwhile (its clock moved six minutes): the resumed answer says so, unless
    // the reconciler had already read MSP's `reserved` before the clock moved (then the refund
    // is acknowledged and answered as it stands, and MSP's next news settles it).
    let status = resumed["status"].as_str().unwrap();
    assert!(matches!(status, "succeeded" | "pending"), "{resumed}");
    let synced = app
        .authed(Method::GET, &format!("/v1/checkouts/{id}?refresh=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status(), StatusCode::OK);
    assert_eq!(
        app.get_refund(refund_id.as_str()).await["status"],
        "succeeded"
    );
    assert_eq!(app.msp_refunds(&id).await.len(), 1, "never refunded twice");
    // And its answer is stored now.
    let (status, replayed, again) = app.keyed_refund(&id, "crash-1", body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(again["id"], refund_id.as_str());
    app.stop().await;
}

/// A checkout holds at most 200 refunds: the 201st is refused with a reason, and sent nowhere.
#[tokio::test]
async fn the_201st_refund_of_a_checkout_is_refused() {
    let app = spawn_app_with(Options {
        redis_command_timeout_ms: 5_000,
        ..Options::default()
    })
    .await;
    let id = app.paid_checkout_of(30_000).await;
    // Twenty at a time: the writers of one checkout take turns, so two hundred at once would
    // have the last wait for all the others (past the client's timeout on a loaded machine).
    for batch in (1..=200).collect::<Vec<u64>>().chunks(20) {
        let made = futures_util::future::join_all(
            batch.iter().map(|i| app.refund(&id, json!({"amount": i}))),
        )
        .await;
        for (status, body) in &made {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
        }
    }
    let (status, error) = app.refund(&id, json!({"amount": 201})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["error"]["code"], "refund_limit_reached");
    assert!(
        error["error"]["message"].as_str().unwrap().contains("200"),
        "{error}"
    );
    assert_eq!(app.msp_refunds(&id).await.len(), 200);
    app.stop().await;
}
