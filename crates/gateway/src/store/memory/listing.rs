//! The in-memory store's listing: the same indexes and the same paging algorithm as Redis
//! ([`crate::store::listing`]), on a [`MemoryTimeline`](crate::store::timeline::MemoryTimeline).

use async_trait::async_trait;
use tokio::time::Instant;

use super::MemoryStore;
use crate::domain::checkout::{Checkout, CheckoutId, CheckoutStatus};
use crate::store::keys;
use crate::store::listing::{self, Backend, ListQuery, ListReply, entry_of, families_of};
use crate::store::timeline::{Entry, Family, PageRequest};
use crate::store::{Listing, StoreError};

impl MemoryStore {
    fn move_status(&self, from: &Family, checkout: &Checkout) {
        let entry = entry_of(checkout);
        let to = keys::checkouts_with_status(checkout.status);
        let mut state = self.state();
        state.timeline.add(&to, entry.clone());
        if *from != to {
            state.timeline.remove(from, &entry);
        }
    }
}

#[async_trait]
impl Listing for MemoryStore {
    async fn index_for_listing(&self, checkout: &Checkout) -> Result<(), StoreError> {
        let entry = entry_of(checkout);
        let mut state = self.state();
        for family in families_of(checkout) {
            state.timeline.add(&family, entry.clone());
        }
        Ok(())
    }

    async fn reindex_status(
        &self,
        checkout: &Checkout,
        previous: CheckoutStatus,
    ) -> Result<(), StoreError> {
        if checkout.status != previous {
            self.move_status(&keys::checkouts_with_status(previous), checkout);
        }
        Ok(())
    }

    async fn list_checkouts(&self, query: &ListQuery) -> Result<ListReply, StoreError> {
        listing::list(self, self.ttls.retention, query).await
    }
}

#[async_trait]
impl Backend for MemoryStore {
    async fn page(&self, req: &PageRequest<'_>) -> Result<Vec<Entry>, StoreError> {
        Ok(self.state().timeline.page(req))
    }

    async fn load(&self, ids: &[&str]) -> Result<Vec<Option<Checkout>>, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        Ok(ids
            .iter()
            .map(|id| {
                let id = CheckoutId::parse(id).ok()?;
                state
                    .live_checkout(&id, now)
                    .map(|e| e.value.versioned.checkout.clone())
            })
            .collect())
    }

    async fn repair(&self, stale: &Family, checkout: &Checkout) {
        self.move_status(stale, checkout);
    }
}
