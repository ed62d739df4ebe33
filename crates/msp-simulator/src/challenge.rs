//! The 3-D Secure pages: the `customer_verification` form another origin can serve,
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

/// The look of the simulator's bank pages: a bank's verification page, readable on a phone
/// (the viewport meta tag) and on a desktop. Inline, so the page needs nothing else.
const BANK_STYLE: &str = "\
:root{--ink:#14213d;--muted:#5a6478;--line:#dfe4ec;--bank:#0b5e4a;--bank-dark:#084536;--bg:#eef2f5}\
*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%}\
body{margin:0;background:var(--bg);color:var(--ink);font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}\
main{max-width:440px;margin:0 auto;padding:32px 16px 48px}\
.bank{display:flex;align-items:center;gap:10px;font-weight:700;font-size:17px;color:var(--bank);margin-bottom:16px}\
.bank .mark{width:30px;height:30px;border-radius:8px;background:var(--bank);color:#fff;display:flex;align-items:center;justify-content:center;font-size:16px}\
.card{background:#fff;border:1px solid var(--line);border-radius:14px;padding:24px 22px;box-shadow:0 2px 6px rgba(16,24,40,.06)}\
h1{font-size:22px;line-height:1.3;margin:0 0 8px}\
p{margin:0 0 14px}\
.muted{color:var(--muted)}\
.small{font-size:14px}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:6px 16px;margin:18px 0 22px;padding:14px 16px;background:#f6f8fa;border-radius:10px}\
dt{color:var(--muted)}\
dd{margin:0;font-weight:600;text-align:right;font-variant-numeric:tabular-nums}\
dd.amount{font-size:20px}\
form{display:flex;flex-direction:column;gap:10px}\
button{font:inherit;font-weight:600;font-size:17px;border-radius:10px;padding:14px 18px;cursor:pointer;border:1px solid transparent;width:100%}\
button.confirm{background:var(--bank);color:#fff}\
button.confirm:hover{background:var(--bank-dark)}\
button.reject{background:#fff;color:#a4262c;border-color:#e7b8ba}\
button.reject:hover{background:#fdf1f1}\
button.cancel{background:transparent;color:var(--muted);text-decoration:underline;font-weight:500;font-size:15px;padding:8px}\
.note{margin-top:18px;font-size:13px;color:var(--muted);text-align:center}\
";

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Confirm your payment</title>
<style>{{ style|safe }}</style></head>
<body><main>
<div class="bank"><span class="mark" aria-hidden="true">&#10003;</span>Test Bank · Secure verification</div>
<div class="card">
<h1>Confirm your payment</h1>
<p class="muted">Your bank wants to make sure it is really you paying with this card.</p>
<dl>
<dt>Amount</dt><dd class="amount">{{ amount }}</dd>
<dt>Card</dt><dd>•••• {{ last4 }}</dd>
</dl>
<form method="post" action="{{ action }}">
<button type="submit" name="result" value="Y" class="confirm">Confirm payment</button>
<button type="submit" name="result" value="N" class="reject">Reject payment</button>
<button type="submit" name="result" value="cancel" class="cancel">Cancel and return to the shop</button>
</form>
</div>
<p class="note">Simulated bank for testing: Confirm passes 3-D Secure, Reject fails it. No real card is charged.</p>
</main></body></html>"#
)]
struct ChallengePage<'a> {
    style: &'a str,
    action: &'a str,
    /// The order's amount as money: `€47.45`.
    amount: String,
    last4: &'a str,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ style|safe }}</style></head>
<body><main>
<div class="bank"><span class="mark" aria-hidden="true">&#10003;</span>Test Bank · Secure verification</div>
<div class="card"><h1>{{ title }}</h1><p class="muted">{{ message }}</p></div>
</main></body></html>"#
)]
struct MessagePage<'a> {
    style: &'a str,
    title: &'a str,
    message: &'a str,
}

/// Minor units as money, the way a bank shows an amount: `€47.45`, `$1.00`, `JPY 500`,
/// `KWD 1.250` (ISO 4217 exponents; unknown codes get two decimals).
fn format_money(minor: u64, currency: &str) -> String {
    let exponent: u32 = match currency {
        "JPY" | "KRW" | "ISK" | "CLP" | "VND" | "UGX" | "XAF" | "XOF" | "PYG" | "RWF" => 0,
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" | "IQD" | "LYD" => 3,
        _ => 2,
    };
    let digits = if exponent == 0 {
        minor.to_string()
    } else {
        let scale = 10u64.pow(exponent);
        format!(
            "{}.{:0width$}",
            minor / scale,
            minor % scale,
            width = exponent as usize
        )
    };
    match currency {
        "EUR" => format!("€{digits}"),
        "USD" => format!("${digits}"),
        "GBP" => format!("£{digits}"),
        other => format!("{other} {digits}"),
    }
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
    html(
        status,
        MessagePage {
            style: BANK_STYLE,
            title,
            message,
        }
        .render(),
    )
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
        "Verification not found",
        "We could not find this payment verification. Go back to the shop and start the payment again.",
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
        return message(
            actix_web::http::StatusCode::OK,
            "Verification finished",
            "This payment has already been confirmed, rejected or cancelled. Go back to the shop \
             to see how it went.",
        );
    }
    let page = ChallengePage {
        style: BANK_STYLE,
        action: &action,
        amount: format_money(order.amount, &order.currency),
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
                "Please choose an answer",
                "Go back and press Confirm payment, Reject payment or Cancel.",
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
        Some((None, _)) => message(
            actix_web::http::StatusCode::OK,
            "Verification finished",
            "Your answer was sent to the shop. You can close this page and go back to the shop.",
        ),
        None => unknown_session(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_shown_as_money() {
        assert_eq!(format_money(4745, "EUR"), "€47.45");
        assert_eq!(format_money(5, "EUR"), "€0.05");
        assert_eq!(format_money(100, "USD"), "$1.00");
        assert_eq!(format_money(500, "JPY"), "JPY 500");
        assert_eq!(format_money(1250, "KWD"), "KWD 1.250");
        assert_eq!(format_money(1999, "SEK"), "SEK 19.99");
    }
}
