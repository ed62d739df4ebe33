//! How the expiry tests let time pass, store by store, without sleeping.
//!
//! Redis expires keys on its own clock, which no test can move (the gateway's clock does not
//! reach it). There the tests check what the store asked Redis for, the `PTTL` of every key it
//! wrote, and let time pass by taking it off those TTLs: `PEXPIRE` with what is left, or `DEL`
//! once nothing is, which is what Redis itself does when the time is up. What is left to test is
//! that the store reads a key Redis has dropped as expired.
//!
//! The memory store reads tokio's clock. Its expiry tests run on a paused runtime, and time
//! passes with `tokio::time::advance`: the store's own TTL arithmetic is then what is tested.

use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, FromRedisValue};
use gateway::domain::checkout::CheckoutId;
use gateway::store::keys::Keys;

/// What a store keeps, by family, so that tests name entries without spelling Redis keys.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    Checkout(&'a CheckoutId),
    Events(&'a CheckoutId),
    Lock(&'a CheckoutId),
    PaySession(&'a str),
    Idempotency(&'a str),
    SyncIndex,
    MspLog(&'a CheckoutId),
    NotificationLog(&'a CheckoutId),
}

pub enum Lifetimes {
    /// The keys of a Redis store (its prefix), read and shortened from outside.
    Redis { keys: Keys, conn: RawConnection },
    /// The memory store, on a test runtime started with its clock paused.
    PausedClock,
}

pub enum RawConnection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl RawConnection {
    pub async fn single(url: &str) -> Self {
        let client = ::redis::Client::open(url).unwrap();
        Self::Single(client.get_multiplexed_async_connection().await.unwrap())
    }

    pub async fn cluster(urls: Vec<String>) -> Self {
        let client = ClusterClient::new(urls).unwrap();
        Self::Cluster(client.get_async_connection().await.unwrap())
    }

    async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> T {
        match self {
            Self::Single(c) => cmd.query_async(c).await.unwrap(),
            Self::Cluster(c) => cmd.query_async(c).await.unwrap(),
        }
    }
}

impl Lifetimes {
    /// Asserts that each entry was just given the TTL beside it. On Redis: its key's `PTTL` is
    /// at most that TTL and more than half of it (a missing key, or one without a TTL, fails).
    /// Half leaves a loaded machine seconds of slack, and still tells apart the TTL families of
    /// `LONG` and a unit mistake. The memory store keeps its deadlines to itself: there what the
    /// store answers after [`pass`](Self::pass) is the check.
    pub async fn assert_ttls(&mut self, entries: &[(Entry<'_>, Duration)]) {
        let Self::Redis { keys, conn } = self else {
            return;
        };
        for (entry, ttl) in entries {
            let key = key_of(keys, *entry);
            let pttl: i64 = conn.query(::redis::cmd("PTTL").arg(&key)).await;
            let want = ttl.as_millis() as i64;
            assert!(
                want / 2 < pttl && pttl <= want,
                "{entry:?}: {key} has PTTL {pttl} ms, want {want} ms (-2: no key, -1: no TTL)"
            );
        }
    }

    /// Lets `elapsed` pass for `entries`: on Redis each key's TTL is shortened by it (the key
    /// is deleted once nothing is left; one already gone is skipped); on the memory store the
    /// paused clock moves on.
    pub async fn pass(&mut self, elapsed: Duration, entries: &[Entry<'_>]) {
        let Self::Redis { keys, conn } = self else {
            tokio::time::advance(elapsed).await;
            return;
        };
        for entry in entries {
            let key = key_of(keys, *entry);
            let pttl: i64 = conn.query(::redis::cmd("PTTL").arg(&key)).await;
            assert_ne!(pttl, -1, "{key} has no TTL");
            if pttl == -2 {
                continue;
            }
            let left = pttl - elapsed.as_millis() as i64;
            if left > 0 {
                let set: i64 = conn
                    .query(::redis::cmd("PEXPIRE").arg(&key).arg(left))
                    .await;
                assert_eq!(set, 1, "{key} vanished while its TTL was shortened");
            } else {
                let _: i64 = conn.query(::redis::cmd("DEL").arg(&key)).await;
            }
        }
    }
}

fn key_of(keys: &Keys, entry: Entry<'_>) -> String {
    match entry {
        Entry::Checkout(id) => keys.checkout(id),
        Entry::Events(id) => keys.events(id),
        Entry::Lock(id) => keys.lock(id),
        Entry::PaySession(token) => keys.pay(token),
        Entry::Idempotency(key) => keys.idempotency(key),
        Entry::SyncIndex => keys.sync_due(),
        Entry::MspLog(id) => keys.msp_log(id),
        Entry::NotificationLog(id) => keys.notification_log(id),
    }
}
