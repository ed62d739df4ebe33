//! Where code runs: actix runs each web worker on a thread with a single-threaded runtime of its
//! own, while the background tasks run on the binary's multi-threaded runtime.
//!
//! A connection (to Redis, to MSP) is driven by a task on the runtime that opened it. Used from
//! another thread, each request and each answer wakes that thread too, so the Redis store and the
//! MSP client give each web worker connections of its own ([`worker_own`]; issue 12: thread
//! switches were 13 % of the gateway's time).

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::runtime::{Handle, RuntimeFlavor};

/// Whether this runs on a single-threaded runtime: a web worker's (or a test's), where a
/// task never moves to another thread, so a connection of this thread's own is worth having.
pub fn on_web_worker() -> bool {
    Handle::try_current().is_ok_and(|rt| rt.runtime_flavor() == RuntimeFlavor::CurrentThread)
}

/// A new key for [`worker_own`]: one per owner of per-worker values (a Redis node's store, an
/// MSP client), so that two owners on one thread keep theirs apart.
pub fn owner_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One per-worker value: whose it is, and a handle that dies with the runtime it was made on.
struct Own {
    owner: u64,
    value: Box<dyn Any>,
    runtime: Weak<()>,
}

thread_local! {
    /// This thread's per-worker values.
    static OWN: RefCell<Vec<Own>> = const { RefCell::new(Vec::new()) };
}

/// This web worker's own value for `owner`, made by `make` on first use on this worker's
/// runtime. `None` off a web worker (the caller shares its one value there) or when `make`
/// gives none. A value made on a runtime that has since stopped (a thread that runs one
/// runtime after another: only tests do) is dropped and made again, since the tasks that drove
/// its connections are gone.
pub fn worker_own<T: Clone + 'static>(owner: u64, make: impl FnOnce() -> Option<T>) -> Option<T> {
    if !on_web_worker() {
        return None;
    }
    OWN.with_borrow_mut(|own| {
        own.retain(|o| o.runtime.strong_count() > 0);
        if let Some(value) = own
            .iter()
            .find(|o| o.owner == owner)
            .and_then(|o| o.value.downcast_ref::<T>())
        {
            return Some(value.clone());
        }
        let value = make()?;
        own.push(Own {
            owner,
            value: Box::new(value.clone()),
            runtime: runtime_alive(),
        });
        Some(value)
    })
}

/// A handle that lives as long as the current runtime: its other end is held by a task that
/// never ends, which the runtime drops when it stops.
fn runtime_alive() -> Weak<()> {
    let alive = Arc::new(());
    let handle = Arc::downgrade(&alive);
    tokio::spawn(async move {
        let _alive = alive;
        std::future::pending::<()>().await
    });
    handle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn a_worker_keeps_one_value_per_owner_and_a_new_runtime_gets_new_ones() {
        let (a, b) = (owner_id(), owner_id());
        let first = runtime().block_on(async {
            let value = worker_own(a, || Some(Arc::new("a"))).unwrap();
            let again = worker_own(a, || -> Option<Arc<&str>> { panic!("made twice") }).unwrap();
            assert!(Arc::ptr_eq(&value, &again));
            let other = worker_own(b, || Some(Arc::new("b"))).unwrap();
            assert_eq!(*other, "b");
            value
        });
        // That runtime has stopped, and with it the tasks behind its value: this one on the
        // same thread makes its own.
        let second = runtime().block_on(async { worker_own(a, || Some(Arc::new("a"))).unwrap() });
        assert!(!Arc::ptr_eq(&first, &second));
        // Off a web worker nothing is kept: the caller shares its one value.
        assert!(worker_own(a, || Some(Arc::new("a"))).is_none());
        let shared = tokio::runtime::Runtime::new().unwrap();
        assert!(
            shared
                .block_on(async { worker_own(a, || Some(Arc::new("a"))) })
                .is_none()
        );
    }
}
