//! Use-cases shared by several callers (style.md's `flows/`, Hyperswitch's `core/`).
//!
//! - [`create`]: store → MSP direct order → apply the answer.
//! - [`sync`]: ask MSP (`GET /orders/{id}`) and apply; the browser return.
//! - [`apply`]: the one path every state change takes (decide, then compare-and-set).
//! - [`reconcile`]: the background task that resolves checkouts whose news never came.

pub mod apply;
pub mod create;
pub mod reconcile;
pub mod sync;
