//! A time-bucketed index, newest first: the piece behind every listing, reusable
//! for anything that is paged by time (checkouts now, `GET /v1/events` next).
//!
//! A **family** is one index: every checkout, the checkouts of one status, of one shop
//! reference; later every event, the events of one type. A family holds **entries**: a member
//! (an id) and its time in milliseconds (the creation time). Entries sort by `(at_ms, member)`;
//! a page walks them from a start position, newest first ([`Direction::Older`]) or oldest first
//! ([`Direction::Newer`], for "the page before"), inside a window `[from_ms, until_ms)`.
//!
//! In Redis a family is one sorted set per UTC day of `at_ms`, `{prefix}:{tl:<family>}:<yyyymmdd>`
//! (member → score `at_ms`), so no key grows without bound: a day's key holds what was created
//! that day, and expires `keep` (the retention plus a day) after its last write. The braces make
//! the family Redis Cluster's hash tag: all days of one family live in one slot, and one Lua
//! script walks them in one round trip (up to [`MAX_DAYS_PER_CALL`] days a call). Cost of a page:
//! `O(days walked + limit · log n)`, whatever the number of entries stored.
//!
//! The API, for a store that wants a new listing:
//!
//! ```text
//! Family::new("evt")                      a family; names use no `{`, `}` (keys.rs builds them)
//! Entry { at_ms, member }                 one entry; the sort key
//! PageRequest { family, from_ms, until_ms, after: Option<&Entry>, direction, limit }
//! PageRequest::days() -> Vec<String>      the day buckets a page walks, in walk order
//! day_of(at_ms) -> String                 the bucket (yyyymmdd, UTC) an entry lives in
//!
//! Redis (store::redis::timeline, visible inside store::redis):
//!   RedisTimeline::new(&Keys, keep: Duration)
//!   RedisTimeline::add(&Family, &Entry) -> IndexWrite    ZADD + PEXPIRE keep, as one MULTI
//!   RedisTimeline::remove(&Family, &Entry) -> IndexWrite ZREM
//!   run_grouped(&Connection, &[IndexWrite])              one MULTI/EXEC per write (slot);
//!                                                        one on a single node, or values
//!                                                        in a checkout's script there
//!   RedisTimeline::page(&mut conn, &PageRequest) -> RedisResult<Vec<Entry>>
//!                                                        one EVALSHA per 64 days walked
//! Memory (sandbox):
//!   MemoryTimeline::new(keep) / add(&Family, Entry) / remove(&Family, &Entry)
//!   / page(&PageRequest) -> Vec<Entry>                   the same pages, in a BTreeSet
//!
//! The paging loop over a timeline (load the records, drop what is gone or stale, walk on
//! from the last entry until `limit + 1` are found) is `store::listing::list` for checkouts.
//! ```
//!
//! Rules the callers keep (see `store::listing` for the checkouts'):
//! - an entry that must exist for a record to be listed is added *before* the record is written:
//!   an entry whose record is missing is harmless (the reader skips it), a record without its
//!   entry would be invisible;
//! - an entry of a family whose membership changes (a status) is a hint: it is moved after the
//!   record's compare-and-set, idempotently, and the reader re-checks the record;
//! - a reader never trusts the window alone for retention: it passes `from_ms` = now − retention,
//!   so what is older than the retention is never listed even before its key has expired.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveDate};

/// How many day buckets one Redis call walks at most (a page that finds fewer than it needs in
/// them asks again for the next ones).
pub const MAX_DAYS_PER_CALL: usize = 64;

/// One index, named by the store. The name becomes part of a Redis key and its hash tag, so it
/// must not contain `{` or `}`; those are replaced by `_` (keys.rs only builds names from fixed
/// words and hex anyway).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family(String);

impl Family {
    pub fn new(name: impl Into<String>) -> Self {
        let name: String = name.into();
        Self(name.replace(['{', '}'], "_"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One member of a family with its time. Ordered by time, then member (bytewise), as Redis
/// orders a sorted set's equal scores.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub at_ms: i64,
    pub member: String,
}

/// Which way a page walks from its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Newest first: the first page, and the page after a cursor (`starting_after`).
    Older,
    /// Oldest first: the page before a cursor (`ending_before`); the caller reverses it.
    Newer,
}

/// One page of one family.
#[derive(Clone, Debug)]
pub struct PageRequest<'a> {
    pub family: &'a Family,
    /// Only entries with `from_ms <= at_ms < until_ms`.
    pub from_ms: i64,
    pub until_ms: i64,
    /// The page starts just past this position, in the walk's direction (not included).
    pub after: Option<&'a Entry>,
    pub direction: Direction,
    /// At most this many entries.
    pub limit: usize,
}

/// The day bucket (`yyyymmdd`, UTC) of a time in milliseconds.
pub fn day_of(at_ms: i64) -> String {
    bucket(date_of(at_ms))
}

/// `yyyymmdd` as the number it reads as: chrono's `format("%Y%m%d")` parses its pattern at
/// every call, and a checkout names a bucket for each index entry it writes. Years of fewer or
/// more than four digits, which would lose a leading zero or which chrono writes with a sign,
/// go through chrono.
fn bucket(day: NaiveDate) -> String {
    match u32::try_from(day.year()) {
        Ok(y @ 1000..=9999) => (y * 10_000 + day.month() * 100 + day.day()).to_string(),
        _ => day.format("%Y%m%d").to_string(),
    }
}

fn date_of(at_ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .date_naive()
}

impl PageRequest<'_> {
    /// The inclusive score bounds the page reads, and the start position if it still matters:
    /// `None` when the window and the start leave nothing to read.
    pub fn bounds(&self) -> Option<(i64, i64, Option<&Entry>)> {
        let lo = self.from_ms;
        let hi = self.until_ms.checked_sub(1)?;
        if lo > hi || self.limit == 0 {
            return None;
        }
        match (self.direction, self.after) {
            (_, None) => Some((lo, hi, None)),
            // A start beyond the window's far end leaves the whole window; one before its near
            // end leaves nothing.
            (Direction::Older, Some(a)) if a.at_ms > hi => Some((lo, hi, None)),
            (Direction::Older, Some(a)) if a.at_ms < lo => None,
            (Direction::Newer, Some(a)) if a.at_ms < lo => Some((lo, hi, None)),
            (Direction::Newer, Some(a)) if a.at_ms > hi => None,
            (_, Some(a)) => Some((lo, hi, Some(a))),
        }
    }

    /// The day buckets the page walks, in walk order (the start's day first).
    pub fn days(&self) -> Vec<String> {
        let Some((lo, hi, after)) = self.bounds() else {
            return Vec::new();
        };
        let (first, last) = match (self.direction, after) {
            (Direction::Older, Some(a)) => (a.at_ms, lo),
            (Direction::Older, None) => (hi, lo),
            (Direction::Newer, Some(a)) => (a.at_ms, hi),
            (Direction::Newer, None) => (lo, hi),
        };
        let (mut day, last) = (date_of(first), date_of(last));
        let mut days = Vec::new();
        loop {
            days.push(bucket(day));
            if day == last {
                break;
            }
            let next = match self.direction {
                Direction::Older => day.checked_sub_days(Days::new(1)),
                Direction::Newer => day.checked_add_days(Days::new(1)),
            };
            match next {
                Some(d) => day = d,
                None => break,
            }
        }
        days
    }

    /// Whether `entry` lies inside the window and past the start: what a page may return.
    pub fn admits(&self, entry: &Entry) -> bool {
        let Some((lo, hi, after)) = self.bounds() else {
            return false;
        };
        if entry.at_ms < lo || entry.at_ms > hi {
            return false;
        }
        match (self.direction, after) {
            (_, None) => true,
            (Direction::Older, Some(a)) => entry < a,
            (Direction::Newer, Some(a)) => entry > a,
        }
    }
}

/// The in-memory timeline (the sandbox's store): the same pages as Redis gives. Entries older
/// than `keep` before the newest entry added to their family are dropped as entries are added,
/// as Redis drops whole day keys by TTL.
#[derive(Debug)]
pub struct MemoryTimeline {
    keep_ms: i64,
    families: HashMap<Family, BTreeSet<Entry>>,
}

impl MemoryTimeline {
    pub fn new(keep: Duration) -> Self {
        Self {
            keep_ms: i64::try_from(keep.as_millis()).unwrap_or(i64::MAX),
            families: HashMap::new(),
        }
    }

    pub fn add(&mut self, family: &Family, entry: Entry) {
        let floor = entry.at_ms.saturating_sub(self.keep_ms);
        let set = self.families.entry(family.clone()).or_default();
        set.insert(entry);
        // Trim by retention: everything before `floor` (bounded work: only what is dropped).
        let keep = set.split_off(&Entry {
            at_ms: floor,
            member: String::new(),
        });
        *set = keep;
    }

    pub fn remove(&mut self, family: &Family, entry: &Entry) {
        if let Some(set) = self.families.get_mut(family) {
            set.remove(entry);
            if set.is_empty() {
                self.families.remove(family);
            }
        }
    }

    pub fn page(&self, req: &PageRequest<'_>) -> Vec<Entry> {
        let Some(set) = self.families.get(req.family) else {
            return Vec::new();
        };
        let Some((lo, hi, after)) = req.bounds() else {
            return Vec::new();
        };
        let low = Entry {
            at_ms: lo,
            member: String::new(),
        };
        let take = |it: &mut dyn Iterator<Item = &Entry>| {
            it.filter(|e| req.admits(e))
                .take(req.limit)
                .cloned()
                .collect::<Vec<_>>()
        };
        match (req.direction, after) {
            (Direction::Older, Some(a)) => {
                take(&mut set.range((Bound::Included(&low), Bound::Excluded(a))).rev())
            }
            (Direction::Older, None) => take(&mut set.range(&low..).rev()),
            (Direction::Newer, Some(a)) => {
                take(&mut set.range((Bound::Excluded(a), Bound::Unbounded)))
            }
            (Direction::Newer, None) => take(&mut set.range(&low..)),
        }
        .into_iter()
        .filter(|e| e.at_ms <= hi)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    // 2026-11-24T00:00:00Z
    const T0: i64 = 1_795_478_400_000;

    fn e(at_ms: i64, member: &str) -> Entry {
        Entry {
            at_ms,
            member: member.to_owned(),
        }
    }

    fn req<'a>(
        family: &'a Family,
        after: Option<&'a Entry>,
        direction: Direction,
        limit: usize,
    ) -> PageRequest<'a> {
        PageRequest {
            family,
            from_ms: T0 - 3 * DAY,
            until_ms: T0 + DAY,
            after,
            direction,
            limit,
        }
    }

    #[test]
    fn days_are_utc_buckets_walked_from_the_start() {
        assert_eq!(day_of(T0), "20261124");
        assert_eq!(day_of(T0 - 1), "20261123");
        // Every digit in its place, as chrono spells the day.
        for day in [
            "00010101", "09991231", "10000101", "19991231", "20000229", "20261009", "99991231",
        ] {
            let date = NaiveDate::parse_from_str(day, "%Y%m%d").unwrap();
            assert_eq!(bucket(date), day);
        }
        let f = Family::new("chk");
        assert_eq!(
            req(&f, None, Direction::Older, 5).days(),
            ["20261124", "20261123", "20261122", "20261121"]
        );
        let start = e(T0 - DAY - 5, "m");
        assert_eq!(
            req(&f, Some(&start), Direction::Newer, 5).days(),
            ["20261122", "20261123", "20261124"]
        );
        assert_eq!(
            req(&f, Some(&start), Direction::Older, 5).days(),
            ["20261122", "20261121"]
        );
        // A start outside the window: all of it one way, nothing the other.
        let late = e(T0 + 9 * DAY, "m");
        assert_eq!(req(&f, Some(&late), Direction::Older, 5).days().len(), 4);
        assert!(req(&f, Some(&late), Direction::Newer, 5).days().is_empty());
    }

    #[test]
    fn the_memory_timeline_pages_both_ways_with_ties_broken_by_member() {
        let f = Family::new("chk");
        let mut t = MemoryTimeline::new(Duration::from_secs(40 * 86_400));
        for entry in [
            e(T0, "b"),
            e(T0, "a"),
            e(T0, "c"),
            e(T0 - DAY, "d"),
            e(T0 + 5, "z"),
        ] {
            t.add(&f, entry);
        }
        let members = |v: Vec<Entry>| v.into_iter().map(|e| e.member).collect::<Vec<_>>();
        assert_eq!(
            members(t.page(&req(&f, None, Direction::Older, 10))),
            ["z", "c", "b", "a", "d"]
        );
        let b = e(T0, "b");
        assert_eq!(
            members(t.page(&req(&f, Some(&b), Direction::Older, 10))),
            ["a", "d"]
        );
        assert_eq!(
            members(t.page(&req(&f, Some(&b), Direction::Newer, 1))),
            ["c"]
        );
        t.remove(&f, &e(T0, "c"));
        assert_eq!(
            members(t.page(&req(&f, Some(&b), Direction::Newer, 10))),
            ["z"]
        );
    }

    #[test]
    fn the_memory_timeline_drops_what_is_older_than_it_keeps() {
        let f = Family::new("chk");
        let mut t = MemoryTimeline::new(Duration::from_secs(86_400));
        t.add(&f, e(T0 - 3 * DAY, "old"));
        t.add(&f, e(T0, "new"));
        let all = PageRequest {
            from_ms: 0,
            until_ms: i64::MAX,
            ..req(&f, None, Direction::Older, 10)
        };
        assert_eq!(t.page(&all), vec![e(T0, "new")]);
    }

    #[test]
    fn family_names_cannot_carry_a_hash_tag() {
        assert_eq!(Family::new("a{b}").as_str(), "a_b_");
    }
}
