//! Surviving what happens to the processes around the gateway (issue 8): Redis restarting under
//! busy and idle instances, and a gateway killed in the middle of a keyed request.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::checkout::CheckoutRequest;
use crate::common::redis_server::TestRedis;
use crate::helpers::*;

async fn keyed_create(app: &TestApp, key: &str) -> reqwest::Response {
    app.authed(reqwest::Method::POST, "/v1/checkouts")
        .header("Idempotency-Key", key)
        .json(&CheckoutRequest::new("4111111111111111").body())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn after_redis_restarts_busy_and_idle_instances_answer_their_next_requests() {
    let redis = TestRedis::start();
    let options = Options {
        redis_url: Some(redis.url().to_owned()),
        ..Options::default()
    };
    let busy = spawn_app_with(options.clone()).await;
    let idle = spawn_app_with(options).await;
    // Both have a working connection to the first Redis process.
    for app in [&busy, &idle] {
        assert_eq!(
            app.get(&app.url("/health/ready")).await.status(),
            StatusCode::OK
        );
        app.create("4111111111111111").await;
    }

    redis.stop();
    // The busy instance keeps being asked during the outage; the idle one is not.
    let res = busy
        .post_checkout(&CheckoutRequest::new("4111111111111111").body())
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    redis.restart();

    // The very next request of each succeeds: a keyed create (a claim script, an insert, a
    // compare-and-set), then a read and readiness.
    for (name, app) in [("idle", &idle), ("busy", &busy)] {
        let res = keyed_create(app, &format!("after-restart-{name}")).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{name} instance: {body}");
        let id = body["id"].as_str().unwrap();
        assert_eq!(app.get_checkout(id).await["status"], "requires_action");
        let ready = app.get(&app.url("/health/ready")).await;
        assert_eq!(ready.status(), StatusCode::OK, "{name} instance readiness");
    }
    busy.stop().await;
    idle.stop().await;
}

/// The fingerprint the gateway takes of this create body (as `POST /v1/checkouts` does).
fn create_fingerprint(app: &TestApp, body: &Value) -> String {
    let bytes = serde_json::to_vec(body).unwrap();
    gateway::api::strict_json::check(&bytes, &gateway::api::checkout_request::SHAPE).unwrap();
    gateway::api::idempotency::fingerprint_json(&app.state, &bytes)
}

/// How many orders the gateway sent MSP (`POST /orders`), by the simulator's record.
async fn msp_orders_created(sim_base_url: &str) -> usize {
    let calls: Vec<Value> = reqwest::get(format!("{sim_base_url}/sim/requests"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    calls
        .iter()
        .filter(|c| c["method"] == "POST" && c["path"] == "/v1/json/orders")
        .count()
}

#[tokio::test]
async fn a_key_whose_request_never_finished_is_resumed_once_its_in_flight_time_is_over() {
    use gateway::clock::Clock;
    use gateway::domain::checkout::CheckoutId;
    use gateway::store::Claim;

    let app = spawn_app().await;
    let body = CheckoutRequest::new("4111111111111111").body();
    // A request claimed the key, recorded its checkout id, and the gateway died before it
    // stored anything (so nothing reached MSP either).
    let id = CheckoutId::generate();
    let fingerprint = create_fingerprint(&app, &body);
    let claim = Claim {
        fingerprint: &fingerprint,
        resource: Some(id.as_str()),
        now_ms: app.clock.now().timestamp_millis(),
        in_flight_ms: Some(60_000),
    };
    let store = &app.state.flows.store;
    store.idempotency_claim("crashed-1", &claim).await.unwrap();
    let retry = || async {
        app.authed(reqwest::Method::POST, "/v1/checkouts")
            .header("Idempotency-Key", "crashed-1")
            .json(&body)
            .send()
            .await
            .unwrap()
    };

    // Within its in-flight time the key answers 409, as for a request still running.
    assert_eq!(retry().await.status(), StatusCode::CONFLICT);
    app.clock.advance(chrono::TimeDelta::seconds(59));
    assert_eq!(retry().await.status(), StatusCode::CONFLICT);

    // Then the retry takes it over and creates the checkout, under the recorded id.
    app.clock.advance(chrono::TimeDelta::seconds(1));
    let res = retry().await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("idempotent-replayed").is_none());
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["status"], "requires_action");
    assert_eq!(msp_orders_created(&app.sim.base_url()).await, 1);

    // From now on the finished response is replayed, with no further order.
    app.clock.advance(chrono::TimeDelta::hours(23));
    let res = retry().await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let replayed: Value = res.json().await.unwrap();
    assert_eq!(replayed["id"], id.as_str());
    assert_eq!(msp_orders_created(&app.sim.base_url()).await, 1);
    app.stop().await;
}

/// A keyed create that failed with "nothing was sent" (its store write timed out) released its
/// key keeping its checkout id: the retry creates the checkout under that id, so that a record the
/// failed request's write stored after all is this key's checkout, not one left behind.
#[tokio::test]
async fn the_retry_after_nothing_was_sent_creates_the_checkout_under_the_first_id() {
    use gateway::clock::Clock;
    use gateway::domain::checkout::CheckoutId;
    use gateway::store::{Claim, IdempotencyBegin};

    let app = spawn_app().await;
    let body = CheckoutRequest::new("4111111111111111").body();
    let id = CheckoutId::generate();
    let fingerprint = create_fingerprint(&app, &body);
    let claim = Claim {
        fingerprint: &fingerprint,
        resource: Some(id.as_str()),
        now_ms: app.clock.now().timestamp_millis(),
        in_flight_ms: Some(60_000),
    };
    let store = &app.state.flows.store;
    let IdempotencyBegin::Started { owner, .. } =
        store.idempotency_claim("released-1", &claim).await.unwrap()
    else {
        panic!("a fresh key");
    };
    store.idempotency_abort("released-1", &owner).await.unwrap();

    // At once: no in-flight wait after a release.
    let res = app
        .authed(reqwest::Method::POST, "/v1/checkouts")
        .header("Idempotency-Key", "released-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["id"], id.as_str(), "{created}");
    assert_eq!(created["status"], "requires_action");
    assert_eq!(msp_orders_created(&app.sim.base_url()).await, 1);
    app.stop().await;
}

/// The environment of a `checkout-gateway serve` on the shared Redis (a prefix of its own) and
/// `sim`, with MSP calls of at most 0.5 s to connect plus `msp_timeout_ms`, a key in flight for
/// 5 s after a crash (longer than such a call plus a second) and no reconciler.
pub(crate) fn served_env(
    sim: &msp_simulator::SimulatorHandle,
    msp_timeout_ms: u64,
) -> [(&'static str, String); 9] {
    [
        ("GATEWAY__REDIS__URL", REDIS.url().to_owned()),
        (
            "GATEWAY__REDIS__KEY_PREFIX",
            crate::common::redis_server::unique_prefix(),
        ),
        ("GATEWAY__MULTISAFEPAY__BASE_URL", sim.api_url()),
        ("GATEWAY__MULTISAFEPAY__API_KEY", MSP_KEY.to_owned()),
        (
            "GATEWAY__MULTISAFEPAY__CONNECT_TIMEOUT_MS",
            "500".to_owned(),
        ),
        (
            "GATEWAY__MULTISAFEPAY__TIMEOUT_MS",
            msp_timeout_ms.to_string(),
        ),
        ("GATEWAY__IDEMPOTENCY__IN_FLIGHT_TTL_S", "5".to_owned()),
        ("GATEWAY__AUTH__API_KEYS", MERCHANT_KEY.to_owned()),
        ("GATEWAY__RECONCILE__ENABLED", "false".to_owned()),
    ]
}

/// `checkout-gateway serve` as a process of its own, killed with SIGKILL by the test.
pub(crate) struct Served {
    pub(crate) child: std::process::Child,
    pub(crate) base: String,
}

impl Served {
    pub(crate) fn start(env: &[(&str, String)]) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_checkout-gateway"));
        for (key, _) in std::env::vars() {
            if key.starts_with("GATEWAY") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .arg("serve")
            .env("GATEWAY__SERVER__PORT", port.to_string())
            .env("RUST_LOG", "error")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub(crate) async fn wait_until_live(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while reqwest::get(format!("{}/health/live", self.base))
            .await
            .map_or(true, |r| !r.status().is_success())
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "serve did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL: no graceful shutdown, nothing finishes
        self.child.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_gateway_killed_while_msp_is_slow_is_resumed_by_the_retry_on_a_fresh_instance() {
    let mut sim_config = msp_simulator::SimulatorConfig::for_tests(MSP_KEY);
    sim_config.notification_retry_interval = std::time::Duration::from_millis(300);
    let sim = msp_simulator::spawn(sim_config).await.unwrap();
    let client = crate::common::http_client();
    // MSP takes 2 s to answer an order.
    client
        .put(format!("{}/sim/faults", sim.base_url()))
        .json(&serde_json::json!({"latency_ms": 2000}))
        .send()
        .await
        .unwrap();
    // MSP answers within 0.5 s + 2.5 s, so a key stays in flight for 5 s after a crash.
    let env = served_env(&sim, 2500);
    let body = CheckoutRequest::new("4111111111111111").body();
    let post = |base: String| {
        let (client, body) = (client.clone(), body.clone());
        async move {
            client
                .post(format!("{base}/v1/checkouts"))
                .bearer_auth(MERCHANT_KEY)
                .header("Idempotency-Key", "killed-1")
                .json(&body)
                .send()
                .await
        }
    };

    let mut first = Served::start(&env);
    first.wait_until_live().await;
    let interrupted = tokio::spawn(post(first.base.clone()));
    // Kill the gateway while MSP is still working on its order.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while msp_orders_created(&sim.base_url()).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the order never reached MSP"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    first.kill();
    assert!(
        interrupted.await.unwrap().is_err(),
        "the first request got no answer"
    );

    let second = Served::start(&env);
    second.wait_until_live().await;
    // While the claim is in flight the retry is told to wait...
    let res = post(second.base.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    // ...and once its in-flight time is over (real time: this is another process), it resumes.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let resumed = loop {
        let res = post(second.base.clone()).await.unwrap();
        if res.status() != StatusCode::CONFLICT {
            break res;
        }
        assert!(tokio::time::Instant::now() < deadline, "still 409");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(resumed.status(), StatusCode::CREATED);
    let checkout: Value = resumed.json().await.unwrap();
    // The checkout the killed request began. MSP has its order waiting for 3-D Secure, but
    // the challenge's URL was in the answer the killed request never passed on: nobody can pay
    // it, so the resumed request cancels it at MSP and says so (start a new checkout).
    assert_eq!(checkout["status"], "canceled", "{checkout}");
    assert!(checkout["next_action"].is_null(), "{checkout}");
    let msp_order: Value = client
        .get(format!(
            "{}/orders/{}",
            sim.api_url(),
            checkout["id"].as_str().unwrap()
        ))
        .header("api_key", MSP_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(msp_order["data"]["status"], "void", "{msp_order}");
    // Never a second MSP order.
    assert_eq!(msp_orders_created(&sim.base_url()).await, 1);
    let again = post(second.base.clone()).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let replayed: Value = again.json().await.unwrap();
    assert_eq!(replayed["id"], checkout["id"]);
    drop(second);
    sim.stop().await;
}

/// MSP's order, as its API answers it.
async fn msp_order(sim: &msp_simulator::SimulatorHandle, id: &str) -> Value {
    let res: Value = crate::common::http_client()
        .get(format!("{}/orders/{id}", sim.api_url()))
        .header("api_key", MSP_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["data"].clone()
}

#[tokio::test]
async fn a_gateway_killed_mid_capture_learns_the_capture_from_msp_and_its_retry_answers_it() {
    let sim = msp_simulator::spawn(msp_simulator::SimulatorConfig::for_tests(MSP_KEY))
        .await
        .unwrap();
    let client = crate::common::http_client();
    // The capture is still waiting for MSP (up to 0.5 s + 3 s) when the gateway is killed.
    let env = served_env(&sim, 3000);
    let mut first = Served::start(&env);
    first.wait_until_live().await;

    // A Visa card that is not enrolled in 3-D Secure, captured by hand: authorised at once.
    let mut body = CheckoutRequest::new("4012001038443335").body();
    body["capture_method"] = serde_json::json!("manual");
    let created: Value = client
        .post(format!("{}/v1/checkouts", first.base))
        .bearer_auth(MERCHANT_KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["status"], "requires_capture", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    // MSP captures, and its answer never comes; nor does a notification (it would go to the
    // killed instance anyway): only asking MSP can tell.
    client
        .put(format!("{}/sim/faults", sim.base_url()))
        .json(&serde_json::json!({"capture_failure": "timeout", "drop_notifications": true}))
        .send()
        .await
        .unwrap();
    let capture = |base: String| {
        let (client, id) = (client.clone(), id.clone());
        async move {
            client
                .post(format!("{base}/v1/checkouts/{id}/capture"))
                .bearer_auth(MERCHANT_KEY)
                .header("Idempotency-Key", "capture-killed-1")
                .json(&serde_json::json!({"amount": 3000}))
                .send()
                .await
        }
    };
    let interrupted = tokio::spawn(capture(first.base.clone()));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let order = msp_order(&sim, &id).await;
        let captured = order["related_transactions"]
            .as_array()
            .is_some_and(|entries| entries.iter().any(|e| e["type"] == "capture"));
        if captured {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the capture never reached MSP: {order}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    first.kill();
    assert!(
        interrupted.await.unwrap().is_err(),
        "the killed gateway answered the capture"
    );
    client
        .put(format!("{}/sim/faults", sim.base_url()))
        .json(&serde_json::json!({"capture_failure": "none"}))
        .send()
        .await
        .unwrap();

    let second = Served::start(&env);
    second.wait_until_live().await;
    // Asking MSP shows what it took: 3000 of the 3495 authorised, and refunds stop there.
    let checkout: Value = client
        .get(format!("{}/v1/checkouts/{id}?refresh=true", second.base))
        .bearer_auth(MERCHANT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            checkout["status"].as_str(),
            checkout["amount_captured"].as_i64()
        ),
        (Some("succeeded"), Some(3000)),
        "{checkout}"
    );
    let too_much: Value = client
        .post(format!("{}/v1/checkouts/{id}/refunds", second.base))
        .bearer_auth(MERCHANT_KEY)
        .json(&serde_json::json!({"amount": 3001}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(too_much["error"]["code"], "amount_too_large", "{too_much}");

    // The merchant's retry with the same key, once the killed request's in-flight time is over
    // (real time: another process), answers the capture that happened, not a 409.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let resumed = loop {
        let res = capture(second.base.clone()).await.unwrap();
        if res.status() != StatusCode::CONFLICT {
            break res;
        }
        let error: Value = res.json().await.unwrap();
        assert_eq!(
            error["error"]["type"], "idempotency_error",
            "only the key's in-flight wait may answer 409: {error}"
        );
        assert!(tokio::time::Instant::now() < deadline, "still 409");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(resumed.status(), StatusCode::OK);
    let resumed: Value = resumed.json().await.unwrap();
    assert_eq!(
        (
            resumed["status"].as_str(),
            resumed["amount_captured"].as_i64()
        ),
        (Some("succeeded"), Some(3000)),
        "{resumed}"
    );
    let captures = msp_order(&sim, &id).await["related_transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "capture")
        .count();
    assert_eq!(captures, 1, "MSP captured once");
    drop(second);
    sim.stop().await;
}

/// `serve` started while its Redis is down (a host's boot, a cluster's roll-out: issue 30) does
/// not exit: it answers as during an outage, and serves once Redis comes up, with no restart.
#[tokio::test]
async fn serve_started_before_its_redis_answers_503_until_redis_comes_then_serves() {
    let sim = msp_simulator::spawn(msp_simulator::SimulatorConfig::for_tests(MSP_KEY))
        .await
        .unwrap();
    // A server of the test's own, stopped: nothing listens on its port when the gateway starts.
    let redis = crate::common::redis_server::TestRedis::start();
    redis.stop();
    let mut env = served_env(&sim, 2500);
    env[0].1 = redis.url().to_owned();
    let mut gateway = Served::start(&env);
    gateway.wait_until_live().await;
    assert!(
        gateway.child.try_wait().unwrap().is_none(),
        "serve exited without Redis"
    );
    let client = crate::common::http_client();

    let ready = reqwest::get(format!("{}/health/ready", gateway.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key("retry-after"));
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["failing"], serde_json::json!(["redis"]), "{ready}");

    // The merchant is told to retry, and that retrying is safe; MSP hears nothing.
    let create = || {
        client
            .post(format!("{}/v1/checkouts", gateway.base))
            .bearer_auth(MERCHANT_KEY)
            .header("Idempotency-Key", "before-redis-1")
            .json(&CheckoutRequest::new("4111111111111111").body())
            .send()
    };
    let res = create().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("retry"), "{message}");
    assert_eq!(msp_orders_created(&sim.base_url()).await, 0);
    // A shopper's link and MSP's notification answer as during an outage: the shopper is asked
    // to reload, MSP to send again.
    let pay = reqwest::get(format!("{}/pay/{}", gateway.base, "A".repeat(43)))
        .await
        .unwrap();
    assert_eq!(pay.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(pay.headers().contains_key("retry-after"));
    assert!(pay.text().await.unwrap().contains("reload"));
    let notified = reqwest::get(format!(
        "{}/notifications/multisafepay?transactionid={}&timestamp=1",
        gateway.base,
        gateway::domain::checkout::CheckoutId::generate().as_str()
    ))
    .await
    .unwrap();
    assert_eq!(notified.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Redis comes up; the same process becomes ready by itself and takes the retried checkout.
    redis.restart();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = reqwest::get(format!("{}/health/ready", gateway.base))
            .await
            .unwrap();
        if ready.status() == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway never connected to Redis"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let res = create().await.unwrap();
    let status = res.status();
    let created: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "requires_action");
    assert_eq!(msp_orders_created(&sim.base_url()).await, 1);
    gateway.kill();
    sim.stop().await;
}
