//! The demo storefront's routes. The demo is a shop like any other: its server side calls the
//! gateway's public API over HTTP with the merchant key, and sends the browser to `next_action`.
//!
//! - `GET /`: 303 to `/demo`.
//! - `GET /demo`: the cart and a plain card form (works without JavaScript and cookies).
//! - `POST /demo/checkout`: `POST /v1/checkouts`, then 303 to the pay link or the result page;
//!   a refusal shows the form again in the shopper's words, with what they typed (but the card
//!   number and CVC, which are asked for again).
//! - `POST /demo/pay-saved`: the cart paid with one of the demo shopper's saved cards (the
//!   checkout page lists them, `GET /v1/payment_methods`), then 303 as `/demo/checkout`.
//! - `GET /demo/result?checkout_id=…&status=…`: where the gateway sends the browser back (the
//!   checkout's `cancel_url` is the same page with `via_cancel=1`, so that a shopper who stopped
//!   at 3-D Secure reads "Payment cancelled"); shows the outcome in the shopper's words, then
//!   the shop's view: the checkout, its refunds and its events.
//! - `POST /demo/refund`: `POST /v1/checkouts/{id}/refunds`, then 303 back to the result page;
//!   a refusal is shown on the result page, in plain words.
//! - `POST /demo/refund/cancel`: `POST /v1/refunds/{id}/cancel`, likewise.
//! - `POST /demo/capture`: `POST /v1/checkouts/{id}/capture` (a pay-later authorisation),
//!   likewise.
//! - `POST /demo/cancel`: `POST /v1/checkouts/{id}/cancel`, likewise.
//! - `POST /demo/webhooks`: the shop's webhook endpoint (the gateway delivers its events here);
//!   `GET /demo/webhooks`: what it received with a verified signature, newest first, pay links
//!   hidden (the page needs no key).
//!
//! The result page's forms post to the result page's own origin and answer with a relative 303, so
//! the result page's CSP (`form-action 'self'`, what the security middleware sets) covers them
//! and their redirect. Every form POST, the checkout's included, refuses a request that the
//! browser says came from another site. Every answer under `/demo` is a page with
//! the browser security headers, near misses and wrong methods included: never JSON.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Datelike;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::SandboxInfo;
use super::demo::{
    self, DemoCancelForm, DemoCaptureForm, DemoCheckoutForm, DemoCheckoutPage,
    DemoRefundCancelForm, DemoRefundForm, DemoResultPage, RefusalContext, TypedFields,
};
use gateway::browser::respond::error_response_with_link;
use gateway::browser::security::{browser_security_headers, gateway_page_csp_with_form_targets};
use gateway::domain::checkout::CheckoutId;
use gateway::domain::refund::RefundId;
use gateway::startup::AppState;

/// Mounts the demo's routes, with `info` as their app data.
pub fn configure(cfg: &mut web::ServiceConfig, info: web::Data<SandboxInfo>) {
    cfg.app_data(info)
        // The sandbox's front door leads to the shop.
        .service(
            web::resource("/")
                .wrap(from_fn(browser_security_headers))
                .route(web::get().to(to_the_shop))
                .route(web::head().to(to_the_shop)),
        )
        .service(
            web::resource("/demo")
                .wrap(from_fn(browser_security_headers))
                .route(web::get().to(checkout_page))
                .default_service(web::to(method_not_allowed::<GET>)),
        )
        .service(
            web::resource("/demo/checkout")
                .app_data(form_config())
                .wrap(from_fn(refuse_cross_site))
                .wrap(from_fn(browser_security_headers))
                .route(web::post().to(submit))
                .default_service(web::to(method_not_allowed::<POST>)),
        )
        .service(
            web::resource("/demo/pay-saved")
                .app_data(form_config())
                .wrap(from_fn(refuse_cross_site))
                .wrap(from_fn(browser_security_headers))
                .route(web::post().to(pay_saved))
                .default_service(web::to(method_not_allowed::<POST>)),
        )
        .service(
            web::resource("/demo/result")
                .wrap(from_fn(browser_security_headers))
                .route(web::get().to(result))
                .default_service(web::to(method_not_allowed::<GET>)),
        )
        // The security headers wrap the cross-site refusal, so that its 403 carries them too.
        .service(
            web::resource("/demo/refund")
                .app_data(form_config())
                .wrap(from_fn(refuse_cross_site))
                .wrap(from_fn(browser_security_headers))
                .route(web::post().to(refund))
                .default_service(web::to(method_not_allowed::<POST>)),
        )
        .service(
            web::resource("/demo/refund/cancel")
                .app_data(form_config())
                .wrap(from_fn(refuse_cross_site))
                .wrap(from_fn(browser_security_headers))
                .route(web::post().to(cancel_refund))
                .default_service(web::to(method_not_allowed::<POST>)),
        )
        .service(
            web::resource("/demo/capture")
                .app_data(form_config())
                .wrap(from_fn(refuse_cross_site))
                .wrap(from_fn(browser_security_headers))
                .route(web::post().to(capture))
                .default_service(web::to(method_not_allowed::<POST>)),
        )
        .service(
            web::resource("/demo/cancel")
                .app_data(form_config())
                .wrap(from_fn(refuse_cross_site))
                .wrap(from_fn(browser_security_headers))
                .route(web::post().to(cancel))
                .default_service(web::to(method_not_allowed::<POST>)),
        )
        // A dispute's evidence (a PDF, multipart): its own body limit, like the gateway's.
        .service(
            web::resource("/demo/dispute/evidence")
                .app_data(web::PayloadConfig::new(6 * 1024 * 1024))
                .wrap(from_fn(refuse_cross_site))
                .wrap(from_fn(browser_security_headers))
                .route(web::post().to(super::evidence::submit))
                .default_service(web::to(method_not_allowed::<POST>)),
        )
        // Server to server: the gateway posts its events; no browser, so no cross-site check.
        .service(
            web::resource("/demo/webhooks")
                .wrap(from_fn(browser_security_headers))
                .route(web::get().to(webhooks_page))
                .route(web::post().to(receive_webhook)),
        )
        // The demo's own webhook endpoints, signed per Standard Webhooks.
        .service(
            web::resource("/demo/webhooks/{name}")
                .route(web::post().to(receive_at_endpoint))
                .default_service(web::to(method_not_allowed::<POST>)),
        )
        // Near misses (`/demo/`, `/demo/resutl`), after every route above: a page leading back
        // to the shop, not the gateway's API 404.
        .service(
            web::resource("/demo/{tail:.*}")
                .wrap(from_fn(browser_security_headers))
                .default_service(web::to(page_not_found)),
        );
}

async fn receive_webhook(
    info: web::Data<SandboxInfo>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let signature = req
        .headers()
        .get("gateway-signature")
        .and_then(|v| v.to_str().ok());
    // The shop's own clock: a signature's timestamp is checked against the real time.
    if info.inbox.receive(signature, &body, chrono::Utc::now()) {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body("signature not verified")
    }
}

async fn receive_at_endpoint(
    info: web::Data<SandboxInfo>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    let headers = [
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ];
    match info
        .inbox
        .receive_at_endpoint(&name, headers, &body, chrono::Utc::now())
    {
        Some(true) => HttpResponse::NoContent().finish(),
        Some(false) => HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body("signature not verified"),
        // No such endpoint here: tell the gateway to stop (it disables the endpoint).
        None => HttpResponse::Gone().finish(),
    }
}

async fn webhooks_page(info: web::Data<SandboxInfo>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(demo::webhooks_page_with(
            &info.inbox.newest_first(),
            info.inbox.refused(),
            &info.inbox.endpoints(),
        ))
}

async fn page_not_found() -> HttpResponse {
    error_response_with_link(
        StatusCode::NOT_FOUND,
        "Page not found",
        "This page does not exist in the shop. Go back to the shop and try again from there.",
        ("/demo", "Back to the shop"),
    )
}

/// `GET /`: the sandbox has no page of its own there; the demo shop is what a person wants.
async fn to_the_shop() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/demo"))
        .finish()
}

const GET: bool = false;
const POST: bool = true;

/// 405 as a page (the demo's paths are a browser's), with the `Allow` header.
async fn method_not_allowed<const POST_ONLY: bool>() -> HttpResponse {
    let allow = if POST_ONLY { "POST" } else { "GET" };
    let mut res = error_response_with_link(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not allowed",
        "This page cannot be opened that way. Go back to the shop and try again from there.",
        ("/demo", "Back to the shop"),
    );
    res.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    res
}

async fn checkout_page(state: web::Data<AppState>, info: web::Data<SandboxInfo>) -> HttpResponse {
    render_checkout(&state, &info, StatusCode::OK, None, None).await
}

/// The checkout page. Its `form-action` lists the simulator too: Chrome applies `form-action`
/// to the redirects after a submission (demo → /pay → MSP's 3-D Secure page).
async fn render_checkout(
    state: &AppState,
    info: &SandboxInfo,
    status: StatusCode,
    error: Option<String>,
    refused: Option<(Option<&'static str>, TypedFields)>,
) -> HttpResponse {
    let (invalid_field, typed) = match refused {
        Some((field, typed)) => (field, Some(typed)),
        None => (None, None),
    };
    let exp_year = state.flows.clock.now().year() + 4;
    let origins = [info.simulator_origin.as_str()];
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            gateway_page_csp_with_form_targets(&origins),
        ))
        .body(demo::checkout_page(&DemoCheckoutPage {
            exp_year,
            error,
            invalid_field,
            typed,
            saved_cards: saved_cards(state, info).await,
        }))
}

async fn submit(
    state: web::Data<AppState>,
    info: web::Data<SandboxInfo>,
    req: HttpRequest,
    form: web::Form<DemoCheckoutForm>,
) -> HttpResponse {
    let result_url = format!("{}/demo/result", state.public_url());
    let cancel_url = format!("{result_url}?{VIA_CANCEL_URL}=1");
    let shopper_ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let body = demo::to_checkout_request_json(&form, &result_url, &cancel_url, &shopper_ip);
    // What the form shows again if this is refused: not the card number, not the CVC.
    let typed = form.typed();
    drop(form); // the card data is in `body` now, and leaves with the request below
    let answer = info
        .http
        .post(format!("{}/v1/checkouts", state.public_url()))
        .bearer_auth(info.merchant_key.expose_secret())
        .json(&body)
        .send()
        .await;
    drop(body);
    let (status, created) = match answer {
        Ok(res) => {
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
        Err(e) => {
            tracing::warn!(error = %e, "the demo could not reach the gateway's API");
            let message = demo::api_error_message(502, &Value::Null);
            return render_checkout(
                &state,
                &info,
                StatusCode::BAD_GATEWAY,
                Some(message),
                Some((None, typed)),
            )
            .await;
        }
    };
    if status == 201 {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, demo::next_location(&created, &result_url)))
            .finish()
    } else {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        render_checkout(
            &state,
            &info,
            code,
            Some(demo::api_error_message(status, &created)),
            Some((demo::invalid_field(&created), typed)),
        )
        .await
    }
}

/// The query parameter that marks the demo's `cancel_url`: the result page reached through it.
const VIA_CANCEL_URL: &str = "via_cancel";

async fn result(
    state: web::Data<AppState>,
    info: web::Data<SandboxInfo>,
    req: HttpRequest,
) -> HttpResponse {
    // Read by hand rather than with `web::Query`, whose refusals (a missing `checkout_id`, a
    // repeated one) the gateway answers as API JSON: this is a page.
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let value = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    // Only our own ids go into the URLs the demo calls.
    let Some(Ok(id)) = value("checkout_id").map(CheckoutId::parse) else {
        return unknown_checkout();
    };
    match load_result(&state, &info, &id).await {
        Some(mut page) => {
            page.via_cancel_url = value(VIA_CANCEL_URL).is_some();
            render_result(page, StatusCode::OK)
        }
        None => unknown_checkout(),
    }
}

/// Every page of the list at `path` (the API's `{"data": [...], "has_more": bool}`), followed
/// with `starting_after` and joined into one page; `None` if a page did not come.
async fn get_every_page(state: &AppState, info: &SandboxInfo, path: &str) -> Option<Value> {
    let mut data = Vec::new();
    loop {
        let url = match data.last().and_then(|last: &Value| last["id"].as_str()) {
            None => format!("{path}?limit=100"),
            Some(after) => format!("{path}?limit=100&starting_after={after}"),
        };
        let page = get_json(state, info, &url).await?;
        let more = page["has_more"].as_bool() == Some(true);
        data.extend(page["data"].as_array()?.iter().cloned());
        if !more {
            return Some(serde_json::json!({"data": data, "has_more": false}));
        }
    }
}

/// `GET {path}` on the gateway's API with the merchant key: the JSON answer, if it answered
/// 2xx with JSON.
async fn get_json(state: &AppState, info: &SandboxInfo, path: &str) -> Option<Value> {
    let res = info
        .http
        .get(format!("{}{path}", state.public_url()))
        .bearer_auth(info.merchant_key.expose_secret())
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json::<Value>().await.ok()
}

/// The result page's context, from the gateway's API: the checkout (`None` if the gateway does
/// not know it), its events and its refunds; a refund form that starts blank, with a fresh
/// idempotency key.
pub(crate) async fn load_result(
    state: &AppState,
    info: &SandboxInfo,
    id: &CheckoutId,
) -> Option<DemoResultPage> {
    let checkout = get_json(state, info, &format!("/v1/checkouts/{id}")).await?;
    let events = get_every_page(state, info, &format!("/v1/checkouts/{id}/events")).await;
    let refunds = get_every_page(state, info, &format!("/v1/checkouts/{id}/refunds")).await;
    let mut page = DemoResultPage::from_api(
        &checkout,
        &events.unwrap_or(Value::Null),
        &refunds.unwrap_or(Value::Null),
        &result_path(id),
    );
    page.refund_delay = Some(info.refund_delay);
    page.refund_form.idempotency_key = uuid::Uuid::new_v4().to_string();
    page.now = Some(state.flows.clock.now());
    page.payment_form.capture_key = uuid::Uuid::new_v4().to_string();
    page.payment_form.cancel_key = uuid::Uuid::new_v4().to_string();
    // Its disputes, with an evidence form while one needs an answer.
    if let Some(disputes) = get_json(state, info, &format!("/v1/disputes?checkout_id={id}")).await {
        page.disputes = super::demo::DemoDisputes::from_api(&disputes);
    }
    Some(page)
}

/// Back to the disputes section after evidence was sent.
pub(crate) fn back_to_disputes(id: &CheckoutId) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{}#disputes", result_path(id))))
        .finish()
}

fn result_path(id: &CheckoutId) -> String {
    format!("/demo/result?checkout_id={id}")
}

pub(crate) fn render_result(page: DemoResultPage, status: StatusCode) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(demo::result_page(&page))
}

pub(crate) fn unknown_checkout() -> HttpResponse {
    error_response_with_link(
        StatusCode::NOT_FOUND,
        "Payment not found",
        "We could not find this payment. Go back to the shop to start a new one.",
        ("/demo", "Back to the shop"),
    )
}

/// Back to the result page after a refund or a cancel, at its refunds (relative: the browser
/// stays on the origin it used, which the page's `form-action 'self'` allows).
fn back_to_refunds(id: &CheckoutId) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{}#refunds", result_path(id))))
        .finish()
}

/// Back to the top of the result page after a capture or a cancel: its status says what
/// happened.
pub(crate) fn back_to_result(id: &CheckoutId) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, result_path(id)))
        .finish()
}

/// The gateway's answer to a refund or a cancel: its status and JSON body, or `None` when it
/// never came.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Option<(u16, Value)> {
    match request.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            Some((status, res.json::<Value>().await.unwrap_or(Value::Null)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "the demo could not reach the gateway's API");
            None
        }
    }
}

/// What the demo says when the gateway's answer to a refund never came: it may have been made.
const NO_REFUND_ANSWER: &str = "The payment service did not answer in time, so this refund may \
    or may not have been made. Check the refunds above before trying again: sending this form \
    again will not refund twice.";

/// What the demo says when the gateway's answer to a refund cancel never came.
const NO_CANCEL_ANSWER: &str = "The payment service did not answer in time, so the refund may or \
    may not have been canceled. Refresh status shows where it stands.";

async fn refund(
    state: web::Data<AppState>,
    info: web::Data<SandboxInfo>,
    form: web::Form<DemoRefundForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let Ok(id) = CheckoutId::parse(&form.checkout_id) else {
        return unknown_checkout();
    };
    let Some(mut page) = load_result(&state, &info, &id).await else {
        return unknown_checkout();
    };
    let amount = match demo::parse_amount(&form.amount, &page.currency) {
        Ok(amount) => amount,
        Err(e) => {
            let message = demo::amount_error_message(e, &page.currency, page.left_to_refund());
            page.refund_form.error = Some(message);
            page.refund_form.amount = form.amount;
            return render_result(page, StatusCode::BAD_REQUEST);
        }
    };
    let body = match amount {
        Some(amount) => serde_json::json!({ "amount": amount }),
        None => serde_json::json!({}),
    };
    let mut request = info
        .http
        .post(format!("{}/v1/checkouts/{id}/refunds", state.public_url()))
        .bearer_auth(info.merchant_key.expose_secret())
        .json(&body);
    let key = form.idempotency_key.trim();
    if is_idempotency_key(key) {
        request = request.header("Idempotency-Key", key);
    }
    let answer = send(request).await;
    if matches!(answer, Some((201, _))) {
        return back_to_refunds(&id);
    }
    // Refused, or no answer: show the page as it is now, with why, and what was typed.
    let Some(mut page) = load_result(&state, &info, &id).await else {
        return unknown_checkout();
    };
    page.refund_form.amount = form.amount;
    let status = match answer {
        Some((status, body)) => {
            let ctx = RefusalContext {
                currency: &page.currency,
                left: page.left_to_refund(),
                checkout_status: &page.status,
                refund_status: None,
            };
            page.refund_form.error = Some(demo::refusal_message(status, &body, &ctx));
            // Still running under this key: the same form sent again gets its answer.
            if status == 409 && body["error"]["type"] == "idempotency_error" {
                page.refund_form.idempotency_key = key.to_owned();
            }
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        None => {
            page.refund_form.error = Some(NO_REFUND_ANSWER.to_owned());
            // The gateway may have made it: the same key again replays its answer.
            if is_idempotency_key(key) {
                page.refund_form.idempotency_key = key.to_owned();
            }
            StatusCode::BAD_GATEWAY
        }
    };
    render_result(page, status)
}

/// The keys the demo's pages mint (UUIDs); anything else is not passed on.
fn is_idempotency_key(key: &str) -> bool {
    uuid::Uuid::parse_str(key).is_ok()
}

async fn cancel_refund(
    state: web::Data<AppState>,
    info: web::Data<SandboxInfo>,
    form: web::Form<DemoRefundCancelForm>,
) -> HttpResponse {
    let Ok(id) = CheckoutId::parse(&form.checkout_id) else {
        return unknown_checkout();
    };
    let Some(mut page) = load_result(&state, &info, &id).await else {
        return unknown_checkout();
    };
    // Only a refund of this checkout, by an id of ours, goes into the URL below.
    let refund_id = match RefundId::parse(&form.refund_id) {
        Ok(refund_id) if page.refund_status(refund_id.as_str()).is_some() => refund_id,
        _ => {
            page.refund_form.cancel_error =
                Some("This refund is not one of this payment's.".to_owned());
            return render_result(page, StatusCode::NOT_FOUND);
        }
    };
    let request = info
        .http
        .post(format!(
            "{}/v1/refunds/{refund_id}/cancel",
            state.public_url()
        ))
        .bearer_auth(info.merchant_key.expose_secret());
    let answer = send(request).await;
    if matches!(answer, Some((200, _))) {
        return back_to_refunds(&id);
    }
    let Some(mut page) = load_result(&state, &info, &id).await else {
        return unknown_checkout();
    };
    let status = match answer {
        Some((status, body)) => {
            let ctx = RefusalContext {
                currency: &page.currency,
                left: page.left_to_refund(),
                checkout_status: &page.status,
                refund_status: page.refund_status(refund_id.as_str()),
            };
            page.refund_form.cancel_error = Some(demo::refusal_message(status, &body, &ctx));
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        None => {
            page.refund_form.cancel_error = Some(NO_CANCEL_ANSWER.to_owned());
            StatusCode::BAD_GATEWAY
        }
    };
    render_result(page, status)
}

/// What the demo says when the gateway's answer to a capture never came.
const NO_CAPTURE_ANSWER: &str = "The payment service did not answer in time, so this payment may \
    or may not have been captured. Refresh status shows where it stands: sending this form again \
    will not capture twice.";

/// What the demo says when the gateway's answer to a payment cancel never came.
const NO_PAYMENT_CANCEL_ANSWER: &str = "The payment service did not answer in time, so the \
    payment may or may not have been canceled. Refresh status shows where it stands.";

async fn capture(
    state: web::Data<AppState>,
    info: web::Data<SandboxInfo>,
    form: web::Form<DemoCaptureForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let Ok(id) = CheckoutId::parse(&form.checkout_id) else {
        return unknown_checkout();
    };
    let Some(mut page) = load_result(&state, &info, &id).await else {
        return unknown_checkout();
    };
    let amount = match demo::parse_amount(&form.amount, &page.currency) {
        Ok(amount) => amount,
        Err(e) => {
            let message = demo::capture_amount_error_message(e, &page.currency, page.amount);
            page.payment_form.error = Some(message);
            page.payment_form.amount = form.amount;
            return render_result(page, StatusCode::BAD_REQUEST);
        }
    };
    let body = match amount {
        Some(amount) => serde_json::json!({ "amount": amount }),
        None => serde_json::json!({}),
    };
    let request = info
        .http
        .post(format!("{}/v1/checkouts/{id}/capture", state.public_url()))
        .bearer_auth(info.merchant_key.expose_secret())
        .json(&body);
    let key = form.idempotency_key.trim();
    let answer = send(with_idempotency_key(request, key)).await;
    if matches!(answer, Some((200, _))) {
        return back_to_result(&id);
    }
    let Some(mut page) = load_result(&state, &info, &id).await else {
        return unknown_checkout();
    };
    page.payment_form.amount = form.amount;
    let status = refused(&mut page, answer, key, false, NO_CAPTURE_ANSWER);
    render_result(page, status)
}

async fn cancel(
    state: web::Data<AppState>,
    info: web::Data<SandboxInfo>,
    form: web::Form<DemoCancelForm>,
) -> HttpResponse {
    let Ok(id) = CheckoutId::parse(&form.checkout_id) else {
        return unknown_checkout();
    };
    let request = info
        .http
        .post(format!("{}/v1/checkouts/{id}/cancel", state.public_url()))
        .bearer_auth(info.merchant_key.expose_secret())
        .json(&serde_json::json!({}));
    let key = form.idempotency_key.trim();
    let answer = send(with_idempotency_key(request, key)).await;
    if matches!(answer, Some((200, _))) {
        return back_to_result(&id);
    }
    let Some(mut page) = load_result(&state, &info, &id).await else {
        return unknown_checkout();
    };
    let status = refused(&mut page, answer, key, true, NO_PAYMENT_CANCEL_ANSWER);
    render_result(page, status)
}

/// `request` with the form's `Idempotency-Key`, when it is one the demo's pages mint.
fn with_idempotency_key(request: reqwest::RequestBuilder, key: &str) -> reqwest::RequestBuilder {
    if is_idempotency_key(key) {
        request.header("Idempotency-Key", key)
    } else {
        request
    }
}

/// Puts why a capture (`cancel` false) or a cancel was not done on `page`, which shows the
/// checkout as it is now, and answers the status to render it with. Under a key the gateway
/// may still be working on, or may have used, the form keeps that key: sent again, it gets
/// the first answer rather than a second capture.
fn refused(
    page: &mut DemoResultPage,
    answer: Option<(u16, Value)>,
    key: &str,
    cancel: bool,
    no_answer: &str,
) -> StatusCode {
    let keep_key = |page: &mut DemoResultPage| {
        if is_idempotency_key(key) {
            let key = key.to_owned();
            if cancel {
                page.payment_form.cancel_key = key;
            } else {
                page.payment_form.capture_key = key;
            }
        }
    };
    match answer {
        Some((status, body)) => {
            page.payment_form.error = Some(demo::payment_refusal_message(
                status,
                &body,
                cancel,
                &page.status,
                &page.currency,
                page.amount,
            ));
            if status == 409 && body["error"]["type"] == "idempotency_error" {
                keep_key(page);
            }
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        None => {
            page.payment_form.error = Some(no_answer.to_owned());
            keep_key(page);
            StatusCode::BAD_GATEWAY
        }
    }
}

/// A form body the demo's pages would not send (a field missing): an error page, not actix's
/// plain-text 400.
fn form_config() -> web::FormConfig {
    web::FormConfig::default().error_handler(|err, _req| {
        let page = error_response_with_link(
            StatusCode::BAD_REQUEST,
            "Something was missing",
            "This form did not arrive complete. Go back to the shop and try again.",
            ("/demo", "Back to the shop"),
        );
        actix_web::error::InternalError::from_response(err, page).into()
    })
}

/// Middleware for the demo's form POSTs, the checkout's and the result page's: a
/// request the browser says came from another site is answered 403 with an error page, before
/// its form is read.
async fn refuse_cross_site(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let public_url = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.public_url().to_owned());
    if came_from_another_site(
        header("origin"),
        header("sec-fetch-site"),
        header("host"),
        public_url.as_deref(),
    ) {
        let page = error_response_with_link(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form was sent from another website, and the shop only accepts it from its own \
             pages. Nothing was charged or changed. Go back to the shop and try again from there.",
            ("/demo", "Back to the shop"),
        );
        return Ok(req.into_response(page));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Whether the browser says a POST came from another site: a `Sec-Fetch-Site` other than
/// `same-origin` (`none` is a person's own doing, not a page's), or an `Origin` that is neither
/// the request's own `Host` nor the sandbox's public URL. Clients that send neither header (curl,
/// old browsers) say nothing, and neither does `Origin: null`: browsers send that for the
/// demo's own same-origin forms, whose pages have `Referrer-Policy: no-referrer`.
fn came_from_another_site(
    origin: Option<&str>,
    fetch_site: Option<&str>,
    host: Option<&str>,
    public_url: Option<&str>,
) -> bool {
    if let Some(site) = fetch_site.map(str::trim)
        && !site.eq_ignore_ascii_case("same-origin")
        && !site.eq_ignore_ascii_case("none")
    {
        return true;
    }
    let Some(origin) = origin.map(str::trim) else {
        return false;
    };
    if origin == "null" {
        return false;
    }
    let Ok(origin) = url::Url::parse(origin) else {
        return true;
    };
    let authority = match (origin.host_str(), origin.port()) {
        (Some(h), Some(port)) => format!("{h}:{port}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => return true,
    };
    let own_host = host.is_some_and(|h| h.trim().eq_ignore_ascii_case(&authority));
    let public = public_url
        .and_then(|p| url::Url::parse(p).ok())
        .is_some_and(|p| p.origin() == origin.origin());
    !(own_host || public)
}

// Saved cards (issue 25): the checkout page's one-click buttons.

/// The demo shopper's saved cards, as `GET /v1/payment_methods` lists them; none when the
/// gateway cannot say (the page then offers the card form only).
async fn saved_cards(state: &AppState, info: &SandboxInfo) -> Vec<demo::SavedCard> {
    let answer = info
        .http
        .get(format!("{}/v1/payment_methods", state.public_url()))
        .query(&[("customer_reference", demo::DEMO_SHOPPER), ("limit", "5")])
        .bearer_auth(info.merchant_key.expose_secret())
        .send()
        .await;
    match answer {
        Ok(res) if res.status().is_success() => {
            demo::saved_cards(&res.json::<Value>().await.unwrap_or(Value::Null))
        }
        Ok(res) => {
            tracing::warn!(
                status = res.status().as_u16(),
                "the demo could not list its saved cards"
            );
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, "the demo could not list its saved cards");
            Vec::new()
        }
    }
}

/// `POST /demo/pay-saved`: the demo cart paid with a saved card, then 303 to the bank's page
/// (a one-click payment may still be confirmed there) or the result page.
async fn pay_saved(
    state: web::Data<AppState>,
    info: web::Data<SandboxInfo>,
    req: HttpRequest,
    form: web::Form<demo::DemoSavedCardForm>,
) -> HttpResponse {
    let result_url = format!("{}/demo/result", state.public_url());
    let cancel_url = format!("{result_url}?{VIA_CANCEL_URL}=1");
    let shopper_ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let body = demo::saved_card_request_json(
        form.payment_method.trim(),
        &result_url,
        &cancel_url,
        &shopper_ip,
    );
    let answer = info
        .http
        .post(format!("{}/v1/checkouts", state.public_url()))
        .bearer_auth(info.merchant_key.expose_secret())
        .json(&body)
        .send()
        .await;
    let (status, created) = match answer {
        Ok(res) => {
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
        Err(e) => {
            tracing::warn!(error = %e, "the demo could not reach the gateway's API");
            (502, Value::Null)
        }
    };
    if status == 201 {
        return HttpResponse::SeeOther()
            .insert_header((header::LOCATION, demo::next_location(&created, &result_url)))
            .finish();
    }
    let message = if status == 409 {
        "This saved card can no longer be used. Please pay with the card form.".to_owned()
    } else {
        demo::api_error_message(status, &created)
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    render_checkout(&state, &info, code, Some(message), None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: Option<&str> = Some("http://127.0.0.1:8080");

    fn cross(origin: Option<&str>, site: Option<&str>, host: &str) -> bool {
        came_from_another_site(origin, site, Some(host), PUBLIC)
    }

    #[test]
    fn same_origin_posts_pass() {
        let here = "127.0.0.1:8080";
        assert!(!cross(
            Some("http://127.0.0.1:8080"),
            Some("same-origin"),
            here
        ));
        assert!(!cross(Some("null"), Some("same-origin"), here));
        assert!(!cross(None, None, here), "curl says nothing");
        assert!(!cross(Some("http://127.0.0.1:8080"), None, here));
        // Reached by another name than the public URL's: the request's own host.
        assert!(!cross(
            Some("http://localhost:8080"),
            Some("same-origin"),
            "localhost:8080"
        ));
        // Behind a proxy that rewrites Host: the public URL.
        assert!(!cross(
            Some("http://127.0.0.1:8080"),
            Some("same-origin"),
            "10.0.0.5:80"
        ));
        assert!(!cross(Some("http://shop.example"), None, "SHOP.example"));
    }

    #[test]
    fn posts_from_other_sites_are_refused() {
        let here = "127.0.0.1:8080";
        for site in ["cross-site", "same-site", "something-new"] {
            assert!(
                cross(Some("http://127.0.0.1:8080"), Some(site), here),
                "{site}"
            );
            assert!(cross(None, Some(site), here), "{site}");
        }
        assert!(cross(Some("http://evil.example"), None, here));
        assert!(cross(
            Some("http://evil.example"),
            Some("same-origin"),
            here
        ));
        assert!(
            cross(Some("http://127.0.0.1:9999"), None, here),
            "another port"
        );
        assert!(
            cross(Some("https://127.0.0.1:8080"), None, "10.0.0.5"),
            "another scheme"
        );
        assert!(cross(Some("not an origin"), None, here));
    }
}
