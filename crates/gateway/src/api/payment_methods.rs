//! Saved cards as a resource: `GET /v1/payment_methods?customer_reference=`,
//! `GET /v1/payment_methods/{id}`, `PATCH /v1/payment_methods/{id}` (a new expiry),
//! `DELETE /v1/payment_methods/{id}` (at MSP first), and the check that a saved card may pay a
//! new checkout. MSP's token is never part of an answer.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::Merchant;
use super::listing::{DEFAULT_LIMIT, Page};
use super::respond;
use super::strict_json::{self, Shape};
use super::to_json;
use crate::domain::card::{CardExpiry, ExpiryError};
use crate::domain::new_checkout::NewCheckout;
use crate::domain::payment_method::{CustomerReference, PaymentMethod, PaymentMethodId};
use crate::domain::validation::FieldError;
use crate::errors::{ApiError, ErrorCode};
use crate::flows::saved_card::{self, ChangeError, ResolveError};
use crate::psp::PspError;
use crate::state::AppState;
use crate::store::StoredResponse;

fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::ResourceMissing,
        "No such payment method: check the id (`pm_` followed by 32 hex digits) shown as \
         `payment_method` on the checkout that saved the card.",
    )
}

fn inactive(param: Option<&str>) -> ApiError {
    let e = ApiError::new(
        ErrorCode::PaymentMethodInactive,
        "This payment method is deleted: it can no longer pay or be changed. Ask the shopper to \
         pay with a card and save it again.",
    );
    match param {
        Some(p) => e.with_param(p),
        None => e,
    }
}

/// Reads the saved card a new checkout pays with and checks that it may: `None` for a checkout
/// with a card typed in, which needs nothing more.
pub(super) async fn resolve(
    state: &AppState,
    new: &NewCheckout,
) -> Result<Option<NewCheckout>, ApiError> {
    if new.card().is_some() {
        return Ok(None);
    }
    saved_card::resolve(&state.flows, new.clone())
        .await
        .map(Some)
        .map_err(|e| match e {
            ResolveError::NotFound => not_found().with_param("payment_method"),
            ResolveError::Inactive(_) => inactive(Some("payment_method")),
            ResolveError::OtherCustomer => ApiError::invalid_field(FieldError::new(
                "customer.reference",
                ErrorCode::InvalidParameter,
                "`customer.reference` is not the one the payment method was saved under: send \
                 that one, or leave it out",
            )),
            ResolveError::ReturnUrlMissing => ApiError::invalid_field(FieldError::new(
                "return_url",
                ErrorCode::ParameterMissing,
                "a `card_on_file` payment method pays with the shopper present, who may have \
                 to pass 3-D Secure: send `return_url`",
            )),
            ResolveError::Store(e) => ApiError::store_unavailable(e),
        })
}

fn path_id(path: &str) -> Result<PaymentMethodId, ApiError> {
    PaymentMethodId::parse(path).map_err(|_| not_found())
}

fn answer(status: u16, method: &PaymentMethod) -> HttpResponse {
    respond(StoredResponse {
        status,
        body: to_json(method),
    })
}

fn change_failed(e: ChangeError) -> ApiError {
    match e {
        ChangeError::NotFound => not_found(),
        ChangeError::Inactive => inactive(None),
        ChangeError::Store(e) => ApiError::store_unavailable(e),
        ChangeError::Psp(PspError::Rejected {
            error_code,
            error_info,
            ..
        }) => ApiError::new(
            ErrorCode::PspRejected,
            format!(
                "MultiSafepay refused the change (error {error_code}: {error_info}); nothing was \
                 changed."
            ),
        ),
        ChangeError::Psp(e) => ApiError::new(
            ErrorCode::PspUnusableResponse,
            format!(
                "MultiSafepay did not confirm the change ({e}); the payment method is unchanged \
                 here: send the request again."
            ),
        ),
    }
}

/// `GET /v1/payment_methods?customer_reference=&limit=&starting_after=`
pub async fn list(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = req.query_string();
    strict_json::check_query(query, &["customer_reference", "limit", "starting_after"])?;
    let mut customer = None;
    let mut limit = DEFAULT_LIMIT;
    let mut starting_after = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "customer_reference" => {
                customer = Some(CustomerReference::parse("customer_reference", &value)?);
            }
            "limit" => limit = super::listing::limit(&value)?,
            "starting_after" => {
                starting_after = Some(PaymentMethodId::parse(&value).map_err(|_| {
                    FieldError::new(
                        "starting_after",
                        ErrorCode::InvalidParameter,
                        "`starting_after` is the id of the last payment method of the previous \
                         page (`pm_…`)",
                    )
                })?);
            }
            _ => {}
        }
    }
    let customer = customer.ok_or_else(|| {
        FieldError::new(
            "customer_reference",
            ErrorCode::ParameterMissing,
            "`customer_reference` is required: payment methods are listed per shopper",
        )
    })?;
    let page = state
        .flows
        .store
        .list_payment_methods(&customer, limit, starting_after.as_ref())
        .await
        .map_err(ApiError::store_unavailable)?;
    Ok(respond(StoredResponse {
        status: 200,
        body: to_json(&Page {
            data: page.data,
            has_more: page.has_more,
        }),
    }))
}

/// `GET /v1/payment_methods/{id}`
pub async fn get(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let id = path_id(&path)?;
    let stored = state
        .flows
        .store
        .payment_method(&id)
        .await
        .map_err(ApiError::store_unavailable)?
        .ok_or_else(not_found)?;
    Ok(answer(200, &stored.method))
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateRequest {
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
}

static UPDATE_SHAPE: Shape =
    Shape::Object(&[("exp_month", Shape::Integer), ("exp_year", Shape::Integer)]);

/// `PATCH /v1/payment_methods/{id}` `{"exp_month", "exp_year"}`: the card's new expiry, at MSP
/// first.
pub async fn update(
    state: web::Data<AppState>,
    _merchant: Merchant,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let body = super::read_body(payload, state.settings.server.body_limit_bytes).await?;
    let dto: UpdateRequest = strict_json::parse(&body, &UPDATE_SHAPE)?;
    let month = dto
        .exp_month
        .ok_or_else(|| FieldError::missing("exp_month"))?;
    let year = dto
        .exp_year
        .ok_or_else(|| FieldError::missing("exp_year"))?;
    let today = state.flows.clock.now().date_naive();
    let expiry = CardExpiry::parse(month, year, today).map_err(|e| {
        let param = match e {
            ExpiryError::Month => "exp_month",
            ExpiryError::Year => "exp_year",
            ExpiryError::Expired if i64::from(chrono::Datelike::year(&today)) == year => {
                "exp_month"
            }
            ExpiryError::Expired => "exp_year",
        };
        FieldError::new(param, ErrorCode::InvalidExpiry, e.to_string())
    })?;
    let method = saved_card::update_expiry(&state.flows, &id, expiry.month(), expiry.year())
        .await
        .map_err(change_failed)?;
    Ok(answer(200, &method))
}

/// `DELETE /v1/payment_methods/{id}`: at MSP first, then `status: deleted`.
pub async fn delete(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let id = path_id(&path)?;
    let method = saved_card::delete(&state.flows, &id)
        .await
        .map_err(change_failed)?;
    Ok(answer(200, &method))
}
