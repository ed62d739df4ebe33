//! Operators' endpoints (design §9, style.md rule 14): liveness does no I/O; readiness makes one
//! Redis round trip with a short timeout and says 503 with `Retry-After` when Redis is down. We
//! report "not ready" and let the orchestrator decide: the process never stops itself.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, http::header, web};
use serde_json::json;

use crate::startup::AppState;

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
    let redis = match tokio::time::timeout(READY_TIMEOUT, state.flows.store.ping()).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", READY_TIMEOUT.as_millis())),
    };
    match redis {
        Ok(latency) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "status": "ready",
                "checks": {"redis": {"status": "ok", "latency_ms": latency.as_millis() as u64}}
            })),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed: redis");
            HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, "5"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({
                    "status": "unavailable",
                    "checks": {"redis": {"status": "error", "latency_ms": started.elapsed().as_millis() as u64, "error": error}}
                }))
        }
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
