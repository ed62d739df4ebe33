//! JSON logs through `tracing` (style.md rule 13). Every request gets a span with a request id
//! from `tracing-actix-web`, and every line logged inside it carries that id.
//!
//! Nothing here knows about card data: card and secret types mask their own `Debug`, so logging
//! `?value` cannot leak them.

use actix_web::HttpMessage;
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt};

/// A JSON subscriber writing to `sink`, filtered by `RUST_LOG` or else `default_filter`.
pub fn get_subscriber<Sink>(default_filter: &str, sink: Sink) -> impl Subscriber + Send + Sync
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = tracing_subscriber::fmt::layer()
        .json()
        // The whole span list, so that every line carries the request span's `request_id` as
        // well as the innermost span's fields (checkout id, order id).
        .with_current_span(false)
        .with_span_list(true)
        .flatten_event(true)
        .with_writer(sink);
    tracing_subscriber::registry().with(filter).with(json)
}

/// Installs `subscriber` as the global default; a second call is ignored (tests start many apps).
pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The filter the binary starts with: our crate at info, noisy dependencies at warn.
pub const DEFAULT_FILTER: &str = "info,actix_server=warn,h2=warn,hyper=warn,reqwest=warn";

/// The root span of every request: its `request_id`, the method and the route *pattern*.
///
/// Slimmer than `tracing-actix-web`'s default span on purpose. That one repeats a dozen `http.*`
/// fields on every log line (a fifth of a checkout's CPU went to logging, measured with
/// `examples/gateway_bench.rs --logs`), and its `http.target` is the raw path: for
/// `/pay/{token}` that would write every pay link's token into the logs.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        tracing::info_span!("request", request_id = %request_id, method = %request.method(), route = %route)
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        _span: tracing::Span,
        _outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        // The access line of `metrics::track_requests` records the outcome.
    }
}
