//! `GET /return/{checkout_id}` and `GET /cancel/{checkout_id}`: where MSP sends the browser after
//! 3-D Secure (MSP appends `transactionid`, which we do not need: the path names the checkout).
//! The status is synced with MSP unless already settled, then the browser goes on to the shop's
//! `return_url` (or `cancel_url`) with `checkout_id` and `status`. If MSP cannot be asked the
//! checkout becomes `processing` and the redirect still goes out.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::pay::{back_to, unavailable};
use super::respond::error_response;
use crate::domain::checkout::CheckoutId;
use crate::flows::sync::{SyncError, shopper_returned};
use crate::state::AppState;

pub async fn back_from_msp(state: web::Data<AppState>, id: web::Path<String>) -> HttpResponse {
    come_back(&state, &id, false).await
}

pub async fn canceled_at_msp(state: web::Data<AppState>, id: web::Path<String>) -> HttpResponse {
    come_back(&state, &id, true).await
}

async fn come_back(state: &AppState, id: &str, cancelled: bool) -> HttpResponse {
    let Ok(id) = CheckoutId::parse(id) else {
        return unknown_checkout();
    };
    match shopper_returned(&state.flows, &id).await {
        Ok(checkout) => {
            let target = if cancelled {
                &checkout.cancel_url
            } else {
                &checkout.return_url
            };
            back_to(target, &checkout)
        }
        Err(SyncError::NotFound) => unknown_checkout(),
        Err(SyncError::Store(e)) => unavailable(e),
        // `shopper_returned` handles MSP being unreachable itself.
        Err(SyncError::Psp(e)) => {
            tracing::error!(error = %e, "unexpected MSP error on the browser return");
            error_response(
                StatusCode::BAD_GATEWAY,
                "Please try again",
                "We could not confirm your payment just now. Please reload this page.",
            )
        }
    }
}

fn unknown_checkout() -> HttpResponse {
    error_response(
        StatusCode::NOT_FOUND,
        "Payment not found",
        "We could not find this payment. Please go back to the shop and check your order there.",
    )
}
