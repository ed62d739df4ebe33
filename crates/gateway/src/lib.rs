//! # gateway
//!
//! The checkout gateway as a library: a merchant-facing checkout service in front of
//! MultiSafepay (MSP) direct card orders. The HTTP contract is `openapi.yaml` (merchants) and `openapi-internal.yaml`; this page is the map
//! of the code. The binary (the root package, `src/main.rs`) only parses the command line and calls
//! [`startup::Application`]; the simulator and the sandbox are crates of their own that this one
//! does not depend on.
//!
//! ```text
//!  storefront ──/v1/checkouts──▶ api ──────────▶ flows::create ──┐
//!             ──/v1/…/refunds──▶ api ──────────▶ flows::refund ──┤
//!             ──/cancel /capture▶ api ─────────▶ flows::cancel ──┤
//!  browser ──/return /cancel──▶ browser ────────▶ flows::sync ───┤   flows::transition
//!          ──/pay─────────────▶ browser ──▶ store (reads only)   ├─▶ (news → status, failure,
//!  MSP ──POST /notifications──▶ notifications ──────────────────┤    event)
//!      ──GET  /notifications──▶ notifications ──▶ flows::sync ───┤        │
//!  reconciler (flows::reconcile) ──▶ flows::abandon ─────────────┘   flows::apply
//!                                                                  (one compare-and-set: the
//!                                                                   record, its events, outbox)
//!  flows::create / flows::sync ──▶ psp::multisafepay ──▶ MSP       all state ──▶ store
//!  webhooks::Deliverer (one per instance) ◀── store's outbox ──POST, signed──▶ storefront,
//!                                                             and every webhook endpoint
//!  storefront ──/v1/events, /v1/checkouts (list)──▶ api ──▶ store (indexes, reads only)
//! ```
//!
//! Routes are split by **caller**, because each caller authenticates differently and expects a
//! different kind of answer:
//!
//! | module | caller | answers |
//! |---|---|---|
//! | [`api`] | the storefront backend (Bearer key) | JSON, with one error body |
//! | [`browser`] | the shopper's browser (no key) | HTML pages and 303 redirects, security headers |
//! | [`notifications`] | MultiSafepay | `OK`, 401 or 503 (503 makes MSP send it again) |
//! | [`health`] | operators | liveness, readiness, Prometheus metrics |
//! | [`console`] | operators (a console key, then a session) | HTML pages on the operators' listener only |
//!
//! The rest:
//!
//! - [`flows`]: the use-cases, free of HTTP: they take a [`flows::Context`] (store, PSP client,
//!   clock, the settings they read) that the web layer's [`startup::AppState`] wraps. Every
//!   status change is news reported to [`flows::transition`] (the only place that chooses a
//!   status, asking [`domain::checkout::CheckoutStatus::decide`] whether the move is legal) and
//!   written by [`flows::apply`] with one compare-and-set. A signed POST notification is applied
//!   as signed (`flows::apply`); a GET notification, `?refresh=true`, the browser return and the
//!   reconciler ask MSP first (`flows::sync`; the reconciler and a resumed create through
//!   `flows::abandon`, which also cancels a checkout that waits for 3-D Secure while nobody has
//!   its pay link). Refunds live inside their checkout's record
//!   ([`domain::refund`]), so reserving one and every change of it is that same compare-and-set.
//!   That compare-and-set also writes the change's merchant events ([`domain::event`], derived
//!   by comparing the record before and after) into an outbox next to the record.
//! - Saved cards: [`api::saved_card_request`] reads `save_card`,
//!   `customer.reference` and `payment_method` of a create request; [`flows::saved_card`] checks
//!   a saved card before it pays, stores a payment method ([`domain::payment_method`], MSP's
//!   token beside it only, [`store::PaymentMethods`]) once MSP's news of a saving checkout shows
//!   the token (called from [`flows::apply`] after every change), and updates or deletes one at
//!   MSP first, each change's `payment_method.*` event written beside the payment method in an
//!   outbox of its own ([`domain::event::EventOwner`]) that the deliverer and `/v1/events`
//!   treat as a checkout's; [`api::payment_methods`] is `/v1/payment_methods`; the token API
//!   calls and what a refused token order means are in the MSP client
//!   (`psp::multisafepay::client::recurring`).
//!   Disputes ([`domain::dispute`]) live in the record the same way: a chargeback
//!   seen on MSP's order (notification, sync) becomes one once, by its transaction id; their ids
//!   name their checkout, so [`api::disputes`] reads one without an index and lists them by their
//!   `dispute.created` events; [`flows::dispute`] sends the merchant's evidence to MSP.
//! - [`webhooks`]: the deliverer: takes due events out of the outbox, fans each out once to the
//!   webhook endpoints whose filter matches ([`domain::webhook_endpoint`], managed through
//!   [`api::webhook_endpoints`], stored by [`store::WebhookEndpoints`]), signs every delivery
//!   ([`webhooks::signing`]: `Gateway-Signature` and the Standard Webhooks headers), POSTs it
//!   ([`webhooks::delivery`]) through the address guard of API-made endpoints
//!   ([`webhooks::address`]), retries each destination on its own schedule, disables endpoints
//!   that answer 410 or keep failing ([`webhooks::endpoints`]), leases each delivery to one
//!   instance at a time; `GET /v1/events` and redelivery are [`api::events`].
//! - [`console`]: the operators' console on the ops listener: sign-in with a console key,
//!   sessions and CSRF tokens ([`console::auth`]), search, a checkout's timeline (its status
//!   changes, refunds, disputes, webhook attempts, and [`activity`]'s MSP call and notification
//!   logs) with Redeliver and Sync with MSP now, the work queues and the charts; its data in
//!   [`store::ConsoleData`].
//! - [`domain`]: parse-don't-validate types (money in minor units, card data that masks itself,
//!   checkout ids, statuses and the legality of a move, timestamps' JSON text).
//! - [`psp`]: PSP-neutral types the flows see; [`psp::multisafepay`] holds the client, MSP's wire
//!   types, its vocabulary (status strings, error and reason codes, the failure table) and the one
//!   conversion to and from the domain.
//! - [`store`]: the store traits, one per concern ([`store::Records`], [`store::Listing`],
//!   [`store::Idempotency`], [`store::SyncIndex`], [`store::EventOutbox`], [`store::Locks`],
//!   [`store::PaymentMethods`], [`store::WebhookEndpoints`]) and their union
//!   [`store::CheckoutStore`], with a Redis implementation (production, tests) and an in-memory one
//!   (the `sandbox` command only); every state change is one compare-and-set.
//!   `GET /v1/checkouts` ([`api::listing`]) pages through time-bucketed indexes
//!   ([`store::timeline`], reusable for anything listed newest first; [`store::listing`]).
//! - [`activity`]: what the operator console reads: each checkout's MSP calls and
//!   notifications (capped, expiring with the checkout) and the last 24 hours' statistics.
//!   The MSP client records every call through [`activity::Recorder`]; inside a request the
//!   records wait ([`activity::deferring`]) for the checkout's change, whose compare-and-set
//!   writes them with it ([`store::Activity`] otherwise).
//! - [`clock`]: the one source of "now"; tests hold a [`clock::ManualClock`] and move it.
//! - [`state`]: [`state::AppState`], what every handler reaches (the flows' context, settings,
//!   metrics, and [`access`]'s merchant keys, fingerprint key and keyless limits, the browser's
//!   and the notifications'); below the routes, so that handlers depend on it and [`startup`]
//!   (which also holds the webhook deliverer) on the handlers, never both.
//! - [`startup`]: builds the app (`Application::build`, the route table `app()`), with
//!   [`startup::Plugins`] through which a caller adds its clock and its own routes (the sandbox's
//!   demo storefront).
//! - [`error_code`] (the table of API error codes, which domain field errors name) and
//!   [`errors`] (the one rendering path), [`configuration`], [`telemetry`], [`metrics`],
//!   [`body_timeout`] (408 for a body that trickles in), [`runtime`] (whether code runs on a web
//!   worker, which gets Redis and MSP connections of its own),
//!   [`rate_limit`] (token buckets per API key and per client address), [`request_path`] (the
//!   path as the router reads it, normalised, for rules decided before routing),
//!   [`request_id`] (every request's id: the caller's `X-Request-Id` or `traceparent`, else a new
//!   one; answered as `Request-Id`, in its log lines and error bodies, and carried to MSP as
//!   `traceparent`): plumbing.
#![forbid(unsafe_code)]

pub mod access;
pub mod activity;
pub mod api;
pub mod body_timeout;
pub mod browser;
pub mod clock;
pub mod configuration;
pub mod console;
pub mod domain;
pub mod error_code;
pub mod errors;
pub mod flows;
pub mod health;
pub mod metrics;
pub mod notifications;
pub mod psp;
pub mod rate_limit;
pub mod request_id;
pub mod request_path;
pub mod runtime;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod webhooks;
