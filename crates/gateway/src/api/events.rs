//! `GET /v1/events`, `GET /v1/events/{id}`, `POST /v1/events/{id}/redeliver` (design §12).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::auth::Merchant;
use super::checkouts::to_json;
use super::listing::{self, DEFAULT_LIMIT, Page};
use super::strict_json::{self, Shape};
use super::view::{MerchantEventView, StoredEventView};
use super::{read_body, respond};
use crate::domain::checkout::CheckoutId;
use crate::domain::event::{EventId, EventType};
use crate::domain::validation::FieldError;
use crate::errors::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::store::{StoredEvent, StoredResponse};

static REDELIVER_SHAPE: Shape = Shape::Object(&[]);

/// `GET /v1/events?type=&checkout_id=&limit=&starting_after=`, newest first.
#[derive(Debug)]
pub struct EventQuery {
    pub kind: Option<EventType>,
    pub checkout: Option<CheckoutId>,
    pub limit: usize,
    pub starting_after: Option<EventId>,
}

impl EventQuery {
    fn parse(query: &str) -> Result<Self, FieldError> {
        strict_json::check_query(query, &["type", "checkout_id", "limit", "starting_after"])?;
        let mut parsed = EventQuery {
            kind: None,
            checkout: None,
            limit: DEFAULT_LIMIT,
            starting_after: None,
        };
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "type" => {
                    parsed.kind = Some(EventType::parse(&value).ok_or_else(|| {
                        FieldError::new(
                            "type",
                            ErrorCode::InvalidParameter,
                            "`type` is an event type such as `checkout.succeeded` or `refund.pending`: `checkout.` or `refund.` followed by one of that object's statuses",
                        )
                    })?)
                }
                "checkout_id" => {
                    parsed.checkout = Some(CheckoutId::parse(&value).map_err(|_| {
                        FieldError::new(
                            "checkout_id",
                            ErrorCode::InvalidParameter,
                            "`checkout_id` is a checkout id: `chk_` followed by 32 hex digits",
                        )
                    })?)
                }
                "limit" => parsed.limit = listing::limit(&value)?,
                "starting_after" => {
                    parsed.starting_after = Some(EventId::parse(&value).map_err(|_| {
                        FieldError::new(
                            "starting_after",
                            ErrorCode::InvalidParameter,
                            "`starting_after` is the id of the last event of the previous page (`evt_…`)",
                        )
                    })?)
                }
                _ => {}
            }
        }
        Ok(parsed)
    }
}

pub async fn list(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = EventQuery::parse(req.query_string())?;
    let (events, has_more) = page(&state, &query).await?;
    let body = to_json(&Page {
        data: events
            .iter()
            .map(|e| MerchantEventView::new(&e.event, state.public_url()))
            .collect(),
        has_more,
    });
    Ok(respond(StoredResponse { status: 200, body }))
}

/// One page of events, newest first, and whether there are more after it.
async fn page(state: &AppState, query: &EventQuery) -> Result<(Vec<StoredEvent>, bool), ApiError> {
    let store = &state.flows.store;
    let cursor = match &query.starting_after {
        None => None,
        Some(id) => {
            let stored = store
                .event(id)
                .await
                .map_err(ApiError::store_unavailable)?
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidParameter,
                        "`starting_after` names no stored event: pass the id of the last event of the page you have",
                    )
                    .with_param("starting_after")
                })?;
            Some((stored.event.created_at, id))
        }
    };
    let mut events = match &query.checkout {
        // One checkout's events, newest first (by version, which is by time), filtered here.
        Some(id) => {
            let mut events = store
                .checkout_events(id)
                .await
                .map_err(ApiError::store_unavailable)?;
            events.retain(|e| {
                query.kind.is_none_or(|k| e.event.kind == k)
                    && cursor
                        .is_none_or(|(at, after)| (e.event.created_at, &e.event.id) < (at, after))
            });
            events
        }
        // Every checkout's: the store's index pages by (time, id) past the cursor; an entry's
        // type is a hint the stored event confirms.
        None => {
            let now = state.flows.clock.now();
            let retention = crate::clock::seconds(state.settings.checkout.retention_s);
            let mut events = store
                .recent_events(query.kind, cursor, (now - retention, now), query.limit + 1)
                .await
                .map_err(ApiError::store_unavailable)?;
            events.retain(|e| query.kind.is_none_or(|k| e.event.kind == k));
            events
        }
    };
    let has_more = events.len() > query.limit;
    events.truncate(query.limit);
    Ok((events, has_more))
}

pub async fn get(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let id = EventId::parse(&path).map_err(|_| event_not_found())?;
    let stored = state
        .flows
        .store
        .event(&id)
        .await
        .map_err(ApiError::store_unavailable)?
        .ok_or_else(event_not_found)?;
    Ok(respond(StoredResponse {
        status: 200,
        body: to_json(&StoredEventView::new(&stored, state.public_url())),
    }))
}

pub async fn redeliver(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let body = read_body(payload, state.settings.server.body_limit_bytes).await?;
    strict_json::check_optional(&body, &REDELIVER_SHAPE)?;
    let id = EventId::parse(&path).map_err(|_| event_not_found())?;
    if !state.flows.settings.deliver_webhooks {
        return Err(ApiError::new(
            ErrorCode::WebhooksNotConfigured,
            "No webhook URL is configured, so there is nowhere to deliver to: set webhooks.url and webhooks.secrets and restart the gateway.",
        ));
    }
    let store = &state.flows.store;
    store
        .redeliver(&id, state.flows.clock.now())
        .await
        .map_err(ApiError::store_unavailable)?
        .ok_or_else(event_not_found)?;
    state.flows.outbox.ring(&id.checkout_id());
    let stored = store
        .event(&id)
        .await
        .map_err(ApiError::store_unavailable)?
        .ok_or_else(event_not_found)?;
    Ok(respond(StoredResponse {
        status: StatusCode::ACCEPTED.as_u16(),
        body: to_json(&StoredEventView::new(&stored, state.public_url())),
    }))
}

fn event_not_found() -> ApiError {
    ApiError::new(
        ErrorCode::ResourceMissing,
        "No such event: check the id (`evt_` followed by 42 hex digits) from GET /v1/events or the webhook's `Gateway-Event-Id`.",
    )
    .with_param("id")
}
