//! `/console`: the work queues and the charts of the last 24 hours.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use super::auth;
use super::charts::{self, Chart, Hour};
use super::checkout_page::Item;
use super::queues::{self, Queue};
use super::render::{self, Chrome};
use crate::domain::checkout::CheckoutId;
use crate::state::AppState;
use crate::store::StoreError;

#[derive(Template)]
#[template(path = "console_overview.html")]
struct OverviewPage {
    chrome: Chrome,
    queues: Vec<Queue>,
    charts: Vec<Chart>,
    /// Said under the charts when part of their data is not kept.
    charts_note: Option<String>,
}

/// `GET /console`.
pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let session = match auth::require(&state, &req).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let chrome = Chrome::new("Overview", "overview").signed_in(&session);
    let queues = match queues::queues(&state).await {
        Ok(q) => q,
        Err(_) => return render::unavailable(chrome),
    };
    let now = state.flows.clock.now();
    let (hours, charts_note) = match last_24h(&state, now).await {
        Ok(h) => h,
        Err(_) => return render::unavailable(chrome),
    };
    render::html(
        StatusCode::OK,
        &OverviewPage {
            chrome,
            queues,
            charts: charts::charts(&hours),
            charts_note,
        },
    )
}

/// The last 24 hours' figures, as the gateway recorded them (hourly statistics kept in the
/// store, across every instance).
async fn last_24h(
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<(Vec<Hour>, Option<String>), StoreError> {
    let hours = crate::activity::last_24h(state, now).await?;
    let hours = hours
        .into_iter()
        .map(|h| Hour {
            start: h.hour_start,
            outcomes: h.outcomes,
            auth_attempts: h.auth_attempts,
            auth_successes: h.auth_successes,
            msp_p50_ms: h.msp_latency_p50_ms,
            msp_p99_ms: h.msp_latency_p99_ms,
            webhook_ok: h.webhook_ok,
            webhook_failed: h.webhook_failed,
            outbox_age_max_s: h.outbox_age_max_s,
        })
        .collect();
    Ok((hours, None))
}

/// The checkout's MSP calls and notifications as timeline entries (oldest first, as the
/// timeline adds its sources), and what could not be read.
pub async fn activity_items(state: &AppState, id: &CheckoutId) -> (Vec<Item>, Vec<String>) {
    let mut items = Vec::new();
    let mut gaps = Vec::new();
    match crate::activity::msp_calls(state, id).await {
        Ok(calls) => items.extend(calls.into_iter().rev().map(msp_call)),
        Err(_) => gaps.push("the MultiSafepay call log".to_owned()),
    }
    match crate::activity::notifications(state, id).await {
        Ok(notes) => items.extend(notes.into_iter().rev().map(notification)),
        Err(_) => gaps.push("the notification log".to_owned()),
    }
    (items, gaps)
}

fn msp_call(call: crate::activity::MspCallRecord) -> Item {
    let ok = call.outcome == "ok";
    let word = match (call.http_status, call.outcome.as_str()) {
        (Some(status), _) => format!("HTTP {status}"),
        (None, "timeout") => "Timed out".to_owned(),
        (None, _) => "No answer".to_owned(),
    };
    let outcome = match call.outcome.as_str() {
        "ok" => "answered".to_owned(),
        "msp_error" => "MultiSafepay refused it".to_owned(),
        "timeout" => "no answer in time".to_owned(),
        "unreachable" => "MultiSafepay could not be reached".to_owned(),
        other => other.replace('_', " "),
    };
    let mut item = Item::new(
        call.at,
        "MSP call",
        if ok { "ok" } else { "bad" },
        word,
        call.operation.replace('_', " "),
    )
    .detail(format!("took {} ms", call.duration_ms))
    .detail(outcome);
    if let Some(code) = call.msp_error_code {
        item = item.detail(format!("MultiSafepay error code {code}"));
    }
    item
}

fn notification(n: crate::activity::NotificationRecord) -> Item {
    let title = match n.kind.as_str() {
        "post" => "Signed notification (POST)".to_owned(),
        "get" => "Notification ping (GET)".to_owned(),
        other => format!("Notification ({other})"),
    };
    let mut item = Item::new(
        n.at,
        "Notification",
        if n.verified { "ok" } else { "bad" },
        if n.verified { "Verified" } else { "Rejected" },
        title,
    );
    if let Some(reason) = n.reason {
        item = item.detail(format!("why: {reason}"));
    }
    if let Some(status) = n.msp_status {
        item = item.detail(format!("MultiSafepay said {status}"));
    }
    item
}
