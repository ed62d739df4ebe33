//! What every handler can reach: [`AppState`], the flows' context plus what only the web layer
//! needs. Its own module, below the routes and [`crate::startup`], so that handlers depend on
//! the state and `startup` on the handlers, never both ways.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::access::{FingerprintKey, KeylessLimit, MerchantKeys};
use crate::configuration::Settings;
use crate::flows::Context;

/// What every handler can reach, as one `web::Data<AppState>`: the flows' context plus what
/// only the web layer needs.
pub struct AppState {
    pub flows: Arc<Context>,
    pub settings: Settings,
    pub metrics: PrometheusHandle,
    pub merchant_keys: MerchantKeys,
    pub fingerprint_key: FingerprintKey,
    /// The per-client-address limit of the shopper's browser paths.
    pub browser_limit: KeylessLimit,
    /// The per-client-address limit of MSP's notifications: buckets of their own, at the same
    /// rate, so that a flood of browser requests from one address cannot starve notifications
    /// from it (or the other way round).
    pub notification_limit: KeylessLimit,
    /// The address rules of API-made webhook endpoints, with their resolver.
    pub webhook_guard: std::sync::Arc<crate::webhooks::address::AddressGuard>,
}

impl AppState {
    /// Base URL browsers and MSP use to reach us, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.flows.settings.public_url
    }
}
