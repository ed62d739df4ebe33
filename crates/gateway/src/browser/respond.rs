//! The few kinds of answer the browser endpoints give: 303s and HTML error pages.

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};

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

/// 405 for the browser paths (GET only), as a page, with the `Allow` header.
pub async fn method_not_allowed() -> HttpResponse {
    let mut res = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not allowed",
        "This page cannot be used that way. Please go back to the shop.",
    );
    res.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
    res
}
