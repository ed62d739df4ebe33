//! How fast the outbox empties after a full-speed run (issue 31: "the outbox delivering every
//! event within 2 s of the end of a full-speed run, each once; one endpoint per event and three
//! endpoints per event alike"): Redis, the simulator and the gateway as **separate processes**,
//! the webhook receivers in this one.
//!
//! ```text
//! cargo bench -p bench --bench outbox_bench -- [--seconds 10] [--connections 32]
//!     [--drain-cap-s 60] [--quiet-ms 2000] [--one-via url|api] [--three-via api|url-and-api] [--smoke]
//!     [--gateway-bin PATH]
//! ```
//!
//! It builds the release binary (`cargo build --release --bin checkout-gateway`, into
//! `CARGO_TARGET_DIR` when set) and runs two configurations, each on a fresh `redis-server` (no
//! persistence), a fresh `checkout-gateway simulator` and a fresh `checkout-gateway serve`
//! (logs at `info` to a file in a temp dir, printed; the simulator's signed notifications go to
//! it), with receivers of their own:
//!
//! - **one endpoint per event**: the configured storefront URL (`GATEWAY__WEBHOOKS__URL`), or with
//!   `--one-via api` one endpoint made through `POST /v1/webhook_endpoints` instead;
//! - **three endpoints per event**: three endpoints made through `POST /v1/webhook_endpoints`
//!   (`events: ["*"]`, as a merchant would), no configured URL; with `--three-via url-and-api`
//!   the configured URL and two such endpoints.
//!
//! API-made endpoints on loopback over http pass the address guard through
//! `webhooks.allow_http_hosts=127.0.0.1` and `webhooks.allow_private_networks=true`, as the API
//! tests' gateways do. Each endpoint is a receiver of its own (an actix-web server on a free
//! loopback port, one worker) that checks the delivery's `Gateway-Signature` against that
//! endpoint's secret (`test_support::webhook::verify`), records the event id, the endpoint and
//! when it arrived, and answers 200 at once.
//!
//! The load is this harness' own reqwest client (not wrk, so that the instant of the last answer
//! is known): `--connections` loops, each sending `POST /v1/checkouts` with the frictionless
//! test card (`test_support::checkout::CheckoutRequest`) one after another, for `--seconds`; a
//! loop sends nothing new after that, and the **end of the run** is the instant the last answer
//! arrived. Then it waits until no delivery came for `--quiet-ms`, lists every event the gateway
//! holds (`GET /v1/events`, 100 a page, `starting_after`) and compares; while some are missing
//! it keeps waiting and comparing (listing again at most every 5 s), up to `--drain-cap-s`
//! after the end of the run (printed when hit). It prints per configuration: checkouts created
//! and checkouts/s, events, deliveries expected (events × endpoints) and received, duplicates
//! (one event to one endpoint more than once), missing, signatures that did not verify, the
//! **drain time** (the last delivery's arrival minus the end of the run, target ≤ 2 s) and how
//! many deliveries arrived after the end of the run, the lag from a checkout's 201 to each of
//! its deliveries, the gateway's own delivery counters (`/metrics`) and its log's WARN and ERROR
//! lines. It exits non-zero when an event is missing or doubled (or a signature failed) in
//! either configuration.
//!
//! The receivers and the load share the machine with the gateway, the simulator and Redis, so
//! the figures are for this whole set on this machine. `--smoke` runs each configuration for a
//! second at 4 connections with a short quiet time: a check that the harness works, not figures.
//! Requires `redis-server` (Debian package).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use test_support::checkout::CheckoutRequest;
use test_support::redis_server::TestRedis;
use test_support::webhook::verify;

#[path = "common/processes.rs"]
mod processes;
use processes::{
    FRICTIONLESS, MERCHANT_KEY, Proc, build_gateway, free_port, gateway_command, start_simulator,
    wait_up,
};

/// `webhooks.secrets` (at least 16 characters), which signs deliveries to `webhooks.url`.
const URL_SECRET: &str = "bench-webhook-secret-0123456789abcdef";
/// The drain target of issue 31.
const DRAIN_TARGET: Duration = Duration::from_secs(2);
/// How often the event list is read again while deliveries are missing.
const RELIST_EVERY: Duration = Duration::from_secs(5);

#[derive(Parser, Debug)]
#[command(
    about = "How fast the gateway's outbox empties after a full-speed run, to 1 and 3 endpoints"
)]
struct Args {
    /// Passed by `cargo bench` to every harness; nothing to do with it.
    #[arg(long = "bench", hide = true)]
    _bench: bool,
    /// Seconds of checkout creation at full speed, per configuration.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent requests in flight (each loop on its own keep-alive connection).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The longest wait for the outbox to empty after the end of the run.
    #[arg(long, default_value_t = 60)]
    drain_cap_s: u64,
    /// Deliveries count as gone quiet after this long without one; only then are the events
    /// listed and compared.
    #[arg(long, default_value_t = 2000)]
    quiet_ms: u64,
    /// Where the single endpoint of the first configuration comes from.
    #[arg(long, value_enum, default_value_t = OneVia::Url)]
    one_via: OneVia,
    /// Where the three endpoints of the second configuration come from.
    #[arg(long, value_enum, default_value_t = ThreeVia::Api)]
    three_via: ThreeVia,
    /// One second per configuration at 4 connections: checks the harness, not the figures.
    #[arg(long)]
    smoke: bool,
    /// Runs this gateway binary instead of building the workspace's (to compare two builds in
    /// turns).
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OneVia {
    /// The configured storefront URL (`webhooks.url`).
    Url,
    /// One endpoint made through `POST /v1/webhook_endpoints`.
    Api,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ThreeVia {
    /// Three endpoints made through `POST /v1/webhook_endpoints`, no configured URL.
    Api,
    /// The configured URL and two endpoints made through the API.
    UrlAndApi,
}

/// Where a configuration's events go: the configured URL or not, and how many endpoints made
/// through the API.
#[derive(Clone, Copy, Debug)]
struct Layout {
    name: &'static str,
    configured_url: bool,
    api_endpoints: usize,
}

impl Layout {
    fn endpoints(&self) -> usize {
        usize::from(self.configured_url) + self.api_endpoints
    }

    fn describe(&self) -> String {
        match (self.configured_url, self.api_endpoints) {
            (true, 0) => "the configured webhooks.url (GATEWAY__WEBHOOKS__URL)".into(),
            (false, n) => format!(
                "{n} endpoint{} made through POST /v1/webhook_endpoints (events [\"*\"]), no webhooks.url",
                if n == 1 { "" } else { "s" }
            ),
            (true, n) => format!(
                "the configured webhooks.url and {n} endpoint{} made through POST /v1/webhook_endpoints (events [\"*\"])",
                if n == 1 { "" } else { "s" }
            ),
        }
    }
}

/// `checkout-gateway serve` on `port` at `info`, stdout to `log` (stderr beside it). Its public
/// URL is its own address, so the simulator's notifications reach it.
fn start_gateway(
    bin: &Path,
    port: u16,
    redis_url: &str,
    sim_url: &str,
    webhooks_url: Option<&str>,
    log: &Path,
) -> anyhow::Result<Proc> {
    let mut cmd = gateway_command(bin, port, redis_url, sim_url, "info", log)?;
    cmd.env("GATEWAY__WEBHOOKS__SECRETS", URL_SECRET)
        // The receivers are on loopback over http: what the API tests' gateways allow.
        .env("GATEWAY__WEBHOOKS__ALLOW_HTTP_HOSTS", "127.0.0.1")
        .env("GATEWAY__WEBHOOKS__ALLOW_PRIVATE_NETWORKS", "true")
        .stderr(std::fs::File::create(log.with_extension("stderr"))?);
    if let Some(url) = webhooks_url {
        cmd.env("GATEWAY__WEBHOOKS__URL", url);
    }
    Ok(Proc {
        child: cmd.spawn().context("starting the gateway")?,
    })
}

/// Polls `url` until it answers 2xx.
async fn wait_ready(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(res) = client.get(url).send().await
            && res.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer 2xx within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The receivers

/// One delivery as a receiver got it.
struct Arrival {
    endpoint: usize,
    event_id: String,
    at: Instant,
    verified: bool,
}

/// What every receiver of a configuration records into, and the endpoints' secrets (an API-made
/// endpoint's is known once the gateway has made it).
struct Inbox {
    arrivals: Mutex<Vec<Arrival>>,
    secrets: Vec<OnceLock<String>>,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arrival>> {
        self.arrivals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many deliveries came so far, and when the last one did.
    fn progress(&self) -> (usize, Option<Instant>) {
        let arrivals = self.lock();
        (arrivals.len(), arrivals.last().map(|a| a.at))
    }
}

struct Hook {
    endpoint: usize,
    inbox: Arc<Inbox>,
}

async fn receive(hook: web::Data<Hook>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let at = Instant::now();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let verified = match (
        header("gateway-signature"),
        hook.inbox.secrets[hook.endpoint].get(),
    ) {
        (Some(signature), Some(secret)) => verify(signature, &body, secret, now, 300).is_ok(),
        _ => false,
    };
    let arrival = Arrival {
        endpoint: hook.endpoint,
        event_id: header("gateway-event-id").unwrap_or_default().to_owned(),
        at,
        verified,
    };
    hook.inbox.lock().push(arrival);
    HttpResponse::Ok().finish()
}

/// One receiver per endpoint, each an actix-web server on a port of its own.
struct Receivers {
    inbox: Arc<Inbox>,
    urls: Vec<String>,
    servers: Vec<actix_web::dev::ServerHandle>,
}

impl Receivers {
    fn start(n: usize) -> anyhow::Result<Receivers> {
        let inbox = Arc::new(Inbox {
            arrivals: Mutex::new(Vec::with_capacity(1 << 16)),
            secrets: (0..n).map(|_| OnceLock::new()).collect(),
        });
        let mut urls = Vec::with_capacity(n);
        let mut servers = Vec::with_capacity(n);
        for endpoint in 0..n {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            let hook = web::Data::new(Hook {
                endpoint,
                inbox: inbox.clone(),
            });
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(hook.clone())
                    .route("/hooks/{n}", web::post().to(receive))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run();
            servers.push(server.handle());
            tokio::spawn(server);
            urls.push(format!("http://127.0.0.1:{port}/hooks/{}", endpoint + 1));
        }
        Ok(Receivers {
            inbox,
            urls,
            servers,
        })
    }

    async fn stop(self) {
        for server in self.servers {
            server.stop(false).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The load

/// What the creation run came to.
struct Run {
    started: Instant,
    /// When the last answer arrived: the end of the run.
    ended: Instant,
    /// Each created checkout's 32 hex digits and when its 201 arrived.
    created: HashMap<String, Instant>,
    /// Answers other than 201, by status.
    other: BTreeMap<u16, u64>,
    errors: u64,
    first_problem: Option<String>,
}

#[derive(Default)]
struct Loop {
    created: Vec<(String, Instant)>,
    other: BTreeMap<u16, u64>,
    errors: u64,
    first_problem: Option<String>,
    last_answer: Option<Instant>,
}

/// `connections` loops of `POST /v1/checkouts`, each sending its next once the last answered,
/// until `seconds` have passed.
async fn create_at_full_speed(
    client: &reqwest::Client,
    gateway: &str,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<Run> {
    let body = CheckoutRequest::new(FRICTIONLESS).body().to_string();
    let url = format!("{gateway}/v1/checkouts");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let loops: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                let mut mine = Loop::default();
                while Instant::now() < deadline {
                    let sent = client
                        .post(&url)
                        .bearer_auth(MERCHANT_KEY)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let answer = match sent {
                        Ok(res) => {
                            let status = res.status().as_u16();
                            res.bytes().await.map(|b| (status, b))
                        }
                        Err(e) => Err(e),
                    };
                    let at = Instant::now();
                    mine.last_answer = Some(at);
                    match answer {
                        Ok((201, bytes)) => {
                            let id = serde_json::from_slice::<Value>(&bytes)
                                .ok()
                                .and_then(|v| v["id"].as_str().map(str::to_owned));
                            match id.as_deref().and_then(|id| id.strip_prefix("chk_")) {
                                Some(hex) => mine.created.push((hex.to_owned(), at)),
                                None => {
                                    *mine.other.entry(201).or_default() += 1;
                                    mine.first_problem.get_or_insert_with(|| {
                                        "a 201 without a checkout id".into()
                                    });
                                }
                            }
                        }
                        Ok((status, bytes)) => {
                            *mine.other.entry(status).or_default() += 1;
                            mine.first_problem.get_or_insert_with(|| {
                                format!(
                                    "{status}: {}",
                                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                                )
                            });
                        }
                        Err(e) => {
                            mine.errors += 1;
                            mine.first_problem.get_or_insert_with(|| e.to_string());
                            // A gateway that is down must not make this a busy loop.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                mine
            })
        })
        .collect();
    let mut run = Run {
        started,
        ended: started,
        created: HashMap::new(),
        other: BTreeMap::new(),
        errors: 0,
        first_problem: None,
    };
    for task in loops {
        let mine = task.await.context("a load loop panicked")?;
        run.created.extend(mine.created);
        for (status, n) in mine.other {
            *run.other.entry(status).or_default() += n;
        }
        run.errors += mine.errors;
        if run.first_problem.is_none() {
            run.first_problem = mine.first_problem;
        }
        if let Some(at) = mine.last_answer {
            run.ended = run.ended.max(at);
        }
    }
    Ok(run)
}

// ---------------------------------------------------------------------------------------------
// The gateway's side

/// Makes an endpoint for `url` that takes every event; answers its signing secret.
async fn create_endpoint(
    client: &reqwest::Client,
    gateway: &str,
    url: &str,
    n: usize,
) -> anyhow::Result<String> {
    let res = client
        .post(format!("{gateway}/v1/webhook_endpoints"))
        .bearer_auth(MERCHANT_KEY)
        .json(&json!({
            "url": url,
            "events": ["*"],
            "description": format!("outbox_bench receiver {n}"),
        }))
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await?;
    if status != reqwest::StatusCode::CREATED {
        bail!("POST /v1/webhook_endpoints answered {status}: {body}");
    }
    body["secret"]
        .as_str()
        .map(str::to_owned)
        .context("a created webhook endpoint without its secret")
}

/// Every event the gateway lists (`GET /v1/events`, 100 a page): id and type.
async fn list_events(
    client: &reqwest::Client,
    gateway: &str,
) -> anyhow::Result<HashMap<String, String>> {
    let mut events = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{gateway}/v1/events?limit=100");
        if let Some(id) = &after {
            url.push_str("&starting_after=");
            url.push_str(id);
        }
        let res = client.get(&url).bearer_auth(MERCHANT_KEY).send().await?;
        let status = res.status();
        let page: Value = res.json().await?;
        if !status.is_success() {
            bail!("GET /v1/events answered {status}: {page}");
        }
        let data = page["data"]
            .as_array()
            .context("GET /v1/events answered without data")?;
        for event in data {
            let id = event["id"].as_str().context("an event without an id")?;
            let kind = event["type"].as_str().unwrap_or("?");
            events.insert(id.to_owned(), kind.to_owned());
        }
        after = data
            .last()
            .and_then(|e| e["id"].as_str())
            .map(str::to_owned);
        if page["has_more"] != Value::Bool(true) || after.is_none() {
            return Ok(events);
        }
    }
}

/// The gateway's `gateway_webhook_deliveries_total` counters, by outcome.
async fn delivery_counters(client: &reqwest::Client, gateway: &str) -> String {
    let text = match client.get(format!("{gateway}/metrics")).send().await {
        Ok(res) => res.text().await.unwrap_or_default(),
        Err(e) => return format!("(metrics unreadable: {e})"),
    };
    let counters: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("gateway_webhook_deliveries_total"))
        .filter_map(|l| {
            let outcome = l.split("outcome=\"").nth(1)?.split('"').next()?;
            let value = l.rsplit(' ').next()?;
            Some(format!("{outcome} {value}"))
        })
        .collect();
    if counters.is_empty() {
        "(none)".into()
    } else {
        counters.join(", ")
    }
}

/// The log's WARN and ERROR lines: how many, and the first few.
fn log_problems(log: &Path) -> (usize, usize, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut warn, mut error, mut first) = (0, 0, Vec::new());
    for line in text.lines() {
        // JSON lines (`"level":"WARN"`), or the plain text format's ` WARN `.
        let is_warn = line.contains("\"level\":\"WARN\"") || line.contains(" WARN ");
        let is_error = line.contains("\"level\":\"ERROR\"") || line.contains(" ERROR ");
        if is_warn {
            warn += 1;
        }
        if is_error {
            error += 1;
        }
        if (is_warn || is_error) && first.len() < 3 {
            first.push(line.chars().take(300).collect());
        }
    }
    (warn, error, first)
}

// ---------------------------------------------------------------------------------------------
// One configuration

/// What one configuration measured.
struct Outcome {
    name: &'static str,
    created: usize,
    per_s: f64,
    events: usize,
    expected: usize,
    received: usize,
    duplicates: usize,
    missing: usize,
    unverified: usize,
    /// The last delivery's arrival minus the end of the run (negative: before it).
    drain_s: Option<f64>,
    after_end: usize,
    capped: bool,
}

impl Outcome {
    fn failed(&self) -> bool {
        self.missing > 0 || self.duplicates > 0 || self.unverified > 0
    }
}

/// Seconds from `from` to `to`, negative when `to` came first.
fn signed_s(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64(),
        None => -from.duration_since(to).as_secs_f64(),
    }
}

/// The `q` quantile (0..=1) of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Plan<'a> {
    bin: &'a Path,
    scratch: &'a Path,
    client: &'a reqwest::Client,
    seconds: u64,
    connections: usize,
    quiet: Duration,
    drain_cap: Duration,
}

async fn measure(layout: Layout, s: &Plan<'_>) -> anyhow::Result<Outcome> {
    let client = s.client;
    println!();
    println!("## {}: {}", layout.name, layout.describe());
    let redis = TestRedis::start();
    let sim_port = free_port()?;
    let sim_url = format!("http://127.0.0.1:{sim_port}");
    let _sim = start_simulator(s.bin, sim_port)?;
    wait_up(client, &sim_url).await?;

    let receivers = Receivers::start(layout.endpoints())?;
    let inbox = receivers.inbox.clone();
    let configured_url = layout.configured_url.then(|| receivers.urls[0].clone());
    if configured_url.is_some() {
        let _ = inbox.secrets[0].set(URL_SECRET.to_owned());
    }

    let gw_port = free_port()?;
    let gateway = format!("http://127.0.0.1:{gw_port}");
    let slug = layout.name.replace(' ', "-");
    let log = s.scratch.join(format!("gateway-{slug}.log"));
    let gw = start_gateway(
        s.bin,
        gw_port,
        redis.url(),
        &sim_url,
        configured_url.as_deref(),
        &log,
    )?;
    wait_ready(client, &format!("{gateway}/health/ready")).await?;
    let first_api = usize::from(layout.configured_url);
    for endpoint in first_api..layout.endpoints() {
        let secret =
            create_endpoint(client, &gateway, &receivers.urls[endpoint], endpoint + 1).await?;
        let _ = inbox.secrets[endpoint].set(secret);
    }
    for (i, url) in receivers.urls.iter().enumerate() {
        let how = if configured_url.as_deref() == Some(url.as_str()) {
            "webhooks.url"
        } else {
            "API endpoint"
        };
        println!("  endpoint {}: {url} ({how})", i + 1);
    }
    println!("  gateway log: {}", log.display());

    let run = create_at_full_speed(client, &gateway, s.connections, s.seconds).await?;
    let run_s = run.ended.duration_since(run.started).as_secs_f64();
    let created = run.created.len();
    let per_s = created as f64 / run_s.max(f64::EPSILON);
    let others: u64 = run.other.values().sum();
    println!(
        "run: {} connections for {} s (the harness' own reqwest client), last answer {:.2} s after the first request: {created} checkouts created, {per_s:.0} checkouts/s; other answers {others} {:?}, transport errors {}",
        s.connections, s.seconds, run_s, run.other, run.errors
    );
    if let Some(problem) = &run.first_problem {
        println!("  first problem: {problem}");
    }
    if created == 0 {
        bail!("no checkout was created: see {}", log.display());
    }
    let (during_run, _) = inbox.progress();

    // Wait for deliveries to go quiet, then compare with what the gateway holds; again while
    // some are missing, up to the cap.
    let cap_at = run.ended + s.drain_cap;
    let mut listed: Option<(Instant, HashMap<String, String>)> = None;
    let capped = loop {
        loop {
            let (_, last) = inbox.progress();
            let since = last.map_or(run.ended, |at| at.max(run.ended));
            if since.elapsed() >= s.quiet || Instant::now() >= cap_at {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if listed
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= RELIST_EVERY)
        {
            listed = Some((Instant::now(), list_events(client, &gateway).await?));
        }
        let events = listed.as_ref().map(|(_, e)| e).context("events listed")?;
        let complete = {
            let arrivals = inbox.lock();
            let got: HashSet<(usize, &str)> = arrivals
                .iter()
                .map(|a| (a.endpoint, a.event_id.as_str()))
                .collect();
            events.keys().all(|id| {
                (0..layout.endpoints()).all(|endpoint| got.contains(&(endpoint, id.as_str())))
            })
        };
        if complete {
            break false;
        }
        if Instant::now() >= cap_at {
            break true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let events = listed.map(|(_, e)| e).unwrap_or_default();
    if capped {
        println!(
            "  CAP HIT: deliveries still missing {} s after the end of the run",
            s.drain_cap.as_secs()
        );
    }

    // The figures, from one snapshot of what arrived.
    let arrivals = std::mem::take(&mut *inbox.lock());
    let endpoints = layout.endpoints();
    let mut seen: HashMap<(usize, &str), usize> = HashMap::new();
    for a in &arrivals {
        *seen.entry((a.endpoint, a.event_id.as_str())).or_default() += 1;
    }
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    let missing = events
        .keys()
        .flat_map(|id| (0..endpoints).map(move |e| (e, id.as_str())))
        .filter(|key| !seen.contains_key(key))
        .count();
    let unexpected = seen
        .keys()
        .filter(|(_, id)| !events.contains_key(*id))
        .count();
    let unverified = arrivals.iter().filter(|a| !a.verified).count();
    let expected = events.len() * endpoints;
    let last = arrivals.iter().map(|a| a.at).max();
    let drain_s = last.map(|at| signed_s(run.ended, at));
    let after_end = arrivals.iter().filter(|a| a.at > run.ended).count();

    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for kind in events.values() {
        *by_type.entry(kind.as_str()).or_default() += 1;
    }
    println!("events the gateway lists: {} {by_type:?}", events.len());
    println!(
        "deliveries: expected {expected} ({} events x {endpoints} endpoint{}), received {} ({during_run} during the run), duplicates {duplicates}, missing {missing}, not listed as events {unexpected}, signatures that did not verify {unverified}",
        events.len(),
        if endpoints == 1 { "" } else { "s" },
        arrivals.len(),
    );
    match drain_s {
        Some(d) => println!(
            "drain: the last delivery arrived {d:.3} s after the end of the run (target <= {} s: {}); {after_end} deliveries arrived after the end of the run",
            DRAIN_TARGET.as_secs(),
            if d <= DRAIN_TARGET.as_secs_f64() && missing == 0 {
                "met"
            } else {
                "NOT met"
            }
        ),
        None => println!("drain: no delivery arrived at all"),
    }
    for endpoint in 0..endpoints {
        let mine: Vec<&Arrival> = arrivals.iter().filter(|a| a.endpoint == endpoint).collect();
        let last = mine.iter().map(|a| a.at).max();
        println!(
            "  endpoint {}: {} deliveries, {} after the end of the run, its last {}",
            endpoint + 1,
            mine.len(),
            mine.iter().filter(|a| a.at > run.ended).count(),
            last.map_or("-".into(), |at| format!(
                "{:.3} s after the end",
                signed_s(run.ended, at)
            )),
        );
    }
    // From a checkout's 201 to each of its events' first arrival at each endpoint (negative:
    // the delivery came before the answer did).
    let mut lags: Vec<f64> = Vec::new();
    let mut first_seen: HashSet<(usize, &str)> = HashSet::new();
    for a in &arrivals {
        if !first_seen.insert((a.endpoint, a.event_id.as_str())) {
            continue;
        }
        let answered = a
            .event_id
            .strip_prefix("evt_")
            .and_then(|rest| rest.get(..32))
            .and_then(|hex| run.created.get(hex));
        if let Some(answered) = answered {
            lags.push(signed_s(*answered, a.at) * 1000.0);
        }
    }
    lags.sort_by(f64::total_cmp);
    println!(
        "lag from a checkout's 201 to its delivery, ms ({} deliveries): p50 {:.1}, p90 {:.1}, p99 {:.1}, max {:.1}",
        lags.len(),
        quantile(&lags, 0.5),
        quantile(&lags, 0.9),
        quantile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "gateway's delivery attempts by outcome (gateway_webhook_deliveries_total): {}",
        delivery_counters(client, &gateway).await
    );
    receivers.stop().await;
    drop(gw);
    let (warn, error, first) = log_problems(&log);
    println!("gateway log: {warn} WARN and {error} ERROR lines");
    for line in first {
        println!("  {line}");
    }
    drop(redis);
    Ok(Outcome {
        name: layout.name,
        created,
        per_s,
        events: events.len(),
        expected,
        received: arrivals.len(),
        duplicates,
        missing,
        unverified,
        drain_s,
        after_end,
        capped,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("TEST_REDIS_URL").is_some() {
        bail!("unset TEST_REDIS_URL: each configuration needs a fresh redis-server of its own");
    }
    if args.connections == 0 || args.seconds == 0 {
        bail!("--connections and --seconds must be at least 1");
    }
    let (seconds, connections, quiet) = if args.smoke {
        (1, args.connections.min(4), Duration::from_millis(500))
    } else {
        (
            args.seconds,
            args.connections,
            Duration::from_millis(args.quiet_ms),
        )
    };
    let bin = match &args.gateway_bin {
        Some(bin) => bin.clone(),
        None => build_gateway()?,
    };
    let scratch = std::env::temp_dir().join(format!(
        "outbox-bench-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&scratch)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(connections)
        // Below the gateway's 5 s keep-alive (test_support::http_client says why).
        .pool_idle_timeout(Duration::from_secs(2))
        .build()?;
    let plan = Plan {
        bin: &bin,
        scratch: &scratch,
        client: &client,
        seconds,
        connections,
        quiet,
        drain_cap: Duration::from_secs(args.drain_cap_s),
    };
    let one = Layout {
        name: "one endpoint per event",
        configured_url: args.one_via == OneVia::Url,
        api_endpoints: usize::from(args.one_via == OneVia::Api),
    };
    let three = match args.three_via {
        ThreeVia::Api => Layout {
            name: "three endpoints per event",
            configured_url: false,
            api_endpoints: 3,
        },
        ThreeVia::UrlAndApi => Layout {
            name: "three endpoints per event",
            configured_url: true,
            api_endpoints: 2,
        },
    };
    println!(
        "# outbox_bench: {seconds} s of frictionless checkouts at {connections} connections per configuration, quiet after {} ms, cap {} s{}",
        quiet.as_millis(),
        args.drain_cap_s,
        if args.smoke { " (smoke)" } else { "" }
    );
    let mut outcomes = Vec::new();
    for layout in [one, three] {
        outcomes.push(measure(layout, &plan).await?);
    }

    println!();
    println!(
        "{:<26} {:>9} {:>10} {:>8} {:>10} {:>10} {:>5} {:>7} {:>9} {:>11}",
        "configuration",
        "checkouts",
        "per s",
        "events",
        "expected",
        "received",
        "dup",
        "missing",
        "drain s",
        "after end"
    );
    for o in &outcomes {
        println!(
            "{:<26} {:>9} {:>10.0} {:>8} {:>10} {:>10} {:>5} {:>7} {:>9} {:>11}{}",
            o.name,
            o.created,
            o.per_s,
            o.events,
            o.expected,
            o.received,
            o.duplicates,
            o.missing,
            o.drain_s.map_or("-".into(), |d| format!("{d:.3}")),
            o.after_end,
            if o.capped { "  (cap hit)" } else { "" },
        );
    }
    println!(
        "target: every event to every endpoint, once, the last within {} s of the end of the run",
        DRAIN_TARGET.as_secs()
    );
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.failed())
        .map(|o| o.name)
        .collect();
    if !failed.is_empty() {
        bail!(
            "events missing, doubled or badly signed in: {}",
            failed.join(", ")
        );
    }
    Ok(())
}
