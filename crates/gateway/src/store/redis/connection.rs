//! One connection type for a single node and for Redis Cluster, so that every store method runs
//! the same code on both.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

use crate::store::StoreError;

/// Cheap to clone: every variant is a handle onto one multiplexed connection (per node).
#[derive(Clone)]
pub(super) enum Connection {
    Single(Arc<SingleNode>),
    /// A single node through the current web worker's own connection ([`Connection::local`]).
    Worker(Arc<WorkerConnection>),
    Cluster(ClusterConnection),
    /// No connection yet ([`Slot::in_background`] is still trying): every command fails at
    /// once, so the store answers `Unavailable` as it does during an outage.
    Unconnected,
}

/// The shared connection to a single node, and what it takes to open another like it.
pub(super) struct SingleNode {
    manager: ConnectionManager,
    client: ::redis::Client,
    config: ConnectionManagerConfig,
    timeout: Duration,
    /// Its key for [`crate::runtime::worker_own`].
    id: u64,
}

/// A web worker's own connection, opened on the worker's runtime when it first sends a command.
pub(super) struct WorkerConnection {
    node: Arc<SingleNode>,
    own: tokio::sync::OnceCell<ConnectionManager>,
}

impl WorkerConnection {
    /// The worker's connection; the shared one while its own cannot be opened (Redis is down:
    /// the shared one then answers `Unavailable` as before, and the next command tries again).
    async fn get(&self) -> ConnectionManager {
        let opened = self
            .own
            .get_or_try_init(|| async {
                tokio::time::timeout(
                    self.node.timeout,
                    ConnectionManager::new_with_config(
                        self.node.client.clone(),
                        self.node.config.clone(),
                    ),
                )
                .await
                .map_err(drop)?
                .map_err(drop)
            })
            .await;
        match opened {
            Ok(own) => own.clone(),
            Err(()) => self.node.manager.clone(),
        }
    }
}

impl Connection {
    /// The connection to send a command from here: on a single node, from a web worker (a
    /// thread with a runtime of its own, as actix runs them), that worker's own connection.
    ///
    /// A multiplexed connection is driven by a task on the runtime that opened it. Shared by
    /// all workers, each command would wake that task on another thread, and the answer wake
    /// the worker again: two thread switches per round trip, on every request (issue 12's
    /// profile: task switches 13 % of the gateway's time). A worker's own connection, opened
    /// on first use from the worker, is driven where its commands are sent. Elsewhere (the
    /// background tasks on the multi-threaded runtime, where tasks move between threads) and
    /// on Redis Cluster the one shared connection is used.
    pub(super) fn local(&self) -> Self {
        let Self::Single(node) = self else {
            return self.clone();
        };
        let own = crate::runtime::worker_own(node.id, || {
            Some(Arc::new(WorkerConnection {
                node: node.clone(),
                own: tokio::sync::OnceCell::new(),
            }))
        });
        own.map_or_else(|| self.clone(), Self::Worker)
    }
}

/// The error of a command sent before the first connection: an I/O error that is not a dropped
/// connection (so it is not sent again), sorted as `Unavailable`.
fn not_connected() -> RedisError {
    RedisError::from(std::io::Error::other(
        "not connected to Redis yet (the gateway keeps trying in the background)",
    ))
}

/// Where to connect, checked but not yet connected: a bad URL is refused here, at start-up,
/// while an unreachable Redis is only a reason to try again.
pub(super) enum Target {
    Single {
        client: ::redis::Client,
        config: ConnectionManagerConfig,
    },
    Cluster(ClusterClient),
}

impl Target {
    /// A single node behind a `ConnectionManager`, which reconnects by itself after an outage.
    ///
    /// The manager's own retries are kept short: while Redis is down a caller must get
    /// `Unavailable` within about `timeout`, not wait through an exponential back-off; the next
    /// call starts a fresh attempt anyway.
    pub(super) fn single(url: &str, timeout: Duration) -> Result<Self, StoreError> {
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
        Ok(Self::Single { client, config })
    }

    /// The cluster client: it discovers the slots from the seed nodes and follows MOVED/ASK.
    pub(super) fn cluster(urls: &[String], timeout: Duration) -> Result<Self, StoreError> {
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
        Ok(Self::Cluster(client))
    }

    /// One attempt to connect, within `timeout * 3`.
    pub(super) async fn open(&self, timeout: Duration) -> Result<Connection, StoreError> {
        let within = timeout * 3;
        match self {
            Self::Single { client, config } => {
                let manager = tokio::time::timeout(
                    within,
                    ConnectionManager::new_with_config(client.clone(), config.clone()),
                )
                .await
                .map_err(|elapsed| {
                    StoreError::unavailable(format!(
                        "could not connect to Redis within {within:?}: check redis.url and that \
                         Redis is up"
                    ))
                    .caused_by(elapsed)
                })?
                .map_err(|e| {
                    StoreError::unavailable(format!(
                        "could not connect to Redis: {e}; check redis.url and that Redis is up"
                    ))
                    .caused_by(e)
                })?;
                Ok(Connection::Single(Arc::new(SingleNode {
                    manager,
                    client: client.clone(),
                    config: config.clone(),
                    timeout,
                    id: crate::runtime::owner_id(),
                })))
            }
            Self::Cluster(client) => {
                let connection = tokio::time::timeout(within, client.get_async_connection())
                    .await
                    .map_err(|elapsed| {
                        StoreError::unavailable(format!(
                            "could not connect to the Redis Cluster within {within:?}: check \
                             redis.cluster_urls"
                        ))
                        .caused_by(elapsed)
                    })?
                    .map_err(|e| {
                        StoreError::unavailable(format!(
                            "could not connect to the Redis Cluster: {e}; check redis.cluster_urls"
                        ))
                        .caused_by(e)
                    })?;
                Ok(Connection::Cluster(connection))
            }
        }
    }
}

/// The store's connection, once there is one. `serve` starts while Redis is unreachable
/// ([`Slot::in_background`]): until the first connection, every command fails at once and the
/// store answers `Unavailable`, as during an outage (readiness 503, merchant requests 503 with
/// `Retry-After`, notifications 503 so that MSP sends them again).
pub(super) struct Slot {
    connection: Arc<OnceLock<Connection>>,
    cluster: bool,
}

/// The first retry of a connection that failed at start-up waits this long; each next one
/// twice as long, up to [`LAST_RETRY`], each with up to a fifth more at random so that
/// instances restarted together do not knock on Redis in step.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const LAST_RETRY: Duration = Duration::from_secs(5);

impl Slot {
    /// A connection made already.
    pub(super) fn connected(connection: Connection) -> Self {
        let cluster = matches!(connection, Connection::Cluster(_));
        Self {
            connection: Arc::new(OnceLock::from(connection)),
            cluster,
        }
    }

    /// Connects from a task of its own, retrying with back-off until it succeeds (or the store
    /// is dropped); answers at once. Needs a Tokio runtime.
    pub(super) fn in_background(target: Target, timeout: Duration) -> Self {
        let connection = Arc::new(OnceLock::new());
        let slot = Self {
            cluster: matches!(target, Target::Cluster(_)),
            connection: connection.clone(),
        };
        tokio::spawn(keep_trying(target, timeout, Arc::downgrade(&connection)));
        slot
    }

    /// The connection to send a command from here ([`Connection::local`]), or
    /// [`Connection::Unconnected`] before the first connection.
    pub(super) fn get(&self) -> Connection {
        self.connection
            .get()
            .map_or(Connection::Unconnected, Connection::local)
    }

    /// Whether this is Redis Cluster (known before the first connection).
    pub(super) fn is_cluster(&self) -> bool {
        self.cluster
    }
}

async fn keep_trying(target: Target, timeout: Duration, slot: Weak<OnceLock<Connection>>) {
    let mut delay = FIRST_RETRY;
    for attempt in 1u32.. {
        let opened = target.open(timeout).await;
        let Some(slot) = slot.upgrade() else {
            return; // the store is gone
        };
        match opened {
            Ok(connection) => {
                let _ = slot.set(connection);
                tracing::info!(attempt, "connected to Redis");
                return;
            }
            Err(e) => {
                let wait = delay.mul_f64(1.0 + rand::random::<f64>() / 5.0);
                tracing::warn!(
                    attempt,
                    retry_in_ms = wait.as_millis() as u64,
                    error.message = %e,
                    "Redis is unreachable; answering 503 until it is, and trying again"
                );
                drop(slot);
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(LAST_RETRY);
            }
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => {
                let mut shared = c.manager.clone();
                Box::pin(async move { shared.req_packed_command(cmd).await })
            }
            Self::Worker(w) => Box::pin(async move { w.get().await.req_packed_command(cmd).await }),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Unconnected => Box::pin(async { Err(not_connected()) }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => {
                let mut shared = c.manager.clone();
                Box::pin(async move { shared.req_packed_commands(cmd, offset, count).await })
            }
            Self::Worker(w) => {
                Box::pin(async move { w.get().await.req_packed_commands(cmd, offset, count).await })
            }
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Self::Unconnected => Box::pin(async { Err(not_connected()) }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.manager.get_db(),
            Self::Worker(w) => w.node.manager.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Unconnected => 0,
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
