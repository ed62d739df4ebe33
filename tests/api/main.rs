//! The gateway's integration tests: one binary, against the in-process MultiSafepay simulator
//! and a real `redis-server` the harness starts on a free port.
// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support as common;
mod helpers;
mod keyless;

mod browser;
mod capture;
mod card_data;
mod cli;
mod demo;
mod demo_endpoints;
mod errors;
mod flows;
mod health;
mod lifecycle;
mod listing;
mod notifications;
mod reconcile;
mod refunds;
mod resilience;
mod standard_webhooks;
mod strict_input;
mod webhook_endpoints;
mod webhooks;
