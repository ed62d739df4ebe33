//! The merchant API's error body and its one rendering path (design §3):
//!
//! ```json
//! {"error": {"type": "invalid_request_error", "code": "invalid_card_number", "message": "…", "param": "card.number"}}
//! ```
//!
//! Every non-2xx JSON answer goes through [`ApiError`], the framework's own (malformed JSON, 404,
//! 405, 413) included, via the handlers in [`json_config`], [`path_config`], [`query_config`] and
//! [`not_found`]. 5xx bodies are generic; their cause goes to the log.

use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError, error, web};
use serde::Serialize;

use crate::domain::validation::FieldError;

/// The `type` of design §3's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    IdempotencyError,
    AuthenticationError,
    RateLimitError,
    PspError,
    ApiError,
}

/// A merchant API error: status, type, machine code, a message that says what to do, and the
/// offending parameter when there is one.
pub struct ApiError {
    pub status: StatusCode,
    pub kind: ErrorType,
    pub code: String,
    pub message: String,
    pub param: Option<String>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    /// Extra response headers (e.g. `WWW-Authenticate`).
    pub www_authenticate: bool,
    /// The cause, logged, never shown.
    pub source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: ErrorType,
        code: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code: code.to_owned(),
            message: message.into(),
            param: None,
            retry_after: None,
            www_authenticate: false,
            source: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_source(mut self, source: impl Into<anyhow::Error>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn invalid_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorType::InvalidRequestError,
            code,
            message,
        )
    }

    pub fn invalid_field(e: FieldError) -> Self {
        Self::invalid_request(e.code, e.message).with_param(e.param)
    }

    pub fn unauthenticated() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorType::AuthenticationError,
            "invalid_api_key",
            "Missing or unknown API key: send `Authorization: Bearer <key>` with one of the gateway's merchant keys.",
        );
        e.www_authenticate = true;
        e
    }

    pub fn checkout_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorType::InvalidRequestError,
            "resource_missing",
            "No such checkout: check the id (`chk_` followed by 32 hex digits) returned by POST /v1/checkouts.",
        )
        .with_param("id")
    }

    pub fn rate_limited(retry_after_s: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorType::RateLimitError,
            "rate_limited",
            "Too many requests for this API key: slow down and retry after the `Retry-After` seconds.",
        );
        e.retry_after = Some(retry_after_s.max(1));
        e
    }

    /// Redis is unavailable: nothing was sent to MSP, so the same request can simply be retried.
    pub fn store_unavailable(source: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::ApiError,
            "service_unavailable",
            "The gateway's store is temporarily unavailable: retry after the `Retry-After` seconds. Nothing was sent to MultiSafepay, so retrying a POST (with the same Idempotency-Key) is safe.",
        )
        .with_source(source);
        e.retry_after = Some(5);
        e
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::ApiError,
            "internal_error",
            "An unexpected error occurred; it has been logged. Retry with the same Idempotency-Key, or check GET /v1/checkouts/{id} if a checkout id was returned.",
        )
        .with_source(source)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "type": self.kind,
                "code": self.code,
                "message": self.message,
                "param": self.param,
            }
        })
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )?;
        if let Some(source) = &self.source {
            write!(f, "\nCaused by: {source:?}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), code = %self.code, error.cause_chain = ?self, "request failed");
        } else if let Some(source) = &self.source {
            tracing::info!(status = self.status.as_u16(), code = %self.code, error.cause_chain = ?source, "request refused");
        }
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(s) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, s.to_string()));
        }
        if self.www_authenticate {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.json(self.body())
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::invalid_field(e)
    }
}

/// Malformed JSON, a wrong content type and oversized bodies answer in the API's own shape.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(|err, _req| {
        let api = match &err {
            error::JsonPayloadError::Overflow { .. } | error::JsonPayloadError::OverflowKnownLength { .. } => {
                too_large()
            }
            error::JsonPayloadError::ContentType => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorType::InvalidRequestError,
                "unsupported_media_type",
                "Send the body as JSON with `Content-Type: application/json`.",
            ),
            error::JsonPayloadError::Deserialize(e) => ApiError::invalid_request(
                "invalid_json",
                format!("The body could not be read as the expected JSON ({e}): fix it and send it again."),
            ),
            _ => ApiError::invalid_request(
                "invalid_json",
                "The body is not valid JSON: fix it and send it again.",
            ),
        };
        error::InternalError::from_response(err, api.error_response()).into()
    })
}

pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorType::InvalidRequestError,
        "body_too_large",
        "The request body is larger than the gateway accepts (server.body_limit_bytes): send a smaller body.",
    )
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        let api =
            ApiError::invalid_request("invalid_path", format!("Invalid path parameter: {err}"));
        error::InternalError::from_response(err, api.error_response()).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let api = ApiError::invalid_request(
            "invalid_query",
            format!("Invalid query string: {err}. Check the parameters' names and values."),
        );
        error::InternalError::from_response(err, api.error_response()).into()
    })
}

/// The default service: 404 for unknown paths, 405 for a known path with another method.
pub async fn not_found() -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorType::InvalidRequestError,
        "route_not_found",
        "No such endpoint: see openapi.yaml for the gateway's routes.",
    )
    .error_response()
}

/// Each resource's default service, so that a known path with another method answers 405 in the
/// API's shape (rather than actix's empty body), with the `Allow` header RFC 9110 requires.
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move {
        let mut res = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorType::InvalidRequestError,
            "method_not_allowed",
            format!("This endpoint accepts {allow} only: see openapi.yaml."),
        )
        .error_response();
        res.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        res
    })
}
