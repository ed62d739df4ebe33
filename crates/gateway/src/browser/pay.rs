//! `GET /pay/{token}`: the link in `next_action`. While the checkout waits for the shopper it
//! sends the browser to MSP's 3-D Secure (a 303 to `payment_url`, or MSP's form served byte for
//! byte with a CSP built for it); once there is nothing left to do it sends the browser back to
//! the shop.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};

use super::pages;
use super::respond::{error_response, see_other};
use super::security::{append_query, csp_for_msp_form};
use crate::configuration::ThreeDsMode;
use crate::domain::checkout::{Checkout, CheckoutStatus, PaySession};
use crate::state::AppState;

/// Our tokens are 32 random bytes in unpadded base64url.
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tracing::instrument(name = "pay_page", skip_all)]
pub async fn pay(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    if !well_formed(&token) {
        return unknown_link();
    }
    let (session, checkout) = match state.flows.store.pay_session_and_checkout(&token).await {
        Ok(Some((session, Some(checkout)))) => (session, checkout.checkout),
        // Sessions live `checkout.session_ttl_s`; a well-formed token we no longer know is most
        // likely one that expired. A session whose checkout is gone has expired too.
        Ok(Some((_, None)) | None) => return expired_link(),
        Err(e) => return unavailable(e),
    };
    tracing::Span::current().record("checkout_id", tracing::field::display(&checkout.id));
    match checkout.status {
        CheckoutStatus::RequiresAction if state.flows.clock.now() > checkout.expires_at => {
            expired_link()
        }
        CheckoutStatus::RequiresAction => {
            to_three_ds(state.settings.checkout.three_ds_mode, &session)
        }
        // Processing or settled: nothing left to do here; the shop shows the outcome.
        _ => back_to_shop(&checkout),
    }
}

fn to_three_ds(mode: ThreeDsMode, session: &PaySession) -> HttpResponse {
    let url = session.payment_url.as_deref();
    let html = session.form_html.as_deref();
    // Each mode falls back to the other when MSP sent only one.
    let serve_form = match mode {
        ThreeDsMode::Form => html.is_some() || url.is_none(),
        ThreeDsMode::Redirect => url.is_none() && html.is_some(),
    };
    if serve_form && let Some(html) = html {
        match csp_for_msp_form(html) {
            Ok(csp) => {
                return HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .insert_header((header::CONTENT_SECURITY_POLICY, csp))
                    .body(html.to_owned());
            }
            Err(e) => {
                tracing::warn!(error = %e, "MultiSafepay's 3-D Secure form cannot be served safely; trying its payment_url")
            }
        }
    }
    match url {
        Some(url) => see_other(url),
        None => error_response(
            StatusCode::BAD_GATEWAY,
            "Payment page unavailable",
            "Your bank's verification page cannot be shown right now, and nothing was charged. \
             Please go back to the shop and try again.",
        ),
    }
}

pub(super) fn back_to_shop(checkout: &Checkout) -> HttpResponse {
    back_to(&checkout.return_url, checkout)
}

pub(super) fn back_to(target: &str, checkout: &Checkout) -> HttpResponse {
    see_other(&append_query(
        target,
        &[
            ("checkout_id", checkout.id.as_str()),
            ("status", checkout.status.as_str()),
        ],
    ))
}

fn unknown_link() -> HttpResponse {
    pages::error_response(StatusCode::NOT_FOUND, pages::unknown_link_page())
}

fn expired_link() -> HttpResponse {
    pages::error_response(StatusCode::GONE, pages::expired_link_page())
}

pub(super) fn unavailable(e: crate::store::StoreError) -> HttpResponse {
    tracing::warn!(error = %e, "store unavailable for a browser request");
    let mut res = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "We could not load your payment just now. Please wait a moment and reload this page.",
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    res
}
