//! The merchant API's error body and its one rendering path:
//!
//! ```json
//! {"error": {"type": "invalid_request_error", "code": "invalid_card_number", "message": "…", "param": "card.number", "request_id": "…"}}
//! ```
//!
//! `request_id` is the `Request-Id` the answer carries ([`crate::request_id`]): what a merchant
//! quotes to find the request in the logs (`null` only outside a request, in unit tests).
//!
//! Every `code` the API answers is a row of [`ErrorCode`], which also fixes its HTTP status, its
//! `type` and whether the same request may simply be sent again. An [`ApiError`] is built from a
//! code, so a status and a type can only come in the pairs the table lists.
//!
//! Every non-2xx JSON answer goes through [`ApiError`], the framework's own (malformed JSON, 404,
//! 405, 413) included, via the handlers in [`json_config`], [`path_config`], [`query_config`] and
//! [`not_found`]. 5xx bodies are generic; their cause goes to the log.

use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError, error, web};

use crate::domain::validation::FieldError;
pub use crate::error_code::{ErrorCode, ErrorType};

/// A merchant API error: a code of the table, a message that says what to do, and the offending
/// parameter when there is one.
pub struct ApiError {
    code: ErrorCode,
    message: String,
    param: Option<String>,
    /// Seconds, for 429 and 503.
    retry_after: Option<u64>,
    /// The cause, logged, never shown.
    source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
            retry_after: None,
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

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// A field error; one about the body as a whole (no path) has a `null` param.
    pub fn invalid_field(e: FieldError) -> Self {
        let error = Self::new(e.code, e.message);
        if e.param.is_empty() {
            error
        } else {
            error.with_param(e.param)
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorCode::InvalidApiKey,
            "Missing or unknown API key: send `Authorization: Bearer <key>` with one of the gateway's merchant keys.",
        )
    }

    pub fn checkout_not_found() -> Self {
        Self::new(
            ErrorCode::ResourceMissing,
            "No such checkout: check the id (`chk_` followed by 32 hex digits) returned by POST /v1/checkouts.",
        )
        .with_param("id")
    }

    pub fn rate_limited(retry_after_s: u64) -> Self {
        let mut e = Self::new(
            ErrorCode::RateLimited,
            "Too many requests for this API key: slow down and retry after the `Retry-After` seconds.",
        );
        e.retry_after = Some(retry_after_s.max(1));
        e
    }

    /// Redis is unavailable: nothing was sent to MSP, so the same request can simply be retried.
    pub fn store_unavailable(source: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            ErrorCode::ServiceUnavailable,
            "The gateway's store is temporarily unavailable: retry after the `Retry-After` seconds. Nothing was sent to MultiSafepay, so retrying a POST (with the same Idempotency-Key) is safe.",
        )
        .with_source(source);
        e.retry_after = Some(5);
        e
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self::new(
            ErrorCode::InternalError,
            "An unexpected error occurred; it has been logged. Retry with the same Idempotency-Key, or check GET /v1/checkouts/{id} if a checkout id was returned.",
        )
        .with_source(source)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "type": self.code.kind(),
                "code": self.code,
                "message": self.message,
                "param": self.param,
                "request_id": crate::request_id::current_id(),
            }
        })
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status().as_u16(),
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
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code = %self.code, error.cause_chain = ?self, "request failed");
        } else if let Some(source) = &self.source {
            tracing::info!(status = status.as_u16(), code = %self.code, error.cause_chain = ?source, "request refused");
        } else {
            // The field it names, never its value (which may be card data).
            tracing::info!(status = status.as_u16(), code = %self.code, param = self.param.as_deref(), "request refused");
        }
        let mut res = HttpResponse::build(status);
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(s) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, s.to_string()));
        }
        // Every authentication failure names the scheme to use (RFC 9110 §11.6.1).
        if self.code.kind() == ErrorType::AuthenticationError {
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
                ErrorCode::UnsupportedMediaType,
                "Send the body as JSON with `Content-Type: application/json`.",
            ),
            error::JsonPayloadError::Deserialize(e) => ApiError::new(
                ErrorCode::InvalidJson,
                format!("The body could not be read as the expected JSON ({e}): fix it and send it again."),
            ),
            _ => ApiError::new(
                ErrorCode::InvalidJson,
                "The body is not valid JSON: fix it and send it again.",
            ),
        };
        error::InternalError::from_response(err, api.error_response()).into()
    })
}

pub fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::BodyTooLarge,
        "The request body is larger than the gateway accepts (server.body_limit_bytes): send a smaller body.",
    )
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        let api = ApiError::new(
            ErrorCode::InvalidPath,
            format!("Invalid path parameter: {err}"),
        );
        error::InternalError::from_response(err, api.error_response()).into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let api = ApiError::new(
            ErrorCode::InvalidQuery,
            format!("Invalid query string: {err}. Check the parameters' names and values."),
        );
        error::InternalError::from_response(err, api.error_response()).into()
    })
}

/// The default service: 404 for unknown paths, 405 for a known path with another method.
pub async fn not_found() -> HttpResponse {
    ApiError::new(
        ErrorCode::RouteNotFound,
        "No such endpoint: see openapi.yaml for the gateway's routes.",
    )
    .error_response()
}

/// Each resource's default service, so that a known path with another method answers 405 in the
/// API's shape (rather than actix's empty body), with the `Allow` header RFC 9110 requires.
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move {
        let mut res = ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("This endpoint accepts {allow} only: see openapi.yaml."),
        )
        .error_response();
        res.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        res
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use actix_web::body::MessageBody;

    use super::*;

    /// The contract, written out once more: a change to the table above must be a change here
    /// too. Wire strings are the API's; storefronts branch on them.
    #[rustfmt::skip]
    const CONTRACT: &[(ErrorCode, &str, u16, &str, bool)] = &[
        (ErrorCode::InvalidJson,           "invalid_json",            400, "invalid_request_error", false),
        (ErrorCode::InvalidBody,           "invalid_body",            400, "invalid_request_error", false),
        (ErrorCode::InvalidPath,           "invalid_path",            400, "invalid_request_error", false),
        (ErrorCode::InvalidQuery,          "invalid_query",           400, "invalid_request_error", false),
        (ErrorCode::InvalidIdempotencyKey, "invalid_idempotency_key", 400, "invalid_request_error", false),
        (ErrorCode::ParameterMissing,      "parameter_missing",       400, "invalid_request_error", false),
        (ErrorCode::InvalidParameter,      "invalid_parameter",       400, "invalid_request_error", false),
        (ErrorCode::InvalidCardNumber,     "invalid_card_number",     400, "invalid_request_error", false),
        (ErrorCode::InvalidExpiry,         "invalid_expiry",          400, "invalid_request_error", false),
        (ErrorCode::InvalidCvc,            "invalid_cvc",             400, "invalid_request_error", false),
        (ErrorCode::InvalidCurrency,       "invalid_currency",        400, "invalid_request_error", false),
        (ErrorCode::InvalidAmount,         "invalid_amount",          400, "invalid_request_error", false),
        (ErrorCode::InvalidQuantity,       "invalid_quantity",        400, "invalid_request_error", false),
        (ErrorCode::InvalidTaxRate,        "invalid_tax_rate",        400, "invalid_request_error", false),
        (ErrorCode::AmountMismatch,        "amount_mismatch",         400, "invalid_request_error", false),
        (ErrorCode::InvalidEmail,          "invalid_email",           400, "invalid_request_error", false),
        (ErrorCode::InvalidIpAddress,      "invalid_ip_address",      400, "invalid_request_error", false),
        (ErrorCode::InvalidCountry,        "invalid_country",         400, "invalid_request_error", false),
        (ErrorCode::InvalidLocale,         "invalid_locale",          400, "invalid_request_error", false),
        (ErrorCode::InvalidUrl,            "invalid_url",             400, "invalid_request_error", false),
        (ErrorCode::UrlHostNotAllowed,     "url_host_not_allowed",    400, "invalid_request_error", false),
        (ErrorCode::InvalidMetadata,       "invalid_metadata",        400, "invalid_request_error", false),
        (ErrorCode::UnknownField,          "unknown_field",           400, "invalid_request_error", false),
        (ErrorCode::AmountTooLarge,        "amount_too_large",        400, "invalid_request_error", false),
        (ErrorCode::CheckoutNotRefundable, "checkout_not_refundable", 409, "invalid_request_error", false),
        (ErrorCode::RefundNotCancelable,   "refund_not_cancelable",   409, "invalid_request_error", false),
        (ErrorCode::RefundLimitReached,    "refund_limit_reached",    409, "invalid_request_error", false),
        (ErrorCode::CheckoutNotCancelable, "checkout_not_cancelable", 409, "invalid_request_error", false),
        (ErrorCode::CheckoutNotCapturable, "checkout_not_capturable", 409, "invalid_request_error", false),
        (ErrorCode::WebhooksNotConfigured, "webhooks_not_configured", 409, "invalid_request_error", false),
        (ErrorCode::PaymentMethodInactive, "payment_method_inactive", 409, "invalid_request_error", false),
        (ErrorCode::CheckoutDisputed,      "checkout_disputed",       409, "invalid_request_error", false),
        (ErrorCode::DisputeNotOpen,        "dispute_not_open",        409, "invalid_request_error", false),
        (ErrorCode::WebhookEndpointLimitReached, "webhook_endpoint_limit_reached", 409, "invalid_request_error", false),
        (ErrorCode::InvalidType,           "invalid_type",            400, "invalid_request_error", false),
        (ErrorCode::DuplicateField,        "duplicate_field",         400, "invalid_request_error", false),
        (ErrorCode::IdempotencyKeyReused,  "idempotency_key_reused",  400, "idempotency_error",     false),
        (ErrorCode::InvalidApiKey,         "invalid_api_key",         401, "authentication_error",  false),
        (ErrorCode::ResourceMissing,       "resource_missing",        404, "invalid_request_error", false),
        (ErrorCode::RouteNotFound,         "route_not_found",         404, "invalid_request_error", false),
        (ErrorCode::MethodNotAllowed,      "method_not_allowed",      405, "invalid_request_error", false),
        (ErrorCode::IdempotencyKeyInUse,   "idempotency_key_in_use",  409, "idempotency_error",     true),
        (ErrorCode::BodyTooLarge,          "body_too_large",          413, "invalid_request_error", false),
        (ErrorCode::RequestTimeout,        "request_timeout",         408, "invalid_request_error", true),
        (ErrorCode::UnsupportedMediaType,  "unsupported_media_type",  415, "invalid_request_error", false),
        (ErrorCode::RateLimited,           "rate_limited",            429, "rate_limit_error",      true),
        (ErrorCode::InternalError,         "internal_error",          500, "api_error",             false),
        (ErrorCode::PspRejected,           "psp_rejected",            502, "psp_error",             false),
        (ErrorCode::PspUnusableResponse,   "psp_unusable_response",   502, "psp_error",             false),
        (ErrorCode::ServiceUnavailable,    "service_unavailable",     503, "api_error",             true),
    ];

    fn type_name(kind: ErrorType) -> String {
        serde_json::to_value(kind)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn every_code_answers_as_the_contract_says() {
        assert_eq!(ErrorCode::ALL.len(), CONTRACT.len());
        for &(code, wire, status, kind, retry_safe) in CONTRACT {
            assert_eq!(code.as_str(), wire, "{code:?}");
            assert_eq!(code.status().as_u16(), status, "{code:?}");
            assert_eq!(type_name(code.kind()), kind, "{code:?}");
            assert_eq!(code.retry_safe(), retry_safe, "{code:?}");
        }
    }

    #[test]
    fn codes_are_unique_snake_case_strings() {
        let wires: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            wires.len(),
            ErrorCode::ALL.len(),
            "a wire string is used twice"
        );
        for code in ErrorCode::ALL {
            let wire = code.as_str();
            assert!(
                !wire.is_empty() && wire.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{wire}"
            );
            assert_eq!(serde_json::to_value(code).unwrap(), wire);
        }
    }

    /// The merchant API contract's table, plus what it leaves to HTTP itself: 405 and 415 for a wrong method or
    /// content type, and 500 for a bug.
    #[test]
    fn status_and_type_come_in_the_pairs_of_design_section_3() {
        use ErrorType as T;
        let design = [
            (400, T::InvalidRequestError),
            (400, T::IdempotencyError),
            (401, T::AuthenticationError),
            (404, T::InvalidRequestError),
            (409, T::InvalidRequestError),
            (409, T::IdempotencyError),
            (413, T::InvalidRequestError),
            (429, T::RateLimitError),
            (502, T::PspError),
            (503, T::ApiError),
        ];
        let http = [
            (405, T::InvalidRequestError),
            (408, T::InvalidRequestError),
            (415, T::InvalidRequestError),
            (500, T::ApiError),
        ];
        for code in ErrorCode::ALL {
            let pair = (code.status().as_u16(), code.kind());
            assert!(
                design.contains(&pair) || http.contains(&pair),
                "{code}: {pair:?} is not a row of the error table"
            );
        }
    }

    /// Only an answer that promises "nothing happened, send it again later" is retry-safe:
    /// never a 4xx the same request would get again, nor a 5xx whose outcome is open.
    #[test]
    fn only_transient_refusals_are_retry_safe() {
        for code in ErrorCode::ALL.iter().filter(|c| c.retry_safe()) {
            assert!(
                matches!(code.status().as_u16(), 408 | 409 | 429 | 503),
                "{code} is retry-safe but answers {}",
                code.status()
            );
        }
    }

    #[test]
    fn field_errors_render_as_400_naming_the_param() {
        let e = ApiError::from(FieldError::new(
            "card.number",
            ErrorCode::InvalidCardNumber,
            "not a card number",
        ));
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            serde_json::json!({"error": {
                "type": "invalid_request_error",
                "code": "invalid_card_number",
                "message": "not a card number",
                "param": "card.number",
                "request_id": null,
            }})
        );
    }

    #[test]
    fn the_response_carries_the_table_status_and_its_headers() {
        let res = ApiError::unauthenticated().error_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer"
        );
        assert_eq!(
            res.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );

        let res = ApiError::store_unavailable(anyhow::anyhow!("redis down")).error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "5");
        assert!(!res.headers().contains_key(header::WWW_AUTHENTICATE));
        let body = res.into_body().try_into_bytes().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["type"], "api_error");
        assert_eq!(body["error"]["code"], "service_unavailable");
        assert_eq!(body["error"]["param"], serde_json::Value::Null);
        assert!(!body.to_string().contains("redis down"), "{body}");

        let res = ApiError::rate_limited(0).error_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "1");
    }
}
