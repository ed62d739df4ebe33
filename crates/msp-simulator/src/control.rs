//! `/sim/*`: the simulator's own controls for tests and benchmarks (no key needed).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::Sim;
use super::faults::FaultsPatch;

/// `GET /sim/faults`
pub(crate) async fn get_faults(sim: web::Data<Sim>) -> HttpResponse {
    HttpResponse::Ok().json(sim.faults())
}

/// `PUT /sim/faults`: the body is merged into the current faults; answers the new state.
pub(crate) async fn put_faults(sim: web::Data<Sim>, body: web::Bytes) -> HttpResponse {
    let patch: FaultsPatch = if body.is_empty() {
        FaultsPatch::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(p) => p,
            Err(e) => {
                return HttpResponse::BadRequest().json(serde_json::json!({
                    "error": format!("Invalid faults body: {e}. Send a JSON object with any of latency_ms, notification_delay_ms, create_failure (none|http_500|success_false_200|timeout), drop_notifications, duplicate_notifications, reorder_notifications, stale_timestamps, bad_signatures")
                }));
            }
        }
    };
    let new = sim.merge_faults(patch);
    HttpResponse::Ok().json(new)
}

#[derive(Deserialize)]
pub(crate) struct NotificationsQuery {
    order_id: Option<String>,
}

/// `GET /sim/notifications[?order_id=…]`: every delivery attempt, oldest first.
pub(crate) async fn notifications(
    sim: web::Data<Sim>,
    query: web::Query<NotificationsQuery>,
) -> HttpResponse {
    let mut attempts = sim.notifier.attempts();
    if let Some(id) = &query.order_id {
        attempts.retain(|a| &a.order_id == id);
    }
    HttpResponse::Ok().json(attempts)
}

/// `GET /sim/health`
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("OK")
}
