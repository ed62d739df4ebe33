//! [`Sweeps`] in memory (the `sandbox` command): the same rules as Redis, TTLs included.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::store::StoreError;
use crate::store::sweep::{SWEEPS_KEPT, Sweeps};

#[derive(Default)]
pub(super) struct SweepMemory {
    /// The owner and until when it holds the lease, by the gateway's clock.
    lease: Option<(String, DateTime<Utc>)>,
    watermark: Option<DateTime<Utc>>,
    history: VecDeque<String>,
}

impl MemoryStore {
    fn sweeps(&self) -> MutexGuard<'_, SweepMemory> {
        self.sweeps.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn held_by_other(lease: &Option<(String, DateTime<Utc>)>, owner: &str, now: DateTime<Utc>) -> bool {
    lease
        .as_ref()
        .is_some_and(|(who, until)| *until > now && who != owner)
}

#[async_trait]
impl Sweeps for MemoryStore {
    async fn lease_sweep(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut s = self.sweeps();
        if held_by_other(&s.lease, owner, now) {
            return Ok(false);
        }
        let until = chrono::TimeDelta::from_std(ttl)
            .ok()
            .and_then(|t| now.checked_add_signed(t))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        s.lease = Some((owner.to_owned(), until));
        Ok(true)
    }

    async fn release_sweep(&self, owner: &str) -> Result<(), StoreError> {
        let mut s = self.sweeps();
        if s.lease.as_ref().is_some_and(|(who, _)| who == owner) {
            s.lease = None;
        }
        Ok(())
    }

    async fn sweep_watermark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.sweeps().watermark)
    }

    async fn advance_sweep_watermark(
        &self,
        owner: &str,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.sweeps();
        // The lease's time was checked when it was last renewed, by the caller's clock: here,
        // as on Redis, holding it is being its owner.
        let holds = s.lease.as_ref().is_some_and(|(who, _)| who == owner);
        if holds {
            s.watermark = Some(to);
        }
        Ok(holds)
    }

    async fn record_sweep(&self, report: &str) -> Result<(), StoreError> {
        let mut s = self.sweeps();
        s.history.push_front(report.to_owned());
        s.history.truncate(SWEEPS_KEPT);
        Ok(())
    }

    async fn recent_sweeps(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.sweeps().history.iter().cloned().collect())
    }
}

/// The field [`MemoryStore`] holds for the sweep.
pub(super) fn empty() -> Mutex<SweepMemory> {
    Mutex::new(SweepMemory::default())
}
