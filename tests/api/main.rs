//! The gateway's integration tests: one binary, against the in-process MultiSafepay simulator
//! and a real `redis-server` the harness starts on a free port.
// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support as common;
mod helpers;
mod keyless;

mod activity;
mod browser;
mod capture;
mod card_data;
mod cli;
mod console;
mod demo;
mod demo_endpoints;
mod disputes;
mod errors;
mod flows;
mod generated_clients;
mod health;
mod lifecycle;
mod listing;
mod notifications;
mod reconcile;
mod refunds;
mod request_ids;
mod resilience;
mod saved_cards;
mod standard_webhooks;
mod strict_input;
mod sub_lists;
mod sweep;
mod webhook_endpoints;
mod webhooks;
// Issue 30: /metrics as Prometheus reads it, and the deploy files checked.
mod deploy;
mod metrics_exposition;
