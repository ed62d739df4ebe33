//! `POST|GET /notifications/multisafepay?transactionid=…&timestamp=…`, in its order:
//!
//! 1. No `timestamp`: `OK`, ignored (MSP's rule).
//! 2. POST: the `Auth` signature over the raw body, before anything else is read. Missing, wrong
//!    or stale: 401, nothing changes, and no call to MSP (a forger must not make us call out).
//! 3. Only then the checkout is looked up from `transactionid`; not ours: `OK`, logged.
//! 4. POST: the signed body's `order_id` must equal `transactionid` (the signature covers the
//!    body, not the query); then its status is applied. GET: MSP is asked (`GET /orders/{id}`).
//!
//! `OK` is sent only after the result is stored; if Redis or MSP is unavailable the answer is 503,
//! so that MSP sends the notification again. Duplicates and out-of-order deliveries are absorbed
//! by the forward-only state machine.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::signature::{SignatureError, verify};
use crate::domain::checkout::{CheckoutId, EventSource};
use crate::flows::apply::{ApplyError, apply};
use crate::flows::sync::{SyncError, sync_notified};
use crate::flows::transition::News;
use crate::metrics::NOTIFICATIONS;
use crate::psp::multisafepay::parse_notification;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct NotificationQuery {
    transactionid: Option<String>,
    timestamp: Option<String>,
}

/// What became of a notification: the answer MSP gets and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    Applied,
    NoTimestamp,
    BadSignature,
    NotOurs,
    OrderMismatch,
    Unreadable,
    StoreUnavailable,
    PspUnavailable,
    /// A notification that failed verification, from an address over the notifications' limit.
    RateLimited {
        retry_after_s: u64,
    },
    /// A GET notification from an address over the notifications' limit: 503, so MSP sends it
    /// again.
    Throttled {
        retry_after_s: u64,
    },
}

impl Disposition {
    fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::NoTimestamp => "ignored_no_timestamp",
            Self::BadSignature => "bad_signature",
            Self::NotOurs => "unknown_order",
            Self::OrderMismatch => "order_mismatch",
            Self::Unreadable => "unreadable",
            Self::StoreUnavailable => "store_unavailable",
            Self::PspUnavailable => "psp_unavailable",
            Self::RateLimited { .. } => "rate_limited",
            Self::Throttled { .. } => "throttled",
        }
    }

    /// Why the console's notification log calls it rejected, in plain words; `None` when it was
    /// accepted. `Err(())` for what is not logged at all: refused for its rate (a flood would
    /// only push the real notifications out of the log).
    fn rejection(self) -> Result<Option<&'static str>, ()> {
        match self {
            Self::Applied => Ok(None),
            Self::NoTimestamp => Ok(Some("no timestamp, ignored")),
            Self::BadSignature => Ok(Some("bad signature")),
            Self::NotOurs => Ok(Some("unknown order")),
            Self::OrderMismatch => Ok(Some("signed for another order")),
            Self::Unreadable => Ok(Some("unreadable body")),
            Self::StoreUnavailable => Ok(Some("not stored, to be sent again")),
            Self::PspUnavailable => Ok(Some("MultiSafepay unreachable, to be sent again")),
            Self::RateLimited { .. } | Self::Throttled { .. } => Err(()),
        }
    }

    fn response(self) -> HttpResponse {
        let retry_later;
        let (status, body, retry_after_s) = match self {
            // Acknowledged: either done, or nothing a retry could change.
            Self::Applied | Self::NoTimestamp | Self::NotOurs | Self::OrderMismatch => {
                (StatusCode::OK, "OK", None)
            }
            Self::BadSignature => (StatusCode::UNAUTHORIZED, "invalid or stale signature", None),
            // Not acknowledged, so that MSP retries; the reconciler also covers the checkout.
            Self::Unreadable => (
                StatusCode::BAD_REQUEST,
                "unreadable notification body",
                None,
            ),
            Self::StoreUnavailable | Self::PspUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unavailable, send again",
                Some("60"),
            ),
            Self::RateLimited { retry_after_s } => {
                retry_later = retry_after_s.max(1).to_string();
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests from this address, slow down",
                    Some(retry_later.as_str()),
                )
            }
            Self::Throttled { retry_after_s } => {
                retry_later = retry_after_s.max(1).to_string();
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many requests from this address, send again later",
                    Some(retry_later.as_str()),
                )
            }
        };
        let mut res = HttpResponse::build(status);
        if let Some(seconds) = retry_after_s {
            res.insert_header((actix_web::http::header::RETRY_AFTER, seconds));
        }
        res.content_type("text/plain; charset=utf-8").body(body)
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/notifications/multisafepay")
            .route(web::post().to(post))
            .route(web::get().to(get))
            .default_service(crate::errors::method_not_allowed("GET, POST")),
    );
}

async fn finish(
    state: &AppState,
    query: &NotificationQuery,
    method: &'static str,
    outcome: Disposition,
    msp_status: Option<String>,
    log: bool,
) -> HttpResponse {
    metrics::counter!(NOTIFICATIONS, "method" => method, "result" => outcome.label()).increment(1);
    if log {
        record(state, query, method, outcome, msp_status.as_deref()).await;
    }
    outcome.response()
}

/// Into the console's log of the checkout `transactionid` names: written only while that
/// checkout exists, so that ids made up by anyone cannot make keys. A signature that fails
/// names a checkout nobody vouched for: it is logged there as the rejection it is.
async fn record(
    state: &AppState,
    query: &NotificationQuery,
    method: &'static str,
    outcome: Disposition,
    msp_status: Option<&str>,
) {
    let (Some(recorder), Ok(rejected)) = (state.flows.psp.recorder(), outcome.rejection()) else {
        return;
    };
    let Some(id) = query
        .transactionid
        .as_deref()
        .and_then(|raw| CheckoutId::parse(raw).ok())
    else {
        return;
    };
    let kind = if method == "POST" { "post" } else { "get" };
    recorder.notification(&id, kind, rejected, msp_status).await;
}

#[tracing::instrument(name = "notification", skip_all, fields(method = "POST", transactionid = tracing::field::Empty))]
async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<NotificationQuery>,
    body: web::Bytes,
) -> HttpResponse {
    let (mut msp_status, mut recorded) = (None, false);
    let outcome = handle_post(&state, &req, &query, &body, &mut msp_status, &mut recorded).await;
    // A verified one is recorded already, with the change it brought.
    let msp_status = if recorded { None } else { msp_status };
    finish(&state, &query, "POST", outcome, msp_status, !recorded).await
}

/// `msp_status` gets MSP's status of the order once the signed body is read; `recorded` says
/// whether the console's log has it already.
async fn handle_post(
    state: &AppState,
    req: &HttpRequest,
    query: &NotificationQuery,
    body: &[u8],
    msp_status: &mut Option<String>,
    recorded: &mut bool,
) -> Disposition {
    if query.timestamp.is_none() {
        return Disposition::NoTimestamp;
    }
    let Some(api_key) = state.settings.multisafepay.api_key.as_ref() else {
        tracing::error!(
            "no multisafepay.api_key configured: POST notifications cannot be verified"
        );
        return Disposition::BadSignature;
    };
    let auth = req.headers().get("auth").map(|v| v.as_bytes());
    let now = state.flows.clock.now().timestamp();
    if let Err(e) = verify(
        auth,
        body,
        api_key,
        state.settings.multisafepay.signature_tolerance_s,
        now,
    ) {
        log_bad_signature(e, query.transactionid.as_deref());
        // Only what fails verification counts against the address: a signed notification is
        // MSP's and is never refused for its rate.
        if let Err(retry_after_s) = check_rate(state, req) {
            return Disposition::RateLimited { retry_after_s };
        }
        return Disposition::BadSignature;
    }
    let Some(id) = our_checkout(query) else {
        return Disposition::NotOurs;
    };
    tracing::Span::current().record("transactionid", tracing::field::display(&id));
    let order = match parse_notification(body) {
        Ok(order) => order,
        Err(e) => {
            tracing::error!(error = %e, "a signed notification body could not be read; MultiSafepay will send it again");
            return Disposition::Unreadable;
        }
    };
    *msp_status = Some(order.status_text.clone());
    if order.order_id != id.as_str() {
        tracing::warn!(body_order_id = %order.order_id, "signed body is for another order than transactionid; ignored");
        return Disposition::OrderMismatch;
    }
    // Verified: into the console's log with the change it brings (one script), or on its own
    // when it brings none.
    if let Some(recorder) = state.flows.psp.recorder() {
        recorder
            .notification_with_change(&id, "post", Some(&order.status_text))
            .await;
        *recorded = true;
    }
    match apply(
        &state.flows,
        &id,
        EventSource::Notification,
        News::Order(&order),
    )
    .await
    {
        Ok(_) => Disposition::Applied,
        Err(ApplyError::NotFound) => {
            tracing::info!(
                "verified notification for an order that is not ours (or has expired); acknowledged"
            );
            Disposition::NotOurs
        }
        Err(ApplyError::Store(e)) => {
            tracing::warn!(error = %e, "could not store a notification; answering 503 so that MultiSafepay retries");
            Disposition::StoreUnavailable
        }
    }
}

/// Takes a token from the address's notification bucket (`server.keyless_rate_limit_per_s`, in
/// buckets apart from the browser's: [`AppState::notification_limit`]): `Ok` to go ahead, or
/// `Err(seconds to wait)`.
fn check_rate(state: &AppState, req: &HttpRequest) -> Result<(), u64> {
    state
        .notification_limit
        .check(req.peer_addr().map(|a| a.ip()), &state.flows.clock)
}

#[tracing::instrument(name = "notification", skip_all, fields(method = "GET", transactionid = tracing::field::Empty))]
async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<NotificationQuery>,
) -> HttpResponse {
    let mut msp_status = None;
    let outcome = handle_get(&state, &req, &query, &mut msp_status).await;
    finish(&state, &query, "GET", outcome, msp_status, true).await
}

/// `msp_status` gets MSP's status of the order once MSP was asked.
async fn handle_get(
    state: &AppState,
    req: &HttpRequest,
    query: &NotificationQuery,
    msp_status: &mut Option<String>,
) -> Disposition {
    if query.timestamp.is_none() {
        return Disposition::NoTimestamp;
    }
    // Anyone can send a GET (it carries nothing to verify): over the address's limit it is
    // answered 503, never 429, so that a real one from MSP is sent again rather than dropped.
    if let Err(retry_after_s) = check_rate(state, req) {
        return Disposition::Throttled { retry_after_s };
    }
    let Some(id) = our_checkout(query) else {
        return Disposition::NotOurs;
    };
    tracing::Span::current().record("transactionid", tracing::field::display(&id));
    // A GET carries nothing to trust: only ask MSP about checkouts we know, so that random ids
    // cannot make us call out.
    match state.flows.store.get(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::info!(
                "notification for an order that is not ours (or has expired); acknowledged"
            );
            return Disposition::NotOurs;
        }
        Err(e) => {
            tracing::warn!(error = %e, "store unavailable for a notification; answering 503");
            return Disposition::StoreUnavailable;
        }
    }
    // Concurrent GET notifications for one checkout share one MSP call.
    match sync_notified(&state.flows, &id).await {
        Ok(checkout) => {
            *msp_status = checkout.psp.status;
            Disposition::Applied
        }
        Err(SyncError::NotFound) => Disposition::NotOurs,
        Err(SyncError::Store(e)) => {
            tracing::warn!(error = %e, "could not store a notification; answering 503 so that MultiSafepay retries");
            Disposition::StoreUnavailable
        }
        Err(SyncError::Psp(e)) => {
            tracing::warn!(error = %e, "could not ask MultiSafepay about a notification; answering 503 so that it retries");
            Disposition::PspUnavailable
        }
    }
}

/// `transactionid` as one of our checkout ids; anything else is not ours.
fn our_checkout(query: &NotificationQuery) -> Option<CheckoutId> {
    let raw = query.transactionid.as_deref()?;
    match CheckoutId::parse(raw) {
        Ok(id) => Some(id),
        Err(_) => {
            tracing::info!(
                transactionid = raw,
                "notification for an order id that is not a checkout of ours; acknowledged"
            );
            None
        }
    }
}

fn log_bad_signature(e: SignatureError, transactionid: Option<&str>) {
    tracing::warn!(reason = %e, transactionid, "refused a notification: signature missing, invalid or stale");
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::RETRY_AFTER;

    use super::*;

    #[test]
    fn only_the_outcomes_msp_should_send_again_ask_it_to_wait() {
        for outcome in [Disposition::StoreUnavailable, Disposition::PspUnavailable] {
            let res = outcome.response();
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{outcome:?}");
            assert_eq!(res.headers().get(RETRY_AFTER).unwrap(), "60", "{outcome:?}");
        }
        for outcome in [
            Disposition::Applied,
            Disposition::NoTimestamp,
            Disposition::NotOurs,
            Disposition::OrderMismatch,
            Disposition::BadSignature,
            Disposition::Unreadable,
        ] {
            let res = outcome.response();
            assert!(res.headers().get(RETRY_AFTER).is_none(), "{outcome:?}");
        }
    }
}
