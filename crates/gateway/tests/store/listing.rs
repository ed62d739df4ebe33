//! The listing contract, against both stores and the cluster: newest first, pages
//! both ways with an exact `has_more`, filters, retention, and the indexes' hints re-checked.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use gateway::domain::checkout::{Checkout, CheckoutId, CheckoutStatus as S};
use gateway::store::listing::{Cursor, ListQuery, ListReply};
use gateway::store::{CasReply, CheckoutStore, Ttls};

use crate::LONG;
use crate::contract::Factory;
use crate::fixtures::{checkout, created_event, event, moved};

/// A retention long enough for checkouts spread over several days.
const FORTY_DAYS: Ttls = Ttls {
    retention: Duration::from_secs(40 * 86_400),
    ..LONG
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
}

/// Creates a checkout as the create flow does: indexes first, then the record.
async fn create(
    store: &Arc<dyn CheckoutStore>,
    at: DateTime<Utc>,
    reference: Option<&str>,
) -> Checkout {
    let mut c = checkout(&CheckoutId::generate());
    c.created_at = at;
    c.updated_at = at;
    c.reference = reference.map(str::to_owned);
    store.index_for_listing(&c).await.unwrap();
    store.insert(&c, &created_event()).await.unwrap();
    c
}

/// Moves a checkout's status as `flows::apply` does: compare-and-set, then the index.
async fn move_to(store: &Arc<dyn CheckoutStore>, c: &Checkout, version: u64, to: S) -> Checkout {
    let next = moved(c, to);
    let reply = store
        .compare_and_set(
            version,
            &next,
            Some(&event(c.status, to, "x")),
            gateway::store::Outbox::NONE,
        )
        .await
        .unwrap();
    assert!(matches!(reply, CasReply::Applied { .. }), "{reply:?}");
    store.reindex_status(&next, c.status).await.unwrap();
    next
}

async fn page(store: &Arc<dyn CheckoutStore>, query: ListQuery) -> (Vec<CheckoutId>, bool) {
    match store.list_checkouts(&query).await.unwrap() {
        ListReply::Page(p) => (p.data.into_iter().map(|c| c.id).collect(), p.has_more),
        ListReply::UnknownCursor => panic!("unexpected unknown cursor for {query:?}"),
    }
}

fn ids(checkouts: &[&Checkout]) -> Vec<CheckoutId> {
    checkouts.iter().map(|c| c.id.clone()).collect()
}

/// Listing "now": just after the newest checkout of every test (`LONG` keeps an hour).
fn now() -> DateTime<Utc> {
    t0() + TimeDelta::minutes(1)
}

pub async fn listing_is_newest_first_and_pages_both_ways(make: impl Factory) {
    let store = make(FORTY_DAYS).await;
    // Five checkouts over four days: the pages cross day buckets.
    let mut c = Vec::new();
    for offset in [-72, -49, -25, -1, 0] {
        c.push(create(&store, t0() + TimeDelta::hours(offset), None).await);
    }
    let q = |limit, cursor| ListQuery {
        cursor,
        ..ListQuery::first(limit, now())
    };

    assert_eq!(
        page(&store, q(10, None)).await,
        (ids(&[&c[4], &c[3], &c[2], &c[1], &c[0]]), false)
    );
    assert_eq!(
        page(&store, q(5, None)).await,
        (ids(&[&c[4], &c[3], &c[2], &c[1], &c[0]]), false),
        "exactly `limit` left: no more"
    );
    assert_eq!(page(&store, q(2, None)).await, (ids(&[&c[4], &c[3]]), true));
    let after = |c: &Checkout| Some(Cursor::StartingAfter(c.id.clone()));
    let before = |c: &Checkout| Some(Cursor::EndingBefore(c.id.clone()));
    assert_eq!(
        page(&store, q(2, after(&c[3]))).await,
        (ids(&[&c[2], &c[1]]), true)
    );
    assert_eq!(
        page(&store, q(2, after(&c[1]))).await,
        (ids(&[&c[0]]), false)
    );
    assert_eq!(page(&store, q(2, after(&c[0]))).await, (vec![], false));
    // Backwards: the page just before the cursor, still newest first.
    assert_eq!(
        page(&store, q(2, before(&c[0]))).await,
        (ids(&[&c[2], &c[1]]), true)
    );
    assert_eq!(
        page(&store, q(2, before(&c[2]))).await,
        (ids(&[&c[4], &c[3]]), false)
    );
    assert_eq!(page(&store, q(2, before(&c[4]))).await, (vec![], false));
}

pub async fn checkouts_created_in_the_same_millisecond_are_each_listed_once(make: impl Factory) {
    let store = make(LONG).await;
    let mut same = Vec::new();
    for _ in 0..4 {
        same.push(create(&store, t0(), None).await);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let query = ListQuery {
            cursor: cursor.clone(),
            ..ListQuery::first(1, now())
        };
        let (got, more) = page(&store, query).await;
        seen.extend(got.clone());
        if !more {
            break;
        }
        cursor = Some(Cursor::StartingAfter(got[0].clone()));
    }
    let mut expected: Vec<CheckoutId> = same.iter().map(|c| c.id.clone()).collect();
    expected.sort();
    expected.reverse();
    assert_eq!(seen, expected, "ties come newest id first, each once");
    // And back up from the oldest.
    let query = ListQuery {
        cursor: Some(Cursor::EndingBefore(expected[3].clone())),
        ..ListQuery::first(2, now())
    };
    assert_eq!(
        page(&store, query).await,
        (vec![expected[1].clone(), expected[2].clone()], true)
    );
}

pub async fn listing_filters_by_status_reference_and_creation_time(make: impl Factory) {
    let store = make(LONG).await;
    let a = create(&store, t0() - TimeDelta::minutes(30), Some("order-1")).await;
    let b = create(&store, t0() - TimeDelta::minutes(20), Some("order-2")).await;
    let c = create(&store, t0() - TimeDelta::minutes(10), Some("order-1")).await;
    let d = create(&store, t0(), None).await;
    let a = move_to(&store, &a, 1, S::RequiresAction).await;
    let a = move_to(&store, &a, 2, S::Succeeded).await;
    let _b = move_to(&store, &b, 1, S::Failed).await;
    let c = move_to(&store, &c, 1, S::Succeeded).await;
    let c = move_to(&store, &c, 2, S::Refunded).await;

    let q = ListQuery::first(10, now());
    let status = |s| ListQuery {
        status: Some(s),
        ..q.clone()
    };
    assert_eq!(
        page(&store, status(S::Succeeded)).await,
        (ids(&[&a]), false)
    );
    assert_eq!(page(&store, status(S::Refunded)).await, (ids(&[&c]), false));
    assert_eq!(page(&store, status(S::Created)).await, (ids(&[&d]), false));
    assert_eq!(
        page(&store, status(S::RequiresAction)).await,
        (vec![], false)
    );

    let reference = |r: &str| ListQuery {
        reference: Some(r.to_owned()),
        ..q.clone()
    };
    assert_eq!(
        page(&store, reference("order-1")).await,
        (ids(&[&c, &a]), false)
    );
    assert_eq!(page(&store, reference("order-9")).await, (vec![], false));
    let both = ListQuery {
        status: Some(S::Succeeded),
        ..reference("order-1")
    };
    assert_eq!(page(&store, both).await, (ids(&[&a]), false));

    let window = ListQuery {
        created_gte: Some(t0() - TimeDelta::minutes(20)),
        created_lt: Some(t0()),
        ..q.clone()
    };
    assert_eq!(page(&store, window).await, (ids(&[&c, &b]), false));
    let one = ListQuery {
        limit: 1,
        created_gte: Some(t0() - TimeDelta::minutes(20)),
        created_lt: Some(t0()),
        ..q.clone()
    };
    assert_eq!(page(&store, one).await, (ids(&[&c]), true));
}

pub async fn a_stale_status_entry_is_rechecked_and_repaired(make: impl Factory) {
    let store = make(LONG).await;
    let c = create(&store, t0(), None).await;
    // The compare-and-set lands but the index move is lost (a crash in between).
    let next = moved(&c, S::Succeeded);
    store
        .compare_and_set(
            1,
            &next,
            Some(&event(S::Created, S::Succeeded, "completed")),
            gateway::store::Outbox::NONE,
        )
        .await
        .unwrap();
    let status = |s| ListQuery {
        status: Some(s),
        ..ListQuery::first(10, now())
    };
    assert_eq!(
        page(&store, status(S::Created)).await,
        (vec![], false),
        "the reader re-checks the record's status"
    );
    // Reading the stale entry moved it where it belongs.
    assert_eq!(
        page(&store, status(S::Succeeded)).await,
        (vec![c.id.clone()], false)
    );
    assert_eq!(page(&store, status(S::Created)).await, (vec![], false));
}

pub async fn an_entry_without_its_record_is_skipped(make: impl Factory) {
    let store = make(LONG).await;
    let old = create(&store, t0() - TimeDelta::minutes(3), None).await;
    // Indexed, but the insert never happened (it failed after the index was written).
    let mut ghost = checkout(&CheckoutId::generate());
    ghost.created_at = t0() - TimeDelta::minutes(2);
    store.index_for_listing(&ghost).await.unwrap();
    let new = create(&store, t0() - TimeDelta::minutes(1), None).await;

    assert_eq!(
        page(&store, ListQuery::first(2, now())).await,
        (ids(&[&new, &old]), false),
        "has_more counts only checkouts that exist"
    );
    assert_eq!(
        page(&store, ListQuery::first(1, now())).await,
        (ids(&[&new]), true)
    );
}

pub async fn an_unknown_cursor_is_reported(make: impl Factory) {
    let store = make(LONG).await;
    create(&store, t0(), None).await;
    for cursor in [
        Cursor::StartingAfter(CheckoutId::generate()),
        Cursor::EndingBefore(CheckoutId::generate()),
    ] {
        let query = ListQuery {
            cursor: Some(cursor),
            ..ListQuery::first(10, now())
        };
        assert_eq!(
            store.list_checkouts(&query).await.unwrap(),
            ListReply::UnknownCursor
        );
    }
}

pub async fn nothing_older_than_the_retention_is_listed(make: impl Factory) {
    let store = make(LONG).await; // retention: one hour
    let old = create(&store, t0() - TimeDelta::minutes(50), Some("r")).await;
    let new = create(&store, t0(), Some("r")).await;
    let at = |now| ListQuery::first(10, now);
    assert_eq!(
        page(&store, at(t0() + TimeDelta::minutes(5))).await,
        (ids(&[&new, &old]), false)
    );
    assert_eq!(
        page(&store, at(t0() + TimeDelta::minutes(15))).await,
        (ids(&[&new]), false),
        "an hour after its creation a checkout is no longer listed"
    );
    let by_reference = ListQuery {
        reference: Some("r".to_owned()),
        ..at(t0() + TimeDelta::minutes(15))
    };
    assert_eq!(page(&store, by_reference).await, (ids(&[&new]), false));
    assert_eq!(
        page(&store, at(t0() + TimeDelta::minutes(61))).await,
        (vec![], false)
    );
}

macro_rules! listing_against_both_stores {
    ($($name:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::listing::$name(crate::redis_store).await;
                }
            )*
        }
        mod on_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::listing::$name(crate::cluster_store).await;
                }
            )*
        }
        mod on_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::listing::$name(crate::memory_store).await;
                }
            )*
        }
    };
}

listing_against_both_stores!(
    listing_is_newest_first_and_pages_both_ways,
    checkouts_created_in_the_same_millisecond_are_each_listed_once,
    listing_filters_by_status_reference_and_creation_time,
    a_stale_status_entry_is_rechecked_and_repaired,
    an_entry_without_its_record_is_skipped,
    an_unknown_cursor_is_reported,
    nothing_older_than_the_retention_is_listed,
);
