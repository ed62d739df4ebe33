//! `checkout-gateway sandbox`: gateway + MultiSafepay simulator in one process, with a demo
//! storefront at `/demo` — the zero-set-up way to click through a whole 3-D Secure payment.
//!
//! It reads the same configuration as `serve`, but needs none of its secrets: the simulator gets a
//! fresh site key, the merchant key is fresh too unless `auth.api_keys` is set, and the store is
//! in memory unless `redis.url` is set. The simulator listens on the sandbox's host, on a free
//! port of its own, so the sandbox is for one machine.
//!
//! - this file: [`run`], which binds the port, prints the merchant key, starts the simulator and
//!   builds the gateway's app with the demo's routes added ([`SandboxInfo`] is what they need).
//! - `routes`: the demo storefront's routes under `/demo`; like a real shop's backend they call
//!   the gateway's API over HTTP with the merchant key.
//! - [`demo`]: what those routes render and parse, free of HTTP: the checkout page and its form,
//!   the result page (refunds, capture, cancel, events), the webhook receiver and its page.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use gateway::configuration::Settings;
use gateway::startup::{Application, ExtraRoutes, Plugins};
use gateway::store::CheckoutStore;
use gateway::store::memory::MemoryStore;
use gateway::store::redis::RedisStore;
use msp_simulator::SimulatorConfig;

pub mod demo;
mod evidence;
mod routes;

// The gateway's `base.html`, which the demo's pages extend, inlines the stylesheet by the path
// `crate::browser::security::GATEWAY_STYLESHEET`: this import makes that path resolve here too.
use gateway::browser;

/// What the demo storefront needs to call the gateway's own API like a real shop would.
pub struct SandboxInfo {
    pub merchant_key: SecretString,
    /// The simulator's origin: the demo's `form-action` must list it, because Chrome applies
    /// `form-action` to the redirects after a form submission (demo → /pay → simulator).
    pub simulator_origin: String,
    pub http: reqwest::Client,
    /// How long the simulator keeps a refund pending: the result page says so.
    pub refund_delay: Duration,
    /// The shop's webhook receiver: what the gateway delivered to `/demo/webhooks`.
    pub inbox: demo::Inbox,
}

/// The sandbox's notification retry interval: short, so a demo shows retries in seconds.
const NOTIFICATION_RETRY: Duration = Duration::from_secs(15);
/// How long an uncleared test card stays uncleared in the sandbox (MSP: about 3 minutes).
const UNCLEARED_DELAY: Duration = Duration::from_secs(30);
/// How long a refund stays pending (and cancelable) in the sandbox before the simulator pays it
/// out (MSP: at midnight; the simulator's own default: a minute). Short, so that a person
/// trying the demo sees a refund complete, and still long enough to cancel one.
const REFUND_DELAY: Duration = Duration::from_secs(20);

pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    let merchant_key = match settings.auth.api_keys.first() {
        Some(key) => key.clone(),
        None => {
            let key = SecretString::from(random_key("sk_sandbox_"));
            settings.auth.api_keys.push(key.clone());
            key
        }
    };
    // Bound first: a port that is taken stops the start with its message before anything else
    // (the key included) is printed or started. The webhooks go to our own demo storefront,
    // whose address needs the port.
    let listener = gateway::startup::bind(&settings)?;
    let port = listener.local_addr()?.port();
    // The one banner line on stdout, not a log line, and the first line there (before
    // any JSON log line), so that `head -1` finds it as README says. The addresses a person wants
    // next go to stderr once the listeners are bound.
    println!("merchant API key: {}", merchant_key.expose_secret());
    let site_key = random_key("sim_");
    let sim = msp_simulator::spawn(SimulatorConfig {
        host: settings.server.host.clone(),
        port: 0,
        api_keys: vec![site_key.clone()],
        public_url: None,
        notification_retry_interval: NOTIFICATION_RETRY,
        challenge_expiry: Duration::from_secs(3_600),
        uncleared_delay: UNCLEARED_DELAY,
        refund_delay: REFUND_DELAY,
    })
    .await?;
    settings.multisafepay.base_url = sim.api_url();
    settings.multisafepay.api_key = Some(SecretString::from(site_key));

    // The demo's result page is served over http by us: allow our own host as a return URL.
    let own_host = match &settings.public_url {
        Some(url) => url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned)),
        None => Some(settings.server.host.clone()),
    };
    if let Some(host) = own_host
        && !settings.checkout.return_url_hosts.contains(&host)
    {
        settings.checkout.return_url_hosts.push(host);
    }

    let webhook_secret = match settings.webhooks.secrets.first() {
        Some(secret) => secret.clone(),
        None => {
            let secret = SecretString::from(random_key("whsec_"));
            settings.webhooks.secrets.push(secret.clone());
            secret
        }
    };
    if settings.webhooks.url.is_none() {
        settings.webhooks.url = Some(format!("{}/demo/webhooks", settings.public_base_url(port)));
    }
    // The demo shop is on this machine, over http: webhook endpoints made through the API may
    // point at it, as the operator of a sandbox would expect.
    settings.webhooks.allow_private_networks = true;
    for host in ["127.0.0.1", "localhost", settings.server.host.as_str()] {
        if !settings.webhooks.allow_http_hosts.iter().any(|h| h == host) {
            settings.webhooks.allow_http_hosts.push(host.to_owned());
        }
    }

    // The operators' console (on the operators' listener only): one key for the person trying
    // the sandbox, fresh at each start unless `ops.console_keys` is set.
    let console_key = match settings.ops.console_keys.first() {
        Some(_) => None,
        None => {
            let key = random_key("ck_sandbox_");
            settings
                .ops
                .console_keys
                .push(SecretString::from(format!("sandbox:{key}")));
            Some(key)
        }
    };
    if settings.server.ops_port.is_none() {
        settings.server.ops_port = Some(0);
    }

    let store: Arc<dyn CheckoutStore> =
        if settings.redis.url.is_some() || !settings.redis.cluster_urls.is_empty() {
            Arc::new(RedisStore::connect(settings.redis_connect()).await?)
        } else {
            Arc::new(MemoryStore::new(settings.store_ttls()))
        };
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .build()?;
    let info = SandboxInfo {
        merchant_key: merchant_key.clone(),
        simulator_origin: sim.base_url(),
        http,
        refund_delay: REFUND_DELAY,
        inbox: demo::Inbox::new(webhook_secret),
    };
    demo_endpoints(store.as_ref(), &info.inbox, &settings.public_base_url(port)).await?;
    let info = actix_web::web::Data::new(info);
    let demo: ExtraRoutes = Arc::new(move |cfg| routes::configure(cfg, info.clone()));
    let plugins = Plugins {
        routes: Some(demo),
        listener: Some(listener),
        ..Plugins::default()
    };
    let settings_host = settings.server.host.clone();
    let app = Application::build_with(settings, store, plugins)?;

    eprintln!("demo storefront: {}/demo", app.public_url());
    eprintln!("webhooks it received: {}/demo/webhooks", app.public_url());
    eprintln!("simulator (MultiSafepay API): {}", sim.api_url());
    if let Some(ops) = app.ops_port() {
        let host = match settings_host.as_str() {
            "0.0.0.0" | "::" => "127.0.0.1",
            h => h,
        };
        eprintln!("operator console: http://{host}:{ops}/console");
        match &console_key {
            Some(key) => eprintln!("console key: {key}"),
            None => eprintln!("console key: one of ops.console_keys"),
        }
        eprintln!("health and metrics: http://{host}:{ops}/health/ready, /metrics");
    }

    let result = app.run_until_stopped().await;
    sim.stop().await;
    result
}

/// Makes the demo's webhook endpoints unless the store has them already (a
/// sandbox on Redis, started again), and tells the shop's inbox their secrets.
async fn demo_endpoints(
    store: &dyn CheckoutStore,
    inbox: &demo::Inbox,
    base: &str,
) -> anyhow::Result<()> {
    use gateway::domain::webhook_endpoint::{EventFilter, MAX_ENDPOINTS, WebhookEndpoint};
    let now = chrono::Utc::now();
    let existing = store.endpoints().await?;
    for (name, label, events) in demo::DEMO_ENDPOINTS {
        let url = format!("{base}/demo/webhooks/{name}");
        let endpoint = match existing.iter().find(|e| e.url == url) {
            Some(e) => e.clone(),
            None => {
                let filter = EventFilter::parse(events.iter().map(|e| (*e).to_owned()).collect())
                    .map_err(|e| anyhow::anyhow!("the demo's filter: {e}"))?;
                let made = WebhookEndpoint::new(
                    url,
                    filter,
                    Some(format!("The sandbox's demo {label}")),
                    now,
                );
                store.put_endpoint(&made, None, MAX_ENDPOINTS).await?;
                made
            }
        };
        inbox.add_endpoint(demo::DemoEndpoint {
            name,
            label,
            id: endpoint.id.to_string(),
            events: endpoint.events.entries().to_vec(),
            secrets: endpoint.signing_secrets(now),
        });
    }
    Ok(())
}

fn random_key(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 16]>()))
}
