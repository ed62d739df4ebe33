//! Where code runs: actix runs each web worker on a thread with a single-threaded runtime of its
//! own, while the background tasks run on the binary's multi-threaded runtime.
//!
//! A connection (to Redis, to MSP) is driven by a task on the runtime that opened it. Used from
//! another thread, each request and each answer wakes that thread too, so the Redis store and the
//! MSP client give each web worker connections of its own (issue 12: thread switches were 13 %
//! of the gateway's time).

use tokio::runtime::{Handle, RuntimeFlavor};

/// Whether this runs on a single-threaded runtime: a web worker's (or a test's), where a
/// task never moves to another thread, so a connection of this thread's own is worth having.
pub fn on_web_worker() -> bool {
    Handle::try_current().is_ok_and(|rt| rt.runtime_flavor() == RuntimeFlavor::CurrentThread)
}
