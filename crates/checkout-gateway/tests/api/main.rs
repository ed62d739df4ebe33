//! The gateway's integration tests: one binary, against the in-process MultiSafepay simulator
//! and a real `redis-server` the harness starts on a free port.

use test_support as common;
mod helpers;

mod browser;
mod card_data;
mod cli;
mod demo;
mod errors;
mod flows;
mod health;
mod notifications;
mod reconcile;
