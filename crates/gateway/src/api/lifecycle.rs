//! `POST /v1/checkouts/{id}/cancel` and `POST /v1/checkouts/{id}/capture`.
//! Both answer `200` with the checkout; both take an optional
//! `Idempotency-Key`, scoped to the endpoint and the checkout.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::Merchant;
use super::idempotency::{self, IdempotencyKey};
use super::strict_json::{self, Shape};
use super::to_json;
use super::view::CheckoutView;
use super::{read_body, respond};
use crate::domain::checkout::{Checkout, CheckoutId, CheckoutStatus};
use crate::domain::money::MinorUnits;
use crate::domain::validation::FieldError;
use crate::errors::{ApiError, ErrorCode};
use crate::flows::cancel::{self as flow, Attempt, ChangeError};
use crate::state::AppState;
use crate::store::StoredResponse;

static CANCEL_SHAPE: Shape = Shape::Object(&[("reason", Shape::String)]);
static CAPTURE_SHAPE: Shape = Shape::Object(&[("amount", Shape::Integer)]);

/// Why a merchant cancels.
const CANCEL_REASONS: [&str; 4] = ["abandoned", "requested_by_customer", "duplicate", "other"];

#[derive(Debug, Default, Deserialize)]
struct CancelRequest {
    reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct CaptureRequest {
    amount: Option<i64>,
}

/// Which of the two operations a request is.
#[derive(Clone, Copy)]
enum Operation {
    Cancel,
    Capture,
}

impl Operation {
    fn path(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Capture => "capture",
        }
    }

    /// "whether it …" of an unknown outcome.
    fn done(self) -> &'static str {
        match self {
            Self::Cancel => "canceled the payment",
            Self::Capture => "captured the payment",
        }
    }

    /// "MultiSafepay … the payment".
    fn done_plainly(self) -> &'static str {
        match self {
            Self::Cancel => "canceled",
            Self::Capture => "captured",
        }
    }
}

pub async fn cancel(
    state: web::Data<AppState>,
    merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    run(state, merchant, req, path, payload, Operation::Cancel).await
}

pub async fn capture(
    state: web::Data<AppState>,
    merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    run(state, merchant, req, path, payload, Operation::Capture).await
}

/// What a parsed request asks for.
enum Change {
    Cancel { reason: Option<String> },
    Capture { amount: Option<MinorUnits> },
}

async fn run(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    operation: Operation,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.settings.server.body_limit_bytes).await?;
    let id = CheckoutId::parse(&path).map_err(|_| ApiError::checkout_not_found())?;
    let key = IdempotencyKey::from_request(&req)?;
    let shape = match operation {
        Operation::Cancel => &CANCEL_SHAPE,
        Operation::Capture => &CAPTURE_SHAPE,
    };
    let change = match operation {
        Operation::Cancel => parse_cancel(strict_json::parse_optional(&body, shape)?)?,
        Operation::Capture => parse_capture(strict_json::parse_optional(&body, shape)?)?,
    };
    let (state, id, change) = (&state, &id, &change);
    let work = |attempt: Attempt| async move {
        let checkout = match change {
            Change::Cancel { reason } => {
                flow::cancel(&state.flows, id, reason.as_deref(), attempt).await
            }
            Change::Capture { amount } => flow::capture(&state.flows, id, *amount, attempt).await,
        }
        .map_err(|e| change_error(e, operation))?;
        Ok(checkout_response(state, &checkout))
    };
    match key {
        None => Ok(respond(work(Attempt::First).await?)),
        Some(key) => {
            let key = key.scoped(&format!("POST /v1/checkouts/{id}/{}", operation.path()));
            let fingerprint = idempotency::fingerprint_json(state, &body);
            // Cancel and capture are safe to run again after a crash: the checkout's status
            // and MSP refuse a second one, so the retry resumes by running it again, and
            // answers the change the interrupted request made when MSP had made it.
            idempotency::run_once(state, &key, &fingerprint, Some(id.as_str()), |begun| {
                work(if begun.resumed {
                    Attempt::Resumed
                } else {
                    Attempt::First
                })
            })
            .await
        }
    }
}

fn parse_cancel(req: CancelRequest) -> Result<Change, FieldError> {
    let reason = match req.reason {
        Some(r) if !CANCEL_REASONS.contains(&r.as_str()) => {
            return Err(FieldError::new(
                "reason",
                ErrorCode::InvalidParameter,
                format!("`reason` is one of {}", CANCEL_REASONS.join(", ")),
            ));
        }
        other => other,
    };
    Ok(Change::Cancel { reason })
}

fn parse_capture(req: CaptureRequest) -> Result<Change, FieldError> {
    let amount = super::optional_positive_amount(
        req.amount,
        "at most the authorised amount; leave it out to capture all of it",
    )?;
    Ok(Change::Capture { amount })
}

fn checkout_response(state: &AppState, checkout: &Checkout) -> StoredResponse {
    StoredResponse {
        status: 200,
        body: to_json(&CheckoutView::new(checkout, state.public_url())),
    }
}

fn change_error(e: ChangeError, operation: Operation) -> ApiError {
    let (code, allowed) = match operation {
        Operation::Cancel => (
            ErrorCode::CheckoutNotCancelable,
            "only requires_action, processing and requires_capture checkouts can be canceled",
        ),
        Operation::Capture => (
            ErrorCode::CheckoutNotCapturable,
            "only a requires_capture checkout (an authorisation of capture_method manual) can be captured",
        ),
    };
    match e {
        ChangeError::NotFound => ApiError::checkout_not_found(),
        ChangeError::NotAllowed(status) => {
            ApiError::new(code, format!("The checkout is {status}: {allowed}."))
        }
        ChangeError::Refused { status, msp } => {
            let collected = matches!(
                status,
                CheckoutStatus::Succeeded
                    | CheckoutStatus::PartiallyRefunded
                    | CheckoutStatus::Refunded
            );
            let hint = match operation {
                Operation::Cancel if collected => {
                    ": the payment completed meanwhile, refund it instead"
                }
                Operation::Capture if collected => {
                    ": it was captured already (`amount_captured` says how much)"
                }
                _ => "",
            };
            ApiError::new(
                code,
                format!("MultiSafepay refused ({msp}); the checkout is now {status}{hint}."),
            )
        }
        ChangeError::TooLarge { authorised } => ApiError::new(
            ErrorCode::InvalidAmount,
            format!("`amount` is more than the {authorised} minor units that can still be captured: capture at most that."),
        )
        .with_param("amount"),
        ChangeError::OutcomeUnknown(e) => ApiError::new(
            ErrorCode::PspUnusableResponse,
            format!(
                "MultiSafepay did not answer (or answered something unusable), so whether it {} is not known yet; the checkout is unchanged until MultiSafepay says. The gateway asks MultiSafepay by itself: fetch the checkout (`?refresh=true` asks at once) before you try again.",
                operation.done()
            ),
        )
        .with_source(e),
        ChangeError::Unrecorded(e) => ApiError::new(
            ErrorCode::ServiceUnavailable,
            format!(
                "MultiSafepay {} the payment, but the gateway's store is unavailable and could not record it yet; the checkout shows it once it syncs with MultiSafepay. Do not send this again: fetch the checkout with `?refresh=true` in a little while.",
                operation.done_plainly()
            ),
        )
        .with_source(e),
        ChangeError::Store(e) => ApiError::store_unavailable(e),
    }
}
