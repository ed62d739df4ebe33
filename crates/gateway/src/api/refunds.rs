//! Refunds: `POST /v1/checkouts/{id}/refunds`, `GET /v1/checkouts/{id}/refunds`,
//! `GET /v1/refunds/{id}`, `POST /v1/refunds/{id}/cancel`.
//!
//! Handlers parse, call [`crate::flows::refund`], and render; bad input is refused before
//! anything is reserved or sent to MSP.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::Merchant;
use super::idempotency::{self, IdempotencyKey};
use super::listing::SubListQuery;
use super::strict_json::{self, Shape};
use super::to_json;
use super::view::RefundView;
use super::{read_body, respond};
use crate::domain::checkout::{Checkout, CheckoutId, CheckoutStatus};
use crate::domain::refund::{MAX_REFUNDS_PER_CHECKOUT, RefundId, RefundReason};
use crate::domain::validation::FieldError;
use crate::errors::{ApiError, ErrorCode};
use crate::flows::refund::{self as flow, NewRefund, RefundError};
use crate::state::AppState;
use crate::store::StoredResponse;

/// The fields of a refund request; all optional, so an empty body is a full refund.
static CREATE_SHAPE: Shape = Shape::Object(&[
    ("amount", Shape::Integer),
    ("reason", Shape::String),
    ("metadata", Shape::FreeObject),
]);

/// A refund cancel takes no fields.
static CANCEL_SHAPE: Shape = Shape::Object(&[]);

#[derive(Debug, Default, Deserialize)]
struct CreateRefundRequest {
    amount: Option<i64>,
    reason: Option<String>,
    metadata: Option<serde_json::Value>,
}

pub async fn create(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.settings.server.body_limit_bytes).await?;
    let id = CheckoutId::parse(&path).map_err(|_| ApiError::checkout_not_found())?;
    let key = IdempotencyKey::from_request(&req)?;
    let new = parse(strict_json::parse_optional(&body, &CREATE_SHAPE)?)?;
    let refund_id = RefundId::generate();
    let Some(key) = key else {
        return Ok(respond(run(&state, &id, refund_id, new, false).await?));
    };
    let key = key.scoped(&format!("POST /v1/checkouts/{id}/refunds"));
    let fingerprint = idempotency::fingerprint_json(&state, &body);
    // The claim records the refund id before anything is reserved or sent: a retry after a
    // crash (once the claim's in-flight time is over) resumes that refund, asking MSP for it,
    // instead of making another.
    let (state, id) = (&state, &id);
    idempotency::run_once(
        state,
        &key,
        &fingerprint,
        Some(refund_id.as_str()),
        |begun| async move {
            match begun.resource.as_deref().map(RefundId::parse) {
                Some(Ok(recorded)) => run(state, id, recorded, new, begun.resumed).await,
                Some(Err(_)) | None => Err(ApiError::internal(anyhow::anyhow!(
                    "an idempotency claim recorded no usable refund id"
                ))),
            }
        },
    )
    .await
}

/// Makes refund `refund_id`, or, `resumed` (the key's first request never finished), resumes it.
/// A retry after "nothing was sent" makes the same refund id again: if the failed request's
/// reservation landed after all, that refund is the one sent (`flows::refund::create_refund`).
async fn run(
    state: &AppState,
    id: &CheckoutId,
    refund_id: RefundId,
    new: NewRefund,
    resumed: bool,
) -> Result<StoredResponse, ApiError> {
    let done = if resumed {
        flow::resume_refund(&state.flows, id, refund_id, new).await
    } else {
        flow::create_refund(&state.flows, id, refund_id, new).await
    };
    let (checkout, refund_id) = done.map_err(refund_error)?;
    refund_response(&checkout, &refund_id, StatusCode::CREATED)
}

fn parse(req: CreateRefundRequest) -> Result<NewRefund, FieldError> {
    let amount = super::optional_positive_amount(
        req.amount,
        "leave it out to refund everything that is left",
    )?;
    let reason = req
        .reason
        .map(|r| {
            RefundReason::parse(&r).ok_or_else(|| {
                FieldError::new(
                    "reason",
                    ErrorCode::InvalidParameter,
                    "`reason` is one of requested_by_customer, duplicate, fraudulent, other",
                )
            })
        })
        .transpose()?;
    let metadata = super::checkout_request::parse_metadata(req.metadata)?;
    Ok(NewRefund {
        amount,
        reason,
        metadata,
    })
}

pub async fn list(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = SubListQuery::parse(req.query_string())?;
    let id = CheckoutId::parse(&path).map_err(|_| ApiError::checkout_not_found())?;
    let checkout = state
        .flows
        .store
        .get(&id)
        .await
        .map_err(ApiError::store_unavailable)?
        .ok_or_else(ApiError::checkout_not_found)?
        .checkout;
    let views: Vec<RefundView<'_>> = checkout
        .refunds
        .iter()
        .map(|r| RefundView::new(&checkout, r))
        .collect();
    let page = query.page(views, |r| r.id.to_owned(), "refund")?;
    Ok(respond(StoredResponse {
        status: 200,
        body: to_json(&page),
    }))
}

pub async fn get(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let id = RefundId::parse(&path).map_err(|_| refund_not_found())?;
    let (checkout, _) = flow::find(&state.flows, &id).await.map_err(refund_error)?;
    Ok(respond(refund_response(&checkout, &id, StatusCode::OK)?))
}

pub async fn cancel(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.settings.server.body_limit_bytes).await?;
    strict_json::check_optional(&body, &CANCEL_SHAPE)?;
    let id = RefundId::parse(&path).map_err(|_| refund_not_found())?;
    let key = IdempotencyKey::from_request(&req)?;
    let run = || async {
        let (checkout, _) = flow::cancel_refund(&state.flows, &id)
            .await
            .map_err(refund_error)?;
        refund_response(&checkout, &id, StatusCode::OK)
    };
    match key {
        None => Ok(respond(run().await?)),
        Some(key) => {
            let key = key.scoped(&format!("POST /v1/refunds/{id}/cancel"));
            let fingerprint = idempotency::fingerprint(&state, b"");
            idempotency::run_once(&state, &key, &fingerprint, None, |_| run()).await
        }
    }
}

fn refund_response(
    checkout: &Checkout,
    id: &RefundId,
    status: StatusCode,
) -> Result<StoredResponse, ApiError> {
    let refund = checkout.refund(id).ok_or_else(refund_not_found)?;
    Ok(StoredResponse {
        status: status.as_u16(),
        body: to_json(&RefundView::new(checkout, refund)),
    })
}

fn refund_not_found() -> ApiError {
    ApiError::new(
        ErrorCode::ResourceMissing,
        "No such refund: check the id (`re_` followed by 32 hex digits) returned by POST /v1/checkouts/{id}/refunds.",
    )
    .with_param("id")
}

fn refund_error(e: RefundError) -> ApiError {
    match e {
        RefundError::CheckoutNotFound => ApiError::checkout_not_found(),
        RefundError::RefundNotFound => refund_not_found(),
        RefundError::NotRefundable(status) => ApiError::new(
            ErrorCode::CheckoutNotRefundable,
            format!(
                "The checkout is {status}: only succeeded and partially refunded checkouts can be refunded.{}",
                if status == CheckoutStatus::Refunded {
                    " Everything was refunded already."
                } else {
                    ""
                }
            ),
        ),
        RefundError::TooLarge { left } => ApiError::new(
            ErrorCode::AmountTooLarge,
            format!(
                "The amount is more than what is left to refund ({left} minor units, counting refunds still pending): refund at most that."
            ),
        )
        .with_param("amount"),
        RefundError::LimitReached => ApiError::new(
            ErrorCode::RefundLimitReached,
            format!(
                "The checkout holds {MAX_REFUNDS_PER_CHECKOUT} refunds (failed and canceled ones included), the most one checkout may: nothing was refunded. Refund the rest in MultiSafepay's dashboard."
            ),
        ),
        RefundError::Disputed => ApiError::new(
            ErrorCode::CheckoutDisputed,
            "The checkout has an open dispute: nothing was refunded. Refunding now and then losing the dispute would pay the shopper twice; answer the dispute (GET /v1/disputes?checkout_id=…) and refund once it is decided.",
        ),
        RefundError::NotCancelable(status) => ApiError::new(
            ErrorCode::RefundNotCancelable,
            format!(
                "The refund is {status}: only a pending refund that MultiSafepay has acknowledged can be canceled. Check GET /v1/refunds/{{id}}."
            ),
        ),
        RefundError::Psp(e) => ApiError::new(
            ErrorCode::PspUnusableResponse,
            "MultiSafepay could not be asked just now; nothing changed: try again in a minute.",
        )
        .with_source(e),
        RefundError::Store(e) => ApiError::store_unavailable(e),
    }
}
