//! The shopper's browser: `/pay/{token}`, `/return/{id}`, `/cancel/{id}`.
//!
//! Answers are 303 redirects and HTML pages, never JSON. Every response here, redirects and error
//! pages included, carries `Cache-Control: no-store`, `Referrer-Policy: no-referrer`,
//! `X-Content-Type-Options: nosniff` and a restrictive CSP with `frame-ancestors 'none'`
//! ([`security::browser_security_headers`]). Every path here is rate-limited per client address
//! ([`keyless`]): an HTML 429 page with `Retry-After` beyond `server.keyless_rate_limit_per_s`.

use actix_web::middleware::from_fn;
use actix_web::web;

mod html_scan;
pub mod keyless;
pub mod pages;
pub mod pay;
pub mod respond;
pub mod return_url;
pub mod security;

/// The path prefixes of the shopper's pages: `/pay`, `/return`, `/cancel`, and the
/// sandbox's demo shop under `/demo`. Whatever answers under them (a 404 for a near miss such as
/// `/pay/` or `/pay/{token}/`, a 408, a 405) is an HTML page with the browser headers, never JSON.
const BROWSER_PREFIXES: [&str; 4] = ["/pay", "/return", "/cancel", "/demo"];

/// Whether `path` is one of the shopper's (see `BROWSER_PREFIXES`): the prefix itself, or
/// anything under it.
pub fn is_browser_path(path: &str) -> bool {
    BROWSER_PREFIXES.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let not_allowed = || web::to(respond::method_not_allowed);
    cfg.service(
        web::resource("/pay/{token}")
            .wrap(from_fn(keyless::limit_browser))
            .wrap(from_fn(security::browser_security_headers))
            .route(web::get().to(pay::pay))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/return/{checkout_id}")
            .wrap(from_fn(keyless::limit_browser))
            .wrap(from_fn(security::browser_security_headers))
            .route(web::get().to(return_url::back_from_msp))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/cancel/{checkout_id}")
            .wrap(from_fn(keyless::limit_browser))
            .wrap(from_fn(security::browser_security_headers))
            .route(web::get().to(return_url::canceled_at_msp))
            .default_service(not_allowed()),
    );
}

#[cfg(test)]
mod tests {
    use super::is_browser_path;

    #[test]
    fn browser_paths_are_the_prefixes_and_what_lies_under_them() {
        for path in [
            "/pay",
            "/pay/",
            "/pay/x/",
            "/return/",
            "/cancel/a/b",
            "/demo",
            "/demo/",
        ] {
            assert!(is_browser_path(path), "{path}");
        }
        for path in [
            "/payments",
            "/v1/checkouts",
            "/",
            "/health/ready",
            "/demonstration",
        ] {
            assert!(!is_browser_path(path), "{path}");
        }
    }
}
