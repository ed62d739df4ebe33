//! The operators' console: server-rendered HTML on the operators' listener (`server.ops_port`)
//! only, at `/console`, for the people who run the shop's payments. No JavaScript, no asset
//! from another host; one inline stylesheet allowed by its hash.
//!
//! - [`auth`]: the console keys, sign-in and sign-out, sessions (in the store, with a TTL and
//!   an expiry checked against the gateway's clock), CSRF tokens, the sign-in failure limit.
//! - [`search`]: `/console/search?q=`: checkout id, shop reference, MSP transaction id,
//!   idempotency key, customer email, card last 4 (never a card number).
//! - [`checkout_page`]: `/console/checkouts/{id}`: one timeline of everything that happened.
//! - [`actions`]: Redeliver a webhook delivery, Sync with MSP now; each recorded with the
//!   console key's label and the time.
//! - [`queues`]: the work queues of the overview.
//! - [`overview`]: `/console`: the queues and the charts of the last 24 hours ([`charts`]
//!   draws them as inline SVG).
//! - [`session`]: a signed-in operator's session, which [`auth`] makes and every page's frame
//!   shows.
//! - [`render`]: the templates, the stylesheet, the pages' headers and the message pages.
//!
//! Links, form actions and redirects are paths without a host: the operators' listener has no
//! public URL of its own.

pub mod actions;
pub mod auth;
pub mod charts;
pub mod checkout_page;
pub mod overview;
pub mod queues;
pub mod render;
pub mod search;
pub mod session;
pub mod view;

use actix_web::web;

/// Whether `path` (as the router routes it) is the console's: served on the operators'
/// listener only.
pub fn is_console_path(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// The console's routes, when it is on (console keys are configured, and so is the operators'
/// listener); otherwise nothing, and its paths are 404 like any unknown path.
pub fn configure(cfg: &mut web::ServiceConfig, enabled: bool) {
    if !enabled {
        return;
    }
    cfg.service(
        web::scope("/console")
            .wrap(actix_web::middleware::from_fn(render::console_headers))
            .route("", web::get().to(overview::page))
            .route("/", web::get().to(overview::page))
            .route("/sign-in", web::get().to(auth::sign_in_form))
            .route("/sign-in", web::post().to(auth::sign_in))
            .route("/sign-out", web::post().to(auth::sign_out))
            .route("/search", web::get().to(search::page))
            .route("/checkouts/{id}", web::get().to(checkout_page::page))
            .route("/checkouts/{id}/sync", web::post().to(actions::sync))
            .route(
                "/checkouts/{id}/redeliver",
                web::post().to(actions::redeliver),
            )
            .default_service(web::to(render::not_found)),
    );
}
