//! The table of the merchant API's error codes: each code's wire string, HTTP
//! status, `type`, and whether the same request may simply be sent again. It lives apart from
//! [`crate::errors`] (the rendering) so that the domain's field errors can name a code without
//! depending on the web layer's error type.

use std::fmt;

use actix_web::http::StatusCode;
use serde::Serialize;

/// The `type` of the error table.
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

/// One row of the table: what a code always comes with.
struct Row {
    wire: &'static str,
    status: StatusCode,
    kind: ErrorType,
    retry_safe: bool,
}

/// Declares [`ErrorCode`] and its table from one list, so that a code cannot exist without its
/// status, type and retry rule, and [`ErrorCode::ALL`] cannot miss one.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => $wire:literal, $status:ident, $kind:ident, $retry_safe:literal; )*) => {
        /// A stable machine code of the merchant API. Storefronts branch on the wire strings:
        /// never rename one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            fn row(self) -> Row {
                match self {
                    $( ErrorCode::$variant => Row {
                        wire: $wire,
                        status: StatusCode::$status,
                        kind: ErrorType::$kind,
                        retry_safe: $retry_safe,
                    }, )*
                }
            }
        }
    };
}

// "Retry-safe" means the request had no effect and the very same request may succeed when sent
// again (after `Retry-After` where there is one). A 400 would only fail the same way again; a 500
// or 502 leaves the outcome open, so its answer is final (and replayed under an Idempotency-Key).
error_codes! {
    // code                      wire                        HTTP                    type                 retry-safe
    /// The body is not JSON, or not the JSON the endpoint expects.
    InvalidJson              => "invalid_json",              BAD_REQUEST,            InvalidRequestError, false;
    /// A refund of more than is left to refund.
    AmountTooLarge           => "amount_too_large",          BAD_REQUEST,            InvalidRequestError, false;
    /// The checkout's status allows no refund (only succeeded and partially refunded do).
    CheckoutNotRefundable    => "checkout_not_refundable",   CONFLICT,               InvalidRequestError, false;
    /// Only requires_action, processing and requires_capture checkouts can be canceled.
    CheckoutNotCancelable    => "checkout_not_cancelable",   CONFLICT,               InvalidRequestError, false;
    /// Only a requires_capture checkout can be captured.
    CheckoutNotCapturable    => "checkout_not_capturable",   CONFLICT,               InvalidRequestError, false;
    /// Only a pending refund can be canceled.
    RefundNotCancelable      => "refund_not_cancelable",     CONFLICT,               InvalidRequestError, false;
    /// The checkout holds the most refunds it may (200, whatever their status).
    RefundLimitReached       => "refund_limit_reached",      CONFLICT,               InvalidRequestError, false;
    WebhooksNotConfigured    => "webhooks_not_configured",   CONFLICT,               InvalidRequestError, false;
    /// A payment method that is not `active` (deleted) cannot pay or be changed.
    PaymentMethodInactive    => "payment_method_inactive",   CONFLICT,               InvalidRequestError, false;
    /// A dispute of the checkout is open: no refund until it is decided.
    CheckoutDisputed         => "checkout_disputed",         CONFLICT,               InvalidRequestError, false;
    /// Evidence is taken only while the dispute needs a response.
    DisputeNotOpen           => "dispute_not_open",          CONFLICT,               InvalidRequestError, false;
    /// The gateway keeps at most 16 webhook endpoints.
    WebhookEndpointLimitReached => "webhook_endpoint_limit_reached", CONFLICT,        InvalidRequestError, false;
    /// A field the endpoint does not know, at any depth (a misspelt one must not be dropped).
    UnknownField             => "unknown_field",             BAD_REQUEST,            InvalidRequestError, false;
    /// A value of another JSON type than the field takes.
    InvalidType              => "invalid_type",              BAD_REQUEST,            InvalidRequestError, false;
    /// A key given twice in one object.
    DuplicateField           => "duplicate_field",           BAD_REQUEST,            InvalidRequestError, false;
    /// The body could not be read off the connection.
    InvalidBody              => "invalid_body",              BAD_REQUEST,            InvalidRequestError, false;
    InvalidPath              => "invalid_path",              BAD_REQUEST,            InvalidRequestError, false;
    InvalidQuery             => "invalid_query",             BAD_REQUEST,            InvalidRequestError, false;
    InvalidIdempotencyKey    => "invalid_idempotency_key",   BAD_REQUEST,            InvalidRequestError, false;
    /// A required field is absent (or `null`).
    ParameterMissing         => "parameter_missing",         BAD_REQUEST,            InvalidRequestError, false;
    /// A field is invalid in a way no more precise code below names (too long, HTML, empty list).
    InvalidParameter         => "invalid_parameter",         BAD_REQUEST,            InvalidRequestError, false;
    InvalidCardNumber        => "invalid_card_number",       BAD_REQUEST,            InvalidRequestError, false;
    InvalidExpiry            => "invalid_expiry",            BAD_REQUEST,            InvalidRequestError, false;
    InvalidCvc               => "invalid_cvc",               BAD_REQUEST,            InvalidRequestError, false;
    InvalidCurrency          => "invalid_currency",          BAD_REQUEST,            InvalidRequestError, false;
    InvalidAmount            => "invalid_amount",            BAD_REQUEST,            InvalidRequestError, false;
    InvalidQuantity          => "invalid_quantity",          BAD_REQUEST,            InvalidRequestError, false;
    InvalidTaxRate           => "invalid_tax_rate",          BAD_REQUEST,            InvalidRequestError, false;
    /// `amount` is not the sum of the items and shipping.
    AmountMismatch           => "amount_mismatch",           BAD_REQUEST,            InvalidRequestError, false;
    InvalidEmail             => "invalid_email",             BAD_REQUEST,            InvalidRequestError, false;
    InvalidIpAddress         => "invalid_ip_address",        BAD_REQUEST,            InvalidRequestError, false;
    InvalidCountry           => "invalid_country",           BAD_REQUEST,            InvalidRequestError, false;
    InvalidLocale            => "invalid_locale",            BAD_REQUEST,            InvalidRequestError, false;
    InvalidUrl               => "invalid_url",               BAD_REQUEST,            InvalidRequestError, false;
    /// A return or cancel URL whose host is not in `checkout.return_url_hosts`.
    UrlHostNotAllowed        => "url_host_not_allowed",      BAD_REQUEST,            InvalidRequestError, false;
    InvalidMetadata          => "invalid_metadata",          BAD_REQUEST,            InvalidRequestError, false;
    /// The Idempotency-Key was used with another body.
    IdempotencyKeyReused     => "idempotency_key_reused",    BAD_REQUEST,            IdempotencyError,    false;
    /// No Bearer key, or not one of the gateway's merchant keys.
    InvalidApiKey            => "invalid_api_key",           UNAUTHORIZED,           AuthenticationError, false;
    /// No checkout has this id (well-formed or not).
    ResourceMissing          => "resource_missing",          NOT_FOUND,              InvalidRequestError, false;
    RouteNotFound            => "route_not_found",           NOT_FOUND,              InvalidRequestError, false;
    MethodNotAllowed         => "method_not_allowed",        METHOD_NOT_ALLOWED,     InvalidRequestError, false;
    /// A request with the same Idempotency-Key is still running.
    IdempotencyKeyInUse      => "idempotency_key_in_use",    CONFLICT,               IdempotencyError,    true;
    BodyTooLarge             => "body_too_large",            PAYLOAD_TOO_LARGE,      InvalidRequestError, false;
    /// The body did not arrive within `server.body_timeout_ms`; the connection is closed.
    RequestTimeout           => "request_timeout",           REQUEST_TIMEOUT,        InvalidRequestError, true;
    UnsupportedMediaType     => "unsupported_media_type",    UNSUPPORTED_MEDIA_TYPE, InvalidRequestError, false;
    RateLimited              => "rate_limited",              TOO_MANY_REQUESTS,      RateLimitError,      true;
    InternalError            => "internal_error",            INTERNAL_SERVER_ERROR,  ApiError,            false;
    /// MSP refused the order for a reason that is not the card's.
    PspRejected              => "psp_rejected",              BAD_GATEWAY,            PspError,            false;
    /// MSP's answer could not be read: the order may exist, so the checkout is left processing.
    PspUnusableResponse      => "psp_unusable_response",     BAD_GATEWAY,            PspError,            false;
    /// The store (Redis) is unavailable; nothing was sent to MSP.
    ServiceUnavailable       => "service_unavailable",       SERVICE_UNAVAILABLE,    ApiError,            true;
}

impl ErrorCode {
    /// The `code` as the API spells it.
    pub fn as_str(self) -> &'static str {
        self.row().wire
    }

    pub fn status(self) -> StatusCode {
        self.row().status
    }

    /// The `type` this code is always answered with.
    pub fn kind(self) -> ErrorType {
        self.row().kind
    }

    /// Whether the request had no effect, so that sending the same request again is safe and may
    /// succeed (after `Retry-After`, when the answer has one).
    pub fn retry_safe(self) -> bool {
        self.row().retry_safe
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
