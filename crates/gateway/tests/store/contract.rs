//! The contract every `CheckoutStore` keeps. Each test takes a factory that builds a fresh,
//! empty store with the given TTLs.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gateway::domain::checkout::{CheckoutId, CheckoutStatus as S};
use gateway::store::console::{ConsoleSlot, SearchIndex};
use gateway::store::{
    CasReply, CheckoutStore, IdempotencyBegin, InsertReply, StoredResponse, Ttls, Versioned,
};

use crate::LONG;
use crate::fixtures::{checkout, created_event, event, moved, pay_session};
use crate::lifetimes::{Entry, Lifetimes};

pub trait Factory: Fn(Ttls) -> Self::Fut {
    type Fut: Future<Output = Arc<dyn CheckoutStore>>;
}

impl<F, Fut> Factory for F
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    type Fut = Fut;
}

/// For the expiry tests: a fresh store, and how time passes for it.
pub trait ExpiryFactory: Fn(Ttls) -> Self::Fut {
    type Fut: Future<Output = (Arc<dyn CheckoutStore>, Lifetimes)>;
}

impl<F, Fut> ExpiryFactory for F
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = (Arc<dyn CheckoutStore>, Lifetimes)>,
{
    type Fut = Fut;
}

pub async fn insert_then_get_starts_at_version_1(make: impl Factory) {
    let store = make(LONG).await;
    let id = CheckoutId::generate();
    let chk = checkout(&id);

    assert_eq!(store.get(&id).await.unwrap(), None, "nothing before insert");
    assert_eq!(
        store.insert(&chk, &created_event()).await.unwrap(),
        InsertReply::Inserted
    );
    let got = store
        .get(&id)
        .await
        .unwrap()
        .expect("the inserted checkout");
    assert_eq!(got.version, 1);
    assert_eq!(got.checkout, chk);
    assert_eq!(store.events(&id).await.unwrap(), vec![created_event()]);
}

pub async fn inserting_an_existing_id_changes_nothing(make: impl Factory) {
    let store = make(LONG).await;
    let id = CheckoutId::generate();
    let first = checkout(&id);
    store.insert(&first, &created_event()).await.unwrap();

    let second = moved(&first, S::Processing);
    let other_event = event(S::Created, S::Processing, "uncleared");
    assert_eq!(
        store.insert(&second, &other_event).await.unwrap(),
        InsertReply::AlreadyExists
    );
    let got = store.get(&id).await.unwrap().unwrap();
    assert_eq!(got.checkout, first, "the first insert is kept");
    assert_eq!(got.version, 1);
    assert_eq!(store.events(&id).await.unwrap(), vec![created_event()]);
}

pub async fn compare_and_set_applies_on_the_expected_version_only(make: impl Factory) {
    let store = make(LONG).await;
    let id = CheckoutId::generate();
    let v1 = checkout(&id);
    store.insert(&v1, &created_event()).await.unwrap();

    let v2 = moved(&v1, S::RequiresAction);
    assert_eq!(
        store
            .compare_and_set(1, &v2, None, gateway::store::Outbox::NONE)
            .await
            .unwrap(),
        CasReply::Applied { version: 2 }
    );
    let v3 = moved(&v2, S::Processing);
    assert_eq!(
        store
            .compare_and_set(2, &v3, None, gateway::store::Outbox::NONE)
            .await
            .unwrap(),
        CasReply::Applied { version: 3 }
    );

    // A writer that read version 2 (or 1) is too late: nothing is written.
    let stale = moved(&v2, S::Failed);
    let stale_event = event(S::RequiresAction, S::Failed, "declined");
    for expected in [1, 2, 4] {
        assert_eq!(
            store
                .compare_and_set(
                    expected,
                    &stale,
                    Some(&stale_event),
                    gateway::store::Outbox::NONE
                )
                .await
                .unwrap(),
            CasReply::Conflict {
                current: Box::new(Versioned {
                    checkout: v3.clone(),
                    version: 3
                })
            },
            "expected version {expected}: the loser is told the state that won"
        );
    }
    let got = store.get(&id).await.unwrap().unwrap();
    assert_eq!(got.version, 3);
    assert_eq!(got.checkout, v3);
    assert_eq!(store.events(&id).await.unwrap(), vec![created_event()]);
}

pub async fn compare_and_set_on_an_unknown_checkout_is_not_found(make: impl Factory) {
    let store = make(LONG).await;
    let id = CheckoutId::generate();
    let chk = checkout(&id);
    let ev = event(S::Created, S::Processing, "uncleared");
    assert_eq!(
        store
            .compare_and_set(1, &chk, Some(&ev), gateway::store::Outbox::NONE)
            .await
            .unwrap(),
        CasReply::NotFound
    );
    assert_eq!(store.get(&id).await.unwrap(), None, "CAS must not create");
    assert_eq!(store.events(&id).await.unwrap(), vec![]);
}

pub async fn events_are_kept_oldest_first_and_only_when_given(make: impl Factory) {
    let store = make(LONG).await;
    let id = CheckoutId::generate();
    let c1 = checkout(&id);
    store.insert(&c1, &created_event()).await.unwrap();

    let e2 = event(S::Created, S::RequiresAction, "initialized");
    let e3 = event(S::RequiresAction, S::Succeeded, "completed");
    let c2 = moved(&c1, S::RequiresAction);
    let c3 = moved(&c2, S::Succeeded);
    store
        .compare_and_set(1, &c2, Some(&e2), gateway::store::Outbox::NONE)
        .await
        .unwrap();
    // A write without a transition (say, a new PSP transaction id) records no event.
    let c2b = moved(&c2, S::RequiresAction);
    store
        .compare_and_set(2, &c2b, None, gateway::store::Outbox::NONE)
        .await
        .unwrap();
    store
        .compare_and_set(3, &c3, Some(&e3), gateway::store::Outbox::NONE)
        .await
        .unwrap();

    assert_eq!(
        store.events(&id).await.unwrap(),
        vec![created_event(), e2, e3]
    );
    assert_eq!(
        store.events(&CheckoutId::generate()).await.unwrap(),
        vec![],
        "an unknown checkout has no events"
    );
}

pub async fn concurrent_racers_win_exactly_once_per_version(make: impl Factory) {
    const RACERS: usize = 20;
    let store = make(LONG).await;
    let id = CheckoutId::generate();
    let base = checkout(&id);
    store.insert(&base, &created_event()).await.unwrap();

    // Round 1: everyone read version 1; exactly one may write.
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let store = store.clone();
        let next = moved(&base, S::Processing);
        tasks.push(tokio::spawn(async move {
            let ev = event(S::Created, S::Processing, &format!("racer-{i}"));
            store
                .compare_and_set(1, &next, Some(&ev), gateway::store::Outbox::NONE)
                .await
                .unwrap()
        }));
    }
    let mut applied = 0;
    for task in tasks {
        match task.await.unwrap() {
            CasReply::Applied { version } => {
                assert_eq!(version, 2);
                applied += 1;
            }
            CasReply::Conflict { current } => assert_eq!(current.version, 2),
            CasReply::NotFound => panic!("the checkout exists"),
        }
    }
    assert_eq!(applied, 1, "exactly one racer wins version 2");
    assert_eq!(store.events(&id).await.unwrap().len(), 2);

    // Round 2: every racer retries (re-read, CAS) until it has written once. Each version is
    // won by exactly one racer, and no write is lost.
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let store = store.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let current = store.get(&id).await.unwrap().unwrap();
                let next = moved(&current.checkout, S::Processing);
                let ev = event(S::Processing, S::Processing, &format!("retry-{i}"));
                match store
                    .compare_and_set(
                        current.version,
                        &next,
                        Some(&ev),
                        gateway::store::Outbox::NONE,
                    )
                    .await
                    .unwrap()
                {
                    CasReply::Applied { version } => return version,
                    CasReply::Conflict { .. } => tokio::task::yield_now().await,
                    CasReply::NotFound => panic!("the checkout exists"),
                }
            }
        }));
    }
    let mut versions = BTreeSet::new();
    for task in tasks {
        assert!(versions.insert(task.await.unwrap()), "a version won twice");
    }
    let expected: BTreeSet<u64> = (3..3 + RACERS as u64).collect();
    assert_eq!(versions, expected);
    let got = store.get(&id).await.unwrap().unwrap();
    assert_eq!(got.version, 2 + RACERS as u64);
    assert_eq!(store.events(&id).await.unwrap().len(), 2 + RACERS);
}

pub async fn pay_sessions_round_trip(make: impl Factory) {
    let store = make(LONG).await;
    let id = CheckoutId::generate();
    let session = pay_session(&id);
    assert_eq!(store.get_pay_session("tok-1").await.unwrap(), None);
    store.put_pay_session("tok-1", &session).await.unwrap();
    assert_eq!(
        store.get_pay_session("tok-1").await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(store.get_pay_session("tok-2").await.unwrap(), None);

    // Overwriting (form mode after redirect mode, say) keeps the latest.
    let form = gateway::domain::checkout::PaySession {
        payment_url: None,
        form_html: Some("<form method=\"post\"></form>".to_owned()),
        ..session
    };
    store.put_pay_session("tok-1", &form).await.unwrap();
    assert_eq!(store.get_pay_session("tok-1").await.unwrap(), Some(form));
}

fn response() -> StoredResponse {
    StoredResponse {
        status: 201,
        body: r#"{"id":"chk_1","status":"requires_action","note":"ünïcode / \"quoted\""}"#
            .to_owned(),
    }
}

fn started(begin: IdempotencyBegin) -> String {
    match begin {
        IdempotencyBegin::Started { owner, .. } => owner,
        other => panic!("expected Started, got {other:?}"),
    }
}

pub async fn idempotency_claim_in_flight_complete_and_replay(make: impl Factory) {
    let store = make(LONG).await;
    // Any characters, up to 255 of them.
    let key = format!("{{key}}: with spaces/ünï\u{0}{}", "x".repeat(200));
    let owner = started(store.idempotency_begin(&key, "fp-1").await.unwrap());
    assert!(owner.len() >= 32, "owner tokens carry at least 128 bits");

    assert_eq!(
        store.idempotency_begin(&key, "fp-1").await.unwrap(),
        IdempotencyBegin::InFlight {
            fingerprint: "fp-1".to_owned()
        }
    );
    store
        .idempotency_complete(&key, &owner, &response())
        .await
        .unwrap();
    for fingerprint in ["fp-1", "fp-other"] {
        assert_eq!(
            store.idempotency_begin(&key, fingerprint).await.unwrap(),
            IdempotencyBegin::Completed {
                fingerprint: "fp-1".to_owned(),
                response: response(),
            },
            "a replay sees the first request's fingerprint and response"
        );
    }
    // Keys are independent.
    started(
        store
            .idempotency_begin("another-key", "fp-1")
            .await
            .unwrap(),
    );
}

pub async fn idempotency_owner_mismatch_changes_nothing(make: impl Factory) {
    let store = make(LONG).await;
    let owner = started(store.idempotency_begin("k", "fp").await.unwrap());
    assert_ne!(
        owner,
        started(store.idempotency_begin("k2", "fp").await.unwrap()),
        "every claim gets a fresh owner token"
    );

    store
        .idempotency_complete("k", "not-the-owner", &response())
        .await
        .unwrap();
    store.idempotency_abort("k", "not-the-owner").await.unwrap();
    assert_eq!(
        store.idempotency_begin("k", "fp").await.unwrap(),
        IdempotencyBegin::InFlight {
            fingerprint: "fp".to_owned()
        }
    );

    // Once completed, a late abort by the owner cannot erase the stored response.
    store
        .idempotency_complete("k", &owner, &response())
        .await
        .unwrap();
    store.idempotency_abort("k", &owner).await.unwrap();
    let second = StoredResponse {
        status: 500,
        body: "late".to_owned(),
    };
    store
        .idempotency_complete("k", &owner, &second)
        .await
        .unwrap();
    assert_eq!(
        store.idempotency_begin("k", "fp").await.unwrap(),
        IdempotencyBegin::Completed {
            fingerprint: "fp".to_owned(),
            response: response(),
        }
    );
    // Completing or aborting a key nobody claimed is harmless.
    store
        .idempotency_complete("never", "x", &response())
        .await
        .unwrap();
    store.idempotency_abort("never", "x").await.unwrap();
    started(store.idempotency_begin("never", "fp").await.unwrap());
}

pub async fn idempotency_abort_frees_the_key_for_a_retry(make: impl Factory) {
    let store = make(LONG).await;
    let first = started(store.idempotency_begin("k", "fp").await.unwrap());
    store.idempotency_abort("k", &first).await.unwrap();
    let second = started(store.idempotency_begin("k", "fp").await.unwrap());
    assert_ne!(first, second);
    // The first owner's token no longer completes anything.
    store
        .idempotency_complete("k", &first, &response())
        .await
        .unwrap();
    assert!(matches!(
        store.idempotency_begin("k", "fp").await.unwrap(),
        IdempotencyBegin::InFlight { .. }
    ));
    store
        .idempotency_complete("k", &second, &response())
        .await
        .unwrap();
    assert!(matches!(
        store.idempotency_begin("k", "fp").await.unwrap(),
        IdempotencyBegin::Completed { .. }
    ));
}

pub async fn sync_index_orders_by_due_time_and_limits(make: impl Factory) {
    let store = make(LONG).await;
    let (a, b, c) = (
        CheckoutId::generate(),
        CheckoutId::generate(),
        CheckoutId::generate(),
    );
    assert_eq!(store.due_for_sync(i64::MAX, 10).await.unwrap(), vec![]);
    store.schedule_sync(&a, 1_700_000_100).await.unwrap();
    store.schedule_sync(&b, 1_700_000_050).await.unwrap();
    store.schedule_sync(&c, 1_700_000_200).await.unwrap();
    store.schedule_sync(&b, 1_700_000_050).await.unwrap(); // idempotent

    assert_eq!(
        store.due_for_sync(1_700_000_150, 10).await.unwrap(),
        vec![b.clone(), a.clone()],
        "due ones only, earliest first"
    );
    assert_eq!(
        store.due_for_sync(1_700_000_100, 10).await.unwrap(),
        vec![b.clone(), a.clone()],
        "due at exactly now counts"
    );
    assert_eq!(
        store.due_for_sync(1_700_000_150, 1).await.unwrap(),
        vec![b.clone()]
    );
    assert_eq!(store.due_for_sync(1_700_000_049, 10).await.unwrap(), vec![]);
    assert_eq!(store.due_for_sync(1_700_000_150, 0).await.unwrap(), vec![]);

    // Rescheduling moves a checkout; unscheduling removes it, twice is fine.
    store.schedule_sync(&a, 1_700_000_300).await.unwrap();
    store.unschedule_sync(&b).await.unwrap();
    store.unschedule_sync(&b).await.unwrap();
    assert_eq!(store.due_for_sync(1_700_000_150, 10).await.unwrap(), vec![]);
    assert_eq!(
        store.due_for_sync(1_800_000_000, 10).await.unwrap(),
        vec![c, a]
    );
}

pub async fn locks_exclude_until_unlocked_by_their_owner(make: impl Factory) {
    let store = make(LONG).await;
    let id = CheckoutId::generate();
    let other = CheckoutId::generate();
    let ttl = Duration::from_secs(30);

    let token = store.try_lock(&id, ttl).await.unwrap().expect("free lock");
    assert!(token.0.len() >= 32, "lock tokens carry at least 128 bits");
    assert_eq!(store.try_lock(&id, ttl).await.unwrap(), None, "held");
    assert!(
        store.try_lock(&other, ttl).await.unwrap().is_some(),
        "locks are per checkout"
    );

    let stranger = gateway::store::LockToken("not-the-token".to_owned());
    store.unlock(&id, &stranger).await.unwrap();
    assert_eq!(
        store.try_lock(&id, ttl).await.unwrap(),
        None,
        "only the owner unlocks"
    );

    store.unlock(&id, &token).await.unwrap();
    let again = store.try_lock(&id, ttl).await.unwrap().expect("released");
    assert_ne!(again, token);
    // The old owner's unlock no longer releases the new holder's lock.
    store.unlock(&id, &token).await.unwrap();
    assert_eq!(store.try_lock(&id, ttl).await.unwrap(), None);
}

pub async fn locks_expire_after_their_ttl(make: impl ExpiryFactory) {
    let (store, mut lifetimes) = make(LONG).await;
    let id = CheckoutId::generate();
    let ttl = Duration::from_secs(30);
    store.try_lock(&id, ttl).await.unwrap().expect("free lock");
    assert_eq!(store.try_lock(&id, ttl).await.unwrap(), None);
    lifetimes.assert_ttls(&[(Entry::Lock(&id), ttl)]).await;

    lifetimes.pass(ttl / 2, &[Entry::Lock(&id)]).await;
    assert_eq!(
        store.try_lock(&id, ttl).await.unwrap(),
        None,
        "held within its TTL"
    );
    lifetimes.pass(ttl / 2, &[Entry::Lock(&id)]).await;
    assert!(
        store.try_lock(&id, ttl).await.unwrap().is_some(),
        "a crashed holder's lock frees itself"
    );
}

/// Each family's TTL differs from the others' (`LONG`), so that one given another's shows.
pub async fn records_expire_after_their_ttls(make: impl ExpiryFactory) {
    let (store, mut lifetimes) = make(LONG).await;
    let id = CheckoutId::generate();
    store
        .insert(&checkout(&id), &created_event())
        .await
        .unwrap();
    store
        .put_pay_session("tok", &pay_session(&id))
        .await
        .unwrap();
    started(store.idempotency_begin("k", "fp").await.unwrap());
    store.schedule_sync(&id, 1).await.unwrap();
    assert!(store.get(&id).await.unwrap().is_some());
    lifetimes
        .assert_ttls(&[
            (Entry::Checkout(&id), LONG.retention),
            (Entry::Events(&id), LONG.retention),
            (Entry::SyncIndex, LONG.retention),
            (Entry::PaySession("tok"), LONG.session),
            (Entry::Idempotency("k"), LONG.idempotency),
        ])
        .await;
    let all = [
        Entry::Checkout(&id),
        Entry::Events(&id),
        Entry::SyncIndex,
        Entry::PaySession("tok"),
        Entry::Idempotency("k"),
    ];
    assert!(LONG.session < LONG.retention && LONG.retention < LONG.idempotency);

    lifetimes.pass(LONG.session, &all).await;
    assert_eq!(store.get_pay_session("tok").await.unwrap(), None);
    assert!(store.get(&id).await.unwrap().is_some());

    lifetimes.pass(LONG.retention - LONG.session, &all).await;
    assert_eq!(store.get(&id).await.unwrap(), None);
    assert_eq!(store.events(&id).await.unwrap(), vec![]);
    assert_eq!(store.due_for_sync(i64::MAX, 10).await.unwrap(), vec![]);
    assert!(matches!(
        store.idempotency_begin("k", "fp").await.unwrap(),
        IdempotencyBegin::InFlight { .. }
    ));
    assert_eq!(
        store
            .insert(&checkout(&id), &created_event())
            .await
            .unwrap(),
        InsertReply::Inserted,
        "an expired id is free again"
    );
    assert_eq!(store.events(&id).await.unwrap().len(), 1);

    lifetimes
        .pass(LONG.idempotency - LONG.retention, &all)
        .await;
    started(store.idempotency_begin("k", "fp").await.unwrap());
}

pub async fn compare_and_set_refreshes_the_retention(make: impl ExpiryFactory) {
    let retention = LONG.retention;
    let (store, mut lifetimes) = make(LONG).await;
    let id = CheckoutId::generate();
    let record = [Entry::Checkout(&id), Entry::Events(&id)];
    let refreshed = [
        (Entry::Checkout(&id), retention),
        (Entry::Events(&id), retention),
    ];
    let c1 = checkout(&id);
    store.insert(&c1, &created_event()).await.unwrap();
    lifetimes.assert_ttls(&refreshed).await;

    lifetimes.pass(retention * 2 / 3, &record).await;
    let c2 = moved(&c1, S::Processing);
    assert_eq!(
        store
            .compare_and_set(1, &c2, None, gateway::store::Outbox::NONE)
            .await
            .unwrap(),
        CasReply::Applied { version: 2 }
    );
    lifetimes.assert_ttls(&refreshed).await;
    lifetimes.pass(retention * 2 / 3, &record).await;
    // 4/3 of the retention after the insert, but only 2/3 after the last write.
    assert_eq!(store.get(&id).await.unwrap().map(|v| v.version), Some(2));
    assert_eq!(
        store.events(&id).await.unwrap(),
        vec![created_event()],
        "the events' TTL is refreshed with the record"
    );
}

/// A claim with a resource, aborted, is released rather than deleted: the next claim for the
/// same body gets it at once, in flight or not, with the first claim's resource, and marked
/// released (not resumed); another body's claim still finds the key taken.
pub async fn an_aborted_claim_with_a_resource_is_released_keeping_it(make: impl Factory) {
    use gateway::store::Claim;
    let store = make(LONG).await;
    let claim = |fingerprint, resource| Claim {
        fingerprint,
        resource: Some(resource),
        now_ms: 1_000,
        in_flight_ms: Some(60_000),
    };
    let first = started(
        store
            .idempotency_claim("k", &claim("fp", "re-a"))
            .await
            .unwrap(),
    );
    store.idempotency_abort("k", &first).await.unwrap();
    assert!(matches!(
        store
            .idempotency_claim("k", &claim("other", "re-x"))
            .await
            .unwrap(),
        IdempotencyBegin::InFlight { .. }
    ));
    let IdempotencyBegin::Started {
        owner: second,
        resource,
        resumed: false,
        released: true,
    } = store
        .idempotency_claim("k", &claim("fp", "re-b"))
        .await
        .unwrap()
    else {
        panic!("a released claim is taken by the retry");
    };
    assert_eq!(resource.as_deref(), Some("re-a"));
    // Once, and the aborted owner's token no longer touches it.
    assert!(matches!(
        store
            .idempotency_claim("k", &claim("fp", "re-c"))
            .await
            .unwrap(),
        IdempotencyBegin::InFlight { .. }
    ));
    store.idempotency_abort("k", &first).await.unwrap();
    store
        .idempotency_complete("k", &second, &response())
        .await
        .unwrap();
    assert!(matches!(
        store
            .idempotency_claim("k", &claim("fp", "re-d"))
            .await
            .unwrap(),
        IdempotencyBegin::Completed { .. }
    ));
}

pub async fn an_in_flight_claim_is_taken_over_with_its_resource_once_its_time_is_over(
    make: impl Factory,
) {
    use gateway::store::Claim;
    let store = make(LONG).await;
    let claim = |fingerprint, resource, now_ms| Claim {
        fingerprint,
        resource: Some(resource),
        now_ms,
        in_flight_ms: Some(60_000),
    };
    let IdempotencyBegin::Started {
        owner: first,
        resource,
        resumed: false,
        released: false,
    } = store
        .idempotency_claim("k", &claim("fp", "chk-a", 1_000))
        .await
        .unwrap()
    else {
        panic!("a free key is claimed");
    };
    assert_eq!(resource.as_deref(), Some("chk-a"));
    // Still in flight (even a millisecond before its end), and never for another body.
    for (fingerprint, now_ms) in [("fp", 60_999), ("other", 100_000)] {
        assert!(matches!(
            store
                .idempotency_claim("k", &claim(fingerprint, "chk-b", now_ms))
                .await
                .unwrap(),
            IdempotencyBegin::InFlight { .. }
        ));
    }
    // Over: taken over once, with the interrupted request's resource.
    let IdempotencyBegin::Started {
        owner: second,
        resource,
        resumed: true,
        released: false,
    } = store
        .idempotency_claim("k", &claim("fp", "chk-b", 61_000))
        .await
        .unwrap()
    else {
        panic!("a lapsed claim is taken over");
    };
    assert_ne!(first, second);
    assert_eq!(resource.as_deref(), Some("chk-a"));
    assert!(matches!(
        store
            .idempotency_claim("k", &claim("fp", "chk-c", 61_000))
            .await
            .unwrap(),
        IdempotencyBegin::InFlight { .. }
    ));
    // The interrupted request's late completion is refused; the new owner's is kept.
    store
        .idempotency_complete("k", &first, &response())
        .await
        .unwrap();
    store
        .idempotency_complete("k", &second, &response())
        .await
        .unwrap();
    assert!(matches!(
        store
            .idempotency_claim("k", &claim("fp", "chk-d", 10_000_000))
            .await
            .unwrap(),
        IdempotencyBegin::Completed { .. }
    ));
}

// The events and outbox part of the contract lives in its own file.
pub use crate::activity::*;
pub use crate::endpoints::*;
pub use crate::outbox::*;

/// A checkout created now (the listing's window ends at the clock's now).
fn fresh_checkout() -> gateway::domain::checkout::Checkout {
    let now = chrono::Utc::now();
    gateway::domain::checkout::Checkout {
        created_at: now,
        updated_at: now,
        expires_at: now + chrono::Duration::hours(1),
        ..checkout(&CheckoutId::generate())
    }
}

async fn listed_with_status(store: &Arc<dyn CheckoutStore>, status: S) -> Vec<CheckoutId> {
    let query = gateway::store::listing::ListQuery {
        status: Some(status),
        ..gateway::store::listing::ListQuery::first(100, chrono::Utc::now())
    };
    match store.list_checkouts(&query).await.unwrap() {
        gateway::store::listing::ListReply::Page(p) => p.data.into_iter().map(|c| c.id).collect(),
        gateway::store::listing::ListReply::UnknownCursor => panic!("no cursor was given"),
    }
}

fn no_announcement() -> gateway::store::Announcement<'static> {
    Box::pin(async { Ok(()) })
}

pub async fn a_new_checkout_is_listed_stored_and_scheduled_by_one_call(make: impl Factory) {
    let store = make(LONG).await;
    let new = fresh_checkout();
    let search = [
        (SearchIndex::Email, "digest-of-an-email".to_owned()),
        (SearchIndex::Last4, "1111".to_owned()),
    ];
    assert_eq!(
        store
            .insert_new(&new, &created_event(), 1_700_000_100, &search)
            .await
            .unwrap(),
        InsertReply::Inserted
    );
    // The console finds it by each search entry.
    for (index, value) in &search {
        assert_eq!(
            store
                .console_list(ConsoleSlot::Index(*index, value), 10)
                .await
                .unwrap(),
            vec![new.id.as_str().to_owned()]
        );
    }
    let stored = store.get(&new.id).await.unwrap().unwrap();
    assert_eq!((stored.checkout, stored.version), (new.clone(), 1));
    assert_eq!(store.events(&new.id).await.unwrap(), vec![created_event()]);
    assert_eq!(
        store.due_for_sync(1_700_000_100, 10).await.unwrap(),
        vec![new.id.clone()]
    );
    assert_eq!(
        listed_with_status(&store, S::Created).await,
        vec![new.id.clone()]
    );

    // The same id again: nothing of it is written, and it is not scheduled a second time.
    let again = moved(&new, S::Failed);
    assert_eq!(
        store
            .insert_new(&again, &created_event(), 1_600_000_000, &search)
            .await
            .unwrap(),
        InsertReply::AlreadyExists
    );
    assert_eq!(store.get(&new.id).await.unwrap().unwrap().checkout, new);
    assert_eq!(store.due_for_sync(1_650_000_000, 10).await.unwrap(), vec![]);
    let (index, value) = &search[1];
    assert_eq!(
        store
            .console_list(ConsoleSlot::Index(*index, value), 10)
            .await
            .unwrap()
            .len(),
        1,
        "a second insert of the id is not indexed again"
    );
}

pub async fn a_committed_transition_moves_its_hints_and_a_lost_one_none(make: impl Factory) {
    let store = make(LONG).await;
    let new = fresh_checkout();
    store
        .insert_new(&new, &created_event(), 1_700_000_100, &[])
        .await
        .unwrap();

    // Not at rest: the status index moves, the reconciler keeps it.
    let pending = moved(&new, S::RequiresAction);
    let (announced, written) = store
        .commit_transition(
            1,
            S::Created,
            &pending,
            None,
            gateway::store::Outbox::NONE,
            no_announcement(),
        )
        .await;
    announced.unwrap();
    assert_eq!(written.unwrap(), CasReply::Applied { version: 2 });
    assert_eq!(
        listed_with_status(&store, S::RequiresAction).await,
        vec![new.id.clone()]
    );
    assert_eq!(listed_with_status(&store, S::Created).await, vec![]);
    assert_eq!(
        store.due_for_sync(1_700_000_100, 10).await.unwrap(),
        vec![new.id.clone()]
    );

    // A writer that lost the race writes no hint either.
    let (_, lost) = store
        .commit_transition(
            1,
            S::Created,
            &moved(&new, S::Succeeded),
            None,
            gateway::store::Outbox::NONE,
            no_announcement(),
        )
        .await;
    assert!(matches!(lost.unwrap(), CasReply::Conflict { current } if current.version == 2));
    assert_eq!(listed_with_status(&store, S::Succeeded).await, vec![]);
    assert_eq!(
        store.due_for_sync(1_700_000_100, 10).await.unwrap(),
        vec![new.id.clone()]
    );

    // At rest: out of the reconciler's index. (What the events' announcement writes is
    // `outbox::a_committed_transition_announces_its_events`.)
    let done = moved(&pending, S::Succeeded);
    let (announced, written) = store
        .commit_transition(
            2,
            S::RequiresAction,
            &done,
            Some(&event(S::RequiresAction, S::Succeeded, "completed")),
            gateway::store::Outbox::NONE,
            no_announcement(),
        )
        .await;
    announced.unwrap();
    assert_eq!(written.unwrap(), CasReply::Applied { version: 3 });
    assert_eq!(
        listed_with_status(&store, S::Succeeded).await,
        vec![new.id.clone()]
    );
    assert_eq!(listed_with_status(&store, S::RequiresAction).await, vec![]);
    assert_eq!(store.due_for_sync(i64::MAX, 10).await.unwrap(), vec![]);
    assert_eq!(
        store.events(&new.id).await.unwrap(),
        vec![
            created_event(),
            event(S::RequiresAction, S::Succeeded, "completed")
        ]
    );
}

/// A refund MSP has not acknowledged is indexed by id and its checkout is in the reconciler's
/// index, by the very commit that reserves it (nothing else need follow); once acknowledged,
/// the commit that settles the checkout takes it out again.
pub async fn a_reserved_refund_is_indexed_and_scheduled_by_its_commit(make: impl Factory) {
    use gateway::domain::refund::{Refund, RefundId, RefundPsp, RefundStatus};
    let store = make(LONG).await;
    let new = moved(&fresh_checkout(), S::Succeeded);
    store.insert(&new, &created_event()).await.unwrap();
    assert_eq!(store.due_for_sync(i64::MAX, 10).await.unwrap(), vec![]);

    let mut reserved = new.clone();
    let refund = Refund {
        id: RefundId::generate(),
        source: Default::default(),
        amount: gateway::domain::money::MinorUnits::new(100).unwrap(),
        status: RefundStatus::Pending,
        reason: None,
        failure: None,
        metadata: Default::default(),
        psp: RefundPsp::default(),
        created_at: new.updated_at,
        updated_at: new.updated_at,
    };
    reserved.refunds.push(refund.clone());
    let (_, written) = store
        .commit_transition(
            1,
            S::Succeeded,
            &reserved,
            None,
            gateway::store::Outbox::NONE,
            no_announcement(),
        )
        .await;
    assert_eq!(written.unwrap(), CasReply::Applied { version: 2 });
    assert_eq!(
        store.checkout_of_refund(&refund.id).await.unwrap(),
        Some(new.id.clone())
    );
    assert_eq!(
        store
            .due_for_sync(reserved.updated_at.timestamp(), 10)
            .await
            .unwrap(),
        vec![new.id.clone()]
    );

    // Refunded and settled: at rest, out of the reconciler's index.
    let mut done = reserved.clone();
    done.refunds[0].status = RefundStatus::Succeeded;
    done.refunds[0].psp.acknowledged = true;
    let (_, written) = store
        .commit_transition(
            2,
            S::Succeeded,
            &done,
            None,
            gateway::store::Outbox::NONE,
            no_announcement(),
        )
        .await;
    assert_eq!(written.unwrap(), CasReply::Applied { version: 3 });
    assert_eq!(store.due_for_sync(i64::MAX, 10).await.unwrap(), vec![]);
}

pub async fn the_pay_page_reads_its_session_with_its_checkout(make: impl Factory) {
    let store = make(LONG).await;
    assert_eq!(store.pay_session_and_checkout("tok-1").await.unwrap(), None);

    let new = fresh_checkout();
    let session = pay_session(&new.id);
    store.put_pay_session("tok-1", &session).await.unwrap();
    // The session outlives nothing in practice, but a checkout gone is said so.
    assert_eq!(
        store.pay_session_and_checkout("tok-1").await.unwrap(),
        Some((session.clone(), None))
    );

    store.insert(&new, &created_event()).await.unwrap();
    let (read, checkout) = store
        .pay_session_and_checkout("tok-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, session);
    let checkout = checkout.unwrap();
    assert_eq!((checkout.checkout, checkout.version), (new, 1));
    assert_eq!(store.pay_session_and_checkout("tok-2").await.unwrap(), None);
}
