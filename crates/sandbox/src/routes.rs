//! The demo storefront's routes. The demo is a shop like any other: its server side calls the
//! gateway's public API over HTTP with the merchant key, and sends the browser to `next_action`.
//!
//! - `GET /demo`: the cart and a plain card form (works without JavaScript and cookies).
//! - `POST /demo/checkout`: `POST /v1/checkouts`, then 303 to the pay link or the result page.
//! - `GET /demo/result?checkout_id=…&status=…`: where the gateway sends the browser back;
//!   shows the final status and the checkout's events.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Datelike;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;

use super::SandboxInfo;
use super::demo::{self, DemoCheckoutForm, DemoCheckoutPage, DemoResultPage};
use gateway::browser::security::{browser_security_headers, gateway_page_csp_with_form_targets};
use gateway::startup::AppState;

/// Mounts the demo's routes, with `info` as their app data.
pub fn configure(cfg: &mut web::ServiceConfig, info: web::Data<SandboxInfo>) {
    cfg.app_data(info)
        .service(
            web::resource("/demo")
                .wrap(from_fn(browser_security_headers))
                .route(web::get().to(checkout_page)),
        )
        .service(
            web::resource("/demo/checkout")
                .wrap(from_fn(browser_security_headers))
                .route(web::post().to(submit)),
        )
        .service(
            web::resource("/demo/result")
                .wrap(from_fn(browser_security_headers))
                .route(web::get().to(result)),
        );
}

async fn checkout_page(state: web::Data<AppState>, info: web::Data<SandboxInfo>) -> HttpResponse {
    render_checkout(&state, &info, StatusCode::OK, None)
}

/// The checkout page. Its `form-action` lists the simulator too: Chrome applies `form-action`
/// to the redirects after a submission (demo → /pay → MSP's 3-D Secure page).
fn render_checkout(
    state: &AppState,
    info: &SandboxInfo,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let exp_year = state.flows.clock.now().year() + 4;
    let origins = [info.simulator_origin.as_str()];
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            gateway_page_csp_with_form_targets(&origins),
        ))
        .body(demo::checkout_page(&DemoCheckoutPage { exp_year, error }))
}

async fn submit(
    state: web::Data<AppState>,
    info: web::Data<SandboxInfo>,
    req: HttpRequest,
    form: web::Form<DemoCheckoutForm>,
) -> HttpResponse {
    let result_url = format!("{}/demo/result", state.public_url());
    let shopper_ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let body = demo::to_checkout_request_json(&form, &result_url, &shopper_ip);
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
            let message = "The gateway's API did not answer. Try again in a moment.".to_owned();
            return render_checkout(&state, &info, StatusCode::BAD_GATEWAY, Some(message));
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
        )
    }
}

#[derive(Deserialize)]
struct ResultQuery {
    checkout_id: String,
}

async fn result(
    state: web::Data<AppState>,
    info: web::Data<SandboxInfo>,
    query: web::Query<ResultQuery>,
) -> HttpResponse {
    // Only our own ids go into the URL below.
    let Ok(id) = gateway::domain::checkout::CheckoutId::parse(&query.checkout_id) else {
        return gateway::browser::respond::error_response(
            StatusCode::NOT_FOUND,
            "Unknown checkout",
            "This demo checkout does not exist. Start a new one from /demo.",
        );
    };
    let get = |path: String| {
        info.http
            .get(format!("{}{path}", state.public_url()))
            .bearer_auth(info.merchant_key.expose_secret())
            .send()
    };
    let checkout = match get(format!("/v1/checkouts/{id}")).await {
        Ok(res) if res.status().is_success() => res.json::<Value>().await.unwrap_or(Value::Null),
        _ => {
            return gateway::browser::respond::error_response(
                StatusCode::NOT_FOUND,
                "Unknown checkout",
                "This demo checkout could not be loaded. Start a new one from /demo.",
            );
        }
    };
    let events = match get(format!("/v1/checkouts/{id}/events")).await {
        Ok(res) => res
            .json::<Value>()
            .await
            .unwrap_or(Value::Array(Vec::new())),
        Err(_) => Value::Array(Vec::new()),
    };
    let refresh_url = format!("/demo/result?checkout_id={id}");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(demo::result_page(&DemoResultPage::from_api(
            &checkout,
            &events,
            &refresh_url,
        )))
}
