//! The shopper's browser: `/pay/{token}`, `/return/{id}`, `/cancel/{id}`. HTML and 303s with security headers.

mod html_scan;
pub mod pages;
pub mod security;
