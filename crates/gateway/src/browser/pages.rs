//! The gateway's own HTML pages for the shopper's browser: error pages. (The pay flow itself is
//! 303 redirects, or MSP's form served byte for byte; neither goes through a template.)
//!
//! Pages are askama templates (`src/browser/templates/`, auto-escaped because they end in
//! `.html`), self-contained (one inline stylesheet, allowed by hash in
//! [`GATEWAY_PAGE_CSP`]) and load nothing else.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use askama::Template;

use super::security::{GATEWAY_PAGE_CSP, apply_browser_headers};

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
    /// A button to where the reader can go next: `(href, label)`.
    link: Option<(&'a str, &'a str)>,
}

/// An HTML error page. `title` and `message` are escaped, so they may carry any text.
pub fn error_page(status: u16, title: &str, message: &str) -> String {
    error_page_with_link(status, title, message, None)
}

/// [`error_page`] with a button to `link` (`(href, label)`, both escaped).
pub fn error_page_with_link(
    status: u16,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> String {
    ErrorPage {
        status,
        title,
        message,
        link,
    }
    .render()
    // Rendering writes into a String, which cannot fail; a `Display` of ours failing would be
    // a bug, and the shopper should still see something meaningful.
    .unwrap_or_else(|_| format!("Error {status}"))
}

/// 404: the pay link names no pending payment we know of.
pub fn unknown_link_page() -> String {
    error_page(
        404,
        "This payment link is unknown",
        "We could not find a payment for this link. Please go back to the shop and start the \
         checkout again.",
    )
}

/// 410: the pay link's 3-D Secure session has expired.
pub fn expired_link_page() -> String {
    error_page(
        410,
        "This payment link has expired",
        "The time to confirm this payment has run out and nothing was charged. Please go back to \
         the shop and start the checkout again.",
    )
}

/// 500/502/503: something on our side; nothing the shopper did.
pub fn generic_error_page(status: u16) -> String {
    error_page(
        status,
        "Something went wrong",
        "We could not process this request right now. Please try again in a minute; if it keeps \
         happening, go back to the shop and contact them.",
    )
}

/// A complete error response: the page, `text/html; charset=utf-8`, and the browser headers
/// with [`GATEWAY_PAGE_CSP`].
pub fn error_response(status: StatusCode, page: String) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    apply_browser_headers(&mut builder, GATEWAY_PAGE_CSP);
    builder.content_type(ContentType::html()).body(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_title_and_message_are_escaped() {
        let page = error_page(
            400,
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(2)> & more",
        );
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        // askama escapes with numeric references (`&#60;` for `<`).
        assert!(
            page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{page}"
        );
        assert!(page.contains("&#38; more"), "{page}");
    }

    #[test]
    fn known_pages_say_what_happened_and_what_to_do() {
        let unknown = unknown_link_page();
        assert!(unknown.contains("This payment link is unknown"));
        assert!(unknown.contains("ERROR 404"));
        assert!(unknown.contains("start the checkout again"));
        let expired = expired_link_page();
        assert!(expired.contains("This payment link has expired"));
        assert!(expired.contains("ERROR 410"));
        let generic = generic_error_page(503);
        assert!(generic.contains("ERROR 503"));
        assert!(generic.contains("try again"));
    }

    #[test]
    fn pages_load_nothing_external() {
        let page = unknown_link_page();
        for needle in [
            "<script", "<link", "src=", "http://", "https://", "style=\"",
        ] {
            assert!(!page.contains(needle), "page contains {needle}: {page}");
        }
        assert!(page.contains("<meta name=\"viewport\""));
    }

    #[test]
    fn error_response_has_status_type_and_headers() {
        let res = error_response(StatusCode::GONE, expired_link_page());
        assert_eq!(res.status(), StatusCode::GONE);
        let h = res.headers();
        assert_eq!(h.get("content-type").unwrap(), "text/html; charset=utf-8");
        assert_eq!(h.get("cache-control").unwrap(), "no-store");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("content-security-policy").unwrap(), GATEWAY_PAGE_CSP);
    }
}
