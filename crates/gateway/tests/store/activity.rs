//! The operator console's part of the contract: each checkout's logs (capped, newest first,
//! only for a stored checkout, expiring with it) and the hourly statistics (added up by hour).

use chrono::{TimeZone, Utc};
use gateway::activity::{MspCallRecord, NotificationRecord};
use gateway::domain::checkout::{CheckoutId, CheckoutStatus as S};
use gateway::store::activity::{LOG_CAP, Pending, StatsUpdate};
use gateway::store::console::{ConsoleSlot, SearchIndex};
use gateway::store::{CasReply, Outbox};

use crate::LONG;
use crate::contract::{ExpiryFactory, Factory};
use crate::fixtures::{checkout, created_event, moved};
use crate::lifetimes::Entry;

fn call(n: u64) -> MspCallRecord {
    MspCallRecord {
        at: Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
            + chrono::Duration::seconds(n as i64),
        operation: "get_order".to_owned(),
        http_status: Some(200),
        msp_error_code: None,
        duration_ms: n,
        outcome: "ok".to_owned(),
    }
}

fn notification(verified: bool) -> NotificationRecord {
    NotificationRecord {
        at: Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap(),
        kind: "post".to_owned(),
        verified,
        reason: (!verified).then(|| "bad signature".to_owned()),
        msp_status: verified.then(|| "completed".to_owned()),
    }
}

pub async fn activity_logs_keep_the_newest_entries_newest_first(make: impl Factory) {
    let store = make(LONG).await;
    let id = CheckoutId::generate();
    store
        .insert(&checkout(&id), &created_event())
        .await
        .unwrap();
    let none = StatsUpdate::default();
    for n in 1..=LOG_CAP as u64 + 1 {
        store
            .record_msp_call(Some(&id), &call(n), &none)
            .await
            .unwrap();
    }
    let calls = store.msp_call_log(&id).await.unwrap();
    assert_eq!(calls.len(), LOG_CAP, "capped");
    assert_eq!(calls[0], call(LOG_CAP as u64 + 1), "newest first");
    assert_eq!(calls[LOG_CAP - 1], call(2), "the oldest dropped");

    store
        .record_notification(&id, &notification(false))
        .await
        .unwrap();
    store
        .record_notification(&id, &notification(true))
        .await
        .unwrap();
    assert_eq!(
        store.notification_log(&id).await.unwrap(),
        vec![notification(true), notification(false)]
    );
}

pub async fn activity_logs_are_kept_only_for_a_stored_checkout(make: impl Factory) {
    let store = make(LONG).await;
    let unknown = CheckoutId::generate();
    let stats = StatsUpdate {
        hour: 490_000,
        incr: vec![("lat:1", 1)],
    };
    store
        .record_msp_call(Some(&unknown), &call(1), &stats)
        .await
        .unwrap();
    store
        .record_notification(&unknown, &notification(false))
        .await
        .unwrap();
    assert_eq!(store.msp_call_log(&unknown).await.unwrap(), vec![]);
    assert_eq!(store.notification_log(&unknown).await.unwrap(), vec![]);
    // The hour's statistics count the call all the same.
    assert_eq!(
        store.stats_hours(&[490_000]).await.unwrap(),
        vec![vec![("lat:1".to_owned(), 1)]]
    );
}

pub async fn statistics_add_up_by_hour(make: impl Factory) {
    let store = make(LONG).await;
    // Under the store's own prefix, like every key: any hours will do.
    let (h1, h2) = (480_000, 480_001);
    let id = CheckoutId::generate();
    store
        .insert(&checkout(&id), &created_event())
        .await
        .unwrap();
    for (hour, fields) in [
        (h1, vec![("o:succeeded", 1), ("auth_ok", 1)]),
        (h1, vec![("o:succeeded", 1), ("o:failed", 1)]),
        (h2, vec![("wh_ok", 3)]),
    ] {
        store
            .record_stats(&StatsUpdate { hour, incr: fields })
            .await
            .unwrap();
    }
    let with_call = StatsUpdate {
        hour: h2,
        incr: vec![("auth_att", 1)],
    };
    store
        .record_msp_call(Some(&id), &call(5), &with_call)
        .await
        .unwrap();
    let mut hours = store.stats_hours(&[h1, h2, h2 + 1]).await.unwrap();
    for h in &mut hours {
        h.sort();
    }
    assert_eq!(
        hours,
        vec![
            vec![
                ("auth_ok".to_owned(), 1),
                ("o:failed".to_owned(), 1),
                ("o:succeeded".to_owned(), 2)
            ],
            vec![("auth_att".to_owned(), 1), ("wh_ok".to_owned(), 3)],
            vec![],
        ]
    );
    assert_eq!(store.msp_call_log(&id).await.unwrap(), vec![call(5)]);
}

pub async fn activity_logs_expire_with_their_checkout(make: impl ExpiryFactory) {
    let retention = LONG.retention;
    let (store, mut lifetimes) = make(LONG).await;
    let id = CheckoutId::generate();
    let all = [
        Entry::Checkout(&id),
        Entry::Events(&id),
        Entry::MspLog(&id),
        Entry::NotificationLog(&id),
    ];
    let c1 = checkout(&id);
    store.insert(&c1, &created_event()).await.unwrap();
    lifetimes.pass(retention / 2, &all).await;
    // Written half-way through: the logs take what is left of the checkout's time.
    let none = StatsUpdate::default();
    store
        .record_msp_call(Some(&id), &call(1), &none)
        .await
        .unwrap();
    store
        .record_notification(&id, &notification(true))
        .await
        .unwrap();
    lifetimes
        .assert_ttls(&[
            (Entry::MspLog(&id), retention / 2),
            (Entry::NotificationLog(&id), retention / 2),
        ])
        .await;
    // A write of the record gives them its fresh retention too.
    let c2 = moved(&c1, S::Processing);
    assert_eq!(
        store
            .compare_and_set(1, &c2, None, Outbox::NONE)
            .await
            .unwrap(),
        CasReply::Applied { version: 2 }
    );
    lifetimes
        .assert_ttls(&[
            (Entry::Checkout(&id), retention),
            (Entry::MspLog(&id), retention),
            (Entry::NotificationLog(&id), retention),
        ])
        .await;
    lifetimes.pass(retention * 2 / 3, &all).await;
    assert_eq!(
        store.msp_call_log(&id).await.unwrap().len(),
        1,
        "still there"
    );
    lifetimes.pass(retention / 2, &all).await;
    assert_eq!(store.get(&id).await.unwrap(), None);
    assert_eq!(store.msp_call_log(&id).await.unwrap(), vec![]);
    assert_eq!(store.notification_log(&id).await.unwrap(), vec![]);
}

pub async fn a_change_writes_its_activity_only_when_applied(make: impl Factory) {
    let store = make(LONG).await;
    let id = CheckoutId::generate();
    let c1 = checkout(&id);
    store.insert(&c1, &created_event()).await.unwrap();
    let hour = 470_000;
    let pending = Pending {
        calls: vec![call(1), call(2)],
        notifications: vec![notification(true)],
        stats: vec![StatsUpdate {
            hour,
            incr: vec![("o:succeeded", 1), ("auth_ok", 1)],
        }],
        search: vec![(SearchIndex::MspTransaction, "4711000001".to_owned())],
    };
    let by_transaction = ConsoleSlot::Index(SearchIndex::MspTransaction, "4711000001");
    let with = |pending| Outbox {
        activity: Some(pending),
        ..Outbox::NONE
    };
    // A compare-and-set that loses writes none of it.
    let lost = store
        .compare_and_set(7, &moved(&c1, S::Succeeded), None, with(&pending))
        .await
        .unwrap();
    assert!(matches!(lost, CasReply::Conflict { .. }));
    assert_eq!(store.msp_call_log(&id).await.unwrap(), vec![]);
    assert_eq!(store.stats_hours(&[hour]).await.unwrap(), vec![vec![]]);
    assert!(
        store
            .console_list(by_transaction, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let c2 = moved(&c1, S::Succeeded);
    assert_eq!(
        store
            .commit_transition(
                1,
                S::Created,
                &c2,
                None,
                with(&pending),
                Box::pin(async { Ok(()) })
            )
            .await
            .1
            .unwrap(),
        CasReply::Applied { version: 2 }
    );
    // In the order they were made: the newest first.
    assert_eq!(
        store.msp_call_log(&id).await.unwrap(),
        vec![call(2), call(1)]
    );
    assert_eq!(
        store.notification_log(&id).await.unwrap(),
        vec![notification(true)]
    );
    let mut stats = store.stats_hours(&[hour]).await.unwrap();
    stats[0].sort();
    assert_eq!(
        stats,
        vec![vec![
            ("auth_ok".to_owned(), 1),
            ("o:succeeded".to_owned(), 1)
        ]]
    );
    assert_eq!(
        store.console_list(by_transaction, 10).await.unwrap(),
        vec![id.as_str().to_owned()]
    );
}

/// A read that records (news that may change nothing: a duplicate notification) writes its
/// records with the read, the checkout's logs only while it exists (the hour's counters
/// always: the MSP call was made), and answers the record as a read.
pub async fn a_read_that_records_writes_them_only_for_a_stored_checkout(make: impl Factory) {
    let store = make(LONG).await;
    let hour = 470_001;
    let pending = Pending {
        calls: vec![call(3)],
        notifications: vec![notification(true)],
        stats: vec![StatsUpdate {
            hour,
            incr: vec![("lat:1", 1)],
        }],
        search: Vec::new(),
    };
    let unknown = CheckoutId::generate();
    assert!(
        store
            .get_recording(&unknown, &pending)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.notification_log(&unknown).await.unwrap(), vec![]);
    assert_eq!(store.msp_call_log(&unknown).await.unwrap(), vec![]);

    let id = CheckoutId::generate();
    let c1 = checkout(&id);
    store.insert(&c1, &created_event()).await.unwrap();
    let read = store.get_recording(&id, &pending).await.unwrap().unwrap();
    assert_eq!((read.checkout, read.version), (c1, 1));
    assert_eq!(
        store.notification_log(&id).await.unwrap(),
        vec![notification(true)]
    );
    assert_eq!(store.msp_call_log(&id).await.unwrap(), vec![call(3)]);
    let stats = store.stats_hours(&[hour]).await.unwrap();
    assert_eq!(
        stats,
        vec![vec![("lat:1".to_owned(), 2)]],
        "both reads' calls"
    );
}
