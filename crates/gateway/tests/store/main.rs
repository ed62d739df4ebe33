//! The store contract: one suite, run against the Redis store (a real `redis-server` from the
//! harness, and a real three-master Redis Cluster) and the in-memory store, plus Redis-only checks (TTLs on every key, corrupt values,
//! an outage and recovery). The expiry tests let time pass without sleeping (see [`lifetimes`]).
// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support as common;

mod activity;
mod apply_bound;
mod contract;
mod endpoints;
mod fixtures;
mod lifetimes;
mod listing;
mod outbox;
mod payment_methods;
mod redis_only;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use gateway::store::keys::Keys;
use gateway::store::memory::MemoryStore;
use gateway::store::redis::{RedisConnect, RedisStore};
use gateway::store::{CheckoutStore, Ttls};

use common::redis_cluster::TestCluster;
use common::redis_server::{TestRedis, unique_prefix};
use lifetimes::{Lifetimes, RawConnection};

/// Long enough that nothing expires during a test.
pub const LONG: Ttls = Ttls {
    retention: Duration::from_secs(3600),
    session: Duration::from_secs(600),
    idempotency: Duration::from_secs(86400),
};

pub fn redis_settings(url: &str, prefix: &str, ttls: Ttls) -> RedisConnect {
    RedisConnect {
        url: Some(url.to_owned()),
        cluster_urls: Vec::new(),
        key_prefix: prefix.to_owned(),
        ttls,
        command_timeout: Duration::from_millis(1000),
    }
}

/// A Redis store on the shared server, under a prefix of its own.
pub async fn redis_store(ttls: Ttls) -> Arc<dyn CheckoutStore> {
    let settings = redis_settings(TestRedis::shared().url(), &unique_prefix(), ttls);
    Arc::new(
        RedisStore::connect(settings)
            .await
            .expect("connect to the test redis-server"),
    )
}

/// A Redis store on the shared three-master test cluster, under a prefix of its own.
pub async fn cluster_store(ttls: Ttls) -> Arc<dyn CheckoutStore> {
    let settings = RedisConnect {
        url: None,
        cluster_urls: TestCluster::shared().urls(),
        ..redis_settings("unused", &unique_prefix(), ttls)
    };
    Arc::new(
        RedisStore::connect(settings)
            .await
            .expect("connect to the test cluster"),
    )
}

pub async fn memory_store(ttls: Ttls) -> Arc<dyn CheckoutStore> {
    Arc::new(MemoryStore::new(ttls))
}

/// The expiry tests' stores, each with how time passes for it.
pub async fn redis_store_expiring(ttls: Ttls) -> (Arc<dyn CheckoutStore>, Lifetimes) {
    let prefix = unique_prefix();
    let url = TestRedis::shared().url();
    let store = RedisStore::connect(redis_settings(url, &prefix, ttls))
        .await
        .expect("connect to the test redis-server");
    let lifetimes = Lifetimes::Redis {
        keys: Keys::new(prefix),
        conn: RawConnection::single(url).await,
    };
    (Arc::new(store), lifetimes)
}

pub async fn cluster_store_expiring(ttls: Ttls) -> (Arc<dyn CheckoutStore>, Lifetimes) {
    let prefix = unique_prefix();
    let settings = RedisConnect {
        url: None,
        cluster_urls: TestCluster::shared().urls(),
        ..redis_settings("unused", &prefix, ttls)
    };
    let store = RedisStore::connect(settings)
        .await
        .expect("connect to the test cluster");
    let lifetimes = Lifetimes::Redis {
        keys: Keys::new(prefix),
        conn: RawConnection::cluster(TestCluster::shared().urls()).await,
    };
    (Arc::new(store), lifetimes)
}

/// Only on a runtime started with its clock paused.
pub async fn memory_store_expiring(ttls: Ttls) -> (Arc<dyn CheckoutStore>, Lifetimes) {
    (memory_store(ttls).await, Lifetimes::PausedClock)
}

/// Runs every contract test against both stores, as `on_redis::NAME`,
/// `on_cluster::NAME` (a three-master Redis Cluster) and `on_memory::NAME`. The expiry tests,
/// after `expiry:`, get each store with how time passes for it; the memory store's run on a
/// paused clock.
macro_rules! against_both_stores {
    ($($name:ident),* $(,)?; expiry: $($expiry:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::contract::$name(crate::redis_store).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $expiry() {
                    crate::contract::$expiry(crate::redis_store_expiring).await;
                }
            )*
        }
        mod on_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::contract::$name(crate::cluster_store).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $expiry() {
                    crate::contract::$expiry(crate::cluster_store_expiring).await;
                }
            )*
        }
        mod on_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::contract::$name(crate::memory_store).await;
                }
            )*
            $(
                #[tokio::test(start_paused = true)]
                async fn $expiry() {
                    crate::contract::$expiry(crate::memory_store_expiring).await;
                }
            )*
        }
    };
}

against_both_stores!(
    insert_then_get_starts_at_version_1,
    inserting_an_existing_id_changes_nothing,
    compare_and_set_applies_on_the_expected_version_only,
    compare_and_set_on_an_unknown_checkout_is_not_found,
    events_are_kept_oldest_first_and_only_when_given,
    concurrent_racers_win_exactly_once_per_version,
    pay_sessions_round_trip,
    idempotency_claim_in_flight_complete_and_replay,
    idempotency_owner_mismatch_changes_nothing,
    idempotency_abort_frees_the_key_for_a_retry,
    an_in_flight_claim_is_taken_over_with_its_resource_once_its_time_is_over,
    an_aborted_claim_with_a_resource_is_released_keeping_it,
    sync_index_orders_by_due_time_and_limits,
    locks_exclude_until_unlocked_by_their_owner,
    an_event_whose_writer_died_is_found_after_the_grace_and_leased_once,
    a_lost_compare_and_set_writes_no_event,
    settling_never_takes_away_an_entry_announced_meanwhile,
    events_list_newest_first_across_days_by_type,
    redelivery_queues_a_delivered_event_again,
    a_committed_transition_announces_its_events,
    an_event_keeps_its_checkout_as_it_was_after_later_changes,
    a_new_checkout_is_listed_stored_and_scheduled_by_one_call,
    a_committed_transition_moves_its_hints_and_a_lost_one_none,
    a_reserved_refund_is_indexed_and_scheduled_by_its_commit,
    the_pay_page_reads_its_session_with_its_checkout,
    endpoints_change_by_compare_and_set_and_list_newest_first,
    an_event_is_fanned_out_once_each_endpoint_with_its_own_delivery,
    without_webhooks_url_an_event_goes_to_the_endpoints_only,
    an_endpoint_event_is_stored_beside_its_checkout_and_queued,
    activity_logs_keep_the_newest_entries_newest_first,
    activity_logs_are_kept_only_for_a_stored_checkout,
    statistics_add_up_by_hour,
    a_change_writes_its_activity_only_when_applied,
    a_read_that_records_writes_them_only_for_a_stored_checkout;
    expiry:
    locks_expire_after_their_ttl,
    records_expire_after_their_ttls,
    compare_and_set_refreshes_the_retention,
    activity_logs_expire_with_their_checkout,
);
