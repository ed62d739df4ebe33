//! [`Activity`] in memory (the `sandbox` command): the logs live inside their checkout's record
//! (so they expire with it), the statistics in a map trimmed to the same 25 hours as Redis'.

use async_trait::async_trait;
use tokio::time::Instant;

use super::MemoryStore;
use crate::activity::{MspCallRecord, NotificationRecord};
use crate::domain::checkout::CheckoutId;
use crate::store::StoreError;
use crate::store::activity::{Activity, LOG_CAP, Pending, STATS_TTL, StatsUpdate};
use crate::store::console::{ConsoleSlot, INDEX_KEEP};

fn push<T>(log: &mut std::collections::VecDeque<T>, entry: T) {
    log.push_front(entry);
    log.truncate(LOG_CAP);
}

impl MemoryStore {
    /// `pending` into checkout `id`'s logs (while it lives) and the hours' statistics.
    pub(super) fn record_pending(&self, id: &CheckoutId, pending: &Pending) {
        {
            let mut state = self.state();
            if let Some(record) = state.live_checkout(id, Instant::now()) {
                for call in &pending.calls {
                    push(&mut record.value.msp_log, call.clone());
                }
                for notification in &pending.notifications {
                    push(&mut record.value.notification_log, notification.clone());
                }
            }
        }
        for stats in &pending.stats {
            self.add_stats(stats);
        }
        for (index, value) in &pending.search {
            self.push_console(
                ConsoleSlot::Index(*index, value),
                id.as_str(),
                INDEX_KEEP,
                self.ttls.retention,
            );
        }
    }

    pub(super) fn add_stats(&self, stats: &StatsUpdate) {
        if stats.is_empty() {
            return;
        }
        let mut all = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let hour = all.entry(stats.hour).or_default();
        for (field, by) in &stats.incr {
            *hour.entry((*field).to_owned()).or_default() += by;
        }
        let newest = all.keys().next_back().copied().unwrap_or(stats.hour);
        let kept_hours = (STATS_TTL.as_secs() / 3600) as i64;
        all.retain(|h, _| *h > newest - kept_hours);
    }
}

#[async_trait]
impl Activity for MemoryStore {
    async fn record_msp_call(
        &self,
        id: Option<&CheckoutId>,
        call: &MspCallRecord,
        stats: &StatsUpdate,
    ) -> Result<(), StoreError> {
        if let Some(id) = id {
            let mut state = self.state();
            if let Some(record) = state.live_checkout(id, Instant::now()) {
                push(&mut record.value.msp_log, call.clone());
            }
        }
        self.add_stats(stats);
        Ok(())
    }

    async fn record_notification(
        &self,
        id: &CheckoutId,
        notification: &NotificationRecord,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(record) = state.live_checkout(id, Instant::now()) {
            push(&mut record.value.notification_log, notification.clone());
        }
        Ok(())
    }

    async fn record_stats(&self, stats: &StatsUpdate) -> Result<(), StoreError> {
        self.add_stats(stats);
        Ok(())
    }

    async fn msp_call_log(&self, id: &CheckoutId) -> Result<Vec<MspCallRecord>, StoreError> {
        let mut state = self.state();
        Ok(state
            .live_checkout(id, Instant::now())
            .map(|r| r.value.msp_log.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn notification_log(
        &self,
        id: &CheckoutId,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let mut state = self.state();
        Ok(state
            .live_checkout(id, Instant::now())
            .map(|r| r.value.notification_log.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn stats_hours(&self, hours: &[i64]) -> Result<Vec<Vec<(String, i64)>>, StoreError> {
        let all = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        Ok(hours
            .iter()
            .map(|h| {
                all.get(h)
                    .map(|fields| fields.iter().map(|(k, v)| (k.clone(), *v)).collect())
                    .unwrap_or_default()
            })
            .collect())
    }
}
