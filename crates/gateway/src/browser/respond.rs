//! The few kinds of answer the browser endpoints give: 303s and HTML error pages.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};

use super::pages::error_page;

/// 303 See Other: the browser follows it with a GET, whatever method brought it here.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// An HTML error page with this title and message, with the browser headers.
pub fn error_response(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    super::pages::error_response(status, error_page(status.as_u16(), title, message))
}

/// As [`error_response`], with a button to `link` (`(href, label)`): where to go next.
pub fn error_response_with_link(
    status: StatusCode,
    title: &str,
    message: &str,
    link: (&str, &str),
) -> HttpResponse {
    super::pages::error_response(
        status,
        super::pages::error_page_with_link(status.as_u16(), title, message, Some(link)),
    )
}

/// 405 for the browser paths (GET only), as a page, with the `Allow` header.
pub async fn method_not_allowed() -> HttpResponse {
    let mut res = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not allowed",
        "This page cannot be opened that way. Please go back to the shop and try again from \
         there.",
    );
    res.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
    res
}

/// The app's default service: 404 for a path no route takes. Under the shopper's prefixes
/// (near misses such as `/pay/`, `/pay/{token}/`, `/return/`) a page with the browser headers,
/// not the API's JSON; elsewhere the API's `route_not_found`.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    if super::is_browser_path(req.path()) {
        page_not_found()
    } else {
        crate::errors::not_found().await
    }
}

fn page_not_found() -> HttpResponse {
    error_response(
        StatusCode::NOT_FOUND,
        "Page not found",
        "This address does not lead to a payment page. Please go back to the shop and try again \
         from there.",
    )
}
