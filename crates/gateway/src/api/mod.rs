//! The merchant REST API (`/v1/checkouts`), for the storefront backend: Bearer keys, JSON, and
//! the error body of design §3 for everything that is not 2xx.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;

use crate::domain::money::MinorUnits;
use crate::domain::validation::FieldError;
use crate::errors::{self, ApiError, ErrorCode};
use crate::store::StoredResponse;

pub mod auth;
pub mod checkout_request;
pub mod checkouts;
pub mod events;
pub mod idempotency;
pub mod lifecycle;
pub mod listing;
pub mod refunds;
pub mod strict_json;
pub mod view;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/checkouts")
            .route(web::post().to(checkouts::create))
            .route(web::get().to(listing::list))
            .default_service(errors::method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/v1/checkouts/{id}")
            .route(web::get().to(checkouts::get))
            .default_service(errors::method_not_allowed("GET")),
    )
    .service(
        web::resource("/v1/checkouts/{id}/events")
            .route(web::get().to(checkouts::events))
            .default_service(errors::method_not_allowed("GET")),
    )
    .service(
        web::resource("/v1/checkouts/{id}/refunds")
            .route(web::post().to(refunds::create))
            .route(web::get().to(refunds::list))
            .default_service(errors::method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/v1/checkouts/{id}/cancel")
            .route(web::post().to(lifecycle::cancel))
            .default_service(errors::method_not_allowed("POST")),
    )
    .service(
        web::resource("/v1/checkouts/{id}/capture")
            .route(web::post().to(lifecycle::capture))
            .default_service(errors::method_not_allowed("POST")),
    )
    .service(
        web::resource("/v1/refunds/{id}")
            .route(web::get().to(refunds::get))
            .default_service(errors::method_not_allowed("GET")),
    )
    .service(
        web::resource("/v1/events")
            .route(web::get().to(events::list))
            .default_service(errors::method_not_allowed("GET")),
    )
    .service(
        web::resource("/v1/events/{id}")
            .route(web::get().to(events::get))
            .default_service(errors::method_not_allowed("GET")),
    )
    .service(
        web::resource("/v1/events/{id}/redeliver")
            .route(web::post().to(events::redeliver))
            .default_service(errors::method_not_allowed("POST")),
    )
    .service(
        web::resource("/v1/refunds/{id}/cancel")
            .route(web::post().to(refunds::cancel))
            .default_service(errors::method_not_allowed("POST")),
    );
}

/// An optional `amount` field that, when given, is a positive number of minor units; `rest` ends
/// the message (what the amount is bounded by, what leaving it out means).
pub(crate) fn optional_positive_amount(
    amount: Option<i64>,
    rest: &str,
) -> Result<Option<MinorUnits>, FieldError> {
    amount
        .map(|a| {
            MinorUnits::new(a)
                .ok()
                .filter(|a| *a > MinorUnits::ZERO)
                .ok_or_else(|| {
                    FieldError::new(
                        "amount",
                        ErrorCode::InvalidAmount,
                        format!("`amount` is a positive integer number of minor units (EUR 5.00 = 500); {rest}"),
                    )
                })
        })
        .transpose()
}

/// Reads the raw body up to `limit` bytes (413 in the API's shape beyond). The create handler
/// needs the raw bytes for the idempotency fingerprint, so it does not use `web::Json`.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("The body could not be read ({e}): send it again."),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(errors::too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Sends a rendered JSON answer (fresh, or stored under an Idempotency-Key and replayed) exactly
/// as it was rendered: its status, its body byte for byte, and never cached.
pub fn respond(stored: StoredResponse) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(stored.body)
}
