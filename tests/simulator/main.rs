//! Integration tests of the MultiSafepay simulator (issue #2): one module per numbered point.

mod api;
mod cli;
mod helpers;
mod order_object;
mod smoke;
