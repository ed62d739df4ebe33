//! The account-wide sweep of MSP's transaction list: what the notifications missed
//! is found by walking `GET /transactions`, page by page, from a watermark that moves only past
//! handled rows, once across instances, a crash and a daylight-saving change.

use std::time::Duration;

use gateway::flows::sweep::{SweepConfig, SweepReport, sweep};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

fn config(page_size: u32) -> SweepConfig {
    SweepConfig {
        overlap: chrono::TimeDelta::seconds(3600),
        page_size,
        lease: Duration::from_secs(60),
    }
}

impl TestApp {
    /// A sweep as `owner` with the gateway's clock moved a minute on (its clock stands still,
    /// the simulator's runs: the window must reach the rows just made).
    async fn sweep_as(&self, owner: &str, config: &SweepConfig) -> Option<SweepReport> {
        self.clock.advance(chrono::TimeDelta::minutes(1));
        sweep(&self.state.flows, config, owner).await.unwrap()
    }

    async fn sim_post(&self, path: &str, body: Value) -> Value {
        let res = self
            .client
            .post(format!("{}{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        res.json().await.unwrap()
    }

    async fn sim_advance(&self, s: i64) {
        let res = self
            .client
            .put(format!("{}/sim/clock", self.sim.base_url()))
            .json(&json!({"advance_s": s}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// Waits until MSP shows every refund of the order settled.
    async fn wait_msp_refunds_settled(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let order: Value = self
                .client
                .get(format!("{}/orders/{id}", self.sim.api_url()))
                .header("api_key", MSP_KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let refunds: Vec<&Value> = order["data"]["related_transactions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["type"] == "refund")
                .collect();
            if !refunds.is_empty() && refunds.iter().all(|r| r["status"] == "completed") {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{order}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn refunds_of(&self, id: &str) -> Vec<Value> {
        let res = self
            .authed(Method::GET, &format!("/v1/checkouts/{id}/refunds"))
            .send()
            .await
            .unwrap();
        let refunds: Value = res.json().await.unwrap();
        assert_eq!(refunds["has_more"], false, "{refunds}");
        refunds["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{refunds}"))
            .clone()
    }

    async fn paid_id(&self) -> String {
        let checkout = self.create("374500000000015").await;
        assert_eq!(checkout["status"], "succeeded");
        checkout["id"].as_str().unwrap().to_owned()
    }

    /// What MSP knows and the gateway was never told: a refund made in MSP's dashboard (settled,
    /// no notification), a chargeback without a notification, a payment whose notification was
    /// lost, and an order of another integration on the same site.
    async fn unheard_changes(&self) -> (String, String, String) {
        let refunded = self.paid_id().await;
        self.sim_post(
            &format!("/sim/orders/{refunded}/dashboard_refund"),
            json!({"amount": 500, "notify": false}),
        )
        .await;
        self.sim_advance(61).await;
        self.clock.advance(chrono::TimeDelta::seconds(61));
        self.wait_msp_refunds_settled(&refunded).await;
        let charged = self.paid_id().await;
        self.sim_post(
            &format!("/sim/orders/{charged}/chargeback"),
            json!({"notify": false}),
        )
        .await;
        let unheard = self.authenticated_but_unheard("4111111111111111").await;
        self.set_faults(json!({"drop_notifications": false})).await;
        // Another integration's order on the same site.
        let res = self
            .client
            .post(format!("{}/orders", self.sim.api_url()))
            .header("api_key", MSP_KEY)
            .json(&json!({
                "type": "direct", "gateway": "AMEX", "order_id": "webshop-order-1",
                "currency": "EUR", "amount": 1000, "description": "Elsewhere",
                "payment_options": {"redirect_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"},
                "customer": {"locale": "nl_NL", "ip_address": "1.2.3.4"},
                "gateway_info": {"card_number": "374500000000015", "card_holder_name": "J Doe", "card_expiry_date": "3012", "card_cvc": "123"}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
        (refunded, charged, unheard)
    }

    async fn watermark(&self) -> Option<String> {
        let client = redis::Client::open(self.redis_url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("GET")
            .arg(format!("{}:{{sweep}}:watermark", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap()
    }
}

fn assert_found(report: &SweepReport) {
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(report.differences.dashboard_refunds, 1, "{report:?}");
    assert_eq!(report.differences.chargebacks, 1, "{report:?}");
    assert_eq!(
        report.differences.missed_status, 1,
        "the unheard payment: {report:?}"
    );
    assert!(report.other_orders >= 1, "{report:?}");
}

async fn assert_recorded(app: &TestApp, (refunded, charged, unheard): &(String, String, String)) {
    let refunds = app.refunds_of(refunded).await;
    assert_eq!(refunds.len(), 1, "once: {refunds:?}");
    assert_eq!(refunds[0]["source"], "dashboard");
    assert_eq!(
        (refunds[0]["amount"].clone(), refunds[0]["status"].clone()),
        (json!(500), json!("succeeded"))
    );
    let checkout = app.get_checkout(refunded).await;
    assert_eq!(checkout["status"], "partially_refunded");
    let events: Vec<String> = app
        .merchant_events(refunded)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        events.contains(&"refund.succeeded".to_owned()),
        "{events:?}"
    );
    let disputes = app
        .authed(Method::GET, &format!("/v1/disputes?checkout_id={charged}"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(disputes["data"].as_array().unwrap().len(), 1, "{disputes}");
    assert_eq!(app.get_checkout(charged).await["status"], "charged_back");
    assert_eq!(app.get_checkout(unheard).await["status"], "succeeded");
}

#[tokio::test]
async fn what_no_notification_told_is_found_only_by_the_sweep_and_only_once() {
    let app = spawn_app().await;
    let changes = app.unheard_changes().await;
    assert_eq!(app.get_checkout(&changes.0).await["status"], "succeeded");
    assert!(app.watermark().await.is_none());

    let report = app.sweep_as("one", &config(2)).await.unwrap();
    assert_found(&report);
    assert!(report.pages >= 3, "two rows a page: {report:?}");
    assert_recorded(&app, &changes).await;
    assert!(app.watermark().await.is_some());

    let res = app
        .authed(Method::GET, "/v1/reconciliation")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let shown: Value = res.json().await.unwrap();
    assert_eq!(
        shown["data"][0]["differences"],
        json!({"missed_status": 1, "dashboard_refunds": 1, "chargebacks": 1})
    );
    assert_eq!(shown["data"][0]["rows"], report.rows);
    assert!(shown["data"][0]["error"].is_null());
    // Metrics count the same.
    let metrics = app.get(&app.url("/metrics")).await.text().await.unwrap();
    for series in [
        "gateway_transaction_sweeps_total{outcome=\"ok\"}",
        "gateway_transaction_sweep_differences_total{kind=\"dashboard_refunds\"}",
        "gateway_transaction_sweep_differences_total{kind=\"chargebacks\"}",
        "gateway_transaction_sweep_differences_total{kind=\"missed_status\"}",
        "gateway_transaction_sweep_rows_total{order=\"ours\"}",
        "gateway_transaction_sweep_rows_total{order=\"other\"}",
    ] {
        let value: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("no {series} in {metrics}"))
            .trim()
            .parse()
            .unwrap();
        assert!(value >= 1.0, "{series} {value}");
    }

    // The next sweep reads the overlap again and changes nothing.
    let again = app.sweep_as("one", &config(1000)).await.unwrap();
    assert_eq!(again.differences, Default::default(), "{again:?}");
    assert!(again.rows >= report.rows, "the overlap is read again");
    assert_recorded(&app, &changes).await;
    let shown: Value = app
        .authed(Method::GET, "/v1/reconciliation")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        shown["data"].as_array().unwrap().len(),
        2,
        "newest first: {shown}"
    );
    app.stop().await;
}

#[tokio::test]
async fn two_instances_on_one_redis_sweep_one_at_a_time_and_record_everything_once() {
    let first = spawn_app().await;
    let second = spawn_app_with(Options {
        prefix: Some(first.prefix.clone()),
        msp_base_url: Some(first.sim.api_url()),
        ..Options::default()
    })
    .await;
    let changes = first.unheard_changes().await;
    second.clock.advance(chrono::TimeDelta::minutes(2));
    // Slow pages, so that both sweeps overlap in time.
    first.set_faults(json!({"latency_ms": 200})).await;
    let two = config(2);
    let (a, b) = tokio::join!(
        first.sweep_as("first", &two),
        second.sweep_as("second", &two)
    );
    first.set_faults(json!({"latency_ms": 0})).await;
    let ran: Vec<&SweepReport> = [a.as_ref(), b.as_ref()].into_iter().flatten().collect();
    assert_eq!(ran.len(), 1, "one instance at a time: {a:?} {b:?}");
    assert_found(ran[0]);
    assert_recorded(&first, &changes).await;
    // The other instance's next sweep finds nothing left to do.
    let next = second.sweep_as("second", &config(1000)).await.unwrap();
    assert_eq!(next.differences, Default::default(), "{next:?}");
    assert_recorded(&second, &changes).await;
    second.stop().await;
    first.stop().await;
}

/// How many pages of `GET /transactions` MSP has been asked for, once that is more than `than`.
async fn pages_asked_beyond(app: &TestApp, than: usize) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let calls: Vec<Value> = reqwest::get(format!("{}/sim/requests", app.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pages = calls
            .iter()
            .filter(|c| c["method"] == "GET" && c["path"] == "/v1/json/transactions")
            .count();
        if pages > than {
            return pages;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweep asked for no page past {than}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_walking_sweep_keeps_its_lease_past_its_ttl_and_a_dead_ones_is_taken_over() {
    let app = spawn_app().await;
    app.unheard_changes().await;
    app.clock.advance(chrono::TimeDelta::minutes(1));
    // One row a page, each MSP call slow: the first sweep walks for a while.
    app.set_faults(json!({"latency_ms": 400})).await;
    let lease = config(1).lease;
    let state = app.state.clone();
    let first = tokio::spawn(async move { sweep(&state.flows, &config(1), "first").await });
    // Twice the lease goes by on the gateway's clock while the first walks; it renews the lease
    // before each page it asks for, and every time the second instance finds it taken.
    let step = chrono::TimeDelta::from_std(lease * 3 / 4).unwrap();
    let mut pages = pages_asked_beyond(&app, 0).await;
    for _ in 0..3 {
        pages = pages_asked_beyond(&app, pages).await;
        app.clock.advance(step);
        let second = sweep(&app.state.flows, &config(1), "second").await.unwrap();
        assert!(
            second.is_none(),
            "a second instance swept while the first was still walking: {second:?}"
        );
    }
    // The first dies mid-walk, its lease held: the second waits for it to run out, then sweeps.
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    app.set_faults(json!({"latency_ms": 0})).await;
    assert!(
        sweep(&app.state.flows, &config(1), "second")
            .await
            .unwrap()
            .is_none(),
        "the dead instance's lease had not run out yet"
    );
    app.clock
        .advance(chrono::TimeDelta::from_std(lease).unwrap() + chrono::TimeDelta::seconds(1));
    let report = sweep(&app.state.flows, &config(1000), "second")
        .await
        .unwrap()
        .expect("the second instance takes the dead one's lease over");
    assert_eq!(report.error, None, "{report:?}");
    assert!(app.watermark().await.is_some());
    app.stop().await;
}

#[tokio::test]
async fn msp_refusing_or_failing_the_list_stops_the_sweep_and_keeps_the_watermark() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let msp = MockServer::start().await;
    let app = spawn_app_with(Options {
        msp_base_url: Some(format!("{}/v1/json", msp.uri())),
        ..Options::default()
    })
    .await;
    Mock::given(method("GET"))
        .and(path("/v1/json/transactions"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"message": "Forbidden"})))
        .up_to_n_times(1)
        .mount(&msp)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/json/transactions"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .mount(&msp)
        .await;
    let refused = app.sweep_as("one", &config(1000)).await.unwrap();
    assert!(
        refused.error.as_deref().unwrap().contains("403"),
        "{refused:?}"
    );
    assert_eq!(app.watermark().await, None);
    let failed = app.sweep_as("one", &config(1000)).await.unwrap();
    assert!(failed.error.is_some(), "{failed:?}");
    assert_eq!(app.watermark().await, None);
    // Logged and counted.
    assert!(
        captured_logs().contains("transaction sweep stopped early"),
        "no log line of the stopped sweep"
    );
    let metrics = app.get(&app.url("/metrics")).await.text().await.unwrap();
    assert!(
        metrics.contains("gateway_transaction_sweeps_total{outcome=\"refused\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_transaction_sweeps_total{outcome=\"unreachable\"}")
            || metrics.contains("gateway_transaction_sweeps_total{outcome=\"unexpected\"}"),
        "{metrics}"
    );
    Mock::given(method("GET"))
        .and(path("/v1/json/transactions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"success": true, "data": [], "pager": {"cursor": {"after": null}}}),
        ))
        .mount(&msp)
        .await;
    let ok = app.sweep_as("one", &config(1000)).await.unwrap();
    assert_eq!(ok.error, None);
    // No watermark was kept by the failures: this sweep still reads its first window.
    assert_eq!(ok.from, ok.started_at - chrono::TimeDelta::seconds(3600));
    assert_eq!(
        app.watermark().await,
        Some(ok.until.timestamp_millis().to_string())
    );
    let shown: Value = app
        .authed(Method::GET, "/v1/reconciliation")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let errors: Vec<bool> = shown["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["error"].is_null())
        .collect();
    assert_eq!(errors, [true, false, false], "newest first: {shown}");
    app.stop().await;
}

#[tokio::test]
async fn the_window_is_right_on_both_sides_of_a_daylight_saving_change() {
    let app = spawn_app().await;
    // Both clocks to half an hour before Amsterdam moves to summer time (01:00 UTC on the last
    // Sunday of March), where a fixed offset would be an hour off afterwards.
    let now = chrono::Utc::now();
    let change = next_spring_change(now);
    let to = (change - chrono::TimeDelta::minutes(30) - now).num_seconds();
    app.sim_advance(to).await;
    app.clock.advance(chrono::TimeDelta::seconds(to));
    let tight = SweepConfig {
        overlap: chrono::TimeDelta::seconds(120),
        ..config(1000)
    };
    let before = app.paid_id().await;
    let first = app.sweep_as("one", &tight).await.unwrap();
    assert_eq!(first.error, None);
    // An hour later (02:00 CET became 03:00 CEST): a refund in the dashboard nobody was told of.
    app.sim_advance(3600).await;
    app.clock.advance(chrono::TimeDelta::seconds(3600));
    app.sim_post(
        &format!("/sim/orders/{before}/dashboard_refund"),
        json!({"amount": 700, "notify": false}),
    )
    .await;
    let after = app.paid_id().await;
    let unheard = app.authenticated_but_unheard("4111111111111111").await;
    app.set_faults(json!({"drop_notifications": false})).await;
    let second = app.sweep_as("one", &tight).await.unwrap();
    assert_eq!(second.error, None);
    assert_eq!(second.differences.dashboard_refunds, 1, "{second:?}");
    assert_eq!(second.differences.missed_status, 1, "{second:?}");
    assert_eq!(app.refunds_of(&before).await[0]["source"], "dashboard");
    assert_eq!(app.get_checkout(&unheard).await["status"], "succeeded");
    assert_eq!(app.get_checkout(&after).await["status"], "succeeded");
    app.stop().await;
}

/// 01:00 UTC on the last Sunday of March after `now`: when Amsterdam moves to summer time.
fn next_spring_change(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{Datelike, TimeZone};
    let mut year = now.year();
    loop {
        let last = chrono::NaiveDate::from_ymd_opt(year, 3, 31).unwrap();
        let sunday = last - chrono::TimeDelta::days(last.weekday().num_days_from_sunday() as i64);
        let change = chrono::Utc.from_utc_datetime(&sunday.and_hms_opt(1, 0, 0).unwrap());
        if change > now + chrono::TimeDelta::hours(2) {
            return change;
        }
        year += 1;
    }
}

#[tokio::test]
async fn a_sweep_killed_between_pages_keeps_its_watermark_and_the_next_sweep_records_everything_once()
 {
    let app = spawn_app().await;
    let changes = app.unheard_changes().await;
    // `checkout-gateway serve` on the same Redis and simulator, sweeping every second, one row a
    // page, each page slow.
    app.set_faults(json!({"latency_ms": 700})).await;
    let mut env: Vec<(&str, String)> = crate::resilience::served_env(&app.sim, 3_000)
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                *k,
                "GATEWAY__REDIS__KEY_PREFIX" | "GATEWAY__RECONCILE__ENABLED"
            )
        })
        .collect();
    env.extend([
        ("GATEWAY__REDIS__KEY_PREFIX", app.prefix.clone()),
        ("GATEWAY__RECONCILE__ENABLED", "true".to_owned()),
        (
            "GATEWAY__RECONCILE__TRANSACTIONS_INTERVAL_S",
            "1".to_owned(),
        ),
        ("GATEWAY__RECONCILE__TRANSACTIONS_PAGE_SIZE", "1".to_owned()),
    ]);
    let mut served = crate::resilience::Served::start(&env);
    served.wait_until_live().await;
    // Killed once it has asked for its second page.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let calls: Vec<Value> = reqwest::get(format!("{}/sim/requests", app.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pages = calls
            .iter()
            .filter(|c| c["method"] == "GET" && c["path"] == "/v1/json/transactions")
            .count();
        if pages >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the served gateway never swept"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served.kill();
    assert_eq!(
        app.watermark().await,
        None,
        "a sweep cut short keeps the watermark"
    );
    // The killed instance's lease would lapse after its TTL; the test takes it away instead of
    // waiting for that.
    let client = redis::Client::open(app.redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{}:{{sweep}}:lease", app.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    app.set_faults(json!({"latency_ms": 0})).await;

    let report = app.sweep_as("next", &config(1)).await.unwrap();
    assert_eq!(report.error, None, "{report:?}");
    // Made after the killed instance's window (the simulator's clock is ahead): only this
    // sweep can have found it.
    assert_eq!(report.differences.chargebacks, 1, "{report:?}");
    assert_recorded(&app, &changes).await;
    assert!(app.watermark().await.is_some());
    app.stop().await;
}

#[tokio::test]
async fn an_authorisation_follows_msps_deadline_and_ends_canceled_when_msp_voids_it_at_expiry() {
    let app = spawn_app().await;
    let mut body = crate::common::checkout::CheckoutRequest::new("4012001038443335").body();
    body["capture_method"] = json!("manual");
    let res = app.post_checkout(&body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let checkout = app
        .wait_for_status(&id, "requires_capture", Duration::from_secs(10))
        .await;
    // MSP's own deadline (payment_details.capture_expiry, Amsterdam time) is the checkout's.
    let order: Value = app
        .client
        .get(format!("{}/orders/{id}", app.sim.api_url()))
        .header("api_key", MSP_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expiry = order["data"]["payment_details"]["capture_expiry"]
        .as_str()
        .unwrap();
    let expiry = gateway::psp::multisafepay::msp_time::parse(expiry).unwrap();
    let before = chrono::DateTime::parse_from_rfc3339(checkout["capture_before"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(before, expiry, "{checkout}");

    // The scheme voids it at expiry; no notification tells the gateway.
    app.set_faults(json!({"drop_notifications": true})).await;
    let week = 7 * 24 * 3600 + 60;
    app.sim_advance(week).await;
    app.clock.advance(chrono::TimeDelta::seconds(week));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.msp_order_status(&id).await != "void" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "MSP never voided it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // An authorisation waits for its capture, so the reconciler keeps looking at it (the sweep
    // reads rows by when they were created, a week ago here): its next pass finds the void.
    app.pass_after(chrono::TimeDelta::minutes(1)).await.unwrap();
    assert_eq!(app.get_checkout(&id).await["status"], "canceled");
    let events: Vec<String> = app
        .merchant_events(&id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events[0], "checkout.canceled", "{events:?}");
    app.stop().await;
}
