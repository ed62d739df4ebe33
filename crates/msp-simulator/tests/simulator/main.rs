//! Integration tests of the MultiSafepay simulator (issue #2): one module per numbered point.
// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support as common;

mod after_payment;
mod amounts;
mod api;
mod authorization_expiry;
mod browser;
mod cancel_authorization;
mod cancel_order;
mod capture;
mod captured_refunds;
mod cards;
mod change_faults;
mod chargeback;
mod cli;
mod clock;
mod disputes;
mod faults;
mod helpers;
mod load;
mod manual_capture;
mod notifications;
mod order_object;
mod recurring;
mod refund_faults;
mod refunds;
mod sdk;
mod settlement;
mod three_ds;
mod transactions;
