//! Syncs of one checkout that anyone may trigger (the shopper's `/return` and `/cancel`, GET
//! notifications) share their MSP call: a visit cannot make the gateway call MSP
//! more than about once every [`FRESH`] per checkout, however many arrive.
//!
//! Per checkout there is one async lock. A caller takes a ticket when it arrives, then waits
//! for the lock; whoever holds it calls MSP. When a waiter gets the lock it looks at what the
//! holder before it did, and skips its own call (reading the stored state instead) if
//! - a successful call *started after the waiter arrived* (so it saw everything the waiter
//!   could have wanted it to see): any caller, notifications included; or
//! - for the browser only: a successful call finished less than [`FRESH`] ago (by the flows'
//!   clock). A notification never relies on an older call: it may announce a change that call
//!   could not have seen.
//!
//! This is per instance; several instances behind a load balancer each call MSP at most that
//! often. Entries for idle checkouts are dropped as the table grows.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

use crate::clock::SharedClock;
use crate::domain::checkout::CheckoutId;

/// How long a successful sync answers for the browser visits after it.
pub const FRESH: TimeDelta = TimeDelta::seconds(5);
/// Table size past which idle entries are dropped.
const PRUNE_ABOVE: usize = 1_024;

/// Who is asking, which decides what earlier call may stand in for theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A shopper's browser (or anyone) at `/return` or `/cancel`.
    Browser,
    /// A GET notification: MSP says something changed, so only a call that started after it
    /// arrived will do.
    Notification,
}

#[derive(Default)]
pub struct SyncGate {
    next_ticket: AtomicU64,
    entries: Mutex<HashMap<CheckoutId, Arc<tokio::sync::Mutex<Last>>>>,
}

/// The last successful call for one checkout.
#[derive(Default)]
struct Last {
    /// The ticket the call took when it started (0: none yet).
    started: u64,
    finished_at: Option<DateTime<Utc>>,
}

impl SyncGate {
    fn ticket(&self) -> u64 {
        self.next_ticket.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn entry(&self, id: &CheckoutId) -> Arc<tokio::sync::Mutex<Last>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > PRUNE_ABOVE {
            // Nobody holds or waits for these (the table's own reference is the only one).
            entries.retain(|_, e| Arc::strong_count(e) > 1);
        }
        entries.entry(id.clone()).or_default().clone()
    }

    /// Runs `call` for checkout `id` unless an earlier call stands in for it (see the module
    /// doc); `None` when skipped, and the caller reads the stored state. `call` answers whether
    /// it succeeded (`Ok`) or not; only a success stands in for later callers.
    pub async fn run<T, E, Fut>(
        &self,
        id: &CheckoutId,
        caller: Caller,
        clock: &SharedClock,
        call: impl FnOnce() -> Fut,
    ) -> Option<Result<T, E>>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let arrived = self.ticket();
        let entry = self.entry(id);
        let mut last = entry.lock().await;
        let newer = last.started > arrived;
        let fresh = caller == Caller::Browser
            && last.finished_at.is_some_and(|at| clock.now() - at < FRESH);
        if newer || fresh {
            return None;
        }
        let started = self.ticket();
        let result = call().await;
        if result.is_ok() {
            *last = Last {
                started,
                finished_at: Some(clock.now()),
            };
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::clock::ManualClock;

    fn id() -> CheckoutId {
        CheckoutId::parse("chk_0000000000000000000000000000000a").unwrap()
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_call_and_browsers_reuse_it_for_a_few_seconds() {
        let gate = Arc::new(SyncGate::default());
        let manual = Arc::new(ManualClock::starting_now());
        let clock: SharedClock = manual.clone();
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, hold) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (gate, clock, calls, mut hold) =
                (gate.clone(), clock.clone(), calls.clone(), hold.clone());
            tasks.push(tokio::spawn(async move {
                gate.run(&id(), Caller::Browser, &clock, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let _ = hold.wait_for(|go| *go).await;
                    Ok::<_, ()>(())
                })
                .await
            }));
        }
        tokio::task::yield_now().await;
        release.send(true).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let count = || {
            let calls = calls.clone();
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(())
            }
        };
        // Within FRESH a browser visit reuses it; a notification does not.
        assert!(
            gate.run(&id(), Caller::Browser, &clock, count())
                .await
                .is_none()
        );
        assert!(
            gate.run(&id(), Caller::Notification, &clock, count())
                .await
                .is_some()
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Later, the browser gets a call of its own again.
        manual.advance(FRESH);
        assert!(
            gate.run(&id(), Caller::Browser, &clock, count())
                .await
                .is_some()
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_call_stands_in_for_nobody() {
        let gate = SyncGate::default();
        let clock: SharedClock = Arc::new(ManualClock::starting_now());
        let failed: Option<Result<(), ()>> = gate
            .run(&id(), Caller::Browser, &clock, || async { Err(()) })
            .await;
        assert_eq!(failed, Some(Err(())));
        let again: Option<Result<(), ()>> = gate
            .run(&id(), Caller::Browser, &clock, || async { Ok(()) })
            .await;
        assert_eq!(again, Some(Ok(())));
    }
}
