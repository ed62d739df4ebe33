//! `Application::build` binds and wires everything; `run_until_stopped` drives it.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::configuration::Settings;
use crate::store::CheckoutStore;

/// What every handler can reach, as one `web::Data<AppState>`.
pub struct AppState {
    pub settings: Settings,
    /// Base URL browsers and MSP use to reach us, without a trailing slash.
    pub public_url: String,
    pub store: Arc<dyn CheckoutStore>,
    pub metrics: PrometheusHandle,
}
