//! `/v1/webhook_endpoints`: the merchant's own webhook endpoints, beside the
//! configured `webhooks.url`. Create (201, with the `secret`, shown only there and by
//! `rotate_secret`), list (a page, newest first), get, `PATCH` (`url`, `events`, `description`,
//! `disabled`), `DELETE` (200 with the endpoint), `POST …/rotate_secret` (the old secret signs
//! beside the new one for 24 h).
//!
//! Every change is one compare-and-set on the stored endpoint ([`WebhookEndpoints`](crate::store::WebhookEndpoints)), read
//! again and decided again when another change came first. A URL is checked by the
//! [`AddressGuard`](crate::webhooks::address::AddressGuard) before anything is written.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::auth::Merchant;
use super::idempotency::{self, IdempotencyKey};
use super::listing::{self, DEFAULT_LIMIT};
use super::strict_json::{self, Shape};
use super::to_json;
use super::view::timestamp;
use super::{json_resource, read_body, respond};
use crate::domain::validation::FieldError;
use crate::domain::webhook_endpoint::{
    DisabledReason, EventFilter, MAX_ENDPOINTS, WebhookEndpoint, WebhookEndpointId,
    parse_description,
};
use crate::errors::{self, ApiError, ErrorCode};
use crate::state::AppState;
use crate::store::StoredResponse;
use crate::store::endpoints::PutReply;

/// Compare-and-set attempts before giving up (503, retry-safe).
const MAX_CAS_ATTEMPTS: usize = 8;

static CREATE_SHAPE: Shape = Shape::Object(&[
    ("url", Shape::String),
    ("events", Shape::Array(&Shape::String)),
    ("description", Shape::String),
]);

static UPDATE_SHAPE: Shape = Shape::Object(&[
    ("url", Shape::String),
    ("events", Shape::Array(&Shape::String)),
    ("description", Shape::String),
    ("disabled", Shape::Boolean),
]);

static ROTATE_SHAPE: Shape = Shape::Object(&[]);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        json_resource("/v1/webhook_endpoints")
            .route(web::post().to(create))
            .route(web::get().to(list))
            .default_service(errors::method_not_allowed("GET, POST")),
    )
    .service(
        json_resource("/v1/webhook_endpoints/{id}")
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete))
            .default_service(errors::method_not_allowed("DELETE, GET, PATCH")),
    )
    .service(
        json_resource("/v1/webhook_endpoints/{id}/rotate_secret")
            .route(web::post().to(rotate_secret))
            .default_service(errors::method_not_allowed("POST")),
    );
}

/// An endpoint as the API shows it; `secret` only in the answers that make one.
#[derive(Serialize)]
pub struct EndpointView<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub events: &'a [String],
    pub description: Option<&'a str>,
    pub disabled: bool,
    pub disabled_reason: Option<&'static str>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
}

impl<'a> EndpointView<'a> {
    pub fn new(e: &'a WebhookEndpoint) -> Self {
        Self {
            id: e.id.as_str(),
            url: &e.url,
            events: e.events.entries(),
            description: e.description.as_deref(),
            disabled: e.disabled(),
            disabled_reason: e.disabled_reason.map(DisabledReason::as_str),
            created_at: timestamp(&e.created_at),
            updated_at: timestamp(&e.updated_at),
            secret: None,
        }
    }

    /// With the current secret: the answers of create and `rotate_secret` only.
    pub fn with_secret(e: &'a WebhookEndpoint) -> Self {
        Self {
            secret: e.current_secret().map(|s| s.expose()),
            ..Self::new(e)
        }
    }
}

#[derive(Deserialize)]
struct CreateRequest {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
}

#[derive(Deserialize, Default)]
struct UpdateRequest {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    disabled: Option<bool>,
}

pub async fn create(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let body = read_body(payload, state.settings.server.body_limit_bytes).await?;
    let key = IdempotencyKey::from_request(&req)?;
    let request: CreateRequest = strict_json::parse(&body, &CREATE_SHAPE)?;
    let url = request.url.ok_or_else(|| FieldError::missing("url"))?;
    let events = EventFilter::parse(
        request
            .events
            .ok_or_else(|| FieldError::missing("events"))?,
    )?;
    let description = request
        .description
        .map(parse_description)
        .transpose()?
        .flatten();
    let url = state.webhook_guard.check_url(&url).await?.to_string();
    let endpoint = WebhookEndpoint::new(url, events, description, state.flows.clock.now());
    let Some(key) = key else {
        return Ok(respond(insert(&state, endpoint).await?));
    };
    let key = key.scoped("POST /v1/webhook_endpoints");
    let fingerprint = idempotency::fingerprint_json(&state, &body);
    let state = &state;
    let new_id = endpoint.id.to_string();
    idempotency::run_once(
        state,
        &key,
        &fingerprint,
        Some(new_id.as_str()),
        |begun| async move {
            let recorded = begun
                .resource
                .as_deref()
                .and_then(|id| WebhookEndpointId::parse(id).ok());
            match recorded {
                // The interrupted (or failed) request may have stored it: answer that one.
                Some(id) if begun.resumed || begun.released => match read(state, &id).await? {
                    Some(stored) => Ok(StoredResponse {
                        status: StatusCode::CREATED.as_u16(),
                        body: to_json(&EndpointView::with_secret(&stored)),
                    }),
                    None => insert(state, WebhookEndpoint { id, ..endpoint }).await,
                },
                _ => insert(state, endpoint).await,
            }
        },
    )
    .await
}

async fn insert(state: &AppState, endpoint: WebhookEndpoint) -> Result<StoredResponse, ApiError> {
    let reply = state
        .flows
        .store
        .put_endpoint(&endpoint, None, MAX_ENDPOINTS)
        .await
        .map_err(ApiError::store_unavailable)?;
    match reply {
        PutReply::Written => {
            state.flows.outbox.endpoints.created(
                &state.flows.store,
                &endpoint,
                state.flows.clock.now().timestamp_millis(),
            );
            tracing::info!(endpoint_id = %endpoint.id, "webhook endpoint created");
            Ok(StoredResponse {
                status: StatusCode::CREATED.as_u16(),
                body: to_json(&EndpointView::with_secret(&endpoint)),
            })
        }
        PutReply::Full => Err(ApiError::new(
            ErrorCode::WebhookEndpointLimitReached,
            format!(
                "The gateway keeps at most {MAX_ENDPOINTS} webhook endpoints: delete one you no longer use (DELETE /v1/webhook_endpoints/{{id}}), or widen an existing endpoint's `events`."
            ),
        )),
        PutReply::Conflict => Err(ApiError::internal(anyhow::anyhow!(
            "a fresh webhook endpoint id was taken"
        ))),
    }
}

/// `GET /v1/webhook_endpoints?limit=&starting_after=`: newest first.
pub async fn list(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &["limit", "starting_after"])?;
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match name.as_ref() {
            "limit" => limit = listing::limit(&value)?,
            "starting_after" => after = Some(WebhookEndpointId::parse(&value).map_err(|_| {
                FieldError::new(
                    "starting_after",
                    ErrorCode::InvalidParameter,
                    "`starting_after` is the id of the last endpoint of the previous page (`we_…`)",
                )
            })?),
            _ => {}
        }
    }
    let all = state
        .flows
        .store
        .endpoints()
        .await
        .map_err(ApiError::store_unavailable)?;
    // Newest first, so the page after `after` holds the endpoints older than it (ids sort by
    // creation time).
    let rest: Vec<&WebhookEndpoint> = all
        .iter()
        .filter(|e| after.as_ref().is_none_or(|a| e.id < *a))
        .collect();
    let has_more = rest.len() > limit;
    let page = listing::Page {
        data: rest
            .into_iter()
            .take(limit)
            .map(EndpointView::new)
            .collect(),
        has_more,
    };
    Ok(respond(StoredResponse {
        status: 200,
        body: to_json(&page),
    }))
}

pub async fn get(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let id = parse_id(&path)?;
    let endpoint = read(&state, &id).await?.ok_or_else(not_found)?;
    Ok(ok(&EndpointView::new(&endpoint)))
}

pub async fn update(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let body = read_body(payload, state.settings.server.body_limit_bytes).await?;
    let id = parse_id(&path)?;
    let request: UpdateRequest = strict_json::parse_optional(&body, &UPDATE_SHAPE)?;
    let events = request.events.map(EventFilter::parse).transpose()?;
    let description = request.description.map(parse_description).transpose()?;
    let url = match &request.url {
        Some(url) => Some(state.webhook_guard.check_url(url).await?.to_string()),
        None => None,
    };
    let updated = change(&state, &id, |endpoint, now| {
        if let Some(url) = &url {
            endpoint.url = url.clone();
        }
        if let Some(events) = &events {
            endpoint.events = events.clone();
        }
        if let Some(description) = &description {
            endpoint.description = description.clone();
        }
        match request.disabled {
            Some(true) if !endpoint.disabled() => {
                endpoint.disabled_reason = Some(DisabledReason::Merchant);
            }
            Some(false) => {
                // Re-enabled: its failures start counting afresh.
                endpoint.disabled_reason = None;
                endpoint.failing_since = None;
            }
            _ => {}
        }
        endpoint.updated_at = now;
    })
    .await?;
    Ok(ok(&EndpointView::new(&updated)))
}

pub async fn delete(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let id = parse_id(&path)?;
    for _ in 0..MAX_CAS_ATTEMPTS {
        let current = read(&state, &id).await?.ok_or_else(not_found)?;
        let deleted = state
            .flows
            .store
            .delete_endpoint(&current)
            .await
            .map_err(ApiError::store_unavailable)?;
        if deleted {
            tracing::info!(endpoint_id = %id, "webhook endpoint deleted");
            return Ok(ok(&EndpointView::new(&current)));
        }
    }
    Err(busy())
}

pub async fn rotate_secret(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let body = read_body(payload, state.settings.server.body_limit_bytes).await?;
    strict_json::check_optional(&body, &ROTATE_SHAPE)?;
    let id = parse_id(&path)?;
    let rotated = change(&state, &id, |endpoint, now| endpoint.rotate(now)).await?;
    tracing::info!(endpoint_id = %id, "webhook endpoint secret rotated");
    Ok(ok(&EndpointView::with_secret(&rotated)))
}

/// Reads the endpoint, applies `edit`, and writes it with one compare-and-set; again on a
/// conflict. Answers the endpoint as written.
async fn change(
    state: &AppState,
    id: &WebhookEndpointId,
    edit: impl Fn(&mut WebhookEndpoint, chrono::DateTime<chrono::Utc>),
) -> Result<WebhookEndpoint, ApiError> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let current = read(state, id).await?.ok_or_else(not_found)?;
        let mut next = current.clone();
        edit(&mut next, state.flows.clock.now());
        let reply = state
            .flows
            .store
            .put_endpoint(&next, Some(&current), MAX_ENDPOINTS)
            .await
            .map_err(ApiError::store_unavailable)?;
        if reply == PutReply::Written {
            return Ok(next);
        }
    }
    Err(busy())
}

async fn read(
    state: &AppState,
    id: &WebhookEndpointId,
) -> Result<Option<WebhookEndpoint>, ApiError> {
    state
        .flows
        .store
        .endpoint(id)
        .await
        .map_err(ApiError::store_unavailable)
}

fn ok(view: &EndpointView<'_>) -> HttpResponse {
    respond(StoredResponse {
        status: 200,
        body: to_json(view),
    })
}

fn parse_id(raw: &str) -> Result<WebhookEndpointId, ApiError> {
    WebhookEndpointId::parse(raw).map_err(|_| not_found())
}

fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::ResourceMissing,
        "No such webhook endpoint: check the id (`we_` followed by 32 hex digits) from GET /v1/webhook_endpoints.",
    )
    .with_param("id")
}

fn busy() -> ApiError {
    ApiError::store_unavailable(anyhow::anyhow!(
        "the webhook endpoint kept changing under this request"
    ))
}
