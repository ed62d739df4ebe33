//! The 3-D Secure pages (design §8): the `customer_verification` form another origin can serve,
//! and the challenge page at `payment_url` where a person or a test answers `Y`, `N` or `cancel`.
//! Pages are askama templates, so every value placed in them is escaped.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::Sim;
use super::orders::{Answer, Status};

/// `customer_verification.html`: state in a hidden field (no cookies, no card data), submitted by
/// one inline script (no inline event handlers), with a button for browsers without JavaScript.
#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>3-D Secure</title></head>
<body>
<form id="msp-3ds" method="post" action="{{ action }}">
<input type="hidden" name="session" value="{{ session }}">
<noscript><p>Your bank needs to confirm this payment.</p><button type="submit">Continue</button></noscript>
</form>
<script>document.getElementById("msp-3ds").submit();</script>
</body></html>"#
)]
struct VerificationForm<'a> {
    action: &'a str,
    session: &'a str,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>3-D Secure challenge (simulated)</title></head>
<body>
<h1>3-D Secure challenge</h1>
<p>MultiSafepay simulator. Order {{ order_id }}: {{ amount }} (minor units) {{ currency }}, card ending {{ last4 }}.</p>
<form method="post" action="{{ action }}">
<button type="submit" name="result" value="Y">Authenticate (Y)</button>
<button type="submit" name="result" value="N">Fail authentication (N)</button>
<button type="submit" name="result" value="cancel">Cancel</button>
</form>
</body></html>"#
)]
struct ChallengePage<'a> {
    action: &'a str,
    order_id: &'a str,
    amount: u64,
    currency: &'a str,
    last4: &'a str,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body><h1>{{ title }}</h1><p>{{ message }}</p></body></html>"#
)]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

fn html(status: actix_web::http::StatusCode, body: Result<String, askama::Error>) -> HttpResponse {
    match body {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            // A challenge is answered once; a cached copy would offer stale buttons.
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error.message = %e, "rendering a simulator page failed");
            HttpResponse::InternalServerError().body("The simulator could not render this page.")
        }
    }
}

fn message(status: actix_web::http::StatusCode, title: &str, message: &str) -> HttpResponse {
    html(status, MessagePage { title, message }.render())
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

pub(crate) fn session_url(sim: &Sim, session: &str) -> String {
    format!("{}/sim/3ds/{session}", sim.base_url)
}

/// The `customer_verification.html` for a challenge session.
pub(crate) fn verification_html(sim: &Sim, session: &str) -> Result<String, askama::Error> {
    let action = format!("{}/sim/3ds", sim.base_url);
    VerificationForm {
        action: &action,
        session,
    }
    .render()
}

#[derive(Deserialize)]
pub(crate) struct StartForm {
    session: String,
}

/// `POST /sim/3ds`: the verification form arrives here, from wherever it was served.
pub(crate) async fn start(sim: web::Data<Sim>, form: web::Form<StartForm>) -> HttpResponse {
    if sim
        .sessions
        .shard(&form.session)
        .contains_key(&form.session)
    {
        see_other(&session_url(&sim, &form.session))
    } else {
        unknown_session()
    }
}

fn unknown_session() -> HttpResponse {
    message(
        actix_web::http::StatusCode::NOT_FOUND,
        "Unknown 3-D Secure session",
        "This challenge does not exist on this simulator. Start the payment again.",
    )
}

/// `GET /sim/3ds/{session}`: the challenge page, or what became of the order.
pub(crate) async fn page(sim: web::Data<Sim>, path: web::Path<String>) -> HttpResponse {
    let session = path.into_inner();
    let Some(key) = sim.sessions.shard(&session).get(&session).cloned() else {
        return unknown_session();
    };
    let action = session_url(&sim, &session);
    let shard = sim.orders.shard(&key);
    let Some(order) = shard.get(&key) else {
        return unknown_session();
    };
    if order.status != Status::Initialized {
        let text = format!(
            "This challenge is over: the order is {}.",
            order.status.as_str()
        );
        return message(actix_web::http::StatusCode::OK, "3-D Secure", &text);
    }
    let page = ChallengePage {
        action: &action,
        order_id: &order.order_id,
        amount: order.amount,
        currency: &order.currency,
        last4: &order.card.last4,
    }
    .render();
    html(actix_web::http::StatusCode::OK, page)
}

#[derive(Deserialize)]
pub(crate) struct AnswerForm {
    result: String,
}

/// `POST /sim/3ds/{session}`: changes the order, then sends the shopper back to the merchant.
pub(crate) async fn answer(
    sim: web::Data<Sim>,
    path: web::Path<String>,
    form: web::Form<AnswerForm>,
) -> HttpResponse {
    let session = path.into_inner();
    let answer = match form.result.as_str() {
        "Y" => Answer::Authenticated,
        "N" => Answer::Failed,
        "cancel" => Answer::Cancelled,
        _ => {
            return message(
                actix_web::http::StatusCode::BAD_REQUEST,
                "Unknown answer",
                "Answer Y, N or cancel.",
            );
        }
    };
    let Some(key) = sim.sessions.shard(&session).get(&session).cloned() else {
        return unknown_session();
    };
    let now = sim.clock.naive_now();
    let changed = sim.change(&key, |order| order.answer_challenge(answer, now));
    match changed {
        None => return unknown_session(),
        Some(Ok(Some(then_complete))) => sim.schedule_clearing(key.clone(), then_complete),
        // Answered already (a second click, the back button): send the shopper on anyway.
        Some(Ok(None)) | Some(Err(_)) => {}
    }
    let target = sim.orders.shard(&key).get(&key).map(|o| {
        let url = match o.status {
            Status::Completed | Status::Authorized | Status::Uncleared => {
                o.options.redirect_url.clone()
            }
            _ => o.options.cancel_url.clone(),
        };
        (
            url.map(|u| super::with_transaction_id(u, &o.order_id)),
            o.status,
        )
    });
    match target {
        Some((Some(url), _)) => see_other(&url),
        Some((None, status)) => message(
            actix_web::http::StatusCode::OK,
            "3-D Secure",
            &format!(
                "The order is {}. The merchant gave no URL to return to.",
                status.as_str()
            ),
        ),
        None => unknown_session(),
    }
}
