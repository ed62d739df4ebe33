//! Integration tests of the MultiSafepay simulator (issue #2): one module per numbered point.

use test_support as common;

mod api;
mod browser;
mod cards;
mod cli;
mod faults;
mod helpers;
mod load;
mod notifications;
mod order_object;
mod refunds;
mod sdk;
mod three_ds;
