//! `POST /v1/checkouts`, `GET /v1/checkouts/{id}`, `GET /v1/checkouts/{id}/events`.
//!
//! Handlers only parse, call a flow or the store, and map the result (style.md rule 2).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::Merchant;
use super::checkout_request::{self, CheckoutRequest, parse};
use super::idempotency::{self, IdempotencyKey};
use super::listing::SubListQuery;
use super::strict_json;
use super::view::{CheckoutView, EventView};
use super::{respond, to_json};
use crate::domain::checkout::{Checkout, CheckoutId, EventSource};
use crate::domain::new_checkout::NewCheckout;
use crate::errors::{ApiError, ErrorCode};
use crate::flows::create::{CreateError, create_checkout_as};
use crate::flows::resume::{ResumeError, resume_create};
use crate::flows::sync::{SyncError, sync};
use crate::state::AppState;
use crate::store::StoredResponse;

pub async fn create(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = super::read_body(payload, state.settings.server.body_limit_bytes).await?;
    let key = IdempotencyKey::from_request(&req)?;
    let dto: CheckoutRequest = strict_json::parse(&body, &checkout_request::SHAPE)?;
    let today = state.flows.clock.now().date_naive();
    let new = parse(dto, &state.settings.checkout.return_url_hosts, today)?;

    let id = CheckoutId::generate();
    let Some(key) = key else {
        drop(body);
        return Ok(respond(run(&state, id, &new).await?));
    };
    let fingerprint = idempotency::fingerprint_json(&state, &body);
    drop(body); // it held the card number; the fingerprint is all the replay check needs
    // The claim records the checkout id before MSP hears of it: a retry after a crash resumes
    // that checkout instead of ordering again.
    let (state, new) = (&state, &new);
    // The keyed run (and in it the rare resume, the largest future of all) is boxed, so that
    // it takes memory only for a keyed request, and only its own size (issue 31: the handler's
    // future was 14 KiB for every checkout, most of it this branch).
    Box::pin(idempotency::run_once(
        state,
        &key,
        &fingerprint,
        Some(id.as_str()),
        |begun| async move {
            let recorded = begun.resource.as_deref().map(CheckoutId::parse);
            match recorded {
                // What an earlier request with this key stored is answered, never left behind
                // for a second checkout: one that crashed may have reached MSP, one that failed
                // with "nothing was sent" may have stored its record after giving up on it.
                Some(Ok(recorded)) if begun.resumed || begun.released => {
                    Box::pin(resume(state, recorded, new)).await
                }
                Some(Ok(recorded)) => run(state, recorded, new).await,
                Some(Err(_)) | None => Err(ApiError::internal(anyhow::anyhow!(
                    "an idempotency claim recorded no usable checkout id"
                ))),
            }
        },
    ))
    .await
}

/// The retry of a keyed create whose first request never finished (the gateway stopped), or
/// failed before MSP heard of it.
async fn resume(
    state: &AppState,
    id: CheckoutId,
    new: &NewCheckout,
) -> Result<StoredResponse, ApiError> {
    let resolved = super::payment_methods::resolve(state, new).await?;
    let new = resolved.as_ref().unwrap_or(new);
    match resume_create(&state.flows, id, new).await {
        Ok(checkout) => Ok(created(state, &checkout)),
        Err(ResumeError::Create(e)) => Err(create_failed(e)),
        Err(ResumeError::Store(e)) => Err(ApiError::store_unavailable(e)),
        Err(ResumeError::NotFound) => Err(ApiError::checkout_not_found()),
    }
}

/// Runs the create flow and renders its outcome as the response to store and send.
async fn run(
    state: &AppState,
    id: CheckoutId,
    new: &NewCheckout,
) -> Result<StoredResponse, ApiError> {
    // A saved card is read inside the keyed run, so that a replay answers what the first
    // request answered even if the payment method has changed since.
    let resolved = super::payment_methods::resolve(state, new).await?;
    let new = resolved.as_ref().unwrap_or(new);
    match create_checkout_as(&state.flows, id, new).await {
        Ok(checkout) => Ok(created(state, &checkout)),
        Err(e) => Err(create_failed(e)),
    }
}

fn created(state: &AppState, checkout: &Checkout) -> StoredResponse {
    StoredResponse {
        status: StatusCode::CREATED.as_u16(),
        body: to_json(&CheckoutView::new(checkout, state.public_url())),
    }
}

fn create_failed(e: CreateError) -> ApiError {
    match e {
        CreateError::StoreUnavailable(e) => ApiError::store_unavailable(e),
        CreateError::Rejected {
            checkout,
            code,
            info,
        } => ApiError::new(
            ErrorCode::PspRejected,
            format!(
                "MultiSafepay refused the order (error {code}: {info}). Checkout {} is marked failed; correct the request and create a new checkout.",
                checkout.id
            ),
        ),
        CreateError::Unusable { checkout, detail } => ApiError::new(
            ErrorCode::PspUnusableResponse,
            format!(
                "MultiSafepay's answer could not be read ({detail}). Checkout {} is processing: do not retry it; check GET /v1/checkouts/{}?refresh=true later.",
                checkout.id, checkout.id
            ),
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct GetQuery {
    #[serde(default)]
    refresh: bool,
}

pub async fn get(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<GetQuery>,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &["refresh"])?;
    let id = CheckoutId::parse(&path).map_err(|_| ApiError::checkout_not_found())?;
    let checkout = if query.refresh {
        match sync(&state.flows, &id, EventSource::Refresh).await {
            Ok(c) => Some(c),
            Err(SyncError::NotFound) => None,
            Err(SyncError::Store(e)) => return Err(ApiError::store_unavailable(e)),
            Err(SyncError::Psp(e)) => {
                // The stored state is still the best answer; say so in the log, not as an error.
                tracing::warn!(checkout_id = %id, error = %e, "refresh could not reach MultiSafepay; answering the stored state");
                stored(&state, &id).await?
            }
        }
    } else {
        stored(&state, &id).await?
    };
    let checkout = checkout.ok_or_else(ApiError::checkout_not_found)?;
    Ok(respond(StoredResponse {
        status: 200,
        body: to_json(&CheckoutView::new(&checkout, state.public_url())),
    }))
}

async fn stored(state: &AppState, id: &CheckoutId) -> Result<Option<Checkout>, ApiError> {
    Ok(state
        .flows
        .store
        .get(id)
        .await
        .map_err(ApiError::store_unavailable)?
        .map(|v| v.checkout))
}

pub async fn events(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = SubListQuery::parse(req.query_string())?;
    let id = CheckoutId::parse(&path).map_err(|_| ApiError::checkout_not_found())?;
    if state
        .flows
        .store
        .get(&id)
        .await
        .map_err(ApiError::store_unavailable)?
        .is_none()
    {
        return Err(ApiError::checkout_not_found());
    }
    let events = state
        .flows
        .store
        .events(&id)
        .await
        .map_err(ApiError::store_unavailable)?;
    let views: Vec<EventView<'_>> = events
        .iter()
        .enumerate()
        .map(|(i, e)| EventView::new(&id, i, e))
        .collect();
    let page = query.page(views, |e| e.id.clone(), "history entry")?;
    Ok(respond(StoredResponse {
        status: 200,
        body: to_json(&page),
    }))
}
