//! The console's two actions on a checkout: Redeliver one webhook delivery, and Sync with MSP
//! now. Each needs a session and the form's CSRF token, checks that what it names belongs to
//! the checkout, and is recorded with the console key's label and the time (shown on the
//! checkout's page). Bad input gets a clear page and nothing is done.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::{self, Session};
use super::checkout_page::{Action, record_action, unknown};
use super::render::{self, Chrome};
use crate::domain::checkout::{CheckoutId, EventSource};
use crate::domain::event::EventId;
use crate::domain::webhook_endpoint::WebhookEndpointId;
use crate::flows::sync::{SyncError, sync as sync_with_msp};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SyncForm {
    #[serde(default)]
    csrf_token: Option<String>,
}

#[derive(Deserialize)]
pub struct RedeliverForm {
    #[serde(default)]
    csrf_token: Option<String>,
    #[serde(default)]
    event: String,
    #[serde(default)]
    target: String,
}

/// The session, a valid CSRF token and a known checkout, or the page to answer instead.
async fn precheck(
    state: &AppState,
    req: &HttpRequest,
    path: &str,
    csrf: Option<&str>,
) -> Result<(Session, CheckoutId), HttpResponse> {
    let session = auth::require(state, req).await?;
    auth::check_csrf(&session, csrf)?;
    let Ok(id) = CheckoutId::parse(path) else {
        return Err(unknown(&session));
    };
    match state.flows.store.get(&id).await {
        Ok(Some(_)) => Ok((session, id)),
        Ok(None) => Err(unknown(&session)),
        Err(_) => Err(render::unavailable(
            Chrome::new("Checkout", "search").signed_in(&session),
        )),
    }
}

fn incomplete_form(session: &Session) -> HttpResponse {
    render::message(
        StatusCode::BAD_REQUEST,
        Chrome::new("Form not accepted", "search").signed_in(session),
        "This form could not be accepted",
        "The form was incomplete or came from an old page. Nothing was done: go back, reload the page and try again.",
        Some(("/console", "Back to the overview")),
    )
}

/// `POST /console/checkouts/{id}/sync`: asks MSP for the order now and applies its answer.
pub async fn sync(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: Option<web::Form<SyncForm>>,
) -> HttpResponse {
    let csrf = form.as_ref().and_then(|f| f.csrf_token.as_deref());
    let (session, id) = match precheck(&state, &req, &path, csrf).await {
        Ok(ok) => ok,
        Err(res) => return res,
    };
    let result = sync_with_msp(&state.flows, &id, EventSource::Refresh).await;
    let (ok, outcome, done) = match &result {
        Ok(c) => (
            true,
            format!(
                "MultiSafepay answered; the checkout is {}",
                c.status.as_str().replace('_', " ")
            ),
            "sync",
        ),
        Err(SyncError::NotFound) => return unknown(&session),
        Err(SyncError::Psp(_)) => (
            false,
            "MultiSafepay could not be asked; nothing changed".to_owned(),
            "sync-failed",
        ),
        Err(SyncError::Store(_)) => (
            false,
            "the gateway's storage did not answer; nothing changed".to_owned(),
            "sync-failed",
        ),
    };
    let action = Action {
        at: state.flows.clock.now(),
        by: session.label.clone(),
        what: "Sync with MSP now".to_owned(),
        outcome,
        ok,
    };
    record_action(&state, &id, &action).await;
    auth::see_other(&format!("/console/checkouts/{id}?done={done}"))
}

/// `POST /console/checkouts/{id}/redeliver`: queues one event's delivery to one destination
/// (`target`: `url` for `webhooks.url`, or a webhook endpoint id) for a new attempt now.
pub async fn redeliver(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: Option<web::Form<RedeliverForm>>,
) -> HttpResponse {
    let csrf = form.as_ref().and_then(|f| f.csrf_token.as_deref());
    let (session, id) = match precheck(&state, &req, &path, csrf).await {
        Ok(ok) => ok,
        Err(res) => return res,
    };
    let Some(form) = form else {
        return incomplete_form(&session);
    };
    let Ok(event) = EventId::parse(&form.event) else {
        return incomplete_form(&session);
    };
    if event.checkout_id() != id {
        return incomplete_form(&session);
    }
    let store = state.flows.store.as_ref();
    let now = state.flows.clock.now();
    let (queued, to) = if form.target == "url" {
        if !state.flows.settings.deliver_webhooks {
            return incomplete_form(&session);
        }
        (
            store.redeliver(&event, now).await,
            "the shop's webhook URL".to_owned(),
        )
    } else {
        let Ok(endpoint) = WebhookEndpointId::parse(&form.target) else {
            return incomplete_form(&session);
        };
        (
            store.redeliver_to_endpoint(&event, &endpoint, now).await,
            format!("endpoint {endpoint}"),
        )
    };
    match queued {
        Ok(Some(_)) => {}
        Ok(None) => return incomplete_form(&session),
        Err(_) => {
            return render::unavailable(Chrome::new("Checkout", "search").signed_in(&session));
        }
    }
    state.flows.outbox.ring(&id);
    let action = Action {
        at: now,
        by: session.label.clone(),
        what: format!("Redeliver {event} to {to}"),
        outcome: "queued for a new attempt now".to_owned(),
        ok: true,
    };
    record_action(&state, &id, &action).await;
    auth::see_other(&format!("/console/checkouts/{id}?done=redeliver"))
}
