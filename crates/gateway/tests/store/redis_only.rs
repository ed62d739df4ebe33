//! What only the Redis store has: real key names and TTLs, values that can be corrupted from
//! outside, and a server that can go away.

use std::time::{Duration, Instant};

use ::redis::AsyncCommands;
use chrono::TimeZone;
use gateway::domain::checkout::{CheckoutId, CheckoutStatus as S};
use gateway::store::redis::RedisStore;
use gateway::store::{
    Cause, EventOutbox, Idempotency, IdempotencyBegin, Listing, Locks, Records, StoreError,
    StoredResponse, SyncIndex,
};

use crate::common::redis_server::{TestRedis, unique_prefix};
use crate::fixtures::{checkout, created_event, event, moved, pay_session};
use crate::{LONG, redis_settings};

async fn raw(url: &str) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn keys_under(conn: &mut ::redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys
}

#[tokio::test]
async fn every_key_is_laid_out_as_designed_and_has_a_ttl() {
    let server = TestRedis::shared();
    let prefix = unique_prefix();
    let store = RedisStore::connect(redis_settings(server.url(), &prefix, LONG))
        .await
        .unwrap();
    let id = CheckoutId::generate();
    let c1 = checkout(&id);

    // Every kind of write the store makes.
    store.index_for_listing(&c1).await.unwrap();
    store.insert(&c1, &created_event()).await.unwrap();
    // A transition with its merchant event queued for delivery, as flows::apply
    // writes it: announced, then the compare-and-set with the outbox; then one delivery pass.
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 11, 24, 10, 1, 0)
        .unwrap();
    let events = gateway::domain::event::events_between(&c1, &moved(&c1, S::RequiresAction), 2, at);
    store
        .announce_events(&(&id).into(), &events, Some(at))
        .await
        .unwrap();
    store
        .compare_and_set(
            1,
            &moved(&c1, S::RequiresAction),
            Some(&event(S::Created, S::RequiresAction, "initialized")),
            gateway::store::Outbox {
                events: &events,
                deliver_at: Some(at),
                announce_at: Some(at),
                to_url: true,
                activity: None,
            },
        )
        .await
        .unwrap();
    let (leased, _) = store
        .lease_due_events(&(&id).into(), at, at + chrono::TimeDelta::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    let mut retry = gateway::domain::event::Delivery::due_now(at);
    retry.record(
        gateway::domain::event::Attempt {
            at,
            http_status: Some(500),
            error: Some("answered 500".into()),
            duration_ms: 1,
        },
        false,
        at,
        chrono::TimeDelta::days(3),
    );
    let next = store.save_delivery(&events[0].id, &retry).await.unwrap();
    store
        .settle_outbox(&(&id).into(), None, next)
        .await
        .unwrap();
    store
        .reindex_status(&moved(&c1, S::RequiresAction), S::Created)
        .await
        .unwrap();
    store
        .put_pay_session("tok", &pay_session(&id))
        .await
        .unwrap();
    let IdempotencyBegin::Started { owner, .. } =
        store.idempotency_begin("done", "fp").await.unwrap()
    else {
        panic!("fresh key")
    };
    let response = StoredResponse {
        status: 201,
        body: "{}".to_owned(),
    };
    store
        .idempotency_complete("done", &owner, &response)
        .await
        .unwrap();
    store.idempotency_begin("running", "fp").await.unwrap();
    store.schedule_sync(&id, 1_700_000_000).await.unwrap();
    store
        .try_lock(&id, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();

    let mut conn = raw(server.url()).await;
    let keys = keys_under(&mut conn, &prefix).await;
    let mut expected = vec![
        format!("{prefix}:{{{id}}}:checkout"),
        format!("{prefix}:{{{id}}}:events"),
        format!("{prefix}:{{{id}}}:lock"),
        format!("{prefix}:{{{id}}}:evt"),
        format!("{prefix}:{{{id}}}:dlv"),
        format!("{prefix}:{{{id}}}:outbox"),
        format!("{prefix}:outbox-due"),
        format!("{prefix}:{{tl:evt}}:20261124"),
        format!("{prefix}:{{tl:evt:type:checkout.requires_action}}:20261124"),
        format!("{prefix}:pay:tok"),
        format!("{prefix}:idem:{}", hex::encode("done")),
        format!("{prefix}:idem:{}", hex::encode("running")),
        format!("{prefix}:sync-due"),
        // The listing indexes: the checkout's day, under each of its families.
        format!("{prefix}:{{tl:chk}}:20261124"),
        format!("{prefix}:{{tl:chk:status:requires_action}}:20261124"),
        format!(
            "{prefix}:{{tl:chk:ref:{}}}:20261124",
            hex::encode("order-1001")
        ),
    ];
    expected.sort();
    assert_eq!(keys, expected);

    for key in &keys {
        let pttl: i64 = conn.pttl(key).await.unwrap();
        assert!(pttl > 0, "{key} has no TTL (PTTL {pttl})");
    }
    let ttl_s = |key: String| {
        let mut conn = conn.clone();
        async move { conn.pttl::<_, i64>(key).await.unwrap() / 1000 }
    };
    // Each family gets its own configured TTL (allowing for the seconds the test took).
    let retention = LONG.retention.as_secs() as i64;
    let idempotency = LONG.idempotency.as_secs() as i64;
    let session = LONG.session.as_secs() as i64;
    for (key, want) in [
        (format!("{prefix}:{{{id}}}:checkout"), retention),
        (format!("{prefix}:{{{id}}}:events"), retention),
        (format!("{prefix}:{{{id}}}:evt"), retention),
        (format!("{prefix}:{{{id}}}:dlv"), retention),
        (format!("{prefix}:{{{id}}}:outbox"), retention),
        (format!("{prefix}:outbox-due"), retention),
        (format!("{prefix}:{{tl:evt}}:20261124"), retention + 86_400),
        (format!("{prefix}:sync-due"), retention),
        (format!("{prefix}:pay:tok"), session),
        (
            format!("{prefix}:idem:{}", hex::encode("done")),
            idempotency,
        ),
        (format!("{prefix}:{{{id}}}:lock"), 30),
        (format!("{prefix}:{{tl:chk}}:20261124"), retention + 86_400),
    ] {
        let got = ttl_s(key.clone()).await;
        assert!(
            want - 5 <= got && got <= want,
            "{key}: TTL {got}s, want {want}s"
        );
    }

    // What is stored is the masked card only.
    let data: String = conn
        .hget(format!("{prefix}:{{{id}}}:checkout"), "data")
        .await
        .unwrap();
    assert!(data.contains("\"last4\":\"1111\""));
    assert!(!data.contains("4111111111111111"));
}

#[tokio::test]
async fn a_value_that_does_not_decode_is_corrupt() {
    let server = TestRedis::shared();
    let prefix = unique_prefix();
    let store = RedisStore::connect(redis_settings(server.url(), &prefix, LONG))
        .await
        .unwrap();
    let mut conn = raw(server.url()).await;
    let id = CheckoutId::generate();
    store
        .insert(&checkout(&id), &created_event())
        .await
        .unwrap();

    let key = format!("{prefix}:{{{id}}}:checkout");
    let _: () = conn.hset(&key, "data", "{not json").await.unwrap();
    let err = store.get(&id).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                source: Some(Cause::Json(_)),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("a stored value is corrupt: stored checkout does not decode: "),
        "{err}"
    );
    let _: () = conn.hset(&key, "version", "seven").await.unwrap();
    let err = store.get(&id).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                source: Some(Cause::Redis(_)),
                ..
            }
        ),
        "{err:?}"
    );

    let _: () = conn
        .rpush(format!("{prefix}:{{{id}}}:events"), "[]")
        .await
        .unwrap();
    assert!(matches!(
        store.events(&id).await,
        Err(StoreError::Corrupt { .. })
    ));

    let _: () = conn
        .set_ex(format!("{prefix}:pay:tok"), "<html>", 60)
        .await
        .unwrap();
    assert!(matches!(
        store.get_pay_session("tok").await,
        Err(StoreError::Corrupt { .. })
    ));

    let _: () = conn
        .set_ex(
            format!("{prefix}:idem:{}", hex::encode("k")),
            "processing",
            60,
        )
        .await
        .unwrap();
    assert!(matches!(
        store.idempotency_begin("k", "fp").await,
        Err(StoreError::Corrupt { .. })
    ));

    // A key of the wrong type (someone else's data under our prefix) is corrupt too.
    let other = CheckoutId::generate();
    let _: () = conn
        .set_ex(format!("{prefix}:{{{other}}}:checkout"), "x", 60)
        .await
        .unwrap();
    assert!(matches!(
        store.get(&other).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn an_outage_answers_unavailable_quickly_and_recovers() {
    let server = TestRedis::start();
    let store = RedisStore::connect(redis_settings(server.url(), &unique_prefix(), LONG))
        .await
        .unwrap();
    let id = CheckoutId::generate();
    store
        .insert(&checkout(&id), &created_event())
        .await
        .unwrap();

    server.stop();
    for attempt in 0..3 {
        let started = Instant::now();
        let result = store.get(&id).await;
        assert!(
            matches!(
                result,
                Err(StoreError::Unavailable {
                    source: Some(Cause::Redis(_) | Cause::Timeout(_)),
                    ..
                })
            ),
            "attempt {attempt}: {result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "attempt {attempt} took {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable {
            source: Some(_),
            ..
        })
    ));
    assert!(started.elapsed() < Duration::from_secs(2));

    server.restart();
    // The restarted server is empty (nothing persisted); the same store object works again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.ping().await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store did not recover after the restart: {e}"),
        }
    }
    assert_eq!(store.get(&id).await.unwrap(), None);
    store
        .insert(&checkout(&id), &created_event())
        .await
        .unwrap();
    assert_eq!(store.get(&id).await.unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn connecting_to_nothing_fails_quickly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let result = RedisStore::connect(redis_settings(
        &format!("redis://127.0.0.1:{port}"),
        &unique_prefix(),
        LONG,
    ))
    .await;
    assert!(matches!(
        result,
        Err(StoreError::Unavailable {
            source: Some(_),
            ..
        })
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Issue 12's memory target: the newest event does not store a second copy of the record; the
/// change that moves the record on writes the old record into it.
#[tokio::test]
async fn the_newest_event_is_stored_without_a_copy_of_the_checkout() {
    let server = TestRedis::shared();
    let prefix = unique_prefix();
    let store = RedisStore::connect(redis_settings(server.url(), &prefix, LONG))
        .await
        .unwrap();
    let id = CheckoutId::generate();
    let c1 = checkout(&id);
    store.insert(&c1, &created_event()).await.unwrap();
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 11, 24, 10, 1, 0)
        .unwrap();
    let mut events = Vec::new();
    let mut before = c1;
    for (version, status) in (1..).zip([S::RequiresAction, S::Succeeded]) {
        let after = moved(&before, status);
        let made = gateway::domain::event::events_between(&before, &after, version + 1, at);
        let outbox = gateway::store::Outbox {
            events: &made,
            deliver_at: None,
            announce_at: None,
            to_url: true,
            activity: None,
        };
        store
            .compare_and_set(version, &after, None, outbox)
            .await
            .unwrap();
        events.extend(made);
        before = after;
    }
    let conn = raw(server.url()).await;
    let key = format!("{prefix}:{{{}}}:evt", id.as_str());
    let stored = |event: usize| {
        let (key, id) = (key.clone(), events[event].id.to_string());
        let mut conn = conn.clone();
        async move { conn.hget::<_, _, String>(key, id).await.unwrap() }
    };
    let (first, newest) = (stored(0).await, stored(1).await);
    assert!(
        !newest.contains("\"checkout\":"),
        "the newest event holds a copy of the record: {newest}"
    );
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["checkout"]["status"], "requires_action");
    // Read back whole, each with its own checkout.
    let read = store.event(&events[1].id).await.unwrap().unwrap();
    assert_eq!(read.event, events[1]);
}

/// Each web worker (a thread with a runtime of its own) sends over a connection of its own,
/// opened on first use; a thread that runs one runtime after another (as tests do) gets a
/// working connection on each, not one whose driver died with the previous runtime.
#[test]
fn a_worker_thread_gets_its_own_connection_on_each_runtime_it_runs() {
    let server = TestRedis::start();
    let main = tokio::runtime::Runtime::new().unwrap();
    let settings = redis_settings(server.url(), &unique_prefix(), LONG);
    let store = main.block_on(RedisStore::connect(settings)).unwrap();
    let clients = || -> usize {
        main.block_on(async {
            let mut conn = raw(server.url()).await;
            let list: String = ::redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut conn)
                .await
                .unwrap();
            // Less the one asking.
            list.lines().count() - 1
        })
    };
    assert_eq!(clients(), 1, "the store's shared connection");
    let id = CheckoutId::generate();
    let worker = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let first = worker();
    first
        .block_on(store.insert(&checkout(&id), &created_event()))
        .unwrap();
    assert_eq!(clients(), 2, "the worker's own connection");
    drop(first);
    let second = worker();
    let read = second.block_on(store.get(&id)).unwrap();
    assert_eq!(read.unwrap().checkout.id, id);
    // Redis notices the first runtime's closed socket when its event loop gets to it: on a
    // busy machine that can be after the second worker's connection opened, so the count is
    // read again until it settles (it must come down to 2 within the deadline).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut count = clients();
    while count != 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        count = clients();
    }
    assert_eq!(count, 2, "the first runtime's connection closed with it");
}
