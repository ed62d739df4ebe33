//! Listing checkouts: the query, its answer, and the one paging algorithm both
//! stores run over their own [`timeline`](super::timeline).
//!
//! Indexes (families of the timeline, see `keys.rs` for their names):
//! - every checkout, by creation time;
//! - the checkouts of one status (a **hint**: moved after each compare-and-set, so the reader
//!   re-checks the record's real status, and moves an entry it finds stale);
//! - the checkouts of one shop reference.
//!
//! A page reads the cursor's record (when there is a cursor), then walks the most selective
//! family (reference, else status, else all) for `limit + 1` entries, loads their records in one
//! pipelined round trip, and keeps those that exist and match every filter. When some did not
//! (a record gone, a stale status hint) it walks on from the last entry it saw. `has_more` is
//! exact: it is true only when a `limit + 1`-th matching checkout was found.
//!
//! The window is `[max(created_gte, now − retention), created_lt)`: a checkout created before
//! the retention is never listed, even while its record lives on because it changed later.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::StoreError;
use super::keys;
use super::timeline::{Direction, Entry, Family, PageRequest};
use crate::domain::checkout::{Checkout, CheckoutId, CheckoutStatus};

/// `GET /v1/checkouts` once parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// 1 to 100 (the API checks it).
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub status: Option<CheckoutStatus>,
    pub reference: Option<String>,
    pub created_gte: Option<DateTime<Utc>>,
    pub created_lt: Option<DateTime<Utc>>,
    /// The clock's now: the retention window ends here (and a day later, for clock skew
    /// between instances).
    pub now: DateTime<Utc>,
}

impl ListQuery {
    /// The first page of everything, newest first.
    pub fn first(limit: usize, now: DateTime<Utc>) -> Self {
        Self {
            limit,
            cursor: None,
            status: None,
            reference: None,
            created_gte: None,
            created_lt: None,
            now,
        }
    }
}

/// Where a page starts (Stripe's semantics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// The page of checkouts created just before this one (older).
    StartingAfter(CheckoutId),
    /// The page of checkouts created just after this one (newer), still newest first.
    EndingBefore(CheckoutId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListReply {
    Page(CheckoutPage),
    /// The cursor names no stored checkout.
    UnknownCursor,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutPage {
    /// Newest first.
    pub data: Vec<Checkout>,
    /// More checkouts match past this page, in the direction it was asked for.
    pub has_more: bool,
}

/// The checkout's time in the indexes: its creation, in milliseconds.
pub fn entry_of(checkout: &Checkout) -> Entry {
    Entry {
        at_ms: checkout.created_at.timestamp_millis(),
        member: checkout.id.as_str().to_owned(),
    }
}

/// Every family a new checkout is entered in: all, its status, its reference.
pub fn families_of(checkout: &Checkout) -> Vec<Family> {
    let mut families = vec![
        keys::all_checkouts(),
        keys::checkouts_with_status(checkout.status),
    ];
    if let Some(reference) = &checkout.reference {
        families.push(keys::checkouts_with_reference(reference));
    }
    families
}

/// What a store gives the paging algorithm.
#[async_trait]
pub(crate) trait Backend: Send + Sync {
    async fn page(&self, req: &PageRequest<'_>) -> Result<Vec<Entry>, StoreError>;

    /// The records of `ids`, in order; `None` where there is none.
    async fn load(&self, ids: &[&str]) -> Result<Vec<Option<Checkout>>, StoreError>;

    /// Best effort: `checkout` sits in `stale` (a status family it has left); take it out and
    /// make sure it is in its own status's family.
    async fn repair(&self, stale: &Family, checkout: &Checkout);
}

/// One page, for either store.
pub(crate) async fn list(
    backend: &dyn Backend,
    retention: std::time::Duration,
    query: &ListQuery,
) -> Result<ListReply, StoreError> {
    let retention = TimeDelta::from_std(retention).unwrap_or(TimeDelta::MAX);
    let floor = query.now.checked_sub_signed(retention).unwrap_or_default();
    let from = query.created_gte.map_or(floor, |gte| gte.max(floor));
    let horizon = query.now + TimeDelta::days(1);
    let until = query.created_lt.map_or(horizon, |lt| lt.min(horizon));

    let (start, direction) = match &query.cursor {
        None => (None, Direction::Older),
        Some(Cursor::StartingAfter(id)) | Some(Cursor::EndingBefore(id)) => {
            let Some(Some(at)) = backend.load(&[id.as_str()]).await?.pop() else {
                return Ok(ListReply::UnknownCursor);
            };
            let direction = match query.cursor {
                Some(Cursor::EndingBefore(_)) => Direction::Newer,
                _ => Direction::Older,
            };
            (Some(entry_of(&at)), direction)
        }
    };

    let (family, status_family) = match (&query.reference, query.status) {
        (Some(r), _) => (keys::checkouts_with_reference(r), false),
        (None, Some(s)) => (keys::checkouts_with_status(s), true),
        (None, None) => (keys::all_checkouts(), false),
    };
    let matches = |c: &Checkout| {
        query.status.is_none_or(|s| c.status == s)
            && query
                .reference
                .as_ref()
                .is_none_or(|r| c.reference.as_ref() == Some(r))
    };

    let need = query.limit + 1;
    let mut kept: Vec<Checkout> = Vec::with_capacity(need);
    let mut after = start;
    loop {
        let want = need - kept.len();
        let req = PageRequest {
            family: &family,
            from_ms: from.timestamp_millis(),
            until_ms: until.timestamp_millis(),
            after: after.as_ref(),
            direction,
            limit: want,
        };
        let entries = backend.page(&req).await?;
        let ids: Vec<&str> = entries.iter().map(|e| e.member.as_str()).collect();
        let records = backend.load(&ids).await?;
        for (entry, record) in entries.iter().zip(records) {
            // A missing record: expired, or its insert failed after the index was written.
            let Some(checkout) = record else { continue };
            if checkout.created_at.timestamp_millis() != entry.at_ms {
                continue; // not the checkout this entry was written for
            }
            if matches(&checkout) {
                kept.push(checkout);
            } else if status_family {
                backend.repair(&family, &checkout).await;
            }
        }
        if entries.len() < want || kept.len() >= need {
            break;
        }
        after = entries.last().cloned();
    }
    let has_more = kept.len() > query.limit;
    kept.truncate(query.limit);
    if direction == Direction::Newer {
        kept.reverse();
    }
    Ok(ListReply::Page(CheckoutPage {
        data: kept,
        has_more,
    }))
}
