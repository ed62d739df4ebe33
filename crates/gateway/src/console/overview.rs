//! `/console`: the work queues and the charts of the last 24 hours.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use super::auth;
use super::charts::{self, Chart, Hour};
use super::queues::{self, Queue};
use super::render::{self, Chrome};
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
