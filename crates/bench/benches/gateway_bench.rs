//! Load benchmark of the gateway, all on loopback, all in this one process (except Redis):
//!
//! - a `redis-server` of its own on a free port (no persistence), killed when the harness ends;
//! - the MultiSafepay simulator in-process (notification retries an hour apart);
//! - the gateway in-process, built by `Application::build` with a `RedisStore`, the per-key rate
//!   limit off and the reconciler off, so that only the requests we send are measured.
//!
//! ```text
//! cargo bench -p bench --bench gateway_bench -- [--connections 32] [--duration-s 20]
//!     [--card 374500000000015] [--scenario create|get|notify|msp-create]... [--sim-latency-ms 0]
//! ```
//!
//! Scenarios (all of them when no `--scenario` is given):
//! - `create`: `POST /v1/checkouts` with a frictionless test card: validate, Redis insert, MSP
//!   create, compare-and-set, answer. The headline figure.
//! - `get`: `GET /v1/checkouts/{id}` of checkouts created beforehand (one Redis read).
//! - `notify`: signed `POST /notifications/multisafepay` for those checkouts, with the status they
//!   already have: the duplicate path (verify the signature, read, no change).
//! - `msp-create`: `POST /v1/json/orders` straight to the simulator, the MSP call inside `create`
//!   on its own (notifications dropped unless `--sim-notifications`), to see the gateway's share.
//!
//! Every request loop stops by itself at `--duration-s` or `--max-requests`, whichever comes
//! first. The load generator shares the machine with the gateway, the simulator and Redis, so
//! the figures are for this whole set on this machine, not for the gateway alone.
//!
//! `--serve-only` sets everything up, prints the gateway's URL, a merchant key and a checkout id
//! (for `wrk` or `curl`), and serves until Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use gateway::configuration::Settings;
use gateway::startup::Application;
use gateway::store::CheckoutStore;
use gateway::store::redis::RedisStore;
use gateway::telemetry;
use msp_simulator::{SimulatorConfig, SimulatorHandle};
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::checkout::CheckoutRequest;
use test_support::msp::sign_notification;
use test_support::redis_server::TestRedis;

const MSP_KEY: &str = "bench-site-api-key-0001";
const MERCHANT_KEY: &str = "bench-merchant-key-0123456789";

#[derive(Parser, Debug)]
#[command(about = "Load benchmark of the gateway against the in-process simulator and Redis")]
struct Args {
    /// Passed by `cargo bench` to every harness; nothing to do with it.
    #[arg(long = "bench", hide = true)]
    _bench: bool,
    /// Concurrent requests in flight (each on its own keep-alive connection).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured time per scenario.
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    /// Unmeasured time per scenario before it, to open connections and warm caches.
    #[arg(long, default_value_t = 2)]
    warmup_s: u64,
    /// Upper bound on requests per scenario, whatever the duration.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// Card number for `create` (the simulator's frictionless Amex by default).
    #[arg(long, default_value = "374500000000015")]
    card: String,
    /// Scenarios to run, in order; repeat the flag for several. Default: all.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// Checkouts created before `get` and `notify`, which then cycle through them.
    #[arg(long, default_value_t = 256)]
    seed_checkouts: usize,
    /// The simulator's `latency_ms` fault: added before every MSP answer.
    #[arg(long, default_value_t = 0)]
    sim_latency_ms: u64,
    /// Let the simulator send its notifications after each create (by default they are dropped,
    /// so that `create` measures the create flow only).
    #[arg(long)]
    sim_notifications: bool,
    /// Log as the service does (JSON, info), into a sink: measures the cost of logging.
    #[arg(long)]
    logs: bool,
    /// Set up, seed, print how to reach the gateway, and serve until Ctrl-C.
    #[arg(long)]
    serve_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Create,
    Get,
    Notify,
    /// `POST /v1/json/orders` straight to the simulator: MSP's share of `create`, for comparison.
    MspCreate,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Get => "get",
            Self::Notify => "notify",
            Self::MspCreate => "msp-create",
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.connections == 0 || args.duration_s == 0 {
        bail!("--connections and --duration-s must be at least 1");
    }
    // The harness' own runtime runs the load generator, the Redis client and the background
    // work of the simulator; the gateway and the simulator each add their actix worker threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the tokio runtime")?;
    // Our own redis-server on a free port (test-support's harness), killed when we exit.
    let redis = TestRedis::start();
    let result = runtime.block_on(run(&args, &redis));
    drop(runtime);
    drop(redis);
    result
}

async fn run(args: &Args, redis: &TestRedis) -> anyhow::Result<()> {
    if args.logs {
        telemetry::init_subscriber(telemetry::get_subscriber(
            telemetry::DEFAULT_FILTER,
            std::io::sink,
        ));
    }
    let env = Env::start(args, redis).await?;
    let result = drive(args, &env).await;
    env.stop().await;
    result
}

async fn drive(args: &Args, env: &Env) -> anyhow::Result<()> {
    let scenarios = if args.scenarios.is_empty() {
        vec![
            Scenario::Create,
            Scenario::Get,
            Scenario::Notify,
            Scenario::MspCreate,
        ]
    } else {
        args.scenarios.clone()
    };
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let (load1, _) = load_average();
    println!(
        "machine: {cores} cores (nproc), load average before start {load1}; connections {}, \
         duration {} s (+{} s warm-up), card {}, sim latency {} ms, sim notifications {}, logs {}",
        args.connections,
        args.duration_s,
        args.warmup_s,
        mask(&args.card),
        args.sim_latency_ms,
        if args.sim_notifications {
            "on"
        } else {
            "dropped"
        },
        if args.logs { "json to a sink" } else { "off" },
    );

    let needs_seed = args.serve_only || scenarios.iter().any(|s| *s != Scenario::Create);
    let ids = if needs_seed {
        let (ids, statuses) = env
            .seed(args.seed_checkouts.max(1), args.connections)
            .await?;
        println!("seeded {} checkouts, by status: {statuses:?}", ids.len());
        Arc::new(ids)
    } else {
        Arc::new(Vec::new())
    };

    if args.serve_only {
        println!("gateway:  {}", env.gateway_url);
        println!("key:      {MERCHANT_KEY}");
        println!("checkout: {}", ids[0]);
        println!(
            "try:      wrk -t2 -c{} -d{}s -H 'Authorization: Bearer {MERCHANT_KEY}' {}/v1/checkouts/{}",
            args.connections, args.duration_s, env.gateway_url, ids[0]
        );
        println!("serving until Ctrl-C (or SIGTERM)");
        // Either signal ends the harness normally, so that its redis-server is stopped too.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            res = tokio::signal::ctrl_c() => res?,
            _ = term.recv() => {}
        }
        return Ok(());
    }

    let mut summaries = Vec::new();
    for scenario in scenarios {
        let request = env.request_for(scenario, &args.card, ids.clone());
        if args.warmup_s > 0 {
            load(
                args.connections,
                Duration::from_secs(args.warmup_s),
                args.max_requests,
                request.clone(),
            )
            .await;
        }
        let redis_before = env.redis_stats().await?;
        let metrics_before = env.gateway_metrics().await?;
        let cpu_before = own_cpu_s();
        let result = load(
            args.connections,
            Duration::from_secs(args.duration_s),
            args.max_requests,
            request,
        )
        .await;
        let cpu = own_cpu_s() - cpu_before;
        let redis_after = env.redis_stats().await?;
        let metrics_after = env.gateway_metrics().await?;
        let summary = Summary::new(
            scenario,
            args.connections,
            cores,
            result,
            redis_after.since(&redis_before),
            metrics_after.since(&metrics_before),
            cpu,
        );
        summary.print_details();
        summaries.push(summary);
    }
    println!();
    println!("summary (one line per scenario):");
    for summary in &summaries {
        println!("{}", summary.line());
    }
    Ok(())
}

/// User + system CPU seconds of this process so far (all threads), from `/proc/self/stat`;
/// 0 where it cannot be read. Fields 14 and 15 are in clock ticks, 100 per second on Linux.
fn own_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it start after its `)`.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the name, field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// `374500000000015` → `3745…0015`: the card is a public test card, but we never print one whole.
fn mask(card: &str) -> String {
    if card.len() < 8 {
        return "…".into();
    }
    format!("{}…{}", &card[..4], &card[card.len() - 4..])
}

/// The first two fields of `/proc/loadavg` ("?" where it cannot be read).
fn load_average() -> (String, String) {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text.split_whitespace().map(str::to_owned);
    (
        fields.next().unwrap_or_else(|| "?".into()),
        fields.next().unwrap_or_else(|| "?".into()),
    )
}

// ---------------------------------------------------------------------------------------------
// The system under test

struct Env {
    gateway_url: String,
    client: reqwest::Client,
    sim: SimulatorHandle,
    gateway: actix_web::dev::ServerHandle,
    redis: redis::aio::MultiplexedConnection,
}

impl Env {
    async fn start(args: &Args, redis: &TestRedis) -> anyhow::Result<Env> {
        let mut sim_config = SimulatorConfig::for_tests(MSP_KEY);
        // Retries must not add load during a run; the first attempt is all we ever want.
        sim_config.notification_retry_interval = Duration::from_secs(3600);
        let sim = msp_simulator::spawn(sim_config).await?;

        let mut settings = Settings::default();
        settings.server.host = "127.0.0.1".into();
        settings.server.port = 0;
        settings.redis.url = Some(SecretString::from(redis.url().to_owned()));
        settings.redis.key_prefix = "bench".into();
        settings.multisafepay.base_url = sim.api_url();
        settings.multisafepay.api_key = Some(SecretString::from(MSP_KEY));
        settings.multisafepay.timeout_ms = 10_000;
        settings.multisafepay.connect_timeout_ms = 1_000;
        settings.auth.api_keys = vec![SecretString::from(MERCHANT_KEY)];
        // Rate limit and reconciler off: the benchmark measures the requests it sends.
        settings.auth.rate_limit_per_s = 0;
        settings.reconcile.enabled = false;
        settings.checkout.return_url_hosts = vec!["shop.example".into()];

        let store: Arc<dyn CheckoutStore> = Arc::new(
            RedisStore::connect(settings.redis_connect())
                .await
                .map_err(|e| anyhow::anyhow!("could not connect to the bench redis: {e}"))?,
        );
        let app = Application::build(settings, store)?;
        let gateway_url = app.public_url().to_owned();
        let gateway = app.handle();
        tokio::spawn(app.run_until_stopped());

        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(args.connections)
            .build()?;
        let faults = json!({
            "latency_ms": args.sim_latency_ms,
            "drop_notifications": !args.sim_notifications,
        });
        let res = client
            .put(format!("{}/sim/faults", sim.base_url()))
            .json(&faults)
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("the simulator refused the faults: {}", res.status());
        }
        let redis_client = redis::Client::open(redis.url())?;
        let redis = redis_client.get_multiplexed_async_connection().await?;
        Ok(Env {
            gateway_url,
            client,
            sim,
            gateway,
            redis,
        })
    }

    async fn stop(self) {
        self.gateway.stop(true).await;
        self.sim.stop().await;
    }

    /// Creates `n` checkouts (at most `connections` at a time) and returns their ids and how
    /// many ended in each status; every one must be 201.
    async fn seed(
        &self,
        n: usize,
        connections: usize,
    ) -> anyhow::Result<(Vec<String>, BTreeMap<String, usize>)> {
        let mut ids = Vec::with_capacity(n);
        let mut statuses = BTreeMap::new();
        let mut started = 0;
        while started < n {
            let batch = connections.min(n - started);
            let mut tasks = Vec::with_capacity(batch);
            for i in 0..batch {
                let client = self.client.clone();
                let url = format!("{}/v1/checkouts", self.gateway_url);
                let body = CheckoutRequest::new("374500000000015")
                    .reference(format!("bench-{}", started + i))
                    .body();
                tasks.push(tokio::spawn(async move {
                    let res = client
                        .post(url)
                        .bearer_auth(MERCHANT_KEY)
                        .json(&body)
                        .send()
                        .await?;
                    let status = res.status();
                    let body: Value = res.json().await?;
                    if status != reqwest::StatusCode::CREATED {
                        bail!("seeding a checkout answered {status}: {body}");
                    }
                    let id = body["id"]
                        .as_str()
                        .map(str::to_owned)
                        .context("a created checkout without an id")?;
                    let status = body["status"].as_str().unwrap_or("?").to_owned();
                    Ok((id, status))
                }));
            }
            for task in tasks {
                let (id, status) = task.await??;
                ids.push(id);
                *statuses.entry(status).or_insert(0) += 1;
            }
            started += batch;
        }
        Ok((ids, statuses))
    }

    fn request_for(&self, scenario: Scenario, card: &str, ids: Arc<Vec<String>>) -> RequestFn {
        let client = self.client.clone();
        let base = self.gateway_url.clone();
        match scenario {
            Scenario::Create => {
                let card = card.to_owned();
                let url = format!("{base}/v1/checkouts");
                Arc::new(move |n| {
                    let req = client.post(&url).bearer_auth(MERCHANT_KEY).json(
                        &CheckoutRequest::new(&card)
                            .reference(format!("bench-{n}"))
                            .body(),
                    );
                    Box::pin(send(req))
                })
            }
            Scenario::Get => Arc::new(move |n| {
                let id = &ids[(n as usize) % ids.len()];
                let req = client
                    .get(format!("{base}/v1/checkouts/{id}"))
                    .bearer_auth(MERCHANT_KEY);
                Box::pin(send(req))
            }),
            Scenario::Notify => Arc::new(move |n| {
                let id = &ids[(n as usize) % ids.len()];
                let now = chrono::Utc::now().timestamp();
                let body = order_body(id, "completed");
                let req = client
                    .post(format!(
                        "{base}/notifications/multisafepay?transactionid={id}&timestamp={now}"
                    ))
                    .header("content-type", "application/json")
                    .header("Auth", sign_notification(MSP_KEY, now, &body))
                    .body(body);
                Box::pin(send(req))
            }),
            Scenario::MspCreate => {
                let card = card.to_owned();
                let url = format!("{}/orders", self.sim.api_url());
                Arc::new(move |_| {
                    // A fresh order id per request: MSP refuses a second order with the same id.
                    let order_id = format!("bench-{}", uuid::Uuid::new_v4().simple());
                    let req = client
                        .post(&url)
                        .header("api_key", MSP_KEY)
                        .json(&msp_order_body(&order_id, &card));
                    Box::pin(send(req))
                })
            }
        }
    }

    async fn redis_stats(&self) -> anyhow::Result<RedisStats> {
        let mut con = self.redis.clone();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .arg("cpu")
            .query_async(&mut con)
            .await?;
        Ok(RedisStats::parse(&info))
    }

    async fn gateway_metrics(&self) -> anyhow::Result<MetricSums> {
        let text = self
            .client
            .get(format!("{}/metrics", self.gateway_url))
            .send()
            .await?
            .text()
            .await?;
        Ok(MetricSums::parse(&text))
    }
}

/// Sends one request and reads its whole body: `Ok(status)` for any HTTP answer.
async fn send(req: reqwest::RequestBuilder) -> Result<u16, String> {
    let res = req.send().await.map_err(|e| transport_error(&e))?;
    let status = res.status().as_u16();
    res.bytes().await.map_err(|e| transport_error(&e))?;
    Ok(status)
}

fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// A direct card order as the gateway sends it to MSP.
fn msp_order_body(order_id: &str, card: &str) -> Value {
    json!({
        "type": "direct",
        "gateway": "CREDITCARD",
        "order_id": order_id,
        "currency": "EUR",
        "amount": 3495,
        "description": "Order at Example Shop",
        "payment_options": {
            "notification_url": "http://127.0.0.1:9/notifications/multisafepay",
            "notification_method": "POST",
            "redirect_url": "https://shop.example/checkout/return?cart=c-77",
            "cancel_url": "https://shop.example/cart",
            "close_window": false
        },
        "customer": {
            "locale": "nl_NL", "ip_address": "203.0.113.7", "email": "jo@example.com",
            "phone": "+31201234567", "country": "NL", "first_name": "Jo", "last_name": "Doe",
            "browser": {"javascript_enabled": true, "java_enabled": false, "cookies_enabled": true,
                        "language": "nl-NL", "screen_color_depth": 24, "screen_height": 1080,
                        "screen_width": 1920, "time_zone": -60, "user_agent": "Mozilla/5.0", "platform": "Linux"}
        },
        "gateway_info": {"card_number": card, "card_holder_name": "Jo Doe",
                         "card_expiry_date": "3012", "card_cvc": if card.starts_with('3') { "1234" } else { "123" }}
    })
}

/// An order object as MSP POSTs it (compact JSON).
fn order_body(order_id: &str, status: &str) -> Vec<u8> {
    let body = json!({
        "amount": 3495, "amount_refunded": 0, "currency": "EUR", "order_id": order_id,
        "status": status, "financial_status": status, "transaction_id": 4680345,
        "reason": "", "reason_code": "",
        "payment_details": {"type": "AMEX", "last4": "0015", "card_expiry_date": "3012"},
        "items": null, "related_transactions": null
    });
    // Serialising a `Value` to a Vec cannot fail (no I/O, string keys).
    serde_json::to_vec(&body).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The load loop

type RequestFuture = std::pin::Pin<Box<dyn Future<Output = Result<u16, String>> + Send>>;
type RequestFn = Arc<dyn Fn(u64) -> RequestFuture + Send + Sync>;

struct LoadResult {
    elapsed: Duration,
    /// Latency of every request that got an HTTP answer, in microseconds.
    latencies_us: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: BTreeMap<String, u64>,
}

/// Runs `connections` loops until `duration` has passed or `max_requests` were started.
async fn load(
    connections: usize,
    duration: Duration,
    max_requests: u64,
    request: RequestFn,
) -> LoadResult {
    let started = Instant::now();
    let deadline = started + duration;
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let counter = counter.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut statuses = BTreeMap::new();
            let mut errors = BTreeMap::new();
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= max_requests || Instant::now() >= deadline {
                    break;
                }
                let t0 = Instant::now();
                match request(n).await {
                    Ok(status) => {
                        latencies.push(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
                        *statuses.entry(status).or_insert(0) += 1;
                    }
                    Err(kind) => *errors.entry(kind).or_insert(0) += 1,
                }
            }
            (latencies, statuses, errors)
        }));
    }
    let mut result = LoadResult {
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        statuses: BTreeMap::new(),
        transport_errors: BTreeMap::new(),
    };
    for task in tasks {
        match task.await {
            Ok((latencies, statuses, errors)) => {
                result.latencies_us.extend(latencies);
                for (k, v) in statuses {
                    *result.statuses.entry(k).or_insert(0) += v;
                }
                for (k, v) in errors {
                    *result.transport_errors.entry(k).or_insert(0) += v;
                }
            }
            Err(e) => {
                *result
                    .transport_errors
                    .entry(format!("task: {e}"))
                    .or_insert(0) += 1
            }
        }
    }
    result.elapsed = started.elapsed();
    result.latencies_us.sort_unstable();
    result
}

// ---------------------------------------------------------------------------------------------
// Reporting

struct Summary {
    scenario: Scenario,
    connections: usize,
    cores: usize,
    result: LoadResult,
    redis: RedisStats,
    metrics: MetricSums,
    /// CPU seconds this process (load generator, gateway, simulator) used while measuring.
    own_cpu_s: f64,
}

impl Summary {
    fn new(
        scenario: Scenario,
        connections: usize,
        cores: usize,
        result: LoadResult,
        redis: RedisStats,
        metrics: MetricSums,
        own_cpu_s: f64,
    ) -> Self {
        Self {
            scenario,
            connections,
            cores,
            result,
            redis,
            metrics,
            own_cpu_s,
        }
    }

    fn requests(&self) -> u64 {
        self.result.statuses.values().sum::<u64>()
            + self.result.transport_errors.values().sum::<u64>()
    }

    /// Answers that are not what the scenario expects, plus requests with no answer at all.
    fn errors(&self) -> BTreeMap<String, u64> {
        let expected = match self.scenario {
            Scenario::Create => 201,
            Scenario::Get | Scenario::Notify | Scenario::MspCreate => 200,
        };
        let mut errors: BTreeMap<String, u64> = self
            .result
            .statuses
            .iter()
            .filter(|(s, _)| **s != expected)
            .map(|(s, n)| (s.to_string(), *n))
            .collect();
        errors.extend(self.result.transport_errors.clone());
        errors
    }

    fn throughput(&self) -> f64 {
        self.requests() as f64 / self.result.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let v = &self.result.latencies_us;
        if v.is_empty() {
            return f64::NAN;
        }
        // Nearest rank: the smallest sample with at least p of all samples at or below it.
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1] as f64 / 1000.0
    }

    fn redis_per_request(&self) -> f64 {
        self.redis.calls_from_clients() as f64 / self.requests().max(1) as f64
    }

    fn line(&self) -> String {
        let errors = self.errors();
        let error_text = if errors.is_empty() {
            "0 errors".to_owned()
        } else {
            let by_kind: Vec<String> = errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            format!(
                "{} errors ({})",
                errors.values().sum::<u64>(),
                by_kind.join(", ")
            )
        };
        format!(
            "{:<6} | {} conns | {} req in {:.1} s | {} | {:.0} req/s | p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms | {:.1} Redis calls/req | {} cores",
            self.scenario.name(),
            self.connections,
            self.requests(),
            self.result.elapsed.as_secs_f64(),
            error_text,
            self.throughput(),
            self.percentile_ms(50.0),
            self.percentile_ms(90.0),
            self.percentile_ms(99.0),
            self.percentile_ms(100.0),
            self.redis_per_request(),
            self.cores,
        )
    }

    fn print_details(&self) {
        println!();
        println!("== {} ==", self.scenario.name());
        println!("{}", self.line());
        let per_request = |n: u64| n as f64 / self.requests().max(1) as f64;
        let commands: Vec<String> = self
            .redis
            .calls
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| format!("{name} {:.2}", per_request(*n)))
            .collect();
        println!(
            "redis commands per request (commandstats; script-internal calls included): {}",
            commands.join(", ")
        );
        let server_mean = self.metrics.mean_ms(HTTP_DURATION);
        let psp_mean = self.metrics.mean_ms(PSP_DURATION);
        let psp = if self.metrics.count(PSP_DURATION) == 0 {
            "no MultiSafepay calls".to_owned()
        } else {
            format!(
                "MultiSafepay calls {psp_mean:.2} ms over {} calls",
                self.metrics.count(PSP_DURATION)
            )
        };
        let per_request_us = |cpu_s: f64| cpu_s * 1e6 / self.requests().max(1) as f64;
        let wall = self.result.elapsed.as_secs_f64();
        println!(
            "CPU per request: {:.0} µs in this process (load generator + gateway + simulator), \
             {:.0} µs in redis-server; the two used {:.0}% of the {} cores",
            per_request_us(self.own_cpu_s),
            per_request_us(self.redis.cpu_s),
            (self.own_cpu_s + self.redis.cpu_s) / wall / self.cores.max(1) as f64 * 100.0,
            self.cores,
        );
        if self.scenario != Scenario::MspCreate {
            println!(
                "gateway's own view (Prometheus histograms, means): request handling \
                 {server_mean:.2} ms over {} requests (MSP calls included); {psp}",
                self.metrics.count(HTTP_DURATION),
            );
        }
    }
}

/// `INFO commandstats` as command → calls, and `INFO cpu` as the server's CPU seconds.
struct RedisStats {
    calls: BTreeMap<String, u64>,
    cpu_s: f64,
}

impl RedisStats {
    fn parse(info: &str) -> Self {
        // Main thread and children, user and system: all of it is work for us.
        let cpu_s = info
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(k, _)| k.starts_with("used_cpu_"))
            .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
            .sum();
        let calls = info
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("calls="))?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect();
        Self { calls, cpu_s }
    }

    fn since(&self, before: &RedisStats) -> RedisStats {
        let calls = self
            .calls
            .iter()
            .map(|(name, n)| {
                let was = before.calls.get(name).copied().unwrap_or(0);
                (name.clone(), n.saturating_sub(was))
            })
            // Our own INFO between the two snapshots is not the gateway's.
            .map(|(name, n)| {
                if name == "info" {
                    (name, n.saturating_sub(1))
                } else {
                    (name, n)
                }
            })
            .collect();
        RedisStats {
            calls,
            cpu_s: self.cpu_s - before.cpu_s,
        }
    }

    /// Commands sent by clients, i.e. round trips of an unpipelined client: a script counts
    /// once (`evalsha`/`eval`), not with the calls it makes inside Redis.
    fn calls_from_clients(&self) -> u64 {
        // commandstats counts the calls a script makes inside Redis too, with no way to tell
        // them apart. These are the commands the store's scripts call and that the store never
        // sends itself on the paths measured here (it sends `SET` only for the reconciler's
        // lock, which is off, and `GET` only for pay sessions, which frictionless cards do not
        // have): leaving them out counts each script call once. `ZREM` is sent directly.
        const FROM_SCRIPTS_ONLY: &[&str] = &[
            "hset", "hget", "get", "set", "exists", "pexpire", "zadd", "rpush", "del",
        ];
        self.calls
            .iter()
            .filter(|(name, _)| !FROM_SCRIPTS_ONLY.contains(&name.as_str()))
            .map(|(_, n)| *n)
            .sum()
    }
}

const HTTP_DURATION: &str = "gateway_http_request_duration_seconds";
const PSP_DURATION: &str = "gateway_psp_request_duration_seconds";

/// `_sum` and `_count` of the gateway's histograms (summed over labels).
struct MetricSums {
    sums: BTreeMap<String, (f64, u64)>,
}

impl MetricSums {
    fn parse(text: &str) -> Self {
        let mut sums: BTreeMap<String, (f64, u64)> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let name = series.split('{').next().unwrap_or(series);
            if let Some(base) = name.strip_suffix("_sum") {
                sums.entry(base.to_owned()).or_default().0 += value.parse().unwrap_or(0.0);
            } else if let Some(base) = name.strip_suffix("_count") {
                sums.entry(base.to_owned()).or_default().1 += value.parse().unwrap_or(0);
            }
        }
        Self { sums }
    }

    fn since(&self, before: &MetricSums) -> MetricSums {
        let sums = self
            .sums
            .iter()
            .map(|(name, (sum, count))| {
                let (was_sum, was_count) = before.sums.get(name).copied().unwrap_or((0.0, 0));
                (
                    name.clone(),
                    (sum - was_sum, count.saturating_sub(was_count)),
                )
            })
            .collect();
        MetricSums { sums }
    }

    fn count(&self, name: &str) -> u64 {
        self.sums.get(name).map_or(0, |s| s.1)
    }

    fn mean_ms(&self, name: &str) -> f64 {
        match self.sums.get(name) {
            Some((sum, count)) if *count > 0 => sum / *count as f64 * 1000.0,
            _ => f64::NAN,
        }
    }
}
