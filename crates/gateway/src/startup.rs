//! `Application::build` binds the listener (port 0 allowed), wires the state and keeps the
//! server; `run_until_stopped` drives it with the reconciler beside it. `app()` is the one route
//! table that `serve`, `sandbox` and the tests share (style.md rule 1).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use secrecy::SecretString;
use tokio::sync::{mpsc, watch};
use tracing_actix_web::TracingLogger;

use crate::access::{FingerprintKey, KeylessLimit, MerchantKeys};
use crate::clock::{SharedClock, SystemClock};
use crate::configuration::Settings;
use crate::flows::{Context, FlowSettings, OutboxBell};
use crate::psp::multisafepay::MultiSafepayClient;
use crate::store::CheckoutStore;
use crate::webhooks::Deliverer;

pub use crate::health::OpsPort;
pub use crate::state::AppState;

/// What a caller may plug into the app it builds: a clock of its own (tests move one) and
/// routes of its own (the sandbox's demo storefront).
#[derive(Default)]
pub struct Plugins {
    /// The system clock when `None`.
    pub clock: Option<SharedClock>,
    pub routes: Option<ExtraRoutes>,
    /// A listener the caller bound already (it needed the port before the app was built: the
    /// sandbox points the webhooks at its own demo storefront); `server.host:server.port` is
    /// bound when `None`.
    pub listener: Option<TcpListener>,
    /// How webhook endpoint host names resolve; the system's resolver when `None`.
    pub resolver: Option<Arc<dyn crate::webhooks::address::NameResolver>>,
}

/// Routes added to the app from outside the gateway (the sandbox's demo storefront). The gateway
/// knows nothing of what they are; they may read [`AppState`] like any route.
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

pub struct Application {
    port: u16,
    /// The port of the operators' listener (`server.ops_port`), when there is one.
    ops_port: Option<u16>,
    server: Server,
    state: web::Data<AppState>,
    /// This instance's webhook deliverer (always: endpoints may be made through the API).
    deliverer: Option<Arc<Deliverer>>,
    /// What the webhook deliverer listens on (taken when it starts).
    bell: Option<mpsc::Receiver<crate::domain::event::EventOwner>>,
}

impl Application {
    /// Binds `server.host:server.port` and wires everything; nothing runs until
    /// [`run_until_stopped`](Self::run_until_stopped).
    pub fn build(settings: Settings, store: Arc<dyn CheckoutStore>) -> anyhow::Result<Self> {
        Self::build_with(settings, store, Plugins::default())
    }

    /// As [`build`](Self::build), with the caller's clock and routes.
    pub fn build_with(
        settings: Settings,
        store: Arc<dyn CheckoutStore>,
        plugins: Plugins,
    ) -> anyhow::Result<Self> {
        let Plugins {
            clock,
            routes,
            listener,
            resolver,
        } = plugins;
        let webhook_guard = Arc::new(crate::webhooks::address::AddressGuard::new(
            &settings.webhooks,
            resolver,
        ));
        let address = (settings.server.host.as_str(), settings.server.port);
        let listener = match listener {
            Some(listener) => listener,
            None => bind(&settings)?,
        };
        let port = listener.local_addr()?.port();
        let ops_listener = match settings.server.ops_port {
            Some(ops_port) => {
                Some(TcpListener::bind((address.0, ops_port)).with_context(|| {
                    format!(
                        "could not bind the operators' port {}:{ops_port}; if another process is \
                         using it, choose another with GATEWAY__SERVER__OPS_PORT \
                         (server.ops_port), or 0 for a free one",
                        address.0
                    )
                })?)
            }
            None => None,
        };
        let ops_port = match &ops_listener {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        };
        let public_url = settings.public_base_url(port);

        let msp_key = settings
            .multisafepay
            .api_key
            .clone()
            .unwrap_or_else(|| SecretString::from(""));
        let psp = MultiSafepayClient::new(
            &settings.multisafepay.base_url,
            msp_key.clone(),
            settings.msp_connect_timeout(),
            settings.msp_timeout(),
        )
        .map_err(|e| anyhow::anyhow!("could not build the MultiSafepay client: {e}"))?;
        // Always: webhook endpoints may be made through the API at any time.
        let (outbox, bell) = OutboxBell::new(1024);
        let bell = Some(bell);
        let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
        // Every MSP call is recorded for the operator console (its checkout's log, the hour's
        // statistics), as are transitions, notifications and webhook attempts through it.
        let psp = psp.with_recorder(Arc::new(crate::activity::Recorder::new(
            store.clone(),
            clock.clone(),
        )));
        let flows = Arc::new(Context {
            store,
            psp,
            clock,
            settings: FlowSettings::new(&settings, public_url),
            outbox,
            syncs: Default::default(),
        });
        let deliverer = Some(Deliverer::new(
            flows.clone(),
            &settings.webhooks,
            webhook_guard.clone(),
        )?)
        .zip(bell)
        .map(|(deliverer, bell)| (Arc::new(deliverer), bell));
        let state = web::Data::new(AppState {
            flows,
            merchant_keys: MerchantKeys::new(
                &settings.auth.api_keys,
                settings.auth.rate_limit_per_s,
            ),
            fingerprint_key: FingerprintKey::derive(&msp_key),
            browser_limit: KeylessLimit::new(settings.server.keyless_rate_limit_per_s),
            notification_limit: KeylessLimit::new(settings.server.keyless_rate_limit_per_s),
            metrics: crate::metrics::handle(),
            webhook_guard,
            settings,
        });

        let shutdown_timeout = state.settings.server.shutdown_timeout_s;
        let factory_state = state.clone();
        let mut server = HttpServer::new(move || {
            app(factory_state.clone(), routes.clone(), ops_port.map(OpsPort))
        })
        .listen(listener)?;
        if let Some(ops) = ops_listener {
            server = server.listen(ops)?;
        }
        let server = server.shutdown_timeout(shutdown_timeout).run();
        tracing::info!(port, ops_port, public_url = %state.public_url(), "listening");
        let (deliverer, bell) = deliverer.unzip();
        Ok(Self {
            port,
            ops_port,
            server,
            state,
            deliverer,
            bell,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_url(&self) -> &str {
        self.state.public_url()
    }

    /// The bound port of the operators' listener, when `server.ops_port` is set.
    pub fn ops_port(&self) -> Option<u16> {
        self.ops_port
    }

    /// The shared state, for tests that drive background passes (the reconciler) themselves.
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// This instance's webhook deliverer, for tests that drive its
    /// passes themselves.
    pub fn deliverer(&self) -> Option<Arc<Deliverer>> {
        self.deliverer.clone()
    }

    /// Stops the server gracefully (in-flight requests finish), for tests and the sandbox.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or [`handle`](Self::handle)`.stop()`), then stops the
    /// background tasks: stop accepting, finish in-flight requests, stop the reconciler.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let reconciler = self.state.settings.reconcile.enabled.then(|| {
            tokio::spawn(crate::flows::reconcile::run(
                self.state.flows.clone(),
                stop_rx.clone(),
            ))
        });
        // The account-wide sweep of MSP's transaction list.
        let reconcile = &self.state.settings.reconcile;
        let sweeper = (reconcile.enabled && reconcile.transactions_interval_s > 0).then(|| {
            tokio::spawn(crate::flows::sweep::run(
                self.state.flows.clone(),
                crate::flows::sweep::SweepConfig::from_settings(reconcile),
                Duration::from_secs(reconcile.transactions_interval_s),
                stop_rx.clone(),
            ))
        });
        let deliverer = self
            .deliverer
            .zip(self.bell)
            .map(|(d, bell)| tokio::spawn(d.run(bell, stop_rx.clone())));
        // The console's statistics, counted in memory, written every few seconds.
        let counts = self
            .state
            .flows
            .psp
            .recorder_arc()
            .map(|recorder| tokio::spawn(recorder.write_counts_until(stop_rx.clone())));
        let served = self.server.await;
        tracing::info!("server stopped; stopping background tasks");
        let _ = stop_tx.send(true);
        if let Some(task) = deliverer
            && tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .is_err()
        {
            tracing::warn!("the webhook deliverer did not stop within 30 s");
        }
        if let Some(task) = reconciler
            && tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .is_err()
        {
            tracing::warn!("the reconciler did not stop within 30 s");
        }
        if let Some(task) = sweeper
            && tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .is_err()
        {
            tracing::warn!("the transaction sweep did not stop within 30 s");
        }
        if let Some(task) = counts
            && tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
        {
            tracing::warn!("the console's last statistics were not written within 10 s");
        }
        served.context("the HTTP server failed")
    }
}

/// Binds `server.host:server.port` (port 0: a free one).
pub fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    let address = (settings.server.host.as_str(), settings.server.port);
    TcpListener::bind(address).with_context(|| {
        format!(
            "could not bind {}:{}; if another process is using the port, choose another \
             with GATEWAY__SERVER__PORT (server.port), or 0 for a free one",
            address.0, address.1
        )
    })
}

/// The route table, shared by `serve`, `sandbox` and the tests. With `ops`, the operators'
/// routes answer on that listener only, and only they do.
pub fn app(
    state: web::Data<AppState>,
    extra: Option<ExtraRoutes>,
    ops: Option<OpsPort>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.settings.server.body_limit_bytes;
    let body_timeout = crate::body_timeout::BodyTimeout(Duration::from_millis(
        state.settings.server.body_timeout_ms,
    ));
    // The console needs its keys and the operators' listener (start-up refuses keys without
    // one); without either its paths are unknown paths.
    let console = ops.is_some() && !state.settings.ops.console_keys.is_empty();
    let mut app = App::new();
    if let Some(ops) = ops {
        app = app.app_data(ops);
    }
    app.app_data(state)
        .app_data(body_timeout)
        .app_data(crate::errors::json_config(limit))
        .app_data(web::PayloadConfig::new(limit))
        .app_data(crate::errors::path_config())
        .app_data(crate::errors::query_config())
        // Innermost: the console's records of a request wait for its checkout's change.
        .wrap(from_fn(crate::activity::defer_records))
        // Innermost of the three: the deadline covers the body's reading by any extractor.
        .wrap(from_fn(crate::body_timeout::cut_slow_bodies))
        .wrap(from_fn(crate::health::ops_listener_only))
        .wrap(from_fn(crate::metrics::track_requests))
        // `tracing-actix-web` without its `emit_event_on_error` feature, with our slim request
        // span: every line carries the request id; `track_requests` writes the one access line.
        .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
        // Outermost: the request's id, for its span, its error bodies, its MSP calls and the
        // `Request-Id` of every answer, whichever layer below answers.
        .wrap(from_fn(crate::request_id::assign))
        // Routes are tried in this order, and the route label of the access line and metrics
        // walks them again: MSP's notification, every order's second request, comes before the
        // API's patterns, each of which costs a regex match (issue 12: 4 % of a checkout's
        // instructions when it came last). No two routes overlap, so the order decides nothing
        // else.
        .configure(crate::notifications::configure)
        .configure(crate::health::configure)
        .configure(crate::api::configure)
        .configure(crate::browser::configure)
        // The operators' console: after the hot paths, which it never shadows.
        .configure(|cfg| crate::console::configure(cfg, console))
        .configure(|cfg| {
            if let Some(extra) = &extra {
                extra(cfg);
            }
        })
        .default_service(web::to(crate::browser::respond::not_found))
}
