//! The merchant REST API (`/v1/checkouts`), for the storefront backend: Bearer keys, JSON, and
//! the API's error body for everything that is not 2xx.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, Resource, web};
use futures_util::{Stream, StreamExt};

use crate::domain::money::MinorUnits;
use crate::domain::validation::FieldError;
use crate::errors::{self, ApiError, ErrorCode};
use crate::store::StoredResponse;

pub mod auth;
pub mod checkout_request;
pub mod checkouts;
pub mod disputes;
pub mod events;
pub mod idempotency;
pub mod lifecycle;
pub mod listing;
pub mod payment_methods;
pub mod reconciliation;
pub mod refunds;
pub mod saved_card_request;
pub mod strict_json;
pub mod view;
pub mod webhook_endpoints;

/// The merchant API's routes. Every resource that takes a POST is a `json_resource`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        json_resource("/v1/checkouts")
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
        json_resource("/v1/checkouts/{id}/refunds")
            .route(web::post().to(refunds::create))
            .route(web::get().to(refunds::list))
            .default_service(errors::method_not_allowed("GET, POST")),
    )
    .service(
        json_resource("/v1/checkouts/{id}/cancel")
            .route(web::post().to(lifecycle::cancel))
            .default_service(errors::method_not_allowed("POST")),
    )
    .service(
        json_resource("/v1/checkouts/{id}/capture")
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
        json_resource("/v1/events/{id}/redeliver")
            .route(web::post().to(events::redeliver))
            .default_service(errors::method_not_allowed("POST")),
    )
    .service(
        json_resource("/v1/refunds/{id}/cancel")
            .route(web::post().to(refunds::cancel))
            .default_service(errors::method_not_allowed("POST")),
    )
    // Saved cards.
    .service(
        web::resource("/v1/payment_methods")
            .route(web::get().to(payment_methods::list))
            .default_service(errors::method_not_allowed("GET")),
    )
    .service(
        json_resource("/v1/payment_methods/{id}")
            .route(web::get().to(payment_methods::get))
            .route(web::patch().to(payment_methods::update))
            .route(web::delete().to(payment_methods::delete))
            .default_service(errors::method_not_allowed("GET, PATCH, DELETE")),
    )
    // Disputes.
    .service(
        web::resource("/v1/disputes")
            .route(web::get().to(disputes::list))
            .default_service(errors::method_not_allowed("GET")),
    )
    .service(
        web::resource("/v1/disputes/{id}")
            .route(web::get().to(disputes::get))
            .default_service(errors::method_not_allowed("GET")),
    )
    .service(
        json_resource("/v1/disputes/{id}/evidence")
            .route(web::post().to(disputes::evidence))
            .default_service(errors::method_not_allowed("POST")),
    )
    .service(
        web::resource("/v1/reconciliation")
            .route(web::get().to(reconciliation::list))
            .default_service(errors::method_not_allowed("GET")),
    )
    .configure(webhook_endpoints::configure);
}

/// A resource whose bodies are JSON: a body sent without `Content-Type: application/json`
/// (`text/plain`, a form, multipart, or no type at all) is refused with 415 when the handler
/// reads it, instead of being parsed as JSON anyway. An empty (or blank) body
/// passes whatever its type: a POST whose fields are all optional accepts one, with or without
/// a JSON `Content-Type`. The check runs as the handler reads the body ([`read_body`]), so that
/// what the handler checks first (the API key) still answers first.
fn json_resource(
    path: &str,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource(path).wrap(from_fn(json_bodies_only))
}

/// Middleware of a [`json_resource`]: a body that does not say it is JSON may only be blank.
async fn json_bodies_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if declares_json(&req) {
        return next.call(req).await;
    }
    let (http_req, payload) = req.into_parts();
    let payload: Payload = Payload::Stream {
        payload: Box::pin(BlankOnly(payload)),
    };
    next.call(ServiceRequest::from_parts(http_req, payload))
        .await
}

/// Whether the request's `Content-Type` is `application/json` (any case, any parameters).
fn declares_json(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The error [`BlankOnly`] ends a body with, which [`read_body`] answers as 415.
#[derive(Debug, thiserror::Error)]
#[error("a body that is not declared as JSON")]
struct NotDeclaredJson;

/// A body that passes only while it is whitespace: at its first other byte it ends with
/// [`NotDeclaredJson`], without waiting for the rest.
struct BlankOnly(Payload);

impl Stream for BlankOnly {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.0).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) if !chunk.iter().all(u8::is_ascii_whitespace) => {
                this.0 = Payload::None;
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::other(
                    NotDeclaredJson,
                )))))
            }
            other => other,
        }
    }
}

/// 415 for a body sent without a JSON `Content-Type`.
fn not_declared_json() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "The body is read as JSON only when it is sent as JSON: send it with `Content-Type: application/json` (form and multipart bodies are not accepted).",
    )
    .with_param("Content-Type")
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

/// Reads the raw body up to `limit` bytes (413 in the API's shape beyond; 415 for a body of a
/// `json_resource` sent without a JSON `Content-Type`). The create handler
/// needs the raw bytes for the idempotency fingerprint, so it does not use `web::Json`.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match &e {
            PayloadError::Io(io) if io.get_ref().is_some_and(|e| e.is::<NotDeclaredJson>()) => {
                not_declared_json()
            }
            _ => ApiError::new(
                ErrorCode::InvalidBody,
                format!("The body could not be read ({e}): send it again."),
            ),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(errors::too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A response body of the API's own: serializing our own plain structs cannot fail, so an empty
/// object is only a safe fallback. Every endpoint module uses it (kept here, not in one of them,
/// so that none imports another for it).
fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

/// Sends a rendered JSON answer (fresh, or stored under an Idempotency-Key and replayed) exactly
/// as it was rendered: its status, its body byte for byte, and never cached.
pub fn respond(stored: StoredResponse) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(stored.body)
}
