//! `/sim/*`: the simulator's own controls for tests and benchmarks (no key needed).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::Sim;
use super::api;
use super::faults::FaultsPatch;
use super::orders::OrderKey;

fn error(status: actix_web::http::StatusCode, message: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message.to_string() }))
}

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
                    "error": format!("Invalid faults body: {e}. Send a JSON object with any of latency_ms, notification_delay_ms, create_failure (none|http_500|success_false_200|timeout), refund_failure (none|declined|timeout), capture_failure (none|timeout), cancel_failure (none|timeout), drop_notifications, duplicate_notifications, reorder_notifications, stale_timestamps, bad_signatures")
                }));
            }
        }
    };
    let new = sim.merge_faults(patch);
    HttpResponse::Ok().json(new)
}

/// `GET /sim/clock` and the answer of `PUT /sim/clock`.
#[derive(Serialize)]
struct ClockView {
    /// The simulator's time, RFC 3339 in UTC.
    now: String,
    /// The same, Unix seconds.
    unix: i64,
    /// How far `PUT /sim/clock` has moved it from the real time, in seconds.
    advanced_s: i64,
}

fn clock_view(sim: &Sim) -> ClockView {
    let now = sim.clock.now();
    ClockView {
        now: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        unix: now.timestamp(),
        advanced_s: sim.clock.advanced_s(),
    }
}

/// `GET /sim/clock`
pub(crate) async fn get_clock(sim: web::Data<Sim>) -> HttpResponse {
    HttpResponse::Ok().json(clock_view(&sim))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockPatch {
    advance_s: u64,
}

/// `PUT /sim/clock {"advance_s": N}`: moves the simulator's time forward; what falls due happens
/// at once. Answers the new time.
pub(crate) async fn put_clock(sim: web::Data<Sim>, body: web::Bytes) -> HttpResponse {
    let patch: ClockPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return HttpResponse::BadRequest().json(serde_json::json!({
                "error": format!("Invalid clock body: {e}. Send {{\"advance_s\": N}} with N a whole number of seconds, 0 or more (the clock never goes back)")
            }));
        }
    };
    if let Err(too_far) = sim.clock.advance(patch.advance_s) {
        return HttpResponse::BadRequest().json(serde_json::json!({
            "error": format!("The clock can be moved at most {} seconds in all", too_far.max_s)
        }));
    }
    HttpResponse::Ok().json(clock_view(&sim))
}

/// The order a `/sim/orders/{order_id}/…` call means: the one with this id (or whose capture has
/// it), on whichever site has it; when several sites have one, the site whose key the call
/// presents.
pub(crate) fn find_order(
    sim: &Sim,
    req: &HttpRequest,
    order_id: &str,
) -> Result<OrderKey, HttpResponse> {
    use actix_web::http::StatusCode;
    let mut found: Vec<OrderKey> = (0..sim.keys.len())
        .map(|site| sim.resolve((site, order_id.to_owned())))
        .filter(|key| sim.orders.shard(key).contains_key(key))
        .collect();
    match found.len() {
        0 => Err(error(
            StatusCode::NOT_FOUND,
            format!("No order {order_id:?} on this simulator"),
        )),
        1 => Ok(found.remove(0)),
        _ => match api::authenticate(sim, req) {
            Ok(site) => found
                .into_iter()
                .find(|(s, _)| *s == site)
                .ok_or_else(|| ambiguous(order_id)),
            Err(_) => Err(ambiguous(order_id)),
        },
    }
}

fn ambiguous(order_id: &str) -> HttpResponse {
    use actix_web::http::StatusCode;
    error(
        StatusCode::CONFLICT,
        format!("Several sites have an order {order_id:?}: send the api_key of the one you mean"),
    )
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

/// Middleware on `/v1/json`: remembers every API call for `GET /sim/requests`.
pub(crate) async fn record_api_call(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if let Some(sim) = req.app_data::<web::Data<Sim>>() {
        let path = req.path().to_owned();
        let order_id = path
            .strip_prefix("/v1/json/")
            .and_then(|rest| {
                let mut parts = rest.split('/');
                match (parts.next(), parts.next()) {
                    (Some("orders" | "capture"), Some(id)) if !id.is_empty() => Some(id),
                    _ => None,
                }
            })
            .map(str::to_owned);
        let call = crate::state::ApiCall {
            method: req.method().to_string(),
            path,
            order_id,
            at_ms: sim.clock.now().timestamp_millis(),
            traceparent: req
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        let mut calls = sim
            .api_calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if calls.len() >= crate::state::MAX_API_CALLS {
            calls.pop_front();
        }
        calls.push_back(call);
    }
    next.call(req).await
}

/// `GET /sim/requests[?order_id=…]`: the calls made to the MSP API, oldest first (the last
/// 10,000): method, path, the path's order id, `at_ms`, and `traceparent` when it was sent.
pub(crate) async fn requests(
    sim: web::Data<Sim>,
    query: web::Query<NotificationsQuery>,
) -> HttpResponse {
    let calls = sim
        .api_calls
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|c| query.order_id.is_none() || c.order_id == query.order_id)
        .cloned()
        .collect::<Vec<_>>();
    HttpResponse::Ok().json(calls)
}

/// `GET /sim/health`
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("OK")
}
