//! Prometheus metrics, recorded through the `metrics` facade and rendered by
//! `/metrics`. The recorder is process-global, so it is installed once.
//!
//! Names live here so that the operator's documentation (deploy/README.md) has one place to check.
//! Every family has HELP text (`describe`); the counters an operator alerts on exist at 0 from
//! the start ([`ZERO_COUNTERS`]), so that `rate()` and `increase()` see their first increment;
//! the process's own (CPU seconds, resident memory, open file descriptors, …: the `process_*`
//! families, from `metrics-process`) are read at each scrape ([`render`]), and
//! [`BUILD_INFO`] says which build answers.

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
/// Writes of the operator console's activity (logs, statistics) that failed; the payment went
/// on. Labels: `record`.
pub const ACTIVITY_RECORD_ERRORS: &str = "gateway_activity_record_errors_total";
/// Reconciler passes and the checkouts they synced. Labels: `result`.
pub const RECONCILER_RUNS: &str = "gateway_reconciler_runs_total";
pub const RECONCILER_CHECKOUTS: &str = "gateway_reconciler_checkouts_total";
/// How many checkouts the last reconciler pass of this instance looked at: at its most
/// (`flows::reconcile::BATCH`, 100) pass after pass, the reconciler is not keeping up.
pub const RECONCILER_PASS_CHECKOUTS: &str = "gateway_reconciler_pass_checkouts";
/// Webhook delivery attempts. Labels: `outcome` (`delivered`, `retry`, `failed`: gave up).
pub const WEBHOOK_DELIVERIES: &str = "gateway_webhook_deliveries_total";
/// Checkouts with undelivered events (the outbox index's size).
pub const WEBHOOK_OUTBOX_DEPTH: &str = "gateway_webhook_outbox_depth";
/// How long the most overdue undelivered event has been due, in seconds (0 when none is):
/// grows without bound when deliveries are stuck, stays near 0 while they keep to schedule.
pub const WEBHOOK_OUTBOX_OVERDUE: &str = "gateway_webhook_outbox_overdue_seconds";
/// Webhook deliveries per destination. Labels: `endpoint` (`webhooks_url`, or
/// the endpoint's `we_…` id: never a URL), `outcome` (`delivered`, `retry`, `failed`, or
/// `disabled`: given up without an attempt, the endpoint being disabled or deleted).
pub const WEBHOOK_ENDPOINT_DELIVERIES: &str = "gateway_webhook_endpoint_deliveries_total";
/// How long one delivery attempt took, in seconds. Labels: `endpoint`.
pub const WEBHOOK_DELIVERY_DURATION: &str = "gateway_webhook_delivery_duration_seconds";

/// `1`, labelled with the build: `version` (the workspace's), `profile` (`release`/`debug`),
/// `arch`.
pub const BUILD_INFO: &str = "checkout_gateway_build_info";

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
                Ok(handle) => {
                    describe();
                    handle
                }
                // Another recorder is installed already (a test harness, say): render our own,
                // unconnected one rather than refusing to start.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

// --- HELP text, zero counters, process metrics, build info (issue 30) ---------------------

/// The notification results ([`NOTIFICATIONS`]' `result`), as `notifications::multisafepay`
/// labels them.
const NOTIFICATION_RESULTS: &[&str] = &[
    "applied",
    "ignored_no_timestamp",
    "unknown_order",
    "order_mismatch",
    "bad_signature",
    "unreadable",
    "store_unavailable",
    "psp_unavailable",
    "rate_limited",
    "throttled",
];

/// A label's name and the values it takes.
pub type LabelValues = (&'static str, &'static [&'static str]);

/// The counters that exist at 0 from the start, with every label value the docs list: a family
/// an alert divides by or takes `increase()` of must not be absent until its first event.
pub const ZERO_COUNTERS: &[(&str, &[LabelValues])] = &[
    (
        NOTIFICATIONS,
        &[
            ("method", &["POST", "GET"]),
            ("result", NOTIFICATION_RESULTS),
        ],
    ),
    (
        WEBHOOK_DELIVERIES,
        &[("outcome", &["delivered", "retry", "failed"])],
    ),
    (RECONCILER_RUNS, &[("result", &["ok", "store_error"])]),
    (
        RECONCILER_CHECKOUTS,
        &[(
            "result",
            &["settled", "pending", "gave_up", "gone", "skipped"],
        )],
    ),
    (
        PSP_REQUESTS,
        &[
            ("operation", &["create_order", "get_order"]),
            (
                "outcome",
                &[
                    "ok",
                    "declined",
                    "rejected",
                    "not_found",
                    "unreachable",
                    "unexpected",
                ],
            ),
        ],
    ),
    (
        ACTIVITY_RECORD_ERRORS,
        &[(
            "record",
            &[
                "msp_call",
                "notification",
                "with_change",
                "with_read",
                "stats",
            ],
        )],
    ),
    (
        crate::flows::sweep::SWEEPS,
        &[(
            "outcome",
            &[
                "ok",
                "refused",
                "unreachable",
                "unexpected",
                "sync_failed",
                "lease_lost",
                "busy",
                "store_error",
            ],
        )],
    ),
    (
        crate::flows::sweep::SWEEP_ROWS,
        &[("order", &["ours", "other"])],
    ),
    (
        crate::flows::sweep::SWEEP_DIFFERENCES,
        &[(
            "kind",
            &["missed_status", "dashboard_refunds", "chargebacks"],
        )],
    ),
];

/// The process metrics' collector (`process_*`), read at every scrape.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Gives every family its HELP text, creates [`ZERO_COUNTERS`] at 0 and sets [`BUILD_INFO`];
/// once, on the recorder just installed.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route pattern, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by route pattern and method."
    );
    describe_counter!(
        PSP_REQUESTS,
        "Calls to MultiSafepay, by operation and outcome (ok, declined, rejected, not_found, unreachable, unexpected)."
    );
    describe_histogram!(
        PSP_DURATION,
        Unit::Seconds,
        "Time of a call to MultiSafepay, by operation."
    );
    describe_counter!(
        NOTIFICATIONS,
        "MultiSafepay notifications received, by method and what became of them."
    );
    describe_counter!(
        TRANSITIONS,
        "Checkout status changes, by from, to and what caused them (source)."
    );
    describe_counter!(
        ANOMALIES,
        "Status changes refused (backwards, or out of a final status), by from, to and source."
    );
    describe_counter!(
        STORE_ERRORS,
        "Redis operations that failed (unreachable, timed out, or answered with an error), by operation."
    );
    describe_counter!(
        ACTIVITY_RECORD_ERRORS,
        "Writes of the operator console's per-checkout logs and statistics that failed (the payment went on), by record (msp_call, notification, with_change, with_read, stats)."
    );
    describe_counter!(
        RECONCILER_RUNS,
        "Reconciler passes, by result (ok, store_error)."
    );
    describe_counter!(
        RECONCILER_CHECKOUTS,
        "Checkouts the reconciler looked at, by result (settled, pending, gave_up, gone, skipped)."
    );
    describe_gauge!(
        RECONCILER_PASS_CHECKOUTS,
        "Checkouts the last reconciler pass looked at (at most 100 a pass; 100 pass after pass is a backlog)."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts, by outcome (delivered, retry, failed: given up)."
    );
    describe_gauge!(
        WEBHOOK_OUTBOX_DEPTH,
        "Checkouts with webhook events not yet delivered."
    );
    describe_gauge!(
        WEBHOOK_OUTBOX_OVERDUE,
        Unit::Seconds,
        "How long the most overdue undelivered webhook event has been due (0 when none is)."
    );
    describe_counter!(
        WEBHOOK_ENDPOINT_DELIVERIES,
        "Delivery attempts to merchant-managed webhook endpoints, by endpoint id and outcome."
    );
    describe_histogram!(
        WEBHOOK_DELIVERY_DURATION,
        Unit::Seconds,
        "Time of a delivery attempt to a merchant-managed webhook endpoint, by endpoint id."
    );
    describe_counter!(
        crate::flows::sweep::SWEEPS,
        "Sweeps of MultiSafepay's transaction list, by outcome (ok, refused, unreachable, unexpected, sync_failed, lease_lost, busy)."
    );
    describe_counter!(
        crate::flows::sweep::SWEEP_ROWS,
        "Transaction rows the sweep read, by whether the order is the gateway's (ours, other)."
    );
    describe_counter!(
        crate::flows::sweep::SWEEP_DIFFERENCES,
        "What sweeps changed, by kind (missed_status, dashboard_refunds, chargebacks)."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; its labels say which build of the gateway this is."
    );
    for (name, labels) in ZERO_COUNTERS {
        for set in label_sets(labels) {
            metrics::counter!(*name, set).increment(0);
        }
    }
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "profile" => if cfg!(debug_assertions) { "debug" } else { "release" },
        "arch" => std::env::consts::ARCH,
    )
    .set(1.0);
    process_collector().describe();
}

/// Every combination of the labels' values.
fn label_sets(labels: &[LabelValues]) -> Vec<Vec<metrics::Label>> {
    labels.iter().fold(vec![Vec::new()], |sets, (key, values)| {
        sets.iter()
            .flat_map(|set| {
                values.iter().map(move |value| {
                    let mut next = set.clone();
                    next.push(metrics::Label::new(*key, *value));
                    next
                })
            })
            .collect()
    })
}

/// The text `/metrics` answers: the process metrics read now, then every family.
pub fn render(handle: &PrometheusHandle) -> String {
    process_collector().collect();
    handle.render()
}

// --- end of issue 30's block ---------------------------------------------------------------

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
