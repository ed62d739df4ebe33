//! JSON logs through `tracing` (style.md rule 13). Every request gets a span with its request id
//! ([`crate::request_id`]), and every line logged inside it carries that id.
//!
//! Nothing here knows about card data: card and secret types mask their own `Debug`, so logging
//! `?value` cannot leak them.

use std::fmt;

use actix_web::HttpMessage;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt};

/// A JSON subscriber writing to `sink`, filtered by `RUST_LOG` or else `default_filter`.
pub fn get_subscriber<Sink>(default_filter: &str, sink: Sink) -> impl Subscriber + Send + Sync
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    with_filter(filter, sink)
}

/// [`get_subscriber`] with its filter given.
fn with_filter<Sink>(filter: EnvFilter, sink: Sink) -> impl Subscriber + Send + Sync
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // The whole span list on every line, so that it carries the request span's `request_id`
    // as well as the innermost span's fields (checkout id, order id).
    let json = tracing_subscriber::fmt::layer()
        .fmt_fields(SpanFields)
        .event_format(JsonLines)
        .with_writer(sink);
    tracing_subscriber::registry().with(filter).with(json)
}

/// The log line: one JSON object per event with `timestamp`, `level`, the event's fields
/// (`message` first), `target` and, inside spans, `spans` from the outermost in, each with its
/// fields and `name`. That is the shape of tracing-subscriber's own `json()` layer with
/// `flatten_event` and `with_span_list`, which parses every span's stored fields back into a
/// map on every line to write them again; here they are stored as JSON once, when the span is
/// made ([`SpanFields`]), and pasted (issue 12: that parse was a third of what a line cost).
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(b"{\"timestamp\":");
        crate::domain::time::with_text(
            &chrono::Utc::now(),
            chrono::SecondsFormat::Micros,
            |text| json(&mut line, text),
        );
        line.extend_from_slice(b",\"level\":");
        json(&mut line, meta.level().as_str());
        event.record(&mut JsonVisitor(&mut line));
        line.extend_from_slice(b",\"target\":");
        json(&mut line, meta.target());
        if let Some(scope) = ctx.event_scope() {
            line.extend_from_slice(b",\"spans\":[");
            for (i, span) in scope.from_root().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                line.push(b'{');
                let extensions = span.extensions();
                // `SpanFields` stores `,"field":value` pairs: all but the first comma, then
                // one before `name`.
                if let Some(stored) = extensions.get::<FormattedFields<N>>()
                    && let Some(pairs) = stored.fields.strip_prefix(',')
                {
                    line.extend_from_slice(pairs.as_bytes());
                    line.push(b',');
                }
                line.extend_from_slice(b"\"name\":");
                json(&mut line, span.name());
                line.push(b'}');
            }
            line.push(b']');
        }
        line.extend_from_slice(b"}\n");
        writer.write_str(std::str::from_utf8(&line).map_err(|_| fmt::Error)?)
    }
}

/// How a span's fields are stored for [`JsonLines`]: as the `,"name":value` pairs it pastes into
/// every line logged inside the span, written once by the same visitor as an event's fields.
/// (tracing-subscriber's `JsonFields` builds a map of them first, and parses it back whenever a
/// field is recorded later.)
pub struct SpanFields;

impl<'writer> FormatFields<'writer> for SpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut pairs = Vec::with_capacity(64);
        fields.record(&mut JsonVisitor(&mut pairs));
        writer.write_str(std::str::from_utf8(&pairs).map_err(|_| fmt::Error)?)
    }

    /// A field recorded after the span began (`Span::record`): appended, unless the span has
    /// a value for it already, which it then replaces (rare: then the pairs are read back).
    fn add_fields(
        &self,
        current: &mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut added = Vec::with_capacity(64);
        fields.record(&mut JsonVisitor(&mut added));
        let added = std::str::from_utf8(&added).map_err(|_| fmt::Error)?;
        let mut names = Vec::new();
        fields.record(&mut FieldNames(&mut names));
        let seen = names.iter().any(|name| {
            let key = serde_json::to_string(name).unwrap_or_default();
            current.fields.contains(&format!(",{key}:"))
        });
        if !seen {
            current.fields.push_str(added);
            return Ok(());
        }
        let object = |pairs: &str| format!("{{{}}}", pairs.strip_prefix(',').unwrap_or_default());
        let mut merged: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&object(&current.fields)).map_err(|_| fmt::Error)?;
        let newer: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&object(added)).map_err(|_| fmt::Error)?;
        merged.extend(newer);
        let mut pairs = Vec::with_capacity(current.fields.len() + added.len());
        for (name, value) in &merged {
            pairs.push(b',');
            json(&mut pairs, name);
            pairs.push(b':');
            json(&mut pairs, value);
        }
        current.fields = String::from_utf8(pairs).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

/// The names of the fields a record has values for.
struct FieldNames<'a>(&'a mut Vec<&'static str>);

impl Visit for FieldNames<'_> {
    fn record_debug(&mut self, field: &Field, _: &dyn fmt::Debug) {
        self.0.push(field.name());
    }
}

/// Writes an event's fields as `,"name":value` pairs.
struct JsonVisitor<'a>(&'a mut Vec<u8>);

impl JsonVisitor<'_> {
    fn pair(&mut self, field: &Field, value: &(impl serde::Serialize + ?Sized)) {
        self.0.push(b',');
        json(self.0, field.name());
        self.0.push(b':');
        json(self.0, value);
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.pair(field, &Escaped(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.pair(field, &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.pair(field, &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.pair(field, &value);
    }

    /// Not finite: `null`, as serde_json writes it.
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.pair(field, &value);
    }
}

/// A `Debug` value (the message, and `%` and `?` fields) as a JSON string, escaped by
/// serde_json as it is formatted, with no `String` of it made first. A value whose formatting
/// fails keeps what it wrote before failing: the line is still logged, and still JSON.
struct Escaped<'a>(&'a dyn fmt::Debug);

impl serde::Serialize for Escaped<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the value can fail here: serde_json's writer is a `Vec`.
        let _ = write!(f, "{:?}", self.0);
        Ok(())
    }
}

/// `value` as JSON, escaped by serde_json. Writing to a `Vec` cannot fail, and these values
/// (strings, numbers, booleans, [`Escaped`]) always serialise.
fn json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    let _ = serde_json::to_writer(out, value);
}

/// The log writer thread's output: writes go straight to `inner`; after each flush (the
/// thread flushes whenever it has written everything queued) it pauses for `window` before it
/// looks for more lines.
///
/// Without the pause, at a few hundred requests a second the thread went to sleep after nearly
/// every line, and each line then cost a wake-up of it, and its channel's spinning before it
/// slept again (`strace -c` at one connection: 7 `sched_yield`, 3 `futex`, 2.7 `write` per
/// checkout, for 3 log lines; issue 12). With it, lines that come meanwhile wait in the queue and
/// go out together, at most `window` later, and the thread sleeps only when lines stop coming.
///
/// `pause` is how it waits: the thread's sleep, or in tests a recorder.
pub struct FlushPause<W, P = fn(std::time::Duration)> {
    inner: W,
    window: std::time::Duration,
    pause: P,
}

impl<W> FlushPause<W> {
    pub fn new(inner: W, window: std::time::Duration) -> Self {
        Self {
            inner,
            window,
            pause: std::thread::sleep,
        }
    }
}

impl<W: std::io::Write, P: FnMut(std::time::Duration)> std::io::Write for FlushPause<W, P> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()?;
        (self.pause)(self.window);
        Ok(())
    }
}

/// Installs `subscriber` as the global default; a second call is ignored (tests start many apps).
pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The filter the binary starts with: our crate at info, noisy dependencies at warn.
pub const DEFAULT_FILTER: &str = "info,actix_server=warn,h2=warn,hyper=warn,reqwest=warn";

/// The route pattern of a request (`/v1/checkouts/{id}`, or `unmatched`), found once, when its
/// span starts.
#[derive(Clone, Debug)]
pub struct Route(pub String);

/// The root span of every request: its `request_id` (the `Request-Id` it is answered with), the
/// method and the route *pattern*.
///
/// Slimmer than `tracing-actix-web`'s default span on purpose. That one repeats a dozen `http.*`
/// fields on every log line (a fifth of a checkout's CPU went to logging, measured with
/// `crates/bench/benches/gateway_bench.rs --logs`), and its `http.target` is the raw path: for
/// `/pay/{token}` that would write every pay link's token into the logs.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        // The id `request_id::assign` found (the outermost middleware, so always there).
        let request_id = request
            .extensions()
            .get::<crate::request_id::RequestContext>()
            .cloned();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        // Kept for the access line and the metrics' label: finding it walks every route.
        request.extensions_mut().insert(Route(route.clone()));
        let span = |request_id: &dyn fmt::Display| {
            tracing::info_span!(
                "request",
                request_id = %request_id,
                method = %request.method(),
                route = %route
            )
        };
        match &request_id {
            Some(id) => span(id),
            None => span(&""),
        }
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        _span: tracing::Span,
        _outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        // The access line of `metrics::track_requests` records the outcome.
    }
}

/// Reading what the gateway logs, in tests.
#[cfg(test)]
pub(crate) mod capture {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        /// The gateway's own subscriber, at every level, whatever `RUST_LOG` says, writing here.
        pub(crate) fn subscriber(&self) -> impl Subscriber + Send + Sync {
            with_filter(EnvFilter::new("trace"), self.clone())
        }

        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::capture::Captured;
    use super::*;

    fn capture_text(log: impl FnOnce()) -> String {
        let sink = Captured::default();
        tracing::subscriber::with_default(get_subscriber("info", sink.clone()), log);
        sink.text()
    }

    fn lines(log: impl FnOnce()) -> Vec<Value> {
        capture_text(log)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn a_line_is_json_with_its_fields_and_its_spans_from_the_outermost_in() {
        let lines = lines(|| {
            let request = tracing::info_span!("request", request_id = "r-1", route = "/v1/x");
            let _request = request.enter();
            let flow = tracing::info_span!("create_checkout", checkout_id = "chk_1");
            let _flow = flow.enter();
            tracing::info!(
                n = 3,
                below = -2,
                ok = true,
                ratio = 0.5,
                why = ?Some("x"),
                text = "quote \" backslash \\ tab \t bell \u{7} é",
                shown = %"quote \" new\nline \u{1} é",
                "status {}",
                "\"changed\"\n"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "status \"changed\"\n");
        assert_eq!(line["target"], module_path!());
        assert_eq!(
            (&line["n"], &line["below"], &line["ok"], &line["ratio"]),
            (&json!(3), &json!(-2), &json!(true), &json!(0.5))
        );
        assert_eq!(line["why"], "Some(\"x\")");
        assert_eq!(line["text"], "quote \" backslash \\ tab \t bell \u{7} é");
        // `%` and `?` values and the message are escaped as they are formatted.
        assert_eq!(line["shown"], "quote \" new\nline \u{1} é");
        assert_eq!(
            line["spans"],
            json!([
                {"request_id": "r-1", "route": "/v1/x", "name": "request"},
                {"checkout_id": "chk_1", "name": "create_checkout"},
            ])
        );
        let stamp = line["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
    }

    /// A field recorded once the span has begun is on the lines logged after that, once; a
    /// field recorded again says its newer value; a span without fields has only its name.
    #[test]
    fn fields_recorded_later_are_on_the_lines_after_them() {
        let lines = lines(|| {
            let span = tracing::info_span!(
                "notification",
                method = "POST",
                transactionid = tracing::field::Empty
            );
            let _span = span.enter();
            tracing::info!("before");
            span.record("transactionid", "chk_1");
            tracing::info!("after");
            span.record("method", "GET");
            tracing::info!("again");
            let bare = tracing::info_span!("bare");
            let _bare = bare.enter();
            tracing::info!("inside");
        });
        let spans: Vec<&Value> = lines.iter().map(|l| &l["spans"][0]).collect();
        assert_eq!(*spans[0], json!({"method": "POST", "name": "notification"}));
        assert_eq!(
            *spans[1],
            json!({"method": "POST", "transactionid": "chk_1", "name": "notification"})
        );
        assert_eq!(
            *spans[2],
            json!({"method": "GET", "transactionid": "chk_1", "name": "notification"})
        );
        assert_eq!(lines[3]["spans"][1], json!({"name": "bare"}));
        // Every line is one JSON object whose keys are each written once.
        let raw = capture_text(|| {
            let span = tracing::info_span!("s", a = 1);
            let _span = span.enter();
            span.record("a", 2);
            tracing::info!("x");
        });
        assert_eq!(raw.matches("\"a\"").count(), 1, "{raw}");
    }

    /// What a writer saw, in order: what was written, each flush, each pause.
    #[derive(Clone, Default)]
    struct Steps(std::rc::Rc<std::cell::RefCell<Vec<String>>>);

    impl Steps {
        fn push(&self, step: String) {
            self.0.borrow_mut().push(step);
        }

        fn taken(&self) -> Vec<String> {
            self.0.borrow().clone()
        }
    }

    impl std::io::Write for Steps {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.push(format!("write {}", String::from_utf8_lossy(buf).trim_end()));
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.push("flush".to_owned());
            Ok(())
        }
    }

    #[test]
    fn the_log_writer_sends_its_lines_on_then_pauses_for_its_window_after_each_flush() {
        use std::io::Write;
        let steps = Steps::default();
        let paused = steps.clone();
        let mut out = FlushPause {
            inner: steps.clone(),
            window: Duration::from_millis(10),
            pause: move |window: Duration| paused.push(format!("pause {window:?}")),
        };
        out.write_all(b"{\"a\":1}\n").unwrap();
        out.write_all(b"{\"b\":2}\n").unwrap();
        out.flush().unwrap();
        out.write_all(b"{\"c\":3}\n").unwrap();
        out.flush().unwrap();
        assert_eq!(
            steps.taken(),
            [
                "write {\"a\":1}",
                "write {\"b\":2}",
                "flush",
                "pause 10ms",
                "write {\"c\":3}",
                "flush",
                "pause 10ms",
            ],
            "the lines must be out (written and flushed) before the pause, not held by it"
        );
    }

    #[test]
    fn a_field_whose_formatting_fails_keeps_what_it_wrote_and_the_line_stays_json() {
        struct Broken;
        impl fmt::Debug for Broken {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("half \"")?;
                Err(fmt::Error)
            }
        }
        let lines = lines(|| tracing::warn!(broken = ?Broken, after = 1, "still logged"));
        assert_eq!(lines[0]["message"], "still logged");
        assert_eq!(lines[0]["broken"], "half \"");
        assert_eq!(lines[0]["after"], 1);
    }

    #[test]
    fn a_line_outside_any_span_has_no_span_list() {
        let lines = lines(|| tracing::warn!("alone"));
        assert_eq!(lines[0]["message"], "alone");
        assert_eq!(lines[0]["level"], "WARN");
        assert!(lines[0].get("spans").is_none());
    }
}
