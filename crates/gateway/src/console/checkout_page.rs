//! `GET /console/checkouts/{id}`: a checkout's facts and one timeline, newest first, of
//! everything that happened to it: every transition with its source, the MSP calls made for it
//! and the notifications received, refunds, captures, disputes with their due dates, saved-card
//! use, every webhook attempt per destination (with Redeliver), and the console's own actions.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::{self, Session};
use super::render::{self, Chrome};
use super::view::{self, Tone};
use crate::domain::checkout::{Checkout, CheckoutEvent, CheckoutId, CheckoutStatus, EventSource};
use crate::domain::event::Delivery;
use crate::domain::webhook_endpoint::WebhookEndpoint;
use crate::state::AppState;
use crate::store::console::ConsoleSlot;
use crate::store::{StoreError, StoredEvent};

/// The console actions kept per checkout (the newest).
pub const ACTIONS_KEPT: usize = 100;

/// One action an operator took, as recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Action {
    #[serde(with = "crate::domain::time::rfc3339")]
    pub at: DateTime<Utc>,
    /// The console key's label.
    pub by: String,
    /// What was asked, in words.
    pub what: String,
    /// What came of it, in words.
    pub outcome: String,
    /// Whether it did what was asked.
    pub ok: bool,
}

/// A button on a timeline entry: redeliver one event to one destination.
pub struct Redeliver {
    pub event: String,
    /// `url` (the configured `webhooks.url`) or a webhook endpoint id.
    pub target: String,
}

/// One entry of the timeline.
pub struct Item {
    pub at: DateTime<Utc>,
    pub when: String,
    /// What kind of thing happened: "Status", "Refund", "Webhook", …
    pub kind: &'static str,
    pub tone: Tone,
    pub word: String,
    pub title: String,
    pub details: Vec<String>,
    pub redeliver: Option<Redeliver>,
}

impl Item {
    pub(super) fn new(
        at: DateTime<Utc>,
        kind: &'static str,
        tone: Tone,
        word: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        Self {
            at,
            when: view::time(at),
            kind,
            tone,
            word: word.into(),
            title: title.into(),
            details: Vec::new(),
            redeliver: None,
        }
    }

    pub(super) fn detail(mut self, d: impl Into<String>) -> Self {
        let d = d.into();
        if !d.is_empty() {
            self.details.push(d);
        }
        self
    }
}

#[derive(Template)]
#[template(path = "console_checkout.html")]
struct CheckoutPage {
    chrome: Chrome,
    id: String,
    tone: Tone,
    word: &'static str,
    amount: String,
    facts: Vec<(String, String)>,
    notice: Option<(Tone, String)>,
    items: Vec<Item>,
    /// Said when a part of the timeline could not be read.
    gaps: Vec<String>,
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    done: String,
}

fn source_word(s: EventSource) -> &'static str {
    match s {
        EventSource::Create => "the create request",
        EventSource::Notification => "a MultiSafepay notification",
        EventSource::BrowserReturn => "the shopper's return",
        EventSource::Refresh => "a sync with MultiSafepay",
        EventSource::Reconcile => "the reconciler",
        EventSource::Expiry => "the 3-D Secure window ending",
        EventSource::Api => "a merchant API request",
    }
}

/// The page of an unknown or malformed checkout id.
pub fn unknown(session: &Session) -> HttpResponse {
    render::message(
        StatusCode::NOT_FOUND,
        Chrome::new("Unknown checkout", "search").signed_in(session),
        "There is no such checkout",
        "No checkout has this id. It may have passed its retention period, or the id is mistyped. Nothing was done.",
        Some(("/console/search", "Search for a checkout")),
    )
}

/// `GET /console/checkouts/{id}`.
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let session = match auth::require(&state, &req).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Ok(id) = CheckoutId::parse(&path) else {
        return unknown(&session);
    };
    let chrome = Chrome::new(format!("Checkout {id}"), "search").signed_in(&session);
    let checkout = match state.flows.store.get(&id).await {
        Ok(Some(v)) => v.checkout,
        Ok(None) => return unknown(&session),
        Err(_) => return render::unavailable(chrome),
    };
    let done = web::Query::<PageQuery>::from_query(req.query_string())
        .map(|q| q.into_inner().done)
        .unwrap_or_default();
    let notice = match done.as_str() {
        "sync" => Some((
            "ok",
            format!(
                "Synced with MultiSafepay: the checkout is now {}.",
                view::checkout_status(checkout.status).1.to_lowercase()
            ),
        )),
        "sync-failed" => Some((
            "bad",
            "MultiSafepay could not be asked just now; nothing changed. Try again in a minute."
                .to_owned(),
        )),
        "redeliver" => Some((
            "ok",
            "Redelivery queued: the attempt shows in the timeline once it is made.".to_owned(),
        )),
        _ => None,
    };
    let (items, gaps) = timeline(&state, &checkout).await;
    let (tone, word) = view::checkout_status(checkout.status);
    html_page(CheckoutPage {
        chrome,
        id: id.to_string(),
        tone,
        word,
        amount: view::amount(checkout.amount, checkout.currency),
        facts: facts(&checkout, state.flows.clock.now()),
        notice,
        items,
        gaps,
    })
}

fn html_page(page: CheckoutPage) -> HttpResponse {
    render::html(StatusCode::OK, &page)
}

fn facts(c: &Checkout, now: DateTime<Utc>) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: String| {
        if !v.is_empty() {
            f.push((k.to_owned(), v));
        }
    };
    add("Reference", c.reference.clone().unwrap_or_default());
    add("Description", c.description.clone());
    add(
        "Card",
        format!(
            "{} •••• {} (expires {:02}/{})",
            view::brand(&c.card.brand),
            c.card.last4,
            c.card.exp_month,
            c.card.exp_year
        ),
    );
    add(
        "MSP transaction",
        c.psp.transaction_id.clone().unwrap_or_default(),
    );
    add("MSP status", c.psp.status.clone().unwrap_or_default());
    add("Created", view::time(c.created_at));
    add("Last change", view::time(c.updated_at));
    add("Capture", c.capture_method.as_str().to_owned());
    if let Some(by) = c.capture_before {
        add(
            "Capture before",
            format!("{} ({})", view::time(by), view::relative(by, now)),
        );
    }
    if let Some(captured) = c.amount_captured {
        add("Captured", view::amount(captured, c.currency));
    }
    if !c.refunds.is_empty() {
        add("Refunded", view::amount(c.refunded(), c.currency));
        let pending: i64 = c
            .refunds
            .iter()
            .filter(|r| r.status == crate::domain::refund::RefundStatus::Pending)
            .map(|r| r.amount.value())
            .sum();
        if pending > 0
            && let Ok(pending) = crate::domain::money::MinorUnits::new(pending)
        {
            add("Refunds pending", view::amount(pending, c.currency));
        }
    }
    if matches!(
        c.status,
        CheckoutStatus::RequiresAction | CheckoutStatus::Processing
    ) {
        add(
            "3-D Secure window ends",
            format!(
                "{} ({})",
                view::time(c.expires_at),
                view::relative(c.expires_at, now)
            ),
        );
    }
    if let Some(failure) = &c.failure {
        add("Why it failed", failure.message.clone());
    }
    f
}

/// The timeline, newest first, and what could not be read.
pub async fn timeline(state: &AppState, c: &Checkout) -> (Vec<Item>, Vec<String>) {
    let store = state.flows.store.as_ref();
    let mut items = Vec::new();
    let mut gaps = Vec::new();
    match store.events(&c.id).await {
        Ok(events) => items.extend(events.iter().map(|e| transition(c, e))),
        Err(_) => gaps.push("the status changes".to_owned()),
    }
    for r in &c.refunds {
        let (tone, word) = view::refund_status(r.status);
        let mut item = Item::new(
            r.created_at,
            "Refund",
            tone,
            word,
            format!(
                "Refund of {} ({})",
                view::amount(r.amount, c.currency),
                r.id
            ),
        )
        .detail(format!("last change {}", view::time(r.updated_at)));
        if let Some(reason) = r.reason {
            item = item.detail(format!("reason: {}", reason.as_str().replace('_', " ")));
        }
        if let Some(f) = &r.failure {
            item = item.detail(f.message.clone());
        }
        items.push(item);
    }
    for d in &c.disputes {
        let (tone, word) = view::dispute_status(d.status);
        let mut item = Item::new(
            d.created_at,
            "Dispute",
            tone,
            word,
            format!(
                "Dispute of {} ({})",
                view::amount(d.amount, c.currency),
                d.id
            ),
        );
        if let Some(by) = d.respond_by {
            item = item.detail(format!(
                "respond by {} ({})",
                view::time(by),
                view::relative(by, state.flows.clock.now())
            ));
        }
        if !d.reason.is_empty() {
            item = item.detail(format!("reason: {}", d.reason));
        }
        if let Some(at) = d.evidence_submitted_at {
            item = item.detail(format!("evidence sent {}", view::time(at)));
        }
        items.push(item);
    }
    if let Some(pm) = &c.saved_card.payment_method {
        let paying = c.saved_card.save.is_none();
        let title = if paying {
            format!("Paid with saved card {pm}")
        } else {
            format!("Card saved as {pm}")
        };
        items.push(Item::new(
            c.created_at,
            "Saved card",
            "info",
            "Saved card",
            title,
        ));
    } else if let Some(usage) = c.saved_card.save {
        items.push(
            Item::new(
                c.created_at,
                "Saved card",
                "muted",
                "To save",
                "Asked to save the card",
            )
            .detail(format!("for {}", usage.as_str().replace('_', " "))),
        );
    }
    match webhook_items(state, c).await {
        Ok(w) => items.extend(w),
        Err(_) => gaps.push("the webhook deliveries".to_owned()),
    }
    match actions(state, &c.id).await {
        Ok(a) => items.extend(a.into_iter().rev().map(|a| {
            Item::new(
                a.at,
                "Console",
                if a.ok { "info" } else { "bad" },
                if a.ok { "Done" } else { "Not done" },
                format!("{} by {}", a.what, a.by),
            )
            .detail(a.outcome)
        })),
        Err(_) => gaps.push("the console's actions".to_owned()),
    }
    let (activity, activity_gaps) = activity_items(state, &c.id).await;
    items.extend(activity);
    gaps.extend(activity_gaps);
    // Newest first. Every source above is added oldest first, so that entries of one instant
    // (a create and MSP's answer within a millisecond) come newest first too.
    let mut numbered: Vec<(usize, Item)> = items.into_iter().enumerate().collect();
    numbered.sort_by(|(i, a), (j, b)| b.at.cmp(&a.at).then(j.cmp(i)));
    (numbered.into_iter().map(|(_, item)| item).collect(), gaps)
}

/// The checkout's MSP calls and notifications as timeline entries (oldest first, as the
/// timeline adds its sources), and what could not be read.
async fn activity_items(state: &AppState, id: &CheckoutId) -> (Vec<Item>, Vec<String>) {
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

fn transition(c: &Checkout, e: &CheckoutEvent) -> Item {
    let (tone, word) = view::checkout_status(e.to);
    let title = match e.from {
        None => "Checkout created".to_owned(),
        Some(CheckoutStatus::RequiresCapture) if e.to == CheckoutStatus::Succeeded => {
            match c.amount_captured {
                Some(a) => format!("Captured {}", view::amount(a, c.currency)),
                None => "Captured".to_owned(),
            }
        }
        Some(from) => format!("{} → {}", view::checkout_status(from).1, word),
    };
    let kind =
        if e.from == Some(CheckoutStatus::RequiresCapture) && e.to == CheckoutStatus::Succeeded {
            "Capture"
        } else {
            "Status"
        };
    let mut item =
        Item::new(e.at, kind, tone, word, title).detail(format!("by {}", source_word(e.source)));
    if let Some(s) = &e.psp_status {
        item = item.detail(format!("MultiSafepay said {s}"));
    }
    item
}

async fn actions(state: &AppState, id: &CheckoutId) -> Result<Vec<Action>, StoreError> {
    let raw = state
        .flows
        .store
        .console_list(ConsoleSlot::Actions(id), ACTIONS_KEPT)
        .await?;
    Ok(raw
        .iter()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect())
}

/// Records an operator's action on a checkout. A failure to record is logged; the action
/// stands.
pub async fn record_action(state: &AppState, id: &CheckoutId, action: &Action) {
    let Ok(json) = serde_json::to_string(action) else {
        return;
    };
    let ttl = std::time::Duration::from_secs(state.settings.checkout.retention_s);
    if let Err(e) = state
        .flows
        .store
        .console_push(ConsoleSlot::Actions(id), &json, ACTIONS_KEPT, ttl)
        .await
    {
        tracing::warn!(checkout_id = %id, error = %e, "could not record a console action");
    }
    tracing::info!(checkout_id = %id, console_key = %action.by, action = %action.what, outcome = %action.outcome, "console action");
}

fn endpoint_name(endpoints: &[WebhookEndpoint], id: &str) -> String {
    match endpoints.iter().find(|e| e.id.as_str() == id) {
        Some(e) => match &e.description {
            Some(d) if !d.is_empty() => format!("endpoint {d} ({id})"),
            _ => format!("endpoint {id}"),
        },
        None => format!("endpoint {id} (deleted)"),
    }
}

async fn webhook_items(state: &AppState, c: &Checkout) -> Result<Vec<Item>, StoreError> {
    let store = state.flows.store.as_ref();
    let events = store.checkout_events(&c.id).await?;
    let endpoints = store.endpoints().await.unwrap_or_default();
    let mut items = Vec::new();
    // Oldest first, as the timeline adds its sources.
    for StoredEvent { event, delivery } in events.into_iter().rev() {
        let kind = event.kind.to_string();
        if let Some(d) = delivery {
            items.extend(attempts(
                &kind,
                event.id.as_str(),
                "url",
                "the shop's webhook URL",
                &d,
            ));
        }
        for (endpoint, d) in store.endpoint_deliveries(&event.id).await? {
            let name = endpoint_name(&endpoints, endpoint.as_str());
            items.extend(attempts(
                &kind,
                event.id.as_str(),
                endpoint.as_str(),
                &name,
                &d,
            ));
        }
    }
    Ok(items)
}

/// One entry per attempt of a delivery; the newest carries the Redeliver button.
fn attempts(kind: &str, event: &str, target: &str, to: &str, d: &Delivery) -> Vec<Item> {
    let mut items: Vec<Item> = d
        .attempts
        .iter()
        .map(|a| {
            let (tone, word) = view::http_status(a.http_status);
            let mut item = Item::new(a.at, "Webhook", tone, word, format!("{kind} to {to}"))
                .detail(format!("took {} ms", a.duration_ms));
            if let Some(e) = &a.error {
                item = item.detail(e.clone());
            }
            item
        })
        .collect();
    if let Some(last) = items.last_mut() {
        let (_, status) = view::delivery_status(d.status);
        last.details
            .push(format!("delivery: {}", status.to_lowercase()));
        if let Some(next) = d.next_attempt_at {
            last.details
                .push(format!("next attempt {}", view::time(next)));
        }
        last.redeliver = Some(Redeliver {
            event: event.to_owned(),
            target: target.to_owned(),
        });
    }
    items
}
