//! Operators' endpoints (style.md rule 14): liveness does no I/O; readiness makes one
//! Redis round trip with a short timeout and says 503 with `Retry-After` when Redis is down. We
//! report "not ready" and let the orchestrator decide: the process never stops itself.

use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, http::header, web};
use serde_json::json;

use crate::request_path::routing_path;
use crate::state::AppState;

/// Whether `path` (a [`routing_path`]) is one of the operators' (`/health/*`, `/metrics`).
fn is_ops_path(path: &str) -> bool {
    path == "/metrics" || path.starts_with("/health/") || crate::console::is_console_path(path)
}

/// The bound port of the operators' listener (`server.ops_port`): health and metrics are
/// served there only, and nothing else is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpsPort(pub u16);

/// Middleware for `server.ops_port`: when the app has an [`OpsPort`], the operators'
/// routes answer on that listener only and nothing else does; the other side gets the usual 404.
/// Probes and scraping then need no route through the public listener, and the public listener
/// shows no metrics to the Internet. The rule reads the path the router routes by, normalised
/// ([`routing_path`]): `/%6detrics`, `//metrics` or `/v1/../metrics` is the operators' path too.
pub async fn ops_listener_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let Some(OpsPort(ops)) = req.app_data::<OpsPort>().copied() {
        let on_ops_listener = req.app_config().local_addr().port() == ops;
        if on_ops_listener != is_ops_path(&routing_path(&req)) {
            let res = crate::errors::not_found().await;
            return Ok(req.into_response(res));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

const READY_TIMEOUT: Duration = Duration::from_secs(1);

pub fn configure(cfg: &mut web::ServiceConfig) {
    let get_only = || crate::errors::method_not_allowed("GET");
    cfg.service(
        web::resource("/health/live")
            .route(web::get().to(live))
            .default_service(get_only()),
    )
    .service(
        web::resource("/health/ready")
            .route(web::get().to(ready))
            .default_service(get_only()),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .default_service(get_only()),
    );
}

async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"status": "ok"}))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let started = Instant::now();
    // The body names the failing check in words of our own: Redis's error text (addresses,
    // "broken pipe", its replies) goes to the log, not to whoever can reach this endpoint.
    let redis = match tokio::time::timeout(READY_TIMEOUT, state.flows.store.ping()).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => {
            tracing::warn!(error.message = %e, "readiness check failed: redis");
            Err("Redis did not answer the readiness check".to_owned())
        }
        Err(_) => {
            tracing::warn!("readiness check failed: redis did not answer in time");
            Err(format!(
                "Redis did not answer within {} ms",
                READY_TIMEOUT.as_millis()
            ))
        }
    };
    match redis {
        Ok(latency) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "status": "ready",
                "checks": {"redis": {"status": "ok", "latency_ms": latency.as_millis() as u64}}
            })),
        Err(error) => {
            HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, "5"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({
                    "status": "unavailable",
                    "failing": ["redis"],
                    "checks": {"redis": {"status": "error", "latency_ms": started.elapsed().as_millis() as u64, "error": error}}
                }))
        }
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render(&state.metrics))
}
