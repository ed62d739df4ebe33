//! Prometheus metrics (design §9), recorded through the `metrics` facade and rendered by
//! `/metrics`. The recorder is process-global, so it is installed once.
//!
//! Names live here so that the operator's documentation (deploy/README.md) has one place to check.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests by route pattern, method and status. Labels: `route`, `method`, `status`.
pub const HTTP_REQUESTS: &str = "gateway_http_requests_total";
/// Request latency by route pattern. Labels: `route`, `method`.
pub const HTTP_DURATION: &str = "gateway_http_request_duration_seconds";
/// MSP calls by operation and outcome. Labels: `operation`, `outcome`.
pub const PSP_REQUESTS: &str = "gateway_psp_requests_total";
/// MSP call latency by operation. Labels: `operation`.
pub const PSP_DURATION: &str = "gateway_psp_request_duration_seconds";
/// Notifications by method and result. Labels: `method`, `result`.
pub const NOTIFICATIONS: &str = "gateway_notifications_total";
/// Status transitions. Labels: `from`, `to`, `source`.
pub const TRANSITIONS: &str = "gateway_transitions_total";
/// Refused transitions (backwards, out of a final status). Labels: `from`, `to`, `source`.
pub const ANOMALIES: &str = "gateway_transition_anomalies_total";
/// Store errors. Labels: `operation`.
pub const STORE_ERRORS: &str = "gateway_store_errors_total";
/// Reconciler passes and the checkouts they synced. Labels: `result`.
pub const RECONCILER_RUNS: &str = "gateway_reconciler_runs_total";
pub const RECONCILER_CHECKOUTS: &str = "gateway_reconciler_checkouts_total";
/// Webhook delivery attempts. Labels: `outcome` (`delivered`, `retry`, `failed`: gave up).
pub const WEBHOOK_DELIVERIES: &str = "gateway_webhook_deliveries_total";
/// Checkouts with undelivered events (the outbox index's size).
pub const WEBHOOK_OUTBOX_DEPTH: &str = "gateway_webhook_outbox_depth";
/// How long the most overdue undelivered event has been due, in seconds (0 when none is):
/// grows without bound when deliveries are stuck, stays near 0 while they keep to schedule.
pub const WEBHOOK_OUTBOX_OVERDUE: &str = "gateway_webhook_outbox_overdue_seconds";
/// Webhook deliveries per destination (design §16). Labels: `endpoint` (`webhooks_url`, or
/// the endpoint's `we_…` id: never a URL), `outcome` (`delivered`, `retry`, `failed`, or
/// `disabled`: given up without an attempt, the endpoint being disabled or deleted).
pub const WEBHOOK_ENDPOINT_DELIVERIES: &str = "gateway_webhook_endpoint_deliveries_total";
/// How long one delivery attempt took, in seconds. Labels: `endpoint`.
pub const WEBHOOK_DELIVERY_DURATION: &str = "gateway_webhook_delivery_duration_seconds";

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder on first use and returns the handle `/metrics` renders.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed already (a test harness, say): render our own,
                // unconnected one rather than refusing to start.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Middleware: counts every request and its latency by *route pattern* (`/v1/checkouts/{id}`),
/// never by raw path, so that ids and tokens do not explode the label space.
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let res = next.call(req).await?;
    let route = res
        .request()
        .extensions()
        .get::<crate::telemetry::Route>()
        .map(|r| r.0.clone())
        .or_else(|| res.request().match_pattern())
        .unwrap_or_else(|| "unmatched".into());
    let elapsed = started.elapsed();
    // One access-log line per request, inside the request's span (so it carries its id);
    // probes stay at debug so that they do not drown the log.
    if route.starts_with("/health") || route == "/metrics" {
        tracing::debug!(
            method,
            route,
            status = res.status().as_u16(),
            latency_ms = elapsed.as_millis() as u64,
            "request finished"
        );
    } else {
        tracing::info!(
            method,
            route,
            status = res.status().as_u16(),
            latency_ms = elapsed.as_millis() as u64,
            "request finished"
        );
    }
    let status = res.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method)
        .record(elapsed.as_secs_f64());
    Ok(res)
}
