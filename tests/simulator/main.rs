//! Integration tests of the MultiSafepay simulator (issue #2): one module per numbered point.

mod helpers;
mod smoke;
