//! The demo storefront's routes (`/demo`); filled in once the demo pages land.

use actix_web::web;

pub fn configure(_cfg: &mut web::ServiceConfig) {}
