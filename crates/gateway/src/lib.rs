//! # checkout-gateway
//!
//! A merchant-facing checkout service in front of MultiSafepay (MSP) direct card orders.
//! The contract lives in `design.md`; this page is the map of the code.
//!
//! ```text
//!  storefront ──/v1/checkouts──▶ api ──▶ flows::create ──▶ psp::multisafepay ──▶ MSP
//!  browser    ──/pay /return──▶ browser ──▶ flows::sync ──┘          ▲
//!  MSP        ──/notifications──▶ notifications ──▶ flows::sync      │
//!  reconciler (flows::reconcile) ──────────────────▶ flows::sync ────┘
//!                      all state ──▶ store (Redis, or memory for `sandbox`)
//! ```
//!
//! Routes are split by **caller**, because each caller authenticates differently and expects a
//! different kind of answer:
//!
//! | module | caller | answers |
//! |---|---|---|
//! | [`api`] | the storefront backend (Bearer key) | JSON, with the error body of design §3 |
//! | [`browser`] | the shopper's browser (no key) | HTML pages and 303 redirects, security headers |
//! | [`notifications`] | MultiSafepay | `OK`, 401 or 503 (503 makes MSP send it again) |
//! | [`health`] | operators | liveness, readiness, Prometheus metrics |
//!
//! The rest:
//!
//! - [`domain`]: parse-don't-validate types (money in minor units, card data that masks itself,
//!   checkout ids, statuses and the one transition function).
//! - [`flows`]: use-cases shared by several callers: create a checkout, sync a checkout with what
//!   MSP says, reconcile stale checkouts in the background.
//! - [`psp`]: the MultiSafepay client; wire types spelled as MSP spells them, converted once.
//! - [`store`]: the `CheckoutStore` trait with a Redis implementation (production, tests) and an
//!   in-memory one (the `sandbox` command only); every state change is one compare-and-set.
//! - [`configuration`], [`telemetry`], [`metrics`], [`errors`], [`startup`]: plumbing.
//! - [`simulator`]: a stateful MultiSafepay simulator (`checkout-gateway simulator`). It shares
//!   no wire types with [`psp`] on purpose: a field misspelt the same way on both sides would
//!   pass every test and fail against the real MultiSafepay.
//! - [`sandbox`]: gateway + simulator in one process, with a demo storefront at `/demo`.
#![forbid(unsafe_code)]

pub mod api;
pub mod browser;
pub mod configuration;
pub mod domain;
pub mod errors;
pub mod flows;
pub mod health;
pub mod metrics;
pub mod notifications;
pub mod psp;
pub mod startup;
pub mod store;
pub mod telemetry;
