//! `GET /v1/events`, `GET /v1/events/{id}`, `POST /v1/events/{id}/redeliver`.
//!
//! An event's `delivery` is its delivery to the configured `webhooks.url`; `deliveries` are its
//! deliveries to the webhook endpoints, one per endpoint. Redelivery goes to every
//! destination that should have the event, or with `?endpoint=we_…` to that one.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::auth::Merchant;
use super::listing::{self, DEFAULT_LIMIT, Page};
use super::strict_json::{self, Shape};
use super::to_json;
use super::view::{AttemptView, DeliveryView, MerchantEventView, StoredEventView, timestamp};
use super::{read_body, respond};
use crate::domain::checkout::CheckoutId;
use crate::domain::event::{Delivery, EventId, EventType};
use crate::domain::payment_method::PaymentMethodId;
use crate::domain::validation::FieldError;
use crate::domain::webhook_endpoint::WebhookEndpointId;
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
                            "`type` is an event type such as `checkout.succeeded`, `refund.pending` or `payment_method.saved`: see the list of event types in the API reference",
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
        // One checkout's events, newest first (by version, which is by time), filtered here,
        // with the `payment_method.saved` of the card it saved.
        Some(id) => {
            let mut events = store
                .checkout_events(id)
                .await
                .map_err(ApiError::store_unavailable)?;
            let saved = EventId::of_payment_method(&PaymentMethodId::saved_by(id), 1);
            if let Some(saved) = store
                .event(&saved)
                .await
                .map_err(ApiError::store_unavailable)?
            {
                events.push(saved);
                events.sort_by(|a, b| {
                    (b.event.created_at, &b.event.id).cmp(&(a.event.created_at, &a.event.id))
                });
            }
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
        body: with_deliveries(&state, &stored).await?,
    }))
}

/// An event as `GET /v1/events/{id}` shows it: with `delivery` (to `webhooks.url`) and
/// `deliveries` (one per webhook endpoint).
#[derive(Serialize)]
struct EventWithDeliveries<'a> {
    #[serde(flatten)]
    event: StoredEventView<'a>,
    deliveries: Vec<EndpointDeliveryView<'a>>,
}

#[derive(Serialize)]
struct EndpointDeliveryView<'a> {
    endpoint: &'a str,
    #[serde(flatten)]
    delivery: DeliveryView<'a>,
}

fn delivery_view(d: &Delivery) -> DeliveryView<'_> {
    DeliveryView {
        status: d.status,
        attempts: d
            .attempts
            .iter()
            .map(|a| AttemptView {
                at: timestamp(&a.at),
                http_status: a.http_status,
                error: a.error.as_deref(),
                duration_ms: a.duration_ms,
            })
            .collect(),
        next_attempt_at: d.next_attempt_at.as_ref().map(timestamp),
    }
}

async fn with_deliveries(state: &AppState, stored: &StoredEvent) -> Result<String, ApiError> {
    let deliveries = state
        .flows
        .store
        .endpoint_deliveries(&stored.event.id)
        .await
        .map_err(ApiError::store_unavailable)?;
    Ok(to_json(&EventWithDeliveries {
        event: StoredEventView::new(stored, state.public_url()),
        deliveries: deliveries
            .iter()
            .map(|(endpoint, d)| EndpointDeliveryView {
                endpoint: endpoint.as_str(),
                delivery: delivery_view(d),
            })
            .collect(),
    }))
}

pub async fn redeliver(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &["endpoint"])?;
    let body = read_body(payload, state.settings.server.body_limit_bytes).await?;
    strict_json::check_optional(&body, &REDELIVER_SHAPE)?;
    let id = EventId::parse(&path).map_err(|_| event_not_found())?;
    let mut only = None;
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if name == "endpoint" {
            only = Some(WebhookEndpointId::parse(&value).map_err(|_| {
                FieldError::new(
                    "endpoint",
                    ErrorCode::InvalidParameter,
                    "`endpoint` is a webhook endpoint id (`we_` followed by 32 hex digits) from GET /v1/webhook_endpoints",
                )
            })?);
        }
    }
    let store = &state.flows.store;
    let now = state.flows.clock.now();
    let endpoints = store
        .endpoints()
        .await
        .map_err(ApiError::store_unavailable)?;
    let targets: Vec<WebhookEndpointId> = match only {
        Some(endpoint) => {
            if !endpoints.iter().any(|e| e.id == endpoint) {
                return Err(ApiError::new(
                    ErrorCode::ResourceMissing,
                    "No such webhook endpoint: check `endpoint` against GET /v1/webhook_endpoints.",
                )
                .with_param("endpoint"));
            }
            vec![endpoint]
        }
        None => {
            if !state.flows.settings.deliver_webhooks && endpoints.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::WebhooksNotConfigured,
                    "Nowhere to deliver to: no webhook URL is configured and there are no webhook endpoints. Make one with POST /v1/webhook_endpoints (or set webhooks.url and webhooks.secrets and restart the gateway).",
                ));
            }
            if state.flows.settings.deliver_webhooks {
                store
                    .redeliver(&id, now)
                    .await
                    .map_err(ApiError::store_unavailable)?
                    .ok_or_else(event_not_found)?;
            }
            // Every endpoint that had it and is still there and enabled.
            let had = store
                .endpoint_deliveries(&id)
                .await
                .map_err(ApiError::store_unavailable)?;
            had.into_iter()
                .map(|(endpoint, _)| endpoint)
                .filter(|e| endpoints.iter().any(|x| x.id == *e && !x.disabled()))
                .collect()
        }
    };
    for endpoint in &targets {
        store
            .redeliver_to_endpoint(&id, endpoint, now)
            .await
            .map_err(ApiError::store_unavailable)?
            .ok_or_else(event_not_found)?;
    }
    state.flows.outbox.ring(id.owner());
    let stored = store
        .event(&id)
        .await
        .map_err(ApiError::store_unavailable)?
        .ok_or_else(event_not_found)?;
    Ok(respond(StoredResponse {
        status: StatusCode::ACCEPTED.as_u16(),
        body: with_deliveries(&state, &stored).await?,
    }))
}

fn event_not_found() -> ApiError {
    ApiError::new(
        ErrorCode::ResourceMissing,
        "No such event: check the id (`evt_…`) from GET /v1/events or the webhook's `Gateway-Event-Id`.",
    )
    .with_param("id")
}
