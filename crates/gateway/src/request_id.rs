//! Every request's id, which a merchant quotes and an operator finds in the logs.
//!
//! The id is the caller's `X-Request-Id` when it sends a well-formed one (1 to
//! [`MAX_LEN`] characters of ASCII letters, digits and `-_.:`), else the trace id of its W3C
//! `traceparent` when that is well formed, else 32 fresh random hex digits. A malformed header is
//! ignored, never echoed: the id is then generated (as if it had not been sent).
//!
//! [`assign`] (the outermost middleware) finds it once, puts it in the request's extensions
//! (the request span of [`crate::telemetry::RequestSpan`] reads it there, so every log line of
//! the request carries it) and in a task-local while the request is served (so that
//! [`crate::errors::ApiError`]'s body shows it as `error.request_id`, and the MultiSafepay
//! client sends a `traceparent` of the same trace), and answers it as `Request-Id` on every
//! response: merchant API, browser, notifications and ops alike.

use std::fmt;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};

/// The response header that carries the id.
pub const RESPONSE_HEADER: HeaderName = HeaderName::from_static("request-id");
/// The request header a caller (or its proxy) may set the id with.
pub const REQUEST_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// W3C Trace Context's header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The longest `X-Request-Id` taken; a longer one is replaced.
pub const MAX_LEN: usize = 128;

/// What [`assign`] found for one request: its id and the trace it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    id: String,
    /// 32 lowercase hex digits, not all zero: the incoming `traceparent`'s, else a new one.
    trace_id: String,
    /// The incoming `traceparent`'s flags (2 hex digits), else `00` (not sampled).
    flags: String,
}

impl RequestContext {
    /// The id of a request with these headers.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let trace = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let given = headers
            .get(REQUEST_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| well_formed_id(v));
        let (trace_id, flags) = match trace {
            Some((trace_id, flags)) => (trace_id.to_owned(), flags.to_owned()),
            None => (random_hex::<16>(), "00".to_owned()),
        };
        let id = given.map_or_else(|| trace_id.clone(), str::to_owned);
        Self {
            id,
            trace_id,
            flags,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// A `traceparent` for a call this request makes: the same trace, a new parent id (W3C
    /// Trace Context §3.2: each call out is a span of its own).
    pub fn traceparent_for_call(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, random_hex::<8>(), self.flags)
    }
}

impl fmt::Display for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// The request being served on this task, if any (background work has none).
pub fn current() -> Option<RequestContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The id of the request being served on this task, if any.
pub fn current_id() -> Option<String> {
    CURRENT.try_with(|c| c.id.clone()).ok()
}

/// The outermost middleware: finds the request's id and answers it as `Request-Id`. An error
/// the inner layers return (rather than a response) is rendered by actix later, outside this
/// request's scope: it is wrapped so that its body and headers carry the id too.
pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let context = RequestContext::from_headers(req.headers());
    req.extensions_mut().insert(context.clone());
    let served = CURRENT.scope(context.clone(), next.call(req)).await;
    match served {
        Ok(mut res) => {
            insert_header(res.headers_mut(), &context);
            Ok(res)
        }
        Err(error) => Err(Identified { error, context }.into()),
    }
}

fn insert_header(headers: &mut HeaderMap, context: &RequestContext) {
    // Only characters a header value holds are ever taken or generated.
    if let Ok(value) = HeaderValue::from_str(context.id()) {
        headers.insert(RESPONSE_HEADER, value);
    }
}

/// An error of an inner layer, with the id of the request it answers.
struct Identified {
    error: actix_web::Error,
    context: RequestContext,
}

impl fmt::Debug for Identified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

impl fmt::Display for Identified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for Identified {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut res = CURRENT.sync_scope(self.context.clone(), || self.error.error_response());
        insert_header(res.headers_mut(), &self.context);
        res
    }
}

/// An `X-Request-Id` that is taken as it is.
fn well_formed_id(value: &str) -> bool {
    (1..=MAX_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A W3C `traceparent` (`version-traceid-parentid-flags`, lowercase hex): its trace id and
/// flags. Version `00` is exactly 55 characters; a later version may append fields after a
/// `-`; version `ff`, an all-zero trace or parent id, and uppercase hex are invalid.
fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let value = value.trim();
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let version = value.get(..2)?;
    if !lower_hex(version, 2) || version == "ff" {
        return None;
    }
    let fixed = value.get(..55)?;
    let rest = &value[55..];
    if (version == "00" && !rest.is_empty()) || (!rest.is_empty() && !rest.starts_with('-')) {
        return None;
    }
    let mut parts = fixed.split('-');
    let (_, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let not_zero = |s: &str| s.bytes().any(|b| b != b'0');
    (lower_hex(trace_id, 32)
        && lower_hex(parent_id, 16)
        && lower_hex(flags, 2)
        && not_zero(trace_id)
        && not_zero(parent_id))
    .then_some((trace_id, flags))
}

/// `N` random bytes as lowercase hex; never all zero.
fn random_hex<const N: usize>() -> String {
    loop {
        let bytes: [u8; N] = rand::random();
        if bytes.iter().any(|b| *b != 0) {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let mut hex = String::with_capacity(2 * N);
            for b in bytes {
                hex.push(char::from(DIGITS[usize::from(b >> 4)]));
                hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
            }
            return hex;
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    const TRACEPARENT_00: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn context(headers: &[(&'static str, &str)]) -> RequestContext {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        RequestContext::from_headers(&map)
    }

    fn is_generated(c: &RequestContext) -> bool {
        c.id().len() == 32 && c.id() == c.trace_id() && c.flags == "00"
    }

    #[test]
    fn a_well_formed_x_request_id_is_taken_as_it_is() {
        let c = context(&[("x-request-id", "edge-7f3a:01.b_c")]);
        assert_eq!(c.id(), "edge-7f3a:01.b_c");
        assert_eq!(c.trace_id().len(), 32);
    }

    #[test]
    fn a_traceparent_gives_its_trace_id_and_the_trace_goes_on_to_calls() {
        let c = context(&[("traceparent", TRACEPARENT_00)]);
        assert_eq!(c.id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let out = c.traceparent_for_call();
        assert!(
            out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && out.ends_with("-01"),
            "{out}"
        );
        assert_ne!(out, TRACEPARENT_00, "a call is a span of its own");
        assert!(parse_traceparent(&out).is_some(), "{out}");
        // Both: the request id is the caller's, the trace still its traceparent's.
        let c = context(&[("x-request-id", "abc"), ("traceparent", TRACEPARENT_00)]);
        assert_eq!(
            (c.id(), c.trace_id()),
            ("abc", "4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn a_later_traceparent_version_may_carry_more_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assert_eq!(
            context(&[("traceparent", later)]).id(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn malformed_ids_are_replaced_by_generated_ones() {
        let long = "a".repeat(MAX_LEN + 1);
        for bad in [
            "",
            "has space",
            "quote\"",
            "<script>",
            "semi;colon",
            "ünïcode",
            long.as_str(),
        ] {
            let c = context(&[("x-request-id", bad)]);
            assert!(is_generated(&c), "{bad:?} gave {c:?}");
        }
        assert_eq!(
            context(&[("x-request-id", &"a".repeat(MAX_LEN))])
                .id()
                .len(),
            MAX_LEN
        );
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "not a traceparent",
        ] {
            let c = context(&[("traceparent", bad)]);
            assert!(is_generated(&c), "{bad:?} gave {c:?}");
        }
    }

    /// A layer that answers with an error (rather than a response) of the API's kind.
    async fn refuse(
        _req: ServiceRequest,
        _next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
        Err(
            crate::errors::ApiError::new(crate::errors::ErrorCode::ServiceUnavailable, "not now")
                .into(),
        )
    }

    #[actix_web::test]
    async fn an_error_a_layer_returns_carries_the_id_in_its_header_and_body() {
        use actix_web::middleware::from_fn;
        use actix_web::{App, test, web};
        let app = test::init_service(
            App::new()
                .wrap(from_fn(refuse))
                .wrap(from_fn(assign))
                .route("/", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let req = test::TestRequest::get()
            .uri("/")
            .insert_header(("x-request-id", "abc-1"))
            .to_request();
        // As actix's dispatcher does: an error is rendered after the service answered.
        let error = match actix_web::dev::Service::call(&app, req).await {
            Ok(_) => panic!("the layer answered an error"),
            Err(e) => e,
        };
        let res = error.error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get(RESPONSE_HEADER).unwrap(), "abc-1");
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["request_id"], "abc-1", "{body}");
    }

    #[test]
    fn generated_ids_differ() {
        let (a, b) = (context(&[]), context(&[]));
        assert!(is_generated(&a) && is_generated(&b));
        assert_ne!(a.id(), b.id());
    }
}
