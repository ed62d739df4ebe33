//! The Redis store's listing: the indexes of [`crate::store::listing`] on
//! [`RedisTimeline`], and the records they point at.
//!
//! Round trips: writing a new checkout's entries is one (a `MULTI`/`EXEC` pipeline; on a
//! cluster one per family, sent together), a status move one, and a page two (walk, then the records in one
//! pipeline), plus one to read the cursor's record when there is a cursor. A page asks again
//! only when some of what it read was stale (a record gone, a status hint behind).

use std::time::Duration;

use ::redis::Pipeline;
use async_trait::async_trait;

use super::connection::Connection;
use super::timeline::{IndexWrite, RedisTimeline, run_grouped};
use super::{RedisStore, from_json};
use crate::domain::checkout::{Checkout, CheckoutId, CheckoutStatus};
use crate::store::keys;
use crate::store::listing::{self, Backend, ListQuery, ListReply, entry_of, families_of};
use crate::store::timeline::{Entry, Family, PageRequest};
use crate::store::{Listing, StoreError};

/// How long an index day outlives its last write: the retention, and a day for the entries
/// written late in the day and for clock skew.
fn keep(retention: Duration) -> Duration {
    retention.saturating_add(Duration::from_secs(86_400))
}

impl RedisStore {
    fn timeline(&self) -> RedisTimeline<'_> {
        RedisTimeline::new(&self.keys, keep(self.ttls.retention))
    }

    /// The commands of [`index_for_listing`](Listing::index_for_listing), for a script
    /// on a single node.
    pub(super) fn listing_writes(&self, checkout: &Checkout) -> Vec<IndexWrite> {
        let entry = entry_of(checkout);
        let timeline = self.timeline();
        families_of(checkout)
            .iter()
            .map(|family| timeline.add(family, &entry))
            .collect()
    }

    /// The commands of [`reindex_status`](Listing::reindex_status), for a script on a
    /// single node; none when the status did not change.
    pub(super) fn status_move_writes(
        &self,
        checkout: &Checkout,
        previous: CheckoutStatus,
    ) -> Vec<IndexWrite> {
        if checkout.status == previous {
            return Vec::new();
        }
        let entry = entry_of(checkout);
        let timeline = self.timeline();
        let (from, to) = (
            keys::checkouts_with_status(previous),
            keys::checkouts_with_status(checkout.status),
        );
        let mut writes = vec![timeline.add(&to, &entry)];
        if from != to {
            writes.push(timeline.remove(&from, &entry));
        }
        writes
    }

    /// Takes the checkout out of `from` and puts it in its own status's family.
    async fn move_status(&self, from: &Family, checkout: &Checkout) -> Result<(), StoreError> {
        let entry = entry_of(checkout);
        let timeline = self.timeline();
        let to = keys::checkouts_with_status(checkout.status);
        let mut groups = vec![timeline.add(&to, &entry)];
        if *from != to {
            groups.push(timeline.remove(from, &entry));
        }
        let groups = &groups;
        self.run("reindex_status", || {
            let conn = self.conn();
            async move { run_grouped(&conn, groups).await }
        })
        .await
    }
}

#[async_trait]
impl Listing for RedisStore {
    async fn index_for_listing(&self, checkout: &Checkout) -> Result<(), StoreError> {
        let entry = entry_of(checkout);
        let timeline = self.timeline();
        let groups: Vec<IndexWrite> = families_of(checkout)
            .iter()
            .map(|family| timeline.add(family, &entry))
            .collect();
        let groups = &groups;
        self.run("index_for_listing", || {
            let conn = self.conn();
            async move { run_grouped(&conn, groups).await }
        })
        .await
    }

    async fn reindex_status(
        &self,
        checkout: &Checkout,
        previous: CheckoutStatus,
    ) -> Result<(), StoreError> {
        if checkout.status == previous {
            return Ok(());
        }
        self.move_status(&keys::checkouts_with_status(previous), checkout)
            .await
    }

    async fn list_checkouts(&self, query: &ListQuery) -> Result<ListReply, StoreError> {
        listing::list(self, self.ttls.retention, query).await
    }
}

#[async_trait]
impl Backend for RedisStore {
    async fn page(&self, req: &PageRequest<'_>) -> Result<Vec<Entry>, StoreError> {
        let timeline = &self.timeline();
        self.run("list_checkouts", || {
            let mut conn = self.conn();
            async move { timeline.page(&mut conn, req).await }
        })
        .await
    }

    async fn load(&self, ids: &[&str]) -> Result<Vec<Option<Checkout>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = Vec::with_capacity(ids.len());
        for id in ids {
            // Index members are ids this store wrote; anything else has no record.
            match CheckoutId::parse(id) {
                Ok(id) => keys.push(Some(self.keys.checkout(&id))),
                Err(_) => keys.push(None),
            }
        }
        let hget = |key: &String| {
            let mut cmd = ::redis::cmd("HGET");
            cmd.arg(key).arg("data");
            cmd
        };
        let present: Vec<&String> = keys.iter().flatten().collect();
        let (present, hget) = (&present, &hget);
        let raw: Vec<Option<String>> = self
            .run("list_checkouts", || {
                let conn = self.conn();
                async move {
                    match &conn {
                        Connection::Single(_) | Connection::Worker(_) | Connection::Unconnected => {
                            let mut pipe = Pipeline::new();
                            for key in present {
                                pipe.add_command(hget(key));
                            }
                            pipe.query_async(&mut conn.clone()).await
                        }
                        // Every record has its own hash slot: one command each, sent together on
                        // the multiplexed connections.
                        Connection::Cluster(_) => {
                            let reads = present.iter().map(|key| {
                                let mut conn = conn.clone();
                                let cmd = hget(key);
                                async move { cmd.query_async::<Option<String>>(&mut conn).await }
                            });
                            futures_util::future::try_join_all(reads).await
                        }
                    }
                }
            })
            .await?;
        let mut raw = raw.into_iter();
        keys.iter()
            .map(|key| match key {
                None => Ok(None),
                Some(_) => raw
                    .next()
                    .flatten()
                    .map(|data| from_json::<Checkout>("checkout", &data))
                    .transpose(),
            })
            .collect()
    }

    async fn repair(&self, stale: &Family, checkout: &Checkout) {
        if let Err(e) = self.move_status(stale, checkout).await {
            tracing::warn!(checkout_id = %checkout.id, error = %e, "could not repair a stale status index entry");
        }
    }
}
