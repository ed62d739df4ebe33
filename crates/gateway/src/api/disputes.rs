//! Disputes: `GET /v1/disputes`, `GET /v1/disputes/{id}`,
//! `POST /v1/disputes/{id}/evidence`.
//!
//! A dispute lives in its checkout's record and its id names the checkout, so `GET` by id is one
//! read. The list pages through the `dispute.created` events' index (every dispute has exactly
//! one, newest first) and shows each dispute as it is now, read from its checkout.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::auth::Merchant;
use super::listing::{self, DEFAULT_LIMIT, Page};
use super::strict_json::{self, Shape};
use super::to_json;
use super::view::timestamp;
use super::{read_body, respond};
use crate::domain::checkout::{Checkout, CheckoutId};
use crate::domain::dispute::{Dispute, DisputeChange, DisputeId, DisputeStatus};
use crate::domain::event::{EventId, EventObject, EventType};
use crate::domain::validation::FieldError;
use crate::errors::{ApiError, ErrorCode};
use crate::flows::dispute::{self as flow, DisputeError};
use crate::psp::EvidenceFile;
use crate::state::AppState;
use crate::store::StoredResponse;

/// The most files one evidence request carries.
pub const MAX_FILES: usize = 10;
/// The most bytes one file holds, decoded.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// The evidence endpoint's own body limit: ten files of 4 MiB in base64 (4/3 larger), with room
/// for names, descriptions and JSON. `server.body_limit_bytes` stays for every other endpoint.
pub const EVIDENCE_BODY_LIMIT: usize = MAX_FILES * (MAX_FILE_BYTES / 3 * 4 + 8 * 1024) + 64 * 1024;

/// A dispute as the merchant API shows it.
#[derive(Debug, Serialize)]
pub struct DisputeView<'a> {
    pub id: &'a str,
    pub checkout_id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub status: DisputeStatus,
    pub reason_code: &'a str,
    pub reason: &'a str,
    pub respond_by: Option<String>,
    pub evidence_submitted_at: Option<String>,
    pub psp: DisputePspView<'a>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct DisputePspView<'a> {
    pub transaction_id: &'a str,
    pub status: &'a str,
}

impl<'a> DisputeView<'a> {
    pub fn of(checkout_id: &'a str, currency: &'a str, d: &'a Dispute) -> Self {
        Self {
            id: d.id.as_str(),
            checkout_id,
            amount: d.amount.value(),
            currency,
            status: d.status,
            reason_code: &d.reason_code,
            reason: &d.reason,
            respond_by: d.respond_by.as_ref().map(timestamp),
            evidence_submitted_at: d.evidence_submitted_at.as_ref().map(timestamp),
            psp: DisputePspView {
                transaction_id: &d.psp.transaction_id,
                status: &d.psp.status,
            },
            created_at: timestamp(&d.created_at),
            updated_at: timestamp(&d.updated_at),
        }
    }

    fn new(c: &'a Checkout, d: &'a Dispute) -> Self {
        Self::of(c.id.as_str(), c.currency.code(), d)
    }
}

fn dispute_not_found() -> ApiError {
    ApiError::new(
        ErrorCode::ResourceMissing,
        "No such dispute: check the id (`dp_` followed by 34 hex digits) from GET /v1/disputes or a dispute event.",
    )
    .with_param("id")
}

/// `GET /v1/disputes/{id}`
pub async fn get(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let id = DisputeId::parse(&path).map_err(|_| dispute_not_found())?;
    let checkout = flow::find(&state.flows, &id)
        .await
        .map_err(ApiError::store_unavailable)?
        .ok_or_else(dispute_not_found)?;
    let dispute = checkout.dispute(&id).ok_or_else(dispute_not_found)?;
    Ok(respond(StoredResponse {
        status: 200,
        body: to_json(&DisputeView::new(&checkout, dispute)),
    }))
}

/// `GET /v1/disputes?status=&checkout_id=&limit=&starting_after=`, newest first.
#[derive(Debug)]
struct DisputeQuery {
    status: Option<DisputeStatus>,
    checkout: Option<CheckoutId>,
    limit: usize,
    starting_after: Option<DisputeId>,
}

impl DisputeQuery {
    fn parse(query: &str) -> Result<Self, FieldError> {
        strict_json::check_query(query, &["status", "checkout_id", "limit", "starting_after"])?;
        let mut parsed = DisputeQuery {
            status: None,
            checkout: None,
            limit: DEFAULT_LIMIT,
            starting_after: None,
        };
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "status" => {
                    parsed.status = Some(DisputeStatus::parse(&value).ok_or_else(|| {
                        FieldError::new(
                            "status",
                            ErrorCode::InvalidParameter,
                            "`status` is one of needs_response, under_review, won, lost",
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
                    parsed.starting_after = Some(DisputeId::parse(&value).map_err(|_| {
                        FieldError::new(
                            "starting_after",
                            ErrorCode::InvalidParameter,
                            "`starting_after` is the id of the last dispute of the previous page (`dp_…`)",
                        )
                    })?)
                }
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// How many `dispute.created` events one list request reads at most while a status filter
/// skips disputes: the page may then come back short, with `has_more` and a cursor to go on.
const MAX_SCANNED: usize = 1000;

pub async fn list(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = DisputeQuery::parse(req.query_string())?;
    let (found, has_more) = match &query.checkout {
        Some(id) => of_checkout(&state, id, &query).await?,
        None => recent(&state, &query).await?,
    };
    let body = to_json(&Page {
        data: found
            .iter()
            .filter_map(|(c, id)| c.dispute(id).map(|d| DisputeView::new(c, d)))
            .collect(),
        has_more,
    });
    Ok(respond(StoredResponse { status: 200, body }))
}

type Found = Vec<(Checkout, DisputeId)>;

/// One checkout's disputes, newest first.
async fn of_checkout(
    state: &AppState,
    id: &CheckoutId,
    query: &DisputeQuery,
) -> Result<(Found, bool), ApiError> {
    let checkout = state
        .flows
        .store
        .get(id)
        .await
        .map_err(ApiError::store_unavailable)?
        .map(|v| v.checkout);
    let Some(checkout) = checkout else {
        return Ok((Vec::new(), false));
    };
    let mut found: Found = checkout
        .disputes
        .iter()
        .rev()
        .skip_while(|d| {
            query
                .starting_after
                .as_ref()
                .is_some_and(|after| checkout.dispute(after).is_some() && d.id >= *after)
        })
        .filter(|d| query.status.is_none_or(|s| d.status == s))
        .map(|d| (checkout.clone(), d.id.clone()))
        .collect();
    let has_more = found.len() > query.limit;
    found.truncate(query.limit);
    Ok((found, has_more))
}

/// Every checkout's disputes, newest first, by their `dispute.created` events.
async fn recent(state: &AppState, query: &DisputeQuery) -> Result<(Found, bool), ApiError> {
    let store = &state.flows.store;
    let created = EventType::Dispute(DisputeChange::Created);
    let mut cursor: Option<(chrono::DateTime<chrono::Utc>, EventId)> = match &query.starting_after
    {
        None => None,
        Some(id) => Some(creation_event(state, id).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                "`starting_after` names no stored dispute: pass the id of the last dispute of the page you have",
            )
            .with_param("starting_after")
        })?),
    };
    let now = state.flows.clock.now();
    let retention = crate::clock::seconds(state.settings.checkout.retention_s);
    let mut found: Found = Vec::new();
    let mut scanned = 0;
    loop {
        let batch = query.limit + 1;
        let events = store
            .recent_events(
                Some(created),
                cursor.as_ref().map(|(at, id)| (*at, id)),
                (now - retention, now),
                batch,
            )
            .await
            .map_err(ApiError::store_unavailable)?;
        let exhausted = events.len() < batch;
        scanned += events.len();
        for e in &events {
            cursor = Some((e.event.created_at, e.event.id.clone()));
            let EventObject::Dispute { dispute, .. } = &e.event.object else {
                continue;
            };
            let Some(checkout) = flow::find(&state.flows, &dispute.id)
                .await
                .map_err(ApiError::store_unavailable)?
            else {
                continue;
            };
            let matches = checkout
                .dispute(&dispute.id)
                .is_some_and(|d| query.status.is_none_or(|s| d.status == s));
            if matches {
                found.push((checkout, dispute.id.clone()));
                if found.len() > query.limit {
                    found.truncate(query.limit);
                    return Ok((found, true));
                }
            }
        }
        if exhausted {
            return Ok((found, false));
        }
        if scanned >= MAX_SCANNED {
            return Ok((found, true));
        }
    }
}

/// When dispute `id` was created, as its `dispute.created` event's place in the index.
async fn creation_event(
    state: &AppState,
    id: &DisputeId,
) -> Result<Option<(chrono::DateTime<chrono::Utc>, EventId)>, ApiError> {
    let Some(checkout_id) = id.checkout_id() else {
        return Ok(None);
    };
    let events = state
        .flows
        .store
        .checkout_events(&checkout_id)
        .await
        .map_err(ApiError::store_unavailable)?;
    Ok(events.into_iter().find_map(|e| match &e.event.object {
        EventObject::Dispute { dispute, .. }
            if dispute.id == *id && e.event.kind == EventType::Dispute(DisputeChange::Created) =>
        {
            Some((e.event.created_at, e.event.id.clone()))
        }
        _ => None,
    }))
}

static FILE_SHAPE: Shape = Shape::Object(&[
    ("name", Shape::String),
    ("type", Shape::String),
    ("content_base64", Shape::String),
    ("description", Shape::String),
]);
static EVIDENCE_SHAPE: Shape = Shape::Object(&[("files", Shape::Array(&FILE_SHAPE))]);

#[derive(Debug, Deserialize)]
struct EvidenceRequest {
    files: Option<Vec<FileRequest>>,
}

#[derive(Debug, Deserialize)]
struct FileRequest {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    content_base64: Option<String>,
    description: Option<String>,
}

/// A file checked against its own bytes, ready for MSP.
struct CheckedFile {
    kind: &'static str,
    base64: String,
    name: String,
    description: String,
}

/// The three types MSP takes, by the signature their files start with.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("pdf")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("png")
    } else {
        None
    }
}

fn check_files(request: EvidenceRequest) -> Result<Vec<CheckedFile>, FieldError> {
    let files = request.files.ok_or_else(|| FieldError::missing("files"))?;
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(FieldError::new(
            "files",
            ErrorCode::InvalidParameter,
            format!("`files` holds 1 to {MAX_FILES} files: send the rest in another request"),
        ));
    }
    let mut checked = Vec::with_capacity(files.len());
    for (i, f) in files.into_iter().enumerate() {
        let at = |field: &str| format!("files[{i}].{field}");
        let name = f
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| FieldError::missing(at("name")))?;
        if name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(FieldError::new(
                at("name"),
                ErrorCode::InvalidParameter,
                "a file name is 1 to 200 characters, none of them control characters",
            ));
        }
        let declared = f.kind.ok_or_else(|| FieldError::missing(at("type")))?;
        let kind = match declared.as_str() {
            "pdf" => "pdf",
            "jpeg" => "jpeg",
            "png" => "png",
            _ => {
                return Err(FieldError::new(
                    at("type"),
                    ErrorCode::InvalidParameter,
                    "`type` is one of pdf, jpeg, png",
                ));
            }
        };
        let content = f
            .content_base64
            .ok_or_else(|| FieldError::missing(at("content_base64")))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(content.as_bytes())
            .map_err(|_| {
                FieldError::new(
                    at("content_base64"),
                    ErrorCode::InvalidParameter,
                    "`content_base64` is the file's bytes in standard base64 (with padding)",
                )
            })?;
        if bytes.is_empty() || bytes.len() > MAX_FILE_BYTES {
            return Err(FieldError::new(
                at("content_base64"),
                ErrorCode::InvalidParameter,
                format!(
                    "a file holds 1 to {MAX_FILE_BYTES} bytes (4 MiB) once decoded; this one holds {}",
                    bytes.len()
                ),
            ));
        }
        match sniff(&bytes) {
            Some(found) if found == kind => {}
            Some(found) => {
                return Err(FieldError::new(
                    at("content_base64"),
                    ErrorCode::InvalidParameter,
                    format!("the file's bytes are a {found} file, not the {kind} its `type` says"),
                ));
            }
            None => {
                return Err(FieldError::new(
                    at("content_base64"),
                    ErrorCode::InvalidParameter,
                    format!(
                        "the file's bytes are not a {kind} file (nor a PDF, JPEG or PNG): send one of those"
                    ),
                ));
            }
        }
        let description = f.description.unwrap_or_else(|| name.clone());
        if description.chars().count() > 500 {
            return Err(FieldError::new(
                at("description"),
                ErrorCode::InvalidParameter,
                "a description is at most 500 characters",
            ));
        }
        checked.push(CheckedFile {
            kind: match kind {
                "pdf" => "PDF",
                "jpeg" => "JPEG",
                _ => "PNG",
            },
            base64: content,
            name,
            description,
        });
    }
    Ok(checked)
}

/// `POST /v1/disputes/{id}/evidence` `{"files": [{"name", "type", "content_base64",
/// "description"}]}`: every file is checked (its type against its own bytes) before any is sent;
/// then each goes to MSP. Answers the dispute.
pub async fn evidence(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let body = read_body(payload, EVIDENCE_BODY_LIMIT).await?;
    let id = DisputeId::parse(&path).map_err(|_| dispute_not_found())?;
    let request: EvidenceRequest = strict_json::parse(&body, &EVIDENCE_SHAPE)?;
    let files = check_files(request)?;
    let for_psp: Vec<EvidenceFile<'_>> = files
        .iter()
        .map(|f| EvidenceFile {
            kind: f.kind,
            base64: &f.base64,
            description: &f.description,
            name: &f.name,
        })
        .collect();
    let checkout = flow::submit_evidence(&state.flows, &id, &for_psp)
        .await
        .map_err(dispute_error)?;
    let dispute = checkout.dispute(&id).ok_or_else(dispute_not_found)?;
    Ok(respond(StoredResponse {
        status: 200,
        body: to_json(&DisputeView::new(&checkout, dispute)),
    }))
}

fn dispute_error(e: DisputeError) -> ApiError {
    match e {
        DisputeError::NotFound => dispute_not_found(),
        DisputeError::NotOpen(status) => ApiError::new(
            ErrorCode::DisputeNotOpen,
            format!(
                "The dispute is {status}: evidence is taken only while a dispute needs a response. Nothing was sent."
            ),
        ),
        DisputeError::Overdue => ApiError::new(
            ErrorCode::DisputeNotOpen,
            "The dispute's respond_by has passed with no evidence: MultiSafepay no longer takes any. Nothing was sent.",
        ),
        DisputeError::Psp { index, source } => ApiError::new(
            ErrorCode::PspUnusableResponse,
            format!(
                "MultiSafepay did not take file {index} (the files before it it has): send that file and the ones after it again."
            ),
        )
        .with_param(format!("files[{index}]"))
        .with_source(source),
        DisputeError::Store(e) => ApiError::store_unavailable(e),
    }
}
