//! `/console`: the work queues and the charts of the last 24 hours.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::auth;
use super::charts::{self, Chart, Hour};
use super::checkout_page::Item;
use super::queues::{self, Queue};
use super::render::{self, Chrome};
use crate::domain::checkout::CheckoutId;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::listing::{Cursor, ListQuery, ListReply};

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

/// The 24 hours ending with the current one, oldest first.
fn hour_starts(now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let this_hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    (0..24)
        .rev()
        .map(|i| this_hour - TimeDelta::hours(i))
        .collect()
}

/// The most checkouts the charts read from the listing index.
const CHART_CHECKOUTS: usize = 2_000;

/// The last 24 hours' figures from what the gateway stores: checkouts by outcome and the
/// authorisation rate from the listing index, webhook attempts from the recent events. MSP
/// latency and the outbox's age are not kept per hour.
async fn last_24h(
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<(Vec<Hour>, Option<String>), StoreError> {
    let store = state.flows.store.as_ref();
    let starts = hour_starts(now);
    let first = starts[0];
    let mut hours: Vec<Hour> = starts
        .iter()
        .map(|s| Hour {
            start: *s,
            ..Hour::default()
        })
        .collect();
    let slot = |at: DateTime<Utc>| -> Option<usize> {
        (at >= first)
            .then(|| usize::try_from((at - first).num_hours()).ok())
            .flatten()
            .filter(|i| *i < 24)
    };
    let mut query = ListQuery::first(100, now);
    query.created_gte = Some(first);
    let mut read = 0;
    while read < CHART_CHECKOUTS {
        let ListReply::Page(page) = store.list_checkouts(&query).await? else {
            break;
        };
        read += page.data.len();
        for c in &page.data {
            if let Some(i) = slot(c.created_at) {
                let h = &mut hours[i];
                *h.outcomes.entry(c.status.as_str().to_owned()).or_default() += 1;
                use crate::domain::checkout::CheckoutStatus as S;
                if c.status != S::Created {
                    h.auth_attempts += 1;
                }
                if matches!(
                    c.status,
                    S::Succeeded
                        | S::RequiresCapture
                        | S::PartiallyRefunded
                        | S::Refunded
                        | S::ChargedBack
                ) {
                    h.auth_successes += 1;
                }
            }
        }
        match (page.has_more, page.data.last()) {
            (true, Some(last)) => query.cursor = Some(Cursor::StartingAfter(last.id.clone())),
            _ => break,
        }
    }
    let events = store
        .recent_events(
            None,
            None,
            (first - TimeDelta::days(3), now + TimeDelta::days(1)),
            500,
        )
        .await?;
    for e in &events {
        let mut deliveries: Vec<crate::domain::event::Delivery> =
            e.delivery.iter().cloned().collect();
        deliveries.extend(
            store
                .endpoint_deliveries(&e.event.id)
                .await?
                .into_iter()
                .map(|(_, d)| d),
        );
        for d in deliveries {
            for a in &d.attempts {
                if let Some(i) = slot(a.at) {
                    if a.http_status.is_some_and(|s| (200..300).contains(&s)) {
                        hours[i].webhook_ok += 1;
                    } else {
                        hours[i].webhook_failed += 1;
                    }
                }
            }
        }
    }
    Ok((
        hours,
        Some("MultiSafepay latency and the outbox's age are not recorded per hour by this version: those charts stay empty.".to_owned()),
    ))
}

/// The checkout's MSP calls and notifications as timeline entries, and what could not be shown.
pub async fn activity_items(_state: &AppState, _id: &CheckoutId) -> (Vec<Item>, Vec<String>) {
    (
        Vec::new(),
        vec![
            "the MultiSafepay call log and notification log (not recorded by this version)"
                .to_owned(),
        ],
    )
}
