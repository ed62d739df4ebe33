//! The console's pages: askama templates (auto-escaped: they end in `.html`), the one
//! stylesheet (inlined, allowed by its hash), the headers every answer carries, and the message
//! pages of bad input.

use std::sync::LazyLock;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};
use askama::Template;
use base64::Engine as _;

/// The console's stylesheet, inlined in every page.
pub const STYLESHEET: &str = include_str!("templates/console.css");

/// `default-src 'none'`: the pages load nothing (no script, image, font or connection); the
/// one stylesheet by its hash; forms post to the console only; never framed.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLESHEET.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

/// The console's CSP header value.
pub fn csp() -> &'static str {
    &CSP
}

/// Middleware of the console's scope: no caching (pages show payment data), no referrer, no
/// sniffing, the console's CSP, on every answer, errors included.
pub async fn console_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let mut res = next.call(req).await?.map_into_boxed_body();
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(csp()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(res)
}

/// What the frame of every page shows: the title, who is signed in (none on the sign-in page),
/// the CSRF token of the sign-out and search forms, the search box's text.
pub struct Chrome {
    pub title: String,
    pub who: Option<String>,
    pub csrf: String,
    pub q: String,
    /// Which part of the console the page belongs to, for the navigation.
    pub section: &'static str,
}

impl Chrome {
    pub fn new(title: impl Into<String>, section: &'static str) -> Self {
        Self {
            title: title.into(),
            who: None,
            csrf: String::new(),
            q: String::new(),
            section,
        }
    }

    pub fn signed_in(mut self, session: &super::session::Session) -> Self {
        self.who = Some(session.label.clone());
        self.csrf = session.csrf.clone();
        self
    }
}

/// A page answered with `status`.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "a console page did not render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("The console could not show this page.")
        }
    }
}

#[derive(Template)]
#[template(path = "console_message.html")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub heading: String,
    pub message: String,
    /// Where to go next: `(href, label)`.
    pub link: Option<(String, String)>,
}

/// A clear page for bad input or a failure: nothing was done.
pub fn message(
    status: StatusCode,
    chrome: Chrome,
    heading: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> HttpResponse {
    html(
        status,
        &MessagePage {
            chrome,
            heading: heading.to_owned(),
            message: message.to_owned(),
            link: link.map(|(h, l)| (h.to_owned(), l.to_owned())),
        },
    )
}

/// The store could not be reached: nothing was done.
pub fn unavailable(chrome: Chrome) -> HttpResponse {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        chrome,
        "The gateway's storage is not answering",
        "Nothing was changed. Try again in a minute; if it keeps happening, check the gateway's readiness and its Redis.",
        Some(("/console", "Back to the overview")),
    )
}

/// Any other path under `/console`.
pub async fn not_found() -> HttpResponse {
    message(
        StatusCode::NOT_FOUND,
        Chrome::new("Not found", ""),
        "There is no such page",
        "The console has no page at this address.",
        Some(("/console", "Go to the overview")),
    )
}
