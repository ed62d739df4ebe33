//! # msp-simulator
//!
//! A stateful MultiSafepay simulator, run as `checkout-gateway simulator` or started
//! in-process. Merchants can point anything written against MultiSafepay at it by changing only
//! the base URL.
//!
//! It plays MSP's direct card API under `/v1/json` with MSP's own test cards, the whole 3-D
//! Secure flow, refunds as MSP settles them (`reserved`, then `completed` after
//! `--refund-delay-ms`; voidable meanwhile), manual capture (a `capture: "manual"` order on Visa,
//! Mastercard or Maestro is authorised, `completed` / `initialized`; `POST /orders/{id}/capture`
//! collects it once, in full or in part, and its `new_order_id` becomes another id of the order;
//! `PATCH /capture/{id}` cancels it; the scheme voids it 7 days (Visa) or 30 days after it was
//! made), signed notifications with MSP's retry rule, and faults injected at run time. Tests start
//! it in-process with [`spawn`]; the CLI runs it with [`run`].
//!
//! Time: every timer (challenge expiry, clearing of uncleared payments, refund
//! settlement, the lifetime of authorisations, notification retries, the five-minute
//! same-amount refund rule) and every
//! `created`/`modified` stamp reads one clock, the real time plus what `PUT /sim/clock` added, so
//! tests move time instead of sleeping. Notifications still carry the real Unix time in
//! `timestamp` and `Auth`: MSP's clock is the real one.
//!
//! It depends on no gateway crate, and no gateway crate depends on it (the system tests in
//! the root package, `tests/`, use both): its wire types are its own, so a field misspelt the same
//! way on both sides cannot pass every test and fail against the real MultiSafepay.
//!
//! - `api`: the `/v1/json` handlers; `wire`: MSP's field names, written from MSP's docs.
//! - `recurring`: tokens (initial orders with `recurring_model` make them, zero authorisations
//!   included; subsequent `recurring_id` orders pay with them, one per token per 24 hours) and
//!   the token API `/recurring/{reference}/…`.
//! - `cards`: the test cards and what each does (and how long each scheme's authorisations
//!   last); `orders`: order state, status machine, refunds, captures and chargebacks
//!   (`related_transactions`), sharded book.
//! - `state`: the shared state (with the ids captures add to orders) and the background work
//!   after a change (notifications, timers).
//! - `clock`: the simulator's time and the timers' waits.
//! - `challenge`: the 3-D Secure pages; `notifier`: delivery and retries; `signature`: `Auth`.
//! - `faults`, `control`: `/sim/faults`, `/sim/clock`, `/sim/notifications`, `/sim/requests`.
//! - `disputes`: chargebacks with their disputes (`/sim/orders/{id}/chargeback`,
//!   `/sim/disputes/{transaction_id}`), dashboard refunds, the evidence upload
//!   (`/v1/json/orders/{id}/files`); `transactions`: `GET /v1/json/transactions`, MSP's
//!   account-wide list, newest first, in Europe/Amsterdam time.

mod api;
mod cards;
mod challenge;
mod clock;
mod control;
mod disputes;
pub mod faults;
mod notifier;
mod orders;
mod recurring;
pub mod signature;
mod state;
mod transactions;
mod wire;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio::sync::watch;

pub use faults::{ChangeFailure, CreateFailure, Faults, RefundFailure};
pub use notifier::Attempt;
use notifier::Notifier;
use orders::Sharded;
pub(crate) use state::Sim;

/// The command-line flags of `checkout-gateway simulator`.
#[derive(clap::Args, Clone)]
pub struct SimulatorArgs {
    /// Interface to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
    /// An API key the simulator accepts (one per simulated site); repeat for several.
    #[arg(long = "api-key", required = true)]
    pub api_keys: Vec<String>,
    /// Start of every URL the simulator hands out (default `http://{host}:{port}`).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Time between notification attempts (MSP: 15 minutes). Like every delay below, it runs on
    /// the simulator's clock, which `PUT /sim/clock {"advance_s": N}` moves forward.
    #[arg(long, default_value_t = 900_000)]
    pub notification_retry_interval_ms: u64,
    /// How long a 3-D Secure challenge waits for an answer before the order expires.
    #[arg(long, default_value_t = 3600)]
    pub challenge_expiry_s: u64,
    /// How long an uncleared test card stays uncleared before it completes or is voided.
    #[arg(long, default_value_t = 180_000)]
    pub uncleared_delay_ms: u64,
    /// How long a refund stays reserved (and can be voided) before it completes (MSP settles at
    /// midnight).
    #[arg(long, default_value_t = 60_000)]
    pub refund_delay_ms: u64,
}

impl std::fmt::Debug for SimulatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        SimulatorConfig::from(self.clone()).fmt(f)
    }
}

#[derive(Clone)]
pub struct SimulatorConfig {
    pub host: String,
    pub port: u16,
    /// Each key is one simulated site; an order is visible only to the key that created it,
    /// and its notifications are signed with that key.
    pub api_keys: Vec<String>,
    pub public_url: Option<String>,
    pub notification_retry_interval: Duration,
    pub challenge_expiry: Duration,
    pub uncleared_delay: Duration,
    /// How long a refund stays `reserved` (voidable) before it completes, on the simulator's
    /// clock.
    pub refund_delay: Duration,
}

/// API keys are secrets: `Debug` shows how many there are, not what they are.
impl std::fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "api_keys",
                &format_args!("[{} hidden]", self.api_keys.len()),
            )
            .field("public_url", &self.public_url)
            .field(
                "notification_retry_interval",
                &self.notification_retry_interval,
            )
            .field("challenge_expiry", &self.challenge_expiry)
            .field("uncleared_delay", &self.uncleared_delay)
            .field("refund_delay", &self.refund_delay)
            .finish()
    }
}

impl From<SimulatorArgs> for SimulatorConfig {
    fn from(a: SimulatorArgs) -> Self {
        Self {
            host: a.host,
            port: a.port,
            api_keys: a.api_keys,
            public_url: a.public_url,
            notification_retry_interval: Duration::from_millis(a.notification_retry_interval_ms),
            challenge_expiry: Duration::from_secs(a.challenge_expiry_s),
            uncleared_delay: Duration::from_millis(a.uncleared_delay_ms),
            refund_delay: Duration::from_millis(a.refund_delay_ms),
        }
    }
}

impl SimulatorConfig {
    /// Loopback on a free port, with intervals short enough for tests: retries every 200 ms,
    /// uncleared cards settle after 1 s, challenges expire after 60 s and refunds stay reserved
    /// for 60 s (override them, or move the clock with `PUT /sim/clock`).
    pub fn for_tests(api_key: &str) -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 0,
            api_keys: vec![api_key.to_owned()],
            public_url: None,
            notification_retry_interval: Duration::from_millis(200),
            challenge_expiry: Duration::from_secs(60),
            uncleared_delay: Duration::from_secs(1),
            refund_delay: Duration::from_secs(60),
        }
    }
}

/// A running simulator. Dropping it leaves the server running until the runtime ends; call
/// [`SimulatorHandle::stop`] to stop it and its timers.
pub struct SimulatorHandle {
    addr: SocketAddr,
    base_url: String,
    server: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: watch::Sender<bool>,
}

impl SimulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Where the simulator's pages live, e.g. `http://127.0.0.1:PORT` (or `--public-url`).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }
    /// What the gateway's `multisafepay.base_url` is set to.
    pub fn api_url(&self) -> String {
        format!("{}/v1/json", self.base_url)
    }
    /// Stops the server (in-flight requests get a second) and every pending timer.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.server.stop(true).await;
        let _ = self.task.await;
    }
}

/// `url` with `transactionid=<order_id>` appended, keeping its own query.
pub(crate) fn with_transaction_id(mut url: url::Url, order_id: &str) -> String {
    url.query_pairs_mut().append_pair("transactionid", order_id);
    url.into()
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/json")
            .wrap(actix_web::middleware::from_fn(control::record_api_call))
            .route("/orders", web::post().to(api::create))
            .route("/orders/{order_id}", web::get().to(api::get))
            .route("/orders/{order_id}", web::patch().to(api::update))
            .route("/orders/{order_id}/refunds", web::post().to(api::refund))
            .route(
                "/orders/{order_id}/refunds/{refund_id}",
                web::patch().to(api::update_refund),
            )
            .route("/orders/{order_id}/capture", web::post().to(api::capture))
            .route("/recurring/{reference}", web::get().to(recurring::list))
            .route(
                "/recurring/{reference}/token/{token}",
                web::get().to(recurring::get),
            )
            .route(
                "/recurring/{reference}/update/{token}",
                web::patch().to(recurring::update),
            )
            .route(
                "/recurring/{reference}/remove/{token}",
                web::delete().to(recurring::remove),
            )
            .route(
                "/capture/{order_id}",
                web::patch().to(api::cancel_authorization),
            )
            .service(
                // One evidence file of up to 4 MiB, base64 in JSON.
                web::resource("/orders/{order_id}/files")
                    .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
                    .route(web::post().to(disputes::upload_file)),
            )
            .route("/transactions", web::get().to(transactions::list))
            .default_service(web::to(api::not_found)),
    )
    .service(
        web::scope("/sim")
            .route("/3ds", web::post().to(challenge::start))
            .route("/3ds/{session}", web::get().to(challenge::page))
            .route("/3ds/{session}", web::post().to(challenge::answer))
            .route("/faults", web::get().to(control::get_faults))
            .route("/faults", web::put().to(control::put_faults))
            .route("/clock", web::get().to(control::get_clock))
            .route("/clock", web::put().to(control::put_clock))
            .route("/notifications", web::get().to(control::notifications))
            .route("/requests", web::get().to(control::requests))
            .route(
                "/orders/{order_id}/chargeback",
                web::post().to(disputes::chargeback),
            )
            .route(
                "/disputes/{transaction_id}",
                web::put().to(disputes::put_dispute),
            )
            .route(
                "/orders/{order_id}/dashboard_refund",
                web::post().to(disputes::dashboard_refund),
            )
            .route("/orders/{order_id}/files", web::get().to(disputes::files))
            .route("/health", web::get().to(control::health)),
    );
}

/// Binds the listener and builds the server; nothing runs until the server is polled.
fn build(
    config: SimulatorConfig,
    workers: Option<usize>,
    signals: bool,
) -> anyhow::Result<(
    actix_web::dev::Server,
    SocketAddr,
    String,
    watch::Sender<bool>,
)> {
    anyhow::ensure!(
        !config.api_keys.is_empty(),
        "the simulator needs at least one API key: pass --api-key"
    );
    let listener = TcpListener::bind((config.host.as_str(), config.port)).with_context(|| {
        format!(
            "cannot listen on {}:{}; pick another --host/--port",
            config.host, config.port
        )
    })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let base_url = match &config.public_url {
        Some(u) => {
            let parsed = url::Url::parse(u).with_context(|| {
                format!("--public-url {u:?} is not a URL; use e.g. http://localhost:8081")
            })?;
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        None if addr.is_ipv6() => format!("http://[{}]:{}", addr.ip(), addr.port()),
        None => format!("http://{}:{}", config.host, addr.port()),
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let clock = Arc::new(clock::Clock::new());
    let seed = clock.now().timestamp_millis().unsigned_abs();
    let sim = web::Data::new(Sim {
        base_url: base_url.clone(),
        keys: config
            .api_keys
            .iter()
            .map(|k| Arc::from(k.as_str()))
            .collect(),
        orders: Sharded::new(),
        aliases: Sharded::new(),
        tokens: recurring::Tokens::new(),
        sessions: Sharded::new(),
        faults: RwLock::new(Faults::default()),
        notifier: Arc::new(Notifier::new(
            config.notification_retry_interval,
            clock.clone(),
        )?),
        clock,
        next_id: AtomicU64::new(seed),
        challenge_expiry: config.challenge_expiry,
        uncleared_delay: config.uncleared_delay,
        refund_delay: config.refund_delay,
        runtime: tokio::runtime::Handle::try_current()
            .context("the simulator must be started inside a tokio runtime")?,
        shutdown: shutdown_rx,
        api_calls: std::sync::Mutex::new(std::collections::VecDeque::new()),
    });
    let mut server = HttpServer::new(move || App::new().app_data(sim.clone()).configure(routes))
        .listen(listener)
        .context("starting the HTTP server")?
        .shutdown_timeout(1);
    if let Some(n) = workers {
        server = server.workers(n);
    }
    if !signals {
        server = server.disable_signals();
    }
    Ok((server.run(), addr, base_url, shutdown_tx))
}

/// Starts the simulator in the background on the current tokio runtime (port 0 is fine).
pub async fn spawn(config: SimulatorConfig) -> anyhow::Result<SimulatorHandle> {
    let (server, addr, base_url, shutdown) = build(config, Some(2), false)?;
    let handle = server.handle();
    let task = tokio::spawn(server);
    Ok(SimulatorHandle {
        addr,
        base_url,
        server: handle,
        task,
        shutdown,
    })
}

/// Runs the simulator until Ctrl-C or SIGTERM (the CLI).
pub async fn run(config: SimulatorConfig) -> anyhow::Result<()> {
    let (server, addr, base_url, shutdown) = build(config, None, true)?;
    tracing::info!(%addr, api_url = %format!("{base_url}/v1/json"), "MultiSafepay simulator listening");
    let result = server.await;
    let _ = shutdown.send(true);
    result.context("the simulator's HTTP server failed")
}
