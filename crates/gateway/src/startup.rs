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
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use tokio::sync::watch;
use tracing_actix_web::TracingLogger;

use crate::api::auth::MerchantKeys;
use crate::api::idempotency::FingerprintKey;
use crate::browser::keyless::KeylessLimit;
use crate::clock::{SharedClock, SystemClock};
use crate::configuration::Settings;
use crate::flows::{Context, FlowSettings};
use crate::psp::multisafepay::MultiSafepayClient;
use crate::store::CheckoutStore;

/// What every handler can reach, as one `web::Data<AppState>`: the flows' context plus what
/// only the web layer needs.
pub struct AppState {
    pub flows: Arc<Context>,
    pub settings: Settings,
    pub metrics: PrometheusHandle,
    pub merchant_keys: MerchantKeys,
    pub fingerprint_key: FingerprintKey,
    /// The per-client-address limit of the endpoints that need no key (design §4).
    pub keyless_limit: KeylessLimit,
}

impl AppState {
    /// Base URL browsers and MSP use to reach us, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.flows.settings.public_url
    }
}

/// What a caller may plug into the app it builds: a clock of its own (tests move one) and
/// routes of its own (the sandbox's demo storefront).
#[derive(Default)]
pub struct Plugins {
    /// The system clock when `None`.
    pub clock: Option<SharedClock>,
    pub routes: Option<ExtraRoutes>,
}

/// Routes added to the app from outside the gateway (the sandbox's demo storefront). The gateway
/// knows nothing of what they are; they may read [`AppState`] like any route.
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
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
        let Plugins { clock, routes } = plugins;
        let address = (settings.server.host.as_str(), settings.server.port);
        let listener = TcpListener::bind(address)
            .with_context(|| format!("could not bind {}:{}", address.0, address.1))?;
        let port = listener.local_addr()?.port();
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
        let flows = Context {
            store,
            psp,
            clock: clock.unwrap_or_else(|| Arc::new(SystemClock)),
            settings: FlowSettings::new(&settings, public_url),
            syncs: Default::default(),
        };
        let state = web::Data::new(AppState {
            flows: Arc::new(flows),
            merchant_keys: MerchantKeys::new(
                &settings.auth.api_keys,
                settings.auth.rate_limit_per_s,
            ),
            fingerprint_key: FingerprintKey::derive(&msp_key),
            keyless_limit: KeylessLimit::new(settings.server.keyless_rate_limit_per_s),
            metrics: crate::metrics::handle(),
            settings,
        });

        let shutdown_timeout = state.settings.server.shutdown_timeout_s;
        let factory_state = state.clone();
        let server = HttpServer::new(move || app(factory_state.clone(), routes.clone()))
            .listen(listener)?
            .shutdown_timeout(shutdown_timeout)
            .run();
        tracing::info!(port, public_url = %state.public_url(), "listening");
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_url(&self) -> &str {
        self.state.public_url()
    }

    /// The shared state, for tests that drive background passes (the reconciler) themselves.
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
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
                stop_rx,
            ))
        });
        let served = self.server.await;
        tracing::info!("server stopped; stopping background tasks");
        let _ = stop_tx.send(true);
        if let Some(task) = reconciler {
            if tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .is_err()
            {
                tracing::warn!("the reconciler did not stop within 30 s");
            }
        }
        served.context("the HTTP server failed")
    }
}

/// The route table, shared by `serve`, `sandbox` and the tests.
pub fn app(
    state: web::Data<AppState>,
    extra: Option<ExtraRoutes>,
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
    App::new()
        .app_data(state)
        .app_data(crate::errors::json_config(limit))
        .app_data(web::PayloadConfig::new(limit))
        .app_data(crate::errors::path_config())
        .app_data(crate::errors::query_config())
        .wrap(from_fn(crate::metrics::track_requests))
        // `tracing-actix-web` without its `emit_event_on_error` feature, with our slim request
        // span: every line carries the request id; `track_requests` writes the one access line.
        .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
        .configure(crate::health::configure)
        .configure(crate::api::configure)
        .configure(crate::browser::configure)
        .configure(crate::notifications::configure)
        .configure(|cfg| {
            if let Some(extra) = &extra {
                extra(cfg);
            }
        })
        .default_service(web::to(crate::errors::not_found))
}
