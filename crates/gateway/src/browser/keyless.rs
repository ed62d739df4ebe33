//! The per-client-address rate limit of the endpoints that need no key: here the
//! browser paths (`/pay`, `/return`, `/cancel`). `server.keyless_rate_limit_per_s` a second per
//! address, a burst of twice that, `0` disables it. Notifications that fail verification and
//! GET notifications are limited at the same rate in buckets of their own
//! ([`crate::notifications::multisafepay`]), so that neither caller can use up the other's.
//!
//! The address is the TCP peer's: behind a reverse proxy that is the proxy's, so set the limit
//! there (or high enough here for the proxy's traffic). Forwarding headers are not trusted, since
//! a client could write any address into them.
//!
//! Over the limit, a browser gets an HTML 429 page with `Retry-After` (with the browser security
//! headers, which the route's outer middleware adds); the notification endpoint answers 429
//! for a notification that failed verification and 503 for a GET notification, which MSP then
//! sends again (a real notification is never dropped).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};

use super::respond::error_response;
use crate::state::AppState;

/// As [`crate::access::KeylessLimit::check`] on the browser's buckets, for a request.
pub fn check_request(state: &AppState, req: &HttpRequest) -> Result<(), u64> {
    state
        .browser_limit
        .check(req.peer_addr().map(|a| a.ip()), &state.flows.clock)
}

/// Middleware for the browser paths: over the limit, an HTML 429 page with `Retry-After`.
pub async fn limit_browser(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let verdict = req
        .app_data::<web::Data<AppState>>()
        .map(|state| check_request(state, req.request()));
    if let Some(Err(wait_s)) = verdict {
        let mut res = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "Please wait a moment",
            "Too many requests came from your connection. Wait a few seconds, then reload this page.",
        );
        res.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(wait_s.max(1)),
        );
        return Ok(req.into_response(res));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
