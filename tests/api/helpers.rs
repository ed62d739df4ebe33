//! `spawn_app()`: the gateway in-process on port 0, against the in-process MultiSafepay simulator
//! and the test binary's own `redis-server`, with a key prefix of its own (no test flushes
//! anything). Logs of every test go to one in-memory buffer, so that a test can scan them.

use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web;
use gateway::clock::ManualClock;
use gateway::configuration::{NotificationMethod, Settings, ThreeDsMode};
use gateway::startup::{AppState, Application, Plugins};
use gateway::store::redis::RedisStore;
use gateway::store::{CheckoutStore, StoreError};
use gateway::telemetry;
use gateway::webhooks::Deliverer;
use msp_simulator::{SimulatorConfig, SimulatorHandle};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

use crate::common::checkout::CheckoutRequest;
use crate::common::redis_server::{TestRedis, unique_prefix};

pub const MSP_KEY: &str = "test-site-api-key-0001";
pub const MERCHANT_KEY: &str = "test-merchant-key-0123456789";

/// Everything any test logged, as JSON lines.
pub static LOGS: LazyLock<Arc<Mutex<Vec<u8>>>> = LazyLock::new(|| {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = buffer.clone();
    let make_writer = move || BufferWriter(sink.clone());
    // Debug level for our crate: the scan for card data then covers the chattiest logs.
    let filter = "info,gateway=debug,sandbox=debug,msp_simulator=debug";
    telemetry::init_subscriber(telemetry::get_subscriber(filter, make_writer));
    buffer
});

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// The test binary's Redis (one server, a prefix per test).
pub static REDIS: LazyLock<&TestRedis> = LazyLock::new(TestRedis::shared);

pub struct TestApp {
    pub address: String,
    /// The operators' listener (`server.ops_port`), when the test asked for one.
    pub ops_address: Option<String>,
    pub client: reqwest::Client,
    pub sim: SimulatorHandle,
    pub prefix: String,
    pub redis_url: String,
    /// The running app's state, for tests that drive the reconciler's passes themselves.
    pub state: web::Data<AppState>,
    /// The app's webhook deliverer, for tests that drive its passes themselves.
    pub deliverer: Option<Arc<Deliverer>>,
    /// The gateway's clock: it starts at the real time and moves only when a test moves it.
    pub clock: Arc<ManualClock>,
    handle: ServerHandle,
}

/// How a test wants its gateway.
#[derive(Clone)]
pub struct Options {
    pub three_ds_mode: ThreeDsMode,
    pub notification_method: NotificationMethod,
    /// Point the gateway at this MSP base URL instead of the simulator's (to make MSP unreachable).
    pub msp_base_url: Option<String>,
    pub redis_url: Option<String>,
    pub timeout_ms: u64,
    pub rate_limit_per_s: u32,
    /// `server.keyless_rate_limit_per_s`; off unless a test is about it (every test's requests
    /// come from 127.0.0.1, and the gateway's clock stands still).
    pub keyless_rate_limit_per_s: u32,
    pub body_limit_bytes: usize,
    /// Deliver events to this receiver.
    pub webhooks: Option<Webhooks>,
    /// Share another app's key prefix (two instances on one Redis).
    pub prefix: Option<String>,
    pub body_timeout_ms: u64,
    /// `server.ops_port`: `Some(0)` gives health and metrics a free port of their own.
    pub ops_port: Option<u16>,
    /// `redis.command_timeout_ms`: 3 s, which a loaded machine stays within; the tests of a
    /// stalled Redis set it short.
    pub redis_command_timeout_ms: u64,
    /// The address rules of webhook endpoints made through the API.
    pub endpoint_guard: EndpointGuard,
    /// `ops.console_keys` (the console needs `ops_port` too).
    pub console_keys: Vec<String>,
}

/// `webhooks.allow_private_networks`, `webhooks.allow_http_hosts` and the resolver endpoint
/// host names go through. By default the tests' receivers on loopback are allowed.
#[derive(Clone)]
pub struct EndpointGuard {
    pub allow_private_networks: bool,
    pub allow_http_hosts: Vec<String>,
    pub resolver: Option<Arc<dyn gateway::webhooks::address::NameResolver>>,
}

impl Default for EndpointGuard {
    fn default() -> Self {
        Self {
            allow_private_networks: true,
            allow_http_hosts: vec!["127.0.0.1".into()],
            resolver: None,
        }
    }
}

/// Where a test's gateway delivers its events.
#[derive(Clone)]
pub struct Webhooks {
    pub url: String,
    pub secrets: Vec<String>,
    pub timeout_ms: u64,
    pub max_age_s: u64,
}

impl Webhooks {
    pub fn to(url: String) -> Self {
        Self {
            url,
            secrets: vec![WEBHOOK_SECRET.to_owned()],
            timeout_ms: 2_000,
            max_age_s: 259_200,
        }
    }
}

pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";

impl Default for Options {
    fn default() -> Self {
        Self {
            three_ds_mode: ThreeDsMode::Redirect,
            notification_method: NotificationMethod::Post,
            msp_base_url: None,
            redis_url: None,
            timeout_ms: 5_000,
            rate_limit_per_s: 0,
            keyless_rate_limit_per_s: 0,
            body_limit_bytes: 65_536,
            webhooks: None,
            prefix: None,
            body_timeout_ms: 10_000,
            ops_port: None,
            redis_command_timeout_ms: 3_000,
            endpoint_guard: EndpointGuard::default(),
            console_keys: Vec::new(),
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    LazyLock::force(&LOGS);
    let mut sim_config = SimulatorConfig::for_tests(MSP_KEY);
    sim_config.notification_retry_interval = Duration::from_millis(300);
    let sim = msp_simulator::spawn(sim_config)
        .await
        .expect("simulator starts");

    let redis_url = opts
        .redis_url
        .clone()
        .unwrap_or_else(|| REDIS.url().to_owned());
    let prefix = opts.prefix.clone().unwrap_or_else(unique_prefix);
    let mut settings = Settings::default();
    settings.server.port = 0;
    settings.server.body_limit_bytes = opts.body_limit_bytes;
    settings.server.body_timeout_ms = opts.body_timeout_ms;
    settings.server.ops_port = opts.ops_port;
    settings.server.keyless_rate_limit_per_s = opts.keyless_rate_limit_per_s;
    settings.redis.url = Some(SecretString::from(redis_url.clone()));
    settings.redis.key_prefix = prefix.clone();
    settings.redis.command_timeout_ms = opts.redis_command_timeout_ms;
    settings.multisafepay.base_url = opts.msp_base_url.clone().unwrap_or_else(|| sim.api_url());
    settings.multisafepay.api_key = Some(SecretString::from(MSP_KEY));
    settings.multisafepay.notification_method = opts.notification_method;
    settings.multisafepay.timeout_ms = opts.timeout_ms;
    settings.multisafepay.connect_timeout_ms = 1_000;
    settings.auth.api_keys = vec![SecretString::from(MERCHANT_KEY)];
    settings.auth.rate_limit_per_s = opts.rate_limit_per_s;
    settings.checkout.three_ds_mode = opts.three_ds_mode;
    settings.checkout.return_url_hosts = vec!["shop.example".into()];
    // Tests drive the reconciler's passes themselves.
    settings.reconcile.enabled = false;
    settings.webhooks.allow_private_networks = opts.endpoint_guard.allow_private_networks;
    settings.webhooks.allow_http_hosts = opts.endpoint_guard.allow_http_hosts.clone();
    settings.ops.console_keys = opts
        .console_keys
        .iter()
        .cloned()
        .map(SecretString::from)
        .collect();
    if let Some(w) = &opts.webhooks {
        settings.webhooks.url = Some(w.url.clone());
        settings.webhooks.secrets = w.secrets.iter().cloned().map(SecretString::from).collect();
        settings.webhooks.timeout_ms = w.timeout_ms;
        settings.webhooks.max_age_s = w.max_age_s;
    }

    let store: Arc<dyn CheckoutStore> = Arc::new(
        RedisStore::connect(settings.redis_connect())
            .await
            .expect("redis connects"),
    );
    let clock = Arc::new(ManualClock::starting_now());
    let plugins = Plugins {
        clock: Some(clock.clone()),
        resolver: opts.endpoint_guard.resolver.clone(),
        ..Plugins::default()
    };
    let app = Application::build_with(settings, store, plugins).expect("app builds");
    let address = app.public_url().to_owned();
    let ops_address = app
        .ops_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let handle = app.handle();
    let state = app.state();
    let deliverer = app.deliverer();
    tokio::spawn(app.run_until_stopped());

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        // Below the server's 5 s keep-alive: a pooled connection is never reused just as the
        // server closes it (hyper's IncompleteMessage, seen under load).
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    TestApp {
        address,
        ops_address,
        client,
        sim,
        prefix,
        redis_url,
        state,
        deliverer,
        clock,
        handle,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request to the merchant API with the merchant key.
    pub fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(MERCHANT_KEY)
    }

    pub async fn post_checkout(&self, body: &Value) -> reqwest::Response {
        self.authed(reqwest::Method::POST, "/v1/checkouts")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a checkout and returns its JSON, asserting 201.
    pub async fn create(&self, card_number: &str) -> Value {
        let res = self
            .post_checkout(&CheckoutRequest::new(card_number).body())
            .await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// MSP's order `id`, as the simulator's API answers it (`data`).
    pub async fn msp_order(&self, id: &str) -> Value {
        let res: Value = self
            .client
            .get(format!("{}/orders/{id}", self.sim.api_url()))
            .header("api_key", MSP_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["data"].clone()
    }

    /// MSP's `status` of order `id`.
    pub async fn msp_order_status(&self, id: &str) -> String {
        self.msp_order(id).await["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn get_checkout(&self, id: &str) -> Value {
        let res = self
            .authed(reqwest::Method::GET, &format!("/v1/checkouts/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// The checkout's history (`GET /v1/checkouts/{id}/events`), all of it: one page of 100.
    pub async fn events(&self, id: &str) -> Vec<Value> {
        let res = self
            .authed(
                reqwest::Method::GET,
                &format!("/v1/checkouts/{id}/events?limit=100"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        assert_eq!(page["has_more"], false, "{page}");
        serde_json::from_value(page["data"].clone()).unwrap()
    }

    /// The list of `to` statuses of the checkout's events.
    pub async fn event_trail(&self, id: &str) -> Vec<String> {
        self.events(id)
            .await
            .iter()
            .map(|e| e["to"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Polls until the checkout has `status` (notifications arrive asynchronously); panics with
    /// the last state after `within`.
    pub async fn wait_for_status(&self, id: &str, status: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let checkout = self.get_checkout(id).await;
            if checkout["status"] == status {
                return checkout;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("checkout {id} did not reach {status}; it is {checkout}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The simulator's record of its notification deliveries for checkout `id` (MSP's order id),
    /// oldest first: `GET /sim/notifications`.
    pub async fn notification_attempts(&self, id: &str) -> Vec<Value> {
        let res = self
            .client
            .get(format!("{}/sim/notifications", self.sim.base_url()))
            .query(&[("order_id", id)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "simulator notifications");
        res.json().await.unwrap()
    }

    /// Polls until the simulator has delivered a notification reporting MSP status `msp_status`
    /// for checkout `id` and the gateway acknowledged it. The gateway answers `OK` only once it
    /// has stored what the notification changed, so after this the notification is fully
    /// processed. Panics with the deliveries so far after `within`.
    pub async fn wait_for_acknowledged_notification(
        &self,
        id: &str,
        msp_status: &str,
        within: Duration,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let attempts = self.notification_attempts(id).await;
            if let Some(acked) = attempts
                .iter()
                .find(|a| a["order_status"] == msp_status && a["acknowledged"] == true)
            {
                return acked.clone();
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "no acknowledged `{msp_status}` notification for {id}; deliveries: {attempts:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many times the gateway asked MSP for order `id` (`GET /orders/{id}`), by the
    /// simulator's record of the calls it got (`GET /sim/requests`).
    pub async fn msp_status_calls(&self, id: &str) -> usize {
        let res = self
            .client
            .get(format!("{}/sim/requests", self.sim.base_url()))
            .query(&[("order_id", id)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "simulator requests");
        let calls: Vec<Value> = res.json().await.unwrap();
        calls.iter().filter(|c| c["method"] == "GET").count()
    }

    /// GET a URL without following redirects.
    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }

    /// Answers the simulator's challenge page at `payment_url` with `Y`, `N` or `cancel`, as a
    /// person would: load the page, post its form. Returns the simulator's 303 `Location`.
    pub async fn answer_challenge(&self, payment_url: &str, result: &str) -> String {
        let page = self.get(payment_url).await;
        assert_eq!(
            page.status(),
            StatusCode::OK,
            "challenge page at {payment_url}"
        );
        let html = page.text().await.unwrap();
        let action = form_action(&html).expect("challenge form has an action");
        let mut fields = hidden_fields(&html);
        fields.push(("result".into(), result.into()));
        let res = self
            .client
            .post(&action)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "challenge answer");
        location(&res)
    }

    /// Follows the whole 3DS path of a `requires_action` checkout in redirect mode: pay page →
    /// MSP challenge → answer → gateway return → shop. Returns the final shop URL.
    pub async fn pay_with_challenge(&self, checkout: &Value, result: &str) -> String {
        let payment_url = self.open_challenge(checkout).await;
        let back = self.answer_challenge(&payment_url, result).await;
        assert!(
            back.starts_with(&self.address),
            "MSP sends the browser back to the gateway: {back}"
        );
        let res = self.get(&back).await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "gateway return redirects to the shop"
        );
        location(&res)
    }

    /// Merges `faults` into the simulator's (`PUT /sim/faults`).
    pub async fn set_faults(&self, faults: serde_json::Value) {
        let res = self
            .client
            .put(format!("{}/sim/faults", self.sim.base_url()))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "simulator faults {faults}");
    }

    /// Opens the checkout's pay link in redirect mode and returns MSP's `payment_url` it sent us to.
    pub async fn open_challenge(&self, checkout: &Value) -> String {
        let pay_url = pay_link(checkout);
        let res = self.get(&pay_url).await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "pay page redirects to MSP"
        );
        location(&res)
    }

    /// Moves the gateway's clock forward by `by`, then runs one reconciler pass; returns how
    /// many checkouts the pass looked at.
    pub async fn pass_after(&self, by: chrono::TimeDelta) -> Result<usize, StoreError> {
        self.clock.advance(by);
        gateway::flows::reconcile::pass(&self.state.flows).await
    }

    /// Moves the gateway's clock forward by `by`, then runs one webhook delivery pass; returns
    /// how many events the pass tried (the background deliverer may have taken some first).
    pub async fn deliver_after(&self, by: chrono::TimeDelta) -> usize {
        self.clock.advance(by);
        self.deliverer
            .as_ref()
            .expect("the app has webhooks")
            .pass()
            .await
            .unwrap()
    }

    /// The checkout's merchant events, newest first.
    pub async fn merchant_events(&self, checkout_id: &str) -> Vec<Value> {
        let res = self
            .authed(
                reqwest::Method::GET,
                &format!("/v1/events?checkout_id={checkout_id}&limit=100"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        page["data"].as_array().unwrap().clone()
    }

    /// `GET /v1/events/{id}`: the event with its delivery.
    pub async fn event(&self, id: &str) -> Value {
        let res = self
            .authed(reqwest::Method::GET, &format!("/v1/events/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "GET /v1/events/{id}");
        res.json().await.unwrap()
    }

    /// Polls `GET /v1/events/{id}` until its delivery has `n` attempts; answers it.
    pub async fn wait_for_attempts(&self, id: &str, n: usize) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let event = self.event(id).await;
            let attempts = event["delivery"]["attempts"].as_array().map_or(0, Vec::len);
            if attempts >= n {
                return event;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "event {id} has {attempts} attempts, expected {n}: {event:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A 3DS checkout whose shopper authenticates at MSP and closes the tab, with MSP's
    /// notifications dropped: only asking MSP can tell the gateway. Returns the checkout id.
    pub async fn authenticated_but_unheard(&self, card: &str) -> String {
        self.set_faults(serde_json::json!({"drop_notifications": true}))
            .await;
        let checkout = self.create(card).await;
        let payment_url = self.open_challenge(&checkout).await;
        self.answer_challenge(&payment_url, "Y").await;
        let id = checkout["id"].as_str().unwrap().to_owned();
        assert_eq!(self.get_checkout(&id).await["status"], "requires_action");
        id
    }

    /// Stops the gateway and the simulator. Teardown only: the test has asserted what it
    /// wanted, so a stop that does not finish (an actix-web server stop future was once seen
    /// never to resolve under load, with no timer left) must not hold the test binary forever.
    pub async fn stop(self) {
        let stopping = async {
            self.handle.stop(true).await;
            self.sim.stop().await;
        };
        if tokio::time::timeout(Duration::from_secs(20), stopping)
            .await
            .is_err()
        {
            eprintln!("the test app did not stop within 20 s; leaving it to the process's end");
        }
    }

    /// Every Redis value under this app's prefix, as text.
    pub async fn redis_dump(&self) -> Vec<(String, String)> {
        let client = redis::Client::open(self.redis_url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut con)
            .await
            .unwrap();
        let mut out = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut con)
                .await
                .unwrap();
            let read: &[&str] = match kind.as_str() {
                "string" => &["GET"],
                "hash" => &["HGETALL"],
                "list" => &["LRANGE", "0", "-1"],
                "zset" => &["ZRANGE", "0", "-1"],
                other => panic!("unexpected Redis type {other} under {key}"),
            };
            let mut cmd = redis::cmd(read[0]);
            cmd.arg(&key).arg(&read[1..]);
            let value: redis::Value = cmd.query_async(&mut con).await.unwrap();
            let text = format!("{value:?}");
            out.push((key, text));
        }
        out
    }
}

/// The checkout's `next_action` URL (the gateway's pay link).
pub fn pay_link(checkout: &Value) -> String {
    checkout["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("a pay link")
        .to_owned()
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The `action` of the first `<form` in `html`.
pub fn form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    let start = form.find("action=\"")? + "action=\"".len();
    let end = form[start..].find('"')?;
    Some(form[start..start + end].replace("&amp;", "&"))
}

/// `name`/`value` of every `<input type="hidden">` in `html`.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in html.split("<input").skip(1) {
        let tag = &chunk[..chunk.find('>').unwrap_or(chunk.len())];
        if !tag.contains("type=\"hidden\"") {
            continue;
        }
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            tag.find(&key).map(|i| {
                let rest = &tag[i + key.len()..];
                rest[..rest.find('"').unwrap_or(rest.len())].replace("&amp;", "&")
            })
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

/// Query parameters of a URL as pairs.
pub fn query_of(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn query_value(url: &str, key: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Watches the commands a Redis server receives (`MONITOR`, on a connection of its own): each
/// command a client sends is one round trip; commands a script runs are not counted.
pub struct RedisMonitor {
    url: String,
    reader: tokio::io::BufReader<tokio::net::TcpStream>,
}

impl RedisMonitor {
    pub async fn start(url: &str) -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let addr = url.trim_start_matches("redis://").trim_end_matches('/');
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"MONITOR\r\n").await.unwrap();
        let mut reader = tokio::io::BufReader::new(stream);
        let mut ok = String::new();
        reader.read_line(&mut ok).await.unwrap();
        assert_eq!(ok, "+OK\r\n");
        Self {
            url: url.to_owned(),
            reader,
        }
    }

    /// The names of the commands clients sent since the start (or the last call), in order.
    pub async fn commands(&mut self) -> Vec<String> {
        use tokio::io::AsyncBufReadExt;
        let marker = format!("monitor-mark-{}", uuid::Uuid::new_v4().simple());
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: String = redis::cmd("ECHO")
            .arg(&marker)
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).await.unwrap();
            if line.contains(&marker) {
                return seen;
            }
            // `+<time> [<db> <client>] "<command>" …`; a script's own are `[<db> lua]`.
            let Some((source, command)) = line.split_once("] ") else {
                continue;
            };
            if !source.ends_with(" lua") {
                let name = command.split('"').nth(1).unwrap_or_default();
                seen.push(name.to_lowercase());
            }
        }
    }
}
