//! The events and outbox contract, for every store: events are written by the
//! compare-and-set that makes them or not at all, a leased event is taken by one deliverer at a
//! time until its lease runs out, the outbox index is never settled away under a writer, and
//! events list newest first across days.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use gateway::domain::checkout::{Checkout, CheckoutId, CheckoutStatus as S};
use gateway::domain::event::{
    Attempt, Delivery, DeliveryStatus, Event, EventObject, EventType, events_between,
};
use gateway::store::{CasReply, CheckoutStore, EventOutbox, Outbox, Records, Ttls};

use crate::LONG;
use crate::fixtures::{checkout, created_event, moved};

/// Five days ago, to the second: the events index keeps a day's events for the retention after
/// that day, so the tests' days must be recent ones.
/// Five days ago, in whole seconds: one instant for the whole test process, so that a test's
/// calls agree even when the real clock ticks over a second between them (it did, under load).
fn t0() -> DateTime<Utc> {
    static T0: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *T0.get_or_init(|| {
        let now = Utc::now() - TimeDelta::days(5);
        Utc.timestamp_opt(now.timestamp(), 0).unwrap()
    })
}

/// A month's retention: long enough for every day the tests use.
const MONTH: Ttls = Ttls {
    retention: std::time::Duration::from_secs(30 * 24 * 3600),
    ..LONG
};

/// Inserts a checkout and moves it to `status` at `at`, with its event queued for delivery at
/// `at` and announced `grace` ahead, as `flows::apply` does. Answers the event.
async fn transition(
    store: &dyn CheckoutStore,
    id: &CheckoutId,
    status: S,
    at: DateTime<Utc>,
    grace: TimeDelta,
) -> Event {
    let before = checkout(id);
    store.insert(&before, &created_event()).await.unwrap();
    let after = moved(&before, status);
    let events = events_between(&before, &after, 2, at);
    assert_eq!(events.len(), 1);
    store
        .announce_events(&id.into(), &events, Some(at + grace))
        .await
        .unwrap();
    let outbox = Outbox {
        events: &events,
        deliver_at: Some(at),
        announce_at: Some(at + grace),
        to_url: true,
        activity: None,
    };
    assert_eq!(
        store
            .compare_and_set(1, &after, None, outbox)
            .await
            .unwrap(),
        CasReply::Applied { version: 2 }
    );
    events.into_iter().next().unwrap()
}

fn delivered_at(at: DateTime<Utc>) -> Delivery {
    let mut d = Delivery::due_now(at);
    d.record(
        Attempt {
            at,
            http_status: Some(200),
            error: None,
            duration_ms: 4,
        },
        true,
        at,
        TimeDelta::days(3),
    );
    d
}

pub async fn an_event_whose_writer_died_is_found_after_the_grace_and_leased_once<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(MONTH).await;
    let id = CheckoutId::generate();
    let grace = TimeDelta::seconds(30);
    // The writer dies right after its compare-and-set: nobody delivered anything.
    let event = transition(store.as_ref(), &id, S::Succeeded, t0(), grace).await;
    assert_eq!(event.kind, EventType::Checkout(S::Succeeded));
    assert_eq!(event.previous_status.as_deref(), Some("created"));

    let stored = store.event(&event.id).await.unwrap().unwrap();
    assert_eq!(stored.event, event);
    assert_eq!(stored.delivery.unwrap().status, DeliveryStatus::Pending);

    // Announced ahead: not before the grace, found after it.
    assert!(store.due_outboxes(t0(), 10).await.unwrap().is_empty());
    let due = store.due_outboxes(t0() + grace, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].owner, gateway::domain::event::EventOwner::from(&id));

    // One deliverer leases it; another finds nothing until the lease runs out.
    let now = t0() + grace;
    let lease = TimeDelta::seconds(40);
    let (first, earliest) = store
        .lease_due_events(&(&id).into(), now, now + lease, 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event.id, event.id);
    assert_eq!(earliest, Some((now + lease).timestamp_millis()));
    let (second, _) = store
        .lease_due_events(
            &(&id).into(),
            now + TimeDelta::seconds(39),
            now + lease * 2,
            10,
        )
        .await
        .unwrap();
    assert!(second.is_empty(), "leased twice");
    let (taken_over, _) = store
        .lease_due_events(&(&id).into(), now + lease, now + lease * 2, 10)
        .await
        .unwrap();
    assert_eq!(taken_over.len(), 1, "a lease that ran out is taken over");

    // Delivered: out of the outbox, and the index entry settles away.
    let earliest = store
        .save_delivery(&event.id, &delivered_at(now + lease))
        .await
        .unwrap();
    assert_eq!(earliest, None);
    store
        .settle_outbox(&(&id).into(), Some(due[0].due_ms), earliest)
        .await
        .unwrap();
    assert!(
        store
            .due_outboxes(now + TimeDelta::days(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let stored = store.event(&event.id).await.unwrap().unwrap();
    assert_eq!(stored.delivery.unwrap().status, DeliveryStatus::Delivered);
}

pub async fn a_lost_compare_and_set_writes_no_event<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(MONTH).await;
    let id = CheckoutId::generate();
    let before = checkout(&id);
    store.insert(&before, &created_event()).await.unwrap();
    let after = moved(&before, S::Failed);
    let events = events_between(&before, &after, 7, t0());
    store
        .announce_events(&(&id).into(), &events, Some(t0()))
        .await
        .unwrap();
    let outbox = Outbox {
        events: &events,
        deliver_at: Some(t0()),
        announce_at: Some(t0()),
        to_url: true,
        activity: None,
    };
    assert!(matches!(
        store
            .compare_and_set(6, &after, None, outbox)
            .await
            .unwrap(),
        CasReply::Conflict { .. }
    ));
    assert!(store.event(&events[0].id).await.unwrap().is_none());
    assert!(store.checkout_events(&id).await.unwrap().is_empty());
    // The announced entry names an event that does not exist: listing skips it.
    let listed = store
        .recent_events(None, None, (t0() - TimeDelta::days(1), t0()), 10)
        .await
        .unwrap();
    assert!(listed.iter().all(|e| e.event.id != events[0].id));
    let (leased, _) = store
        .lease_due_events(&(&id).into(), t0(), t0() + TimeDelta::minutes(1), 10)
        .await
        .unwrap();
    assert!(leased.is_empty());
}

pub async fn settling_never_takes_away_an_entry_announced_meanwhile<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(MONTH).await;
    let id = CheckoutId::generate();
    let event = transition(store.as_ref(), &id, S::Succeeded, t0(), TimeDelta::zero()).await;
    let seen = store.due_outboxes(t0(), 10).await.unwrap();
    assert_eq!(seen.len(), 1);
    // A pass delivers the event...
    store
        .lease_due_events(&(&id).into(), t0(), t0() + TimeDelta::minutes(1), 10)
        .await
        .unwrap();
    let earliest = store
        .save_delivery(&event.id, &delivered_at(t0()))
        .await
        .unwrap();
    // ...while a writer announces the checkout's next events.
    let later = t0() + TimeDelta::seconds(30);
    store
        .announce_events(&(&id).into(), &[], Some(later))
        .await
        .unwrap();
    store
        .settle_outbox(&(&id).into(), Some(seen[0].due_ms), earliest)
        .await
        .unwrap();
    let due = store.due_outboxes(later, 10).await.unwrap();
    assert_eq!(due.len(), 1, "the writer's announcement was settled away");

    // Without a seen score (the writer's own pass), an earlier entry is kept, a later one set.
    store
        .settle_outbox(
            &(&id).into(),
            None,
            Some((later + TimeDelta::hours(1)).timestamp_millis()),
        )
        .await
        .unwrap();
    assert_eq!(
        store.due_outboxes(later, 10).await.unwrap()[0].due_ms,
        later.timestamp_millis()
    );
}

pub async fn events_list_newest_first_across_days_by_type<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(MONTH).await;
    // One start for the whole test: `t0` reads the real clock, and a second ticking over
    // between two calls moved the window's edge past the fourth checkout's event.
    let t0 = t0();
    let mut made = Vec::new();
    // Five checkouts a day apart, alternately succeeded and failed.
    for day in 0..5 {
        let id = CheckoutId::generate();
        let status = if day % 2 == 0 {
            S::Succeeded
        } else {
            S::Failed
        };
        let at = t0 + TimeDelta::days(day);
        made.push(transition(store.as_ref(), &id, status, at, TimeDelta::zero()).await);
    }
    let window = (t0 - TimeDelta::days(1), t0 + TimeDelta::days(5));
    let all = store.recent_events(None, None, window, 10).await.unwrap();
    let ids: Vec<_> = all.iter().map(|e| e.event.id.clone()).collect();
    let expected: Vec<_> = made.iter().rev().map(|e| e.id.clone()).collect();
    assert_eq!(ids, expected);

    let page = store.recent_events(None, None, window, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    let last = &page[1].event;
    let rest = store
        .recent_events(None, Some((last.created_at, &last.id)), window, 10)
        .await
        .unwrap();
    let rest_ids: Vec<_> = rest.iter().map(|e| e.event.id.clone()).collect();
    assert_eq!(rest_ids, expected[2..].to_vec());

    let failed = store
        .recent_events(Some(EventType::Checkout(S::Failed)), None, window, 10)
        .await
        .unwrap();
    let failed_ids: Vec<_> = failed.iter().map(|e| e.event.id.clone()).collect();
    assert_eq!(failed_ids, vec![made[3].id.clone(), made[1].id.clone()]);

    // Nothing older than the window.
    let recent_only = store
        .recent_events(None, None, (t0 + TimeDelta::days(3), window.1), 10)
        .await
        .unwrap();
    assert_eq!(recent_only.len(), 2);
}

pub async fn redelivery_queues_a_delivered_event_again<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(MONTH).await;
    let id = CheckoutId::generate();
    let event = transition(store.as_ref(), &id, S::Succeeded, t0(), TimeDelta::zero()).await;
    store
        .lease_due_events(&(&id).into(), t0(), t0() + TimeDelta::minutes(1), 10)
        .await
        .unwrap();
    store
        .save_delivery(&event.id, &delivered_at(t0()))
        .await
        .unwrap();
    let later = t0() + TimeDelta::hours(1);
    let queued = store.redeliver(&event.id, later).await.unwrap().unwrap();
    assert_eq!(queued.status, DeliveryStatus::Pending);
    assert_eq!(queued.attempts.len(), 1, "the attempts so far are kept");
    assert_eq!(store.due_outboxes(later, 10).await.unwrap().len(), 1);
    let (leased, _) = store
        .lease_due_events(&(&id).into(), later, later + TimeDelta::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);

    let unknown = gateway::domain::event::EventId::new(&CheckoutId::generate(), 2, 0);
    assert!(store.redeliver(&unknown, later).await.unwrap().is_none());
}

pub async fn a_committed_transition_announces_its_events<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(MONTH).await;
    let id = CheckoutId::generate();
    let before = checkout(&id);
    store.insert(&before, &created_event()).await.unwrap();
    let after = moved(&before, S::Succeeded);
    let at = t0();
    let announce_at = at + TimeDelta::seconds(30);
    let events = events_between(&before, &after, 2, at);
    let outbox = Outbox {
        events: &events,
        deliver_at: Some(at),
        announce_at: Some(announce_at),
        to_url: true,
        activity: None,
    };
    // As flows::apply calls it: a single Redis node writes the announcement in the script and
    // leaves this future unpolled; the other stores send it beside the compare-and-set.
    let owner = (&id).into();
    let announce = store.announce_events(&owner, &events, Some(announce_at));
    let (announced, written) = store
        .commit_transition(1, S::Created, &after, None, outbox, announce)
        .await;
    announced.unwrap();
    assert_eq!(written.unwrap(), CasReply::Applied { version: 2 });
    // Announced at its time, not before, and listed.
    assert!(
        store
            .due_outboxes(announce_at - TimeDelta::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.due_outboxes(announce_at, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].owner, gateway::domain::event::EventOwner::from(&id));
    let listed = store
        .recent_events(
            Some(EventType::Checkout(S::Succeeded)),
            None,
            (at - TimeDelta::days(1), at),
            10,
        )
        .await
        .unwrap();
    assert!(
        listed.iter().any(|e| e.event.id == events[0].id),
        "{listed:?}"
    );
}

/// Moves `id`'s checkout from `before` (at `version`) to `status`, with its events queued.
async fn move_on(
    store: &dyn CheckoutStore,
    before: &Checkout,
    version: u64,
    status: S,
    at: DateTime<Utc>,
) -> (Checkout, Vec<Event>) {
    let after = moved(before, status);
    let events = events_between(before, &after, version + 1, at);
    let outbox = Outbox {
        events: &events,
        deliver_at: Some(at),
        announce_at: Some(at + TimeDelta::seconds(30)),
        to_url: true,
        activity: None,
    };
    assert_eq!(
        store
            .compare_and_set(version, &after, None, outbox)
            .await
            .unwrap(),
        CasReply::Applied {
            version: version + 1
        }
    );
    (after, events)
}

pub async fn an_event_keeps_its_checkout_as_it_was_after_later_changes<F, Fut>(make: F)
where
    F: Fn(Ttls) -> Fut,
    Fut: Future<Output = Arc<dyn CheckoutStore>>,
{
    let store = make(MONTH).await;
    let id = CheckoutId::generate();
    let created = checkout(&id);
    store.insert(&created, &created_event()).await.unwrap();
    let at = t0();
    let (pending, first) = move_on(store.as_ref(), &created, 1, S::RequiresAction, at).await;
    // While it is the newest, every read shows the checkout as it is.
    let read = store.event(&first[0].id).await.unwrap().unwrap();
    assert_eq!(read.event, first[0]);
    assert!(
        matches!(&read.event.object, EventObject::Checkout(c) if c.status == S::RequiresAction),
        "{read:?}"
    );

    // Two more changes, the second without an event of its own (same status, newer time).
    let later = at + TimeDelta::minutes(2);
    let (succeeded, second) = move_on(store.as_ref(), &pending, 2, S::Succeeded, later).await;
    let (_, none) = move_on(store.as_ref(), &succeeded, 3, S::Succeeded, later).await;
    assert!(none.is_empty());

    // By id, by checkout, and as leased for delivery: each event with its own checkout.
    let read = store.event(&first[0].id).await.unwrap().unwrap();
    assert_eq!(read.event, first[0], "the first event's checkout changed");
    let read = store.event(&second[0].id).await.unwrap().unwrap();
    assert_eq!(read.event, second[0]);
    let all = store.checkout_events(&id).await.unwrap();
    let all: Vec<&Event> = all.iter().map(|s| &s.event).collect();
    assert_eq!(all, vec![&second[0], &first[0]], "newest first");
    let (leased, _) = store
        .lease_due_events(&(&id).into(), later, later + TimeDelta::minutes(1), 10)
        .await
        .unwrap();
    let mut leased: Vec<Event> = leased.into_iter().map(|s| s.event).collect();
    leased.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(leased, vec![first[0].clone(), second[0].clone()]);
    assert_eq!(pending.status, S::RequiresAction);
}

/// One refund of 10, made and completed as the refund flow does it: reserved `pending` in one
/// compare-and-set, `succeeded` in the next, each with its events queued for delivery.
async fn refund_once(
    store: &dyn CheckoutStore,
    current: &mut (Checkout, u64),
    at: DateTime<Utc>,
) -> Vec<Event> {
    use gateway::domain::money::MinorUnits;
    use gateway::domain::refund::{Refund, RefundId, RefundStatus};
    let mut made = Vec::new();
    let (checkout, version) = current;
    let refund = Refund {
        id: RefundId::generate(),
        source: Default::default(),
        amount: MinorUnits::new(10).unwrap(),
        status: RefundStatus::Pending,
        reason: None,
        failure: None,
        metadata: serde_json::Map::from_iter([("ticket".to_owned(), "T-1001".into())]),
        psp: Default::default(),
        created_at: at,
        updated_at: at,
    };
    let mut reserved = checkout.clone();
    reserved.refunds.push(refund);
    let mut completed = reserved.clone();
    if let Some(r) = completed.refunds.last_mut() {
        r.status = RefundStatus::Succeeded;
    }
    completed.status = S::PartiallyRefunded;
    for next in [reserved, completed] {
        let events = events_between(checkout, &next, *version + 1, at);
        let outbox = Outbox {
            events: &events,
            deliver_at: Some(at),
            announce_at: None,
            to_url: true,
            activity: None,
        };
        assert_eq!(
            store
                .compare_and_set(*version, &next, None, outbox)
                .await
                .unwrap(),
            CasReply::Applied {
                version: *version + 1
            }
        );
        *version += 1;
        *checkout = next;
        made.extend(events);
    }
    made
}

/// The bytes Redis holds for one checkout: its record, history, events, deliveries and outbox.
async fn footprint(
    conn: &mut ::redis::aio::MultiplexedConnection,
    prefix: &str,
    id: &CheckoutId,
) -> u64 {
    let keys = gateway::store::keys::Keys::new(prefix.to_owned());
    let mut total = 0;
    for key in [
        keys.checkout(id),
        keys.events(id),
        keys.event_records(id),
        keys.deliveries(id),
        keys.outbox(id),
    ] {
        let used: Option<u64> = ::redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(conn)
            .await
            .unwrap();
        total += used.unwrap_or(0);
    }
    total
}

/// A checkout's Redis footprint grows linearly with its refunds: each refund adds about the
/// same (its place in the record, its two events and their deliveries), however many came
/// before it. An event that stored the whole checkout, every refund in it, grew it with the
/// square of the refunds (issue 23: 400 refunds made a 118 MB hash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkouts_footprint_grows_linearly_with_its_refunds() {
    use crate::common::redis_server::{TestRedis, unique_prefix};
    let server = TestRedis::shared();
    let prefix = unique_prefix();
    let store = gateway::store::redis::RedisStore::connect(crate::redis_settings(
        server.url(),
        &prefix,
        MONTH,
    ))
    .await
    .unwrap();
    let mut conn = ::redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let id = CheckoutId::generate();
    let paid = moved(&checkout(&id), S::Succeeded);
    store.insert(&paid, &created_event()).await.unwrap();
    let mut current = (paid, 1);
    let at = t0();
    let mut sizes = Vec::new();
    let mut events = Vec::new();
    for n in 1..=150 {
        events.extend(refund_once(&store, &mut current, at).await);
        if n % 50 == 0 {
            sizes.push(footprint(&mut conn, &prefix, &id).await);
        }
    }
    let (first, second) = (sizes[1] - sizes[0], sizes[2] - sizes[1]);
    assert!(
        second * 4 <= first * 5,
        "the refunds 101-150 added {second} bytes, the refunds 51-100 {first}: not linear ({sizes:?})"
    );
    assert!(
        sizes[2] <= 150 * 4096,
        "150 refunds take {} bytes, more than 4 KiB a refund ({sizes:?})",
        sizes[2]
    );
    // And every event still reads as it was made: the refund as it was then.
    let stored = store.checkout_events(&id).await.unwrap();
    assert_eq!(stored.len(), events.len());
    for made in &events {
        let read = store.event(&made.id).await.unwrap().unwrap();
        assert_eq!(&read.event, made);
    }
}

/// Refund events written before they kept their refund (with the whole checkout spliced in, or
/// still waiting for it while their version is the newest) read as they did: the refund as the
/// checkout they hold, or the record, has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_events_written_with_the_whole_checkout_still_read() {
    use crate::common::redis_server::{TestRedis, unique_prefix};
    use ::redis::AsyncCommands;
    let server = TestRedis::shared();
    let prefix = unique_prefix();
    let store = gateway::store::redis::RedisStore::connect(crate::redis_settings(
        server.url(),
        &prefix,
        MONTH,
    ))
    .await
    .unwrap();
    let mut conn = ::redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys = gateway::store::keys::Keys::new(prefix.clone());
    let id = CheckoutId::generate();
    let paid = moved(&checkout(&id), S::Succeeded);
    store.insert(&paid, &created_event()).await.unwrap();
    let mut current = (paid, 1);
    let made = refund_once(&store, &mut current, t0()).await;
    let (record, version) = &current;
    let refund = record.refunds[0].clone();
    let data: String = conn.hget(keys.checkout(&id), "data").await.unwrap();
    let head = format!(
        r#"{{"type":"refund.succeeded","created_at":"2026-11-24T10:00:00Z","previous_status":"pending","refund":"{}""#,
        refund.id
    );
    let spliced = gateway::domain::event::EventId::new(&id, 1, 7);
    let waiting = gateway::domain::event::EventId::new(&id, *version, 7);
    let _: () = conn
        .hset(
            keys.event_records(&id),
            spliced.as_str(),
            format!(r#"{head},"checkout":{data}}}"#),
        )
        .await
        .unwrap();
    let _: () = conn
        .hset(
            keys.event_records(&id),
            waiting.as_str(),
            format!("{head}}}"),
        )
        .await
        .unwrap();
    for old in [&spliced, &waiting] {
        let read = store.event(old).await.unwrap().unwrap();
        assert_eq!(read.event.refund_id(), Some(&refund.id), "{old}");
        match &read.event.object {
            EventObject::Refund {
                checkout,
                currency,
                refund: shown,
            } => {
                assert_eq!((checkout, currency), (&id, &record.currency));
                assert_eq!(**shown, refund);
            }
            other => panic!("{old}: {other:?}"),
        }
    }
    // The new events read alongside them.
    assert_eq!(
        store.checkout_events(&id).await.unwrap().len(),
        made.len() + 2
    );
}
