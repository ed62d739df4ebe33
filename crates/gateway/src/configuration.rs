//! Layered configuration: built-in defaults, then an optional TOML file
//! (`--config FILE` or `GATEWAY_CONFIG`), then `GATEWAY__SECTION__KEY` environment variables.
//!
//! Everything is validated before anything binds, and every error names the failing key.
//! Credentials are `secrecy` secrets, so `Debug` of the settings cannot leak them.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::store::Ttls;
use crate::store::redis::RedisConnect;

/// MSP's test API; the live one is `https://api.multisafepay.com/v1/json`.
pub const DEFAULT_MSP_BASE_URL: &str = "https://testapi.multisafepay.com/v1/json";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    /// Base URL that browsers and MSP use to reach the gateway; `http://{host}:{port}` when unset.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub public_url: Option<String>,
    #[serde(default)]
    pub redis: RedisSettings,
    #[serde(default)]
    pub multisafepay: MultiSafepaySettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub checkout: CheckoutSettings,
    #[serde(default)]
    pub reconcile: ReconcileSettings,
    #[serde(default)]
    pub webhooks: WebhookSettings,
    #[serde(default)]
    pub idempotency: IdempotencySettings,
    #[serde(default)]
    pub ops: OpsSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// `0` picks a free port; the bound port is logged.
    pub port: u16,
    /// Larger request bodies get 413.
    pub body_limit_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout_s: u64,
    /// A request whose body has not fully arrived this long after its headers gets 408 and its
    /// connection is closed (actix's own `client_request_timeout` covers the headers only).
    pub body_timeout_ms: u64,
    /// When set, `/health/*` and `/metrics` are served on this port only, not on the public
    /// listener; `0` picks a free one (tests).
    #[serde(deserialize_with = "optional_port")]
    pub ops_port: Option<u16>,
    /// Requests per second per client address on the endpoints that need no key (`/pay`,
    /// `/return`, `/cancel`, notifications that fail verification, GET notifications); a
    /// burst of twice that; `0` disables the limit. The browser paths and the notifications
    /// each have their own buckets.
    pub keyless_rate_limit_per_s: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            body_limit_bytes: 65_536,
            shutdown_timeout_s: 30,
            body_timeout_ms: 10_000,
            ops_port: None,
            keyless_rate_limit_per_s: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://` or `rediss://`; may carry a password, hence a secret.
    #[serde(deserialize_with = "empty_secret_as_none")]
    pub url: Option<SecretString>,
    /// Seed nodes; non-empty switches to the cluster client.
    #[serde(deserialize_with = "string_or_list")]
    pub cluster_urls: Vec<String>,
    pub key_prefix: String,
    /// Per-command deadline, so that an outage answers 503 quickly instead of hanging requests.
    pub command_timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            cluster_urls: Vec::new(),
            key_prefix: "cgw".into(),
            command_timeout_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum NotificationMethod {
    #[serde(rename = "POST", alias = "post")]
    Post,
    #[serde(rename = "GET", alias = "get")]
    Get,
}

impl NotificationMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Get => "GET",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiSafepaySettings {
    pub base_url: String,
    /// The site API key: authenticates our calls and is the notification HMAC key.
    #[serde(deserialize_with = "empty_secret_as_none")]
    pub api_key: Option<SecretString>,
    pub notification_method: NotificationMethod,
    /// Max age of a notification's `Auth` timestamp; `0` disables the check (as MSP's SDKs do).
    pub signature_tolerance_s: u64,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
}

impl Default for MultiSafepaySettings {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_MSP_BASE_URL.into(),
            api_key: None,
            notification_method: NotificationMethod::Post,
            signature_tolerance_s: 600,
            connect_timeout_ms: 2_000,
            timeout_ms: 15_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Merchant keys accepted as Bearer tokens; several, so that keys can be rotated.
    #[serde(deserialize_with = "secret_list")]
    pub api_keys: Vec<SecretString>,
    /// Requests per second allowed per API key (a token bucket with a burst of twice that);
    /// `0` disables the limit.
    pub rate_limit_per_s: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            api_keys: Vec::new(),
            rate_limit_per_s: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThreeDsMode {
    /// 303 to MSP's `payment_url` (MSP's recommendation).
    Redirect,
    /// Serve MSP's `customer_verification.html` as received.
    Form,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckoutSettings {
    pub three_ds_mode: ThreeDsMode,
    /// Allow-list of return/cancel URL hosts (matched without the port); empty = any host over
    /// https. A listed host may also be used over http.
    #[serde(deserialize_with = "string_or_list")]
    pub return_url_hosts: Vec<String>,
    pub session_ttl_s: u64,
    pub retention_s: u64,
}

impl Default for CheckoutSettings {
    fn default() -> Self {
        Self {
            three_ds_mode: ThreeDsMode::Redirect,
            return_url_hosts: Vec::new(),
            session_ttl_s: 5_400,
            retention_s: 2_592_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileSettings {
    pub enabled: bool,
    pub first_after_s: u64,
    pub interval_s: u64,
    pub max_age_s: u64,
    /// The account-wide sweep of MSP's `GET /transactions`: every this many
    /// seconds (0: never).
    pub transactions_interval_s: u64,
    /// Each sweep reads back this much before its watermark.
    pub transactions_overlap_s: u64,
    /// Rows a page (MSP: at most 1000).
    pub transactions_page_size: u32,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            first_after_s: 60,
            interval_s: 300,
            max_age_s: 86_400,
            transactions_interval_s: 900,
            transactions_overlap_s: 3_600,
            transactions_page_size: 1_000,
        }
    }
}

/// Where and how events are delivered to the storefront.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// The storefront's endpoint for events; no webhooks when unset.
    #[serde(deserialize_with = "empty_as_none")]
    pub url: Option<String>,
    /// Signing secrets; every delivery carries one `v1=` signature per secret (rotation).
    #[serde(deserialize_with = "secret_list")]
    pub secrets: Vec<SecretString>,
    /// Retry a delivery for up to this long after the event.
    pub max_age_s: u64,
    /// Per delivery attempt.
    pub timeout_ms: u64,
    /// Host names an endpoint made through the API may use over http.
    #[serde(deserialize_with = "string_or_list")]
    pub allow_http_hosts: Vec<String>,
    /// Lets endpoints made through the API point at loopback, private, link-local, shared,
    /// multicast or unspecified addresses (the sandbox's demo shop).
    pub allow_private_networks: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            url: None,
            secrets: Vec::new(),
            max_age_s: 259_200,
            timeout_ms: 10_000,
            allow_http_hosts: Vec::new(),
            allow_private_networks: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    /// How long a claimed `Idempotency-Key` counts as in flight (409) if its request never
    /// finishes (a crash); after that a retry with the key resumes the interrupted request.
    /// Longer than one MSP call can take, so a request still running is never taken over.
    pub in_flight_ttl_s: u64,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            in_flight_ttl_s: 60,
        }
    }
}

/// The operators' side: the console's keys (the console is served on `server.ops_port` only).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsSettings {
    /// Who may sign in to the console: each entry `label:key` or a bare key (then labelled by
    /// its first 8 characters). Separate from the merchant keys; none turns the console off.
    #[serde(deserialize_with = "secret_list")]
    pub console_keys: Vec<SecretString>,
    /// How long a console session lasts after its sign-in.
    pub console_session_ttl_s: u64,
}

impl Default for OpsSettings {
    fn default() -> Self {
        Self {
            console_keys: Vec::new(),
            console_session_ttl_s: 28_800,
        }
    }
}

/// The shortest console key accepted.
pub const CONSOLE_KEY_MIN_LEN: usize = 24;

/// One entry of `ops.console_keys`, split into its label and its key.
#[derive(Clone)]
pub struct ConsoleKey {
    pub label: String,
    pub key: SecretString,
}

impl fmt::Debug for ConsoleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsoleKey({}, ****)", self.label)
    }
}

impl ConsoleKey {
    /// `label:key`, or a bare key labelled by its first 8 characters. A key holds no `:`, so the
    /// first `:` ends the label.
    pub fn parse(entry: &str) -> Result<ConsoleKey, String> {
        let entry = entry.trim();
        let (label, key) = match entry.split_once(':') {
            Some((label, key)) => (label.trim().to_owned(), key.trim()),
            None => (entry.chars().take(8).collect(), entry),
        };
        if label.is_empty() || label.chars().any(|c| c.is_control()) || label.chars().count() > 64 {
            return Err(
                "every entry is `label:key` (a label of 1 to 64 characters) or a bare key".into(),
            );
        }
        if key.len() < CONSOLE_KEY_MIN_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "every console key must be at least {CONSOLE_KEY_MIN_LEN} visible characters; generate one with `openssl rand -hex 24`"
            ));
        }
        Ok(ConsoleKey {
            label,
            key: SecretString::from(key.to_owned()),
        })
    }
}

impl OpsSettings {
    /// The console's keys, parsed (validated at start-up, so an entry that does not parse is
    /// left out here).
    pub fn console_keys(&self) -> Vec<ConsoleKey> {
        self.console_keys
            .iter()
            .filter_map(|k| ConsoleKey::parse(k.expose_secret()).ok())
            .collect()
    }
}

/// A configuration error that names the failing key and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration key `{key}`: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// Which command the settings are for: `serve` needs more than `sandbox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Sandbox,
}

impl Settings {
    /// Loads defaults, then `file` (or `GATEWAY_CONFIG`) if any, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let env_file = std::env::var_os("GATEWAY_CONFIG").map(std::path::PathBuf::from);
        let file = file.map(Path::to_path_buf).or(env_file);
        let mut builder = config::Config::builder();
        if let Some(path) = &file {
            if !path.exists() {
                return Err(ConfigError::new(
                    "--config",
                    format!(
                        "file {} does not exist; pass an existing TOML file",
                        path.display()
                    ),
                ));
            }
            builder = builder
                .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml));
        }
        // No `try_parsing`: it would turn an API key such as "0123" into the number 123. Numbers
        // and booleans are parsed from strings by the deserializer instead.
        builder = builder.add_source(
            config::Environment::with_prefix("GATEWAY")
                .prefix_separator("__")
                .separator("__"),
        );
        let raw = builder
            .build()
            .map_err(|e| ConfigError::new(&key_of(&e), e.to_string()))?;
        raw.try_deserialize::<Settings>()
            .map_err(|e| ConfigError::new(&key_of(&e), e.to_string()))
    }

    /// Checks every value; `serve` additionally needs Redis, an MSP key and merchant keys.
    pub fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
        if self.server.host.trim().is_empty() {
            return Err(ConfigError::new(
                "server.host",
                "must not be empty (e.g. 127.0.0.1 or 0.0.0.0)",
            ));
        }
        if self.server.body_limit_bytes < 1_024 {
            return Err(ConfigError::new(
                "server.body_limit_bytes",
                "must be at least 1024",
            ));
        }
        if let Some(url) = &self.public_url {
            check_http_url("public_url", url)?;
        }
        check_http_url("multisafepay.base_url", &self.multisafepay.base_url)?;
        if self.redis.key_prefix.is_empty() || self.redis.key_prefix.contains(['{', '}', ' ']) {
            return Err(ConfigError::new(
                "redis.key_prefix",
                "must be non-empty, without spaces or braces (braces are hash tags)",
            ));
        }
        if let Some(url) = &self.redis.url {
            check_redis_url("redis.url", url.expose_secret())?;
        }
        for url in &self.redis.cluster_urls {
            check_redis_url("redis.cluster_urls", url)?;
        }
        positive(
            "multisafepay.connect_timeout_ms",
            self.multisafepay.connect_timeout_ms,
        )?;
        positive("multisafepay.timeout_ms", self.multisafepay.timeout_ms)?;
        positive("redis.command_timeout_ms", self.redis.command_timeout_ms)?;
        positive("server.body_timeout_ms", self.server.body_timeout_ms)?;
        if let Some(ops) = self.server.ops_port
            && ops != 0
            && ops == self.server.port
        {
            return Err(ConfigError::new(
                "server.ops_port",
                "must differ from server.port: health and metrics get a listener of their own (leave it unset to serve them on server.port)",
            ));
        }
        positive("checkout.session_ttl_s", self.checkout.session_ttl_s)?;
        positive("checkout.retention_s", self.checkout.retention_s)?;
        positive("reconcile.interval_s", self.reconcile.interval_s)?;
        positive("reconcile.max_age_s", self.reconcile.max_age_s)?;
        if !(1..=1_000).contains(&self.reconcile.transactions_page_size) {
            return Err(ConfigError::new(
                "reconcile.transactions_page_size",
                "must be 1 to 1000 (MultiSafepay's most rows a page)",
            ));
        }
        // Strictly longer than the longest MSP call plus a second: a request still waiting for
        // MSP must never be taken over by its retry.
        let msp_call_ms = self
            .multisafepay
            .connect_timeout_ms
            .saturating_add(self.multisafepay.timeout_ms);
        if self.idempotency.in_flight_ttl_s.saturating_mul(1_000)
            <= msp_call_ms.saturating_add(1_000)
        {
            return Err(ConfigError::new(
                "idempotency.in_flight_ttl_s",
                format!(
                    "must be greater than (multisafepay.connect_timeout_ms + multisafepay.timeout_ms) / 1000 + 1 = {}s, so that a request still waiting for MultiSafepay is never taken over by its retry; raise it (default 60) or lower the MSP timeouts",
                    msp_call_ms as f64 / 1000.0 + 1.0
                ),
            ));
        }
        if self.checkout.retention_s < self.checkout.session_ttl_s {
            return Err(ConfigError::new(
                "checkout.retention_s",
                "must be at least checkout.session_ttl_s: a record cannot expire before its 3DS session",
            ));
        }
        for host in &self.checkout.return_url_hosts {
            if host.is_empty() || host.contains(['/', ':', ' ']) {
                return Err(ConfigError::new(
                    "checkout.return_url_hosts",
                    format!("`{host}` is not a host name; list bare host names, e.g. shop.example"),
                ));
            }
        }
        self.validate_webhooks()?;
        self.validate_ops()?;
        for key in &self.auth.api_keys {
            if key.expose_secret().len() < 16 {
                return Err(ConfigError::new(
                    "auth.api_keys",
                    "every merchant key must be at least 16 characters; generate one with `openssl rand -hex 24`",
                ));
            }
        }
        if mode == Mode::Serve {
            if self.redis.url.is_none() && self.redis.cluster_urls.is_empty() {
                return Err(ConfigError::new(
                    "redis.url",
                    "is required by `serve`: set GATEWAY__REDIS__URL (or redis.cluster_urls)",
                ));
            }
            if self.multisafepay.api_key.is_none() {
                return Err(ConfigError::new(
                    "multisafepay.api_key",
                    "is required by `serve`: set GATEWAY__MULTISAFEPAY__API_KEY to the site API key",
                ));
            }
            if self.auth.api_keys.is_empty() {
                return Err(ConfigError::new(
                    "auth.api_keys",
                    "is required by `serve`: set GATEWAY__AUTH__API_KEYS to one or more comma-separated merchant keys",
                ));
            }
        }
        Ok(())
    }

    fn validate_ops(&self) -> Result<(), ConfigError> {
        let mut labels = std::collections::HashSet::new();
        for entry in &self.ops.console_keys {
            let key = ConsoleKey::parse(entry.expose_secret())
                .map_err(|m| ConfigError::new("ops.console_keys", m))?;
            if !labels.insert(key.label.clone()) {
                return Err(ConfigError::new(
                    "ops.console_keys",
                    format!(
                        "the label `{}` is given twice; give every key its own label",
                        key.label
                    ),
                ));
            }
        }
        if !self.ops.console_keys.is_empty() && self.server.ops_port.is_none() {
            return Err(ConfigError::new(
                "ops.console_keys",
                "the console is served on the operators' listener only: set server.ops_port too",
            ));
        }
        positive("ops.console_session_ttl_s", self.ops.console_session_ttl_s)?;
        Ok(())
    }

    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let w = &self.webhooks;
        positive("webhooks.max_age_s", w.max_age_s)?;
        positive("webhooks.timeout_ms", w.timeout_ms)?;
        if let Some(url) = &w.url {
            check_http_url("webhooks.url", url)?;
            if w.secrets.is_empty() {
                return Err(ConfigError::new(
                    "webhooks.secrets",
                    "is required with webhooks.url: set GATEWAY__WEBHOOKS__SECRETS to one or more comma-separated signing secrets (e.g. `openssl rand -hex 32`)",
                ));
            }
        }
        for secret in &w.secrets {
            if secret.expose_secret().len() < 16 {
                return Err(ConfigError::new(
                    "webhooks.secrets",
                    "every signing secret must be at least 16 characters; generate one with `openssl rand -hex 32`",
                ));
            }
        }
        for host in &w.allow_http_hosts {
            if host.is_empty() || host.contains(['/', ':', ' ', '@']) {
                return Err(ConfigError::new(
                    "webhooks.allow_http_hosts",
                    format!(
                        "`{host}` is not a host name; list bare host names, e.g. hooks.shop.internal"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The public base URL without a trailing slash.
    pub fn public_base_url(&self, bound_port: u16) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}", self.server.host, bound_port),
        }
    }

    /// Every TTL the store applies: records and events for `retention_s`, the 3DS
    /// session for `session_ttl_s`, idempotency records for 24 h (Stripe's window).
    pub fn store_ttls(&self) -> Ttls {
        Ttls {
            retention: Duration::from_secs(self.checkout.retention_s),
            session: Duration::from_secs(self.checkout.session_ttl_s),
            idempotency: Duration::from_secs(24 * 3_600),
        }
    }

    /// How to reach Redis (`serve`, or a sandbox with `redis.url`).
    pub fn redis_connect(&self) -> RedisConnect {
        RedisConnect {
            url: self
                .redis
                .url
                .as_ref()
                .map(|u| u.expose_secret().to_owned()),
            cluster_urls: self.redis.cluster_urls.clone(),
            key_prefix: self.redis.key_prefix.clone(),
            ttls: self.store_ttls(),
            command_timeout: Duration::from_millis(self.redis.command_timeout_ms),
        }
    }

    pub fn msp_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.multisafepay.connect_timeout_ms)
    }

    pub fn msp_timeout(&self) -> Duration {
        Duration::from_millis(self.multisafepay.timeout_ms)
    }
}

fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::new(key, "must be greater than 0"))
    } else {
        Ok(())
    }
}

fn check_http_url(key: &str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(ConfigError::new(
            key,
            format!("`{value}` is not an absolute http(s) URL"),
        )),
    }
}

fn check_redis_url(key: &str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss") => Ok(()),
        // The value may hold a password: never echo it.
        _ => Err(ConfigError::new(key, "must be a redis:// or rediss:// URL")),
    }
}

/// Best effort at pulling the key out of the `config` crate's messages ("... for key `a.b`").
fn key_of(e: &config::ConfigError) -> String {
    let text = e.to_string();
    text.split("key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned)
        .unwrap_or_else(|| "(configuration)".into())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn items(self) -> Vec<String> {
        let all = match self {
            Self::One(s) => s.split(',').map(str::to_owned).collect(),
            Self::Many(v) => v,
        };
        all.into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Lists come as TOML arrays or as comma-separated strings (environment variables).
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(StringOrList::deserialize(d)?.items())
}

fn secret_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    Ok(string_or_list(d)?
        .into_iter()
        .map(SecretString::from)
        .collect())
}

/// An optional port: absent or empty is `None`; numbers come as strings from the environment.
fn optional_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum PortValue {
        Number(u16),
        Text(String),
    }
    match Option::<PortValue>::deserialize(d)? {
        None => Ok(None),
        Some(PortValue::Number(n)) => Ok(Some(n)),
        Some(PortValue::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(PortValue::Text(t)) => {
            t.trim().parse().map(Some).map_err(|_| {
                serde::de::Error::custom(format!("`{t}` is not a port number (0-65535)"))
            })
        }
    }
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<String>::deserialize(d)?;
    Ok(v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

fn empty_secret_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(empty_as_none(d)?.map(SecretString::from))
}

impl fmt::Display for ThreeDsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Redirect => "redirect",
            Self::Form => "form",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        let raw = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::new(&key_of(&e), e.to_string()))?;
        raw.try_deserialize()
            .map_err(|e| ConfigError::new(&key_of(&e), e.to_string()))
    }

    const SERVE_OK: &str = r#"
        [redis]
        url = "redis://127.0.0.1:6379"
        [multisafepay]
        api_key = "site-key"
        [auth]
        api_keys = "0123456789abcdef0123, fedcba9876543210fedc"
    "#;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = from_toml("").unwrap();
        assert_eq!(s.server.host, "127.0.0.1");
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.server.body_limit_bytes, 65_536);
        assert_eq!(s.server.body_timeout_ms, 10_000);
        assert_eq!(s.server.ops_port, None);
        assert_eq!(s.redis.key_prefix, "cgw");
        assert_eq!(s.multisafepay.base_url, DEFAULT_MSP_BASE_URL);
        assert_eq!(s.multisafepay.notification_method, NotificationMethod::Post);
        assert_eq!(s.multisafepay.signature_tolerance_s, 600);
        assert_eq!(
            (s.multisafepay.connect_timeout_ms, s.multisafepay.timeout_ms),
            (2_000, 15_000)
        );
        assert_eq!(s.checkout.three_ds_mode, ThreeDsMode::Redirect);
        assert_eq!(
            (s.checkout.session_ttl_s, s.checkout.retention_s),
            (5_400, 2_592_000)
        );
        assert!(s.reconcile.enabled);
        assert_eq!(
            (
                s.reconcile.first_after_s,
                s.reconcile.interval_s,
                s.reconcile.max_age_s
            ),
            (60, 300, 86_400)
        );
        assert_eq!(s.public_base_url(8080), "http://127.0.0.1:8080");
    }

    #[test]
    fn serve_refuses_to_start_without_redis_msp_key_or_merchant_keys() {
        let s = from_toml("").unwrap();
        assert_eq!(s.validate(Mode::Serve).unwrap_err().key, "redis.url");
        let s = from_toml("[redis]\nurl = \"redis://localhost\"").unwrap();
        assert_eq!(
            s.validate(Mode::Serve).unwrap_err().key,
            "multisafepay.api_key"
        );
        let s = from_toml("[redis]\nurl = \"redis://localhost\"\n[multisafepay]\napi_key = \"k\"")
            .unwrap();
        assert_eq!(s.validate(Mode::Serve).unwrap_err().key, "auth.api_keys");
        assert!(from_toml(SERVE_OK).unwrap().validate(Mode::Serve).is_ok());
        // The sandbox needs none of them.
        assert!(from_toml("").unwrap().validate(Mode::Sandbox).is_ok());
    }

    #[test]
    fn comma_separated_lists_and_arrays_both_work() {
        let s = from_toml(SERVE_OK).unwrap();
        assert_eq!(s.auth.api_keys.len(), 2);
        let s = from_toml("[checkout]\nreturn_url_hosts = [\"a.example\", \"b.example\"]").unwrap();
        assert_eq!(s.checkout.return_url_hosts, ["a.example", "b.example"]);
        let s = from_toml("[checkout]\nreturn_url_hosts = \"a.example, b.example,\"").unwrap();
        assert_eq!(s.checkout.return_url_hosts, ["a.example", "b.example"]);
    }

    #[test]
    fn the_in_flight_time_of_an_idempotency_key_outlasts_an_msp_call() {
        let s = from_toml("").unwrap();
        assert_eq!(s.idempotency.in_flight_ttl_s, 60);
        let s = from_toml("[idempotency]\nin_flight_ttl_s = 19").unwrap();
        assert!(s.validate(Mode::Sandbox).is_ok());
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases = [
            ("[server]\nport = 70000", "server.port"),
            (
                "[checkout]\nthree_ds_mode = \"popup\"",
                "checkout.three_ds_mode",
            ),
            (
                "[multisafepay]\nbase_url = \"not a url\"",
                "multisafepay.base_url",
            ),
            ("[multisafepay]\ntimeout_ms = 0", "multisafepay.timeout_ms"),
            ("[redis]\nurl = \"http://x\"", "redis.url"),
            (
                "[checkout]\nreturn_url_hosts = \"https://shop.example\"",
                "checkout.return_url_hosts",
            ),
            ("[auth]\napi_keys = \"short\"", "auth.api_keys"),
            (
                "[webhooks]\nurl = \"ftp://shop.example/hooks\"\nsecrets = \"whsec_0123456789abcdef\"",
                "webhooks.url",
            ),
            (
                "[webhooks]\nurl = \"https://shop.example/hooks\"",
                "webhooks.secrets",
            ),
            (
                "[webhooks]\nurl = \"https://shop.example/hooks\"\nsecrets = \"short\"",
                "webhooks.secrets",
            ),
            (
                "[webhooks]\nallow_http_hosts = \"http://hooks.example\"",
                "webhooks.allow_http_hosts",
            ),
            ("[webhooks]\ntimeout_ms = 0", "webhooks.timeout_ms"),
            ("[server]\nbody_timeout_ms = 0", "server.body_timeout_ms"),
            ("[server]\nops_port = \"metrics\"", "server.ops_port"),
            ("[server]\nport = 9000\nops_port = 9000", "server.ops_port"),
            // The console is on the operators' listener only, and its keys are long.
            (
                "[ops]\nconsole_keys = \"alice:0123456789abcdef01234567\"",
                "ops.console_keys",
            ),
            (
                "[server]\nops_port = 9090\n[ops]\nconsole_keys = \"alice:short\"",
                "ops.console_keys",
            ),
            (
                "[server]\nops_port = 9090\n[ops]\nconsole_keys = \"a:0123456789abcdef01234567,a:0123456789abcdef0123456x\"",
                "ops.console_keys",
            ),
            // Not longer than the longest MSP call (2 s + 15 s) plus a second.
            (
                "[idempotency]\nin_flight_ttl_s = 18",
                "idempotency.in_flight_ttl_s",
            ),
            (
                "[multisafepay]\ntimeout_ms = 60000",
                "idempotency.in_flight_ttl_s",
            ),
        ];
        for (toml, key) in cases {
            let err = from_toml(toml)
                .and_then(|s| s.validate(Mode::Sandbox).map(|_| s))
                .unwrap_err();
            assert_eq!(err.key, key, "{toml}: {err}");
        }
    }

    #[test]
    fn console_keys_carry_a_label_or_are_labelled_by_their_start() {
        let s = from_toml(
            "[server]\nops_port = 9090\n[ops]\nconsole_keys = \"alice:0123456789abcdef01234567,ck_live_abcdefghijklmnopqrstuvwx\"",
        )
        .unwrap();
        s.validate(Mode::Sandbox).unwrap();
        let keys = s.ops.console_keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].label, "alice");
        assert_eq!(keys[0].key.expose_secret(), "0123456789abcdef01234567");
        assert_eq!(keys[1].label, "ck_live_");
        assert!(!format!("{:?}", keys[0]).contains("0123456789"));
    }

    #[test]
    fn the_ops_port_comes_as_a_number_or_as_the_string_of_one() {
        let s = from_toml("[server]\nops_port = 9090").unwrap();
        assert_eq!(s.server.ops_port, Some(9090));
        let s = from_toml("[server]\nops_port = \"9091\"").unwrap();
        assert_eq!(s.server.ops_port, Some(9091));
        let s = from_toml("[server]\nops_port = \"\"").unwrap();
        assert_eq!(s.server.ops_port, None);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let s = from_toml(SERVE_OK).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("site-key"), "{debug}");
        assert!(!debug.contains("0123456789abcdef0123"), "{debug}");
    }

    /// The documented example stays loadable: every key it names exists, with its default.
    #[test]
    fn the_example_configuration_file_loads_with_the_defaults() {
        let s = from_toml(include_str!("../../../deploy/config.example.toml")).unwrap();
        assert!(s.validate(Mode::Sandbox).is_ok());
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.auth.rate_limit_per_s, 100);
        assert_eq!(s.webhooks.max_age_s, 259_200);
        assert_eq!(s.webhooks.timeout_ms, 10_000);
        assert_eq!(s.validate(Mode::Serve).unwrap_err().key, "redis.url");
    }

    #[test]
    fn unknown_keys_are_refused_so_that_typos_do_not_pass_silently() {
        let err = from_toml("[server]\nprot = 1").unwrap_err();
        assert!(err.message.contains("prot"), "{err}");
    }
}
