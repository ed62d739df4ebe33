//! The harness: an in-process simulator, an HTTP client, order bodies, and a notification
//! receiver (wiremock) whose requests the tests inspect.

use std::time::Duration;

use msp_simulator::{SimulatorConfig, SimulatorHandle};
use serde_json::{Value, json};

use crate::common::msp::sign_notification;

pub const KEY: &str = "test-key-site-a";
pub const OTHER_KEY: &str = "test-key-site-b";

pub struct TestSim {
    pub handle: SimulatorHandle,
    pub http: reqwest::Client,
}

pub async fn spawn() -> TestSim {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(adjust: impl FnOnce(&mut SimulatorConfig)) -> TestSim {
    let mut config = SimulatorConfig::for_tests(KEY);
    config.api_keys.push(OTHER_KEY.to_owned());
    adjust(&mut config);
    let handle = msp_simulator::spawn(config)
        .await
        .expect("the simulator starts");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestSim { handle, http }
}

/// A unique order id per call, so tests never collide.
pub fn order_id() -> String {
    format!("ord-{}", uuid::Uuid::new_v4().simple())
}

/// A direct card order with every field the gateway sends.
pub fn order_body(order_id: &str, card: &str) -> Value {
    json!({
        "type": "direct",
        "gateway": "CREDITCARD",
        "order_id": order_id,
        "currency": "EUR",
        "amount": 1000,
        "description": "Test order",
        "payment_options": {
            "redirect_url": "https://shop.example/ok?lang=nl",
            "cancel_url": "https://shop.example/failed?lang=nl",
            "close_window": false
        },
        "customer": {
            "locale": "nl_NL", "ip_address": "1.2.3.4", "email": "j@example.com",
            "phone": "0612345678", "country": "NL",
            "browser": {"javascript_enabled": true, "java_enabled": false, "cookies_enabled": true,
                        "language": "en-GB", "screen_color_depth": 24, "screen_height": 1080,
                        "screen_width": 1920, "time_zone": -120, "user_agent": "test", "platform": "Linux"}
        },
        "gateway_info": {"card_number": card, "card_holder_name": "J Doe",
                         "card_expiry_date": "3012", "card_cvc": "123"}
    })
}

impl TestSim {
    /// `path` under `/v1/json`, by the bound address (not `--public-url`, which may not resolve).
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/json{path}", self.local())
    }

    pub fn local(&self) -> String {
        format!("http://{}", self.handle.addr())
    }

    /// POSTs an order with the `api_key` header; returns (HTTP status, body).
    pub async fn create(&self, body: &Value) -> (u16, Value) {
        self.create_as(KEY, body).await
    }

    pub async fn create_as(&self, key: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/orders"))
            .header("api_key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub async fn get_order(&self, id: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(&format!("/orders/{id}")))
            .header("api_key", KEY)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// The order's `data` (panics when the call fails).
    pub async fn order(&self, id: &str) -> Value {
        let (status, body) = self.get_order(id).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    /// Answers the challenge of `payment_url` with `result`; returns the redirect's Location.
    pub async fn answer(&self, payment_url: &str, result: &str) -> String {
        let r = self
            .http
            .post(payment_url)
            .form(&[("result", result)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{:?}", r.text().await);
        r.headers()["location"].to_str().unwrap().to_owned()
    }

    pub async fn put_faults(&self, faults: Value) -> Value {
        let r = self
            .http
            .put(format!("{}/sim/faults", self.local()))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.unwrap()
    }

    pub async fn attempts(&self, order_id: &str) -> Vec<Value> {
        self.http
            .get(format!(
                "{}/sim/notifications?order_id={order_id}",
                self.local()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits (up to `within`) until `order_id` has at least `n` attempts listed.
    pub async fn wait_attempts(&self, order_id: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let a = self.attempts(order_id).await;
            if a.len() >= n || tokio::time::Instant::now() > deadline {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `intervals` (1 to 3) retry intervals have passed on the simulator's own retry
    /// timer since this call: a fresh order whose notifications cannot be delivered is retried
    /// on that timer, so once its attempt `intervals + 1` is logged, they have. This is how a test
    /// knows that something which would have been due by then (a retry that must not happen, a
    /// notification that must not be sent) had its chance, without guessing a sleep. Needs
    /// notifications sent as they happen: no `drop_notifications`, `notification_delay_ms` or
    /// `reorder_notifications`.
    pub async fn wait_retry_intervals(&self, intervals: u32) {
        assert!((1..=3).contains(&intervals), "an order has 3 retries");
        let id = order_id();
        // Nothing listens on the discard port: every attempt fails at once, and none reaches a
        // receiver of this test or, through wiremock's pool, of another one.
        let nowhere = "http://127.0.0.1:9/notify";
        let (status, body) = self
            .create(&notified_order(
                &id,
                "374500000000015",
                nowhere,
                Some("POST"),
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let attempts = self.attempts(&id).await;
            if attempts
                .iter()
                .any(|a| a["attempt"].as_u64() > Some(u64::from(intervals)))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the simulator's retry timer did not run {intervals} intervals: {attempts:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to `within`) until the order has `status`.
    pub async fn wait_status(&self, order_id: &str, status: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let o = self.order(order_id).await;
            if o["status"] == status || tokio::time::Instant::now() > deadline {
                return o;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A merchant's notification endpoint: `/ok` answers `OK`, `/fail` answers 500.
pub async fn receiver() -> wiremock::MockServer {
    use wiremock::matchers::path;
    use wiremock::{Mock, ResponseTemplate};
    let server = wiremock::MockServer::start().await;
    Mock::given(path("/ok"))
        .respond_with(ResponseTemplate::new(200).set_body_string("OK"))
        .mount(&server)
        .await;
    Mock::given(path("/fail"))
        .respond_with(ResponseTemplate::new(500).set_body_string("OK? no: failed"))
        .mount(&server)
        .await;
    server
}

/// `order_body` with a notification URL and method.
pub fn notified_order(order_id: &str, card: &str, url: &str, method: Option<&str>) -> Value {
    let mut body = order_body(order_id, card);
    body["payment_options"]["notification_url"] = json!(url);
    if let Some(m) = method {
        body["payment_options"]["notification_method"] = json!(m);
    }
    body
}

/// The requests `receiver` got for `order_id` (by its `transactionid`), in arrival order.
pub async fn received_for(server: &wiremock::MockServer, order_id: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| query(r, "transactionid").as_deref() == Some(order_id))
        .collect()
}

pub fn query(r: &wiremock::Request, name: &str) -> Option<String> {
    r.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Verifies an `Auth` header independently of the simulator's code: it must be exactly what
/// MSP's signature over `body` with `key` is at the timestamp it names. Returns that timestamp
/// when valid.
pub fn verify_auth(key: &str, auth: &str, body: &[u8]) -> Option<i64> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let (timestamp, _) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    let timestamp: i64 = timestamp.parse().ok()?;
    (sign_notification(key, timestamp, body) == auth).then_some(timestamp)
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
