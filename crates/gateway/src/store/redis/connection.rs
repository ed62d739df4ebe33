//! One connection type for a single node and for Redis Cluster, so that every store method runs
//! the same code on both.

use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

use crate::store::StoreError;

/// Cheap to clone: both variants are handles onto one multiplexed connection (per node).
#[derive(Clone)]
pub(super) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// A single node behind a `ConnectionManager`, which reconnects by itself after an outage.
    ///
    /// The manager's own retries are kept short: while Redis is down a caller must get
    /// `Unavailable` within about `timeout`, not wait through an exponential back-off; the next
    /// call starts a fresh attempt anyway.
    pub(super) async fn single(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url).map_err(|e| {
            StoreError::unavailable(format!(
                "redis.url is not a valid Redis URL (redis:// or rediss://): {e}"
            ))
            .caused_by(e)
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(250));
        let manager = tokio::time::timeout(
            timeout * 3,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|elapsed| {
            StoreError::unavailable(format!(
                "could not connect to Redis within {:?}: check redis.url and that Redis is up",
                timeout * 3
            ))
            .caused_by(elapsed)
        })?
        .map_err(|e| {
            StoreError::unavailable(format!(
                "could not connect to Redis: {e}; check redis.url and that Redis is up"
            ))
            .caused_by(e)
        })?;
        Ok(Self::Single(manager))
    }

    /// The cluster client: it discovers the slots from the seed nodes and follows MOVED/ASK.
    pub(super) async fn cluster(urls: &[String], timeout: Duration) -> Result<Self, StoreError> {
        let client = ClusterClient::builder(urls.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2)
            .min_retry_wait(20)
            .max_retry_wait(200)
            .build()
            .map_err(|e| {
                StoreError::unavailable(format!(
                    "redis.cluster_urls is not a list of valid Redis URLs: {e}"
                ))
                .caused_by(e)
            })?;
        let connection = tokio::time::timeout(timeout * 3, client.get_async_connection())
            .await
            .map_err(|elapsed| {
                StoreError::unavailable(format!(
                    "could not connect to the Redis Cluster within {:?}: check redis.cluster_urls",
                    timeout * 3
                ))
                .caused_by(elapsed)
            })?
            .map_err(|e| {
                StoreError::unavailable(format!(
                    "could not connect to the Redis Cluster: {e}; check redis.cluster_urls"
                ))
                .caused_by(e)
            })?;
        Ok(Self::Cluster(connection))
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Sorts a Redis error into the store's two kinds.
///
/// A reply of the wrong shape or type means the stored data is not what this code wrote:
/// `Corrupt`. Everything else (I/O, timeouts, refused connections, cluster reconfiguration,
/// `LOADING`, `READONLY` during a fail-over, `OOM`) is transient from the caller's point of view:
/// `Unavailable`, answered with 503 and retried later.
pub(super) fn classify(op: &str, e: RedisError) -> StoreError {
    let corrupt = matches!(e.kind(), ErrorKind::UnexpectedReturnType | ErrorKind::Parse)
        || e.code() == Some("WRONGTYPE");
    let message = format!("{op}: {e}");
    if corrupt {
        StoreError::corrupt(message).caused_by(e)
    } else {
        StoreError::unavailable(message).caused_by(e)
    }
}
