//! The Redis store: multiplexed connection manager or cluster client, Lua for atomic steps.
//!
//! Every operation runs under `command_timeout`, so an outage answers `Unavailable` quickly
//! instead of hanging a request; the connection recovers by itself once Redis is back.

mod activity;
mod connection;
mod console;
mod endpoints;
mod listing;
mod outbox;
mod payment_methods;
mod records;
mod scripts;
mod sweep;
mod timeline;

use std::future::Future;
use std::time::Duration;

use ::redis::{AsyncCommands, RedisResult};
use async_trait::async_trait;
use rand::RngCore;

use self::connection::{Connection, Slot, Target, classify};
use self::outbox::EventHead;
use self::records::IdempotencyRecord;
use self::scripts::Scripts;
use self::timeline::IndexWrite;
use super::keys::Keys;
use super::{
    CasReply, Claim, Idempotency, IdempotencyBegin, InsertReply, LockToken, Locks, Outbox, Records,
    StoreError, StoredResponse, SyncIndex, Ttls, Versioned,
};
use crate::domain::checkout::{Checkout, CheckoutEvent, CheckoutId, PaySession};
use crate::domain::event::{Delivery, EventId};
use crate::domain::refund::RefundId;

/// How to reach Redis (the configuration `redis.*`).
#[derive(Clone, Debug)]
pub struct RedisConnect {
    /// `redis://` or `rediss://`; used when `cluster_urls` is empty.
    pub url: Option<String>,
    /// Seed nodes of a Redis Cluster; non-empty switches to the cluster client.
    pub cluster_urls: Vec<String>,
    pub key_prefix: String,
    pub ttls: Ttls,
    /// The longest any one store operation may take before it answers `Unavailable`.
    pub command_timeout: Duration,
}

pub struct RedisStore {
    connection: Slot,
    keys: Keys,
    ttls: Ttls,
    timeout: Duration,
    scripts: Scripts,
    outbox_scripts: outbox::OutboxScripts,
    endpoint_scripts: endpoints::EndpointScripts,
}

impl RedisStore {
    /// Connects and checks the connection with a PING. Fails when Redis cannot be reached now;
    /// after a successful connect, an outage gives `Unavailable` errors until Redis is back.
    pub async fn connect(settings: RedisConnect) -> Result<RedisStore, StoreError> {
        let target = Self::target(&settings)?;
        let connection = target.open(settings.command_timeout).await?;
        let store = Self::with(settings, Slot::connected(connection));
        store.ping().await?;
        Ok(store)
    }

    /// As [`connect`](Self::connect), but answers at once and connects in the background,
    /// retrying with back-off until Redis answers (`serve` starts before Redis does: a host's
    /// boot, a cluster's roll-out). Until then every operation answers `Unavailable`, as during
    /// an outage. Fails only when the settings name no valid Redis. Needs a Tokio runtime.
    pub fn connect_in_background(settings: RedisConnect) -> Result<RedisStore, StoreError> {
        let target = Self::target(&settings)?;
        let slot = Slot::in_background(target, settings.command_timeout);
        Ok(Self::with(settings, slot))
    }

    fn target(settings: &RedisConnect) -> Result<Target, StoreError> {
        let timeout = settings.command_timeout;
        if !settings.cluster_urls.is_empty() {
            Target::cluster(&settings.cluster_urls, timeout)
        } else if let Some(url) = settings.url.as_deref() {
            Target::single(url, timeout)
        } else {
            Err(StoreError::unavailable(
                "no Redis configured: set redis.url or redis.cluster_urls",
            ))
        }
    }

    fn with(settings: RedisConnect, connection: Slot) -> RedisStore {
        RedisStore {
            connection,
            keys: Keys::new(settings.key_prefix),
            ttls: settings.ttls,
            timeout: settings.command_timeout,
            scripts: Scripts::new(),
            outbox_scripts: outbox::OutboxScripts::new(),
            endpoint_scripts: endpoints::EndpointScripts::new(),
        }
    }

    /// Takes the members of a due-time index (a hint) that name no checkout out of it, rather
    /// than let them take a place in every batch forever.
    async fn drop_malformed(
        &self,
        op: &'static str,
        key: &str,
        junk: &[String],
    ) -> Result<(), StoreError> {
        if junk.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            count = junk.len(),
            index = key,
            "removing malformed index members"
        );
        self.run(op, || {
            let mut conn = self.conn();
            async move { conn.zrem::<_, _, ()>(key, junk).await }
        })
        .await
    }

    fn conn(&self) -> Connection {
        self.connection.get()
    }

    /// Runs one operation under the command timeout and sorts its error. The operation must be
    /// safe to run twice (a read, or a write whose second run changes nothing more): it is sent
    /// again once when its connection turns out to have been broken (see [`broken_connection`]).
    async fn run<T, F, Fut>(&self, op: &'static str, make: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.run_resending(op, make).await.map(|(value, _)| value)
    }

    /// As [`run`](Self::run), and says whether the operation was sent a second time. For a
    /// write that is not safe to repeat blindly (a compare-and-set, a claim, `SET NX`): its
    /// caller checks whether a "not applied" answer of the second run is in fact its own first
    /// run's effect (the stored value is exactly what it wrote), and only then reports success.
    async fn run_resending<T, F, Fut>(
        &self,
        op: &'static str,
        mut make: F,
    ) -> Result<(T, Resent), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let mut resent = Resent::No;
        let error = loop {
            let error = match tokio::time::timeout(self.timeout, make()).await {
                Ok(Ok(value)) => return Ok((value, resent)),
                Ok(Err(e)) => e,
                // A timeout after sending: Redis may have run it, or may still run it. Never
                // sent again here; the caller gets `Unavailable` and retries at its own level.
                Err(elapsed) => {
                    break StoreError::unavailable(format!(
                        "{op}: Redis did not answer within {:?}",
                        self.timeout
                    ))
                    .caused_by(elapsed);
                }
            };
            if resent == Resent::No && broken_connection(&error) {
                // The connection manager has started a fresh connection on seeing this error;
                // the second attempt waits for it (bounded by the timeout).
                tracing::info!(operation = op, error.message = %error, "redis connection was broken; sending once more on a fresh one");
                resent = Resent::Yes;
                continue;
            }
            break classify(op, error);
        };
        tracing::warn!(operation = op, error.message = %error, "redis operation failed");
        metrics::counter!(crate::metrics::STORE_ERRORS, "operation" => op).increment(1);
        Err(error)
    }
}

/// Whether an operation was sent to Redis a second time after a broken connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resent {
    No,
    Yes,
}

/// When a failed command is sent once more, on a fresh connection.
///
/// After Redis restarts, every connection to the old process is dead. An instance that was busy
/// noticed (its commands failed during the outage and the connection manager reconnected); an
/// idle one holds a connection whose socket is closed and finds out only with its next command,
/// which fails with "broken pipe" (the multiplexer's task had ended, so the command was never
/// written) or "connection reset" / EOF (it was written into a socket the old server had
/// closed). Sending it again on the fresh connection the manager opens makes that instance's
/// next request succeed instead of answering 503.
///
/// redis-rs does not say whether a command reached Redis before the connection broke: a command
/// in flight when the server closed its end fails with the same "broken pipe" as one that was
/// never written. So the rule is on the kind of failure *and* the kind of operation:
/// - only a dropped connection counts (broken pipe, reset, aborted, refused, not connected, EOF:
///   [`RedisError::is_connection_dropped`]); a timeout never does (Redis may be running the
///   command right now), nor does any answer from Redis itself (`LOADING`, `READONLY`, `OOM`,
///   a script error): those are `Unavailable` and the caller's client retries later;
/// - it is sent again at most once;
/// - reads and writes whose second run changes nothing go through [`RedisStore::run`]; a write
///   that could have run (a compare-and-set, an insert, a claim, a lock) goes through
///   [`RedisStore::run_resending`], and its caller recognises its own first run's effect rather
///   than report a conflict it caused itself (and never applies anything twice).
///
/// The cluster client reconnects and retries by itself (`retries(2)`); this adds nothing there
/// but the same one resend.
fn broken_connection(e: &::redis::RedisError) -> bool {
    e.is_connection_dropped() && !e.is_timeout()
}

/// A TTL in milliseconds for `PX`/`PEXPIRE`: at least 1 (0 would delete the key at once, or be
/// refused) and at most a century (Redis refuses expiry times that overflow).
fn millis(d: Duration) -> u64 {
    const CENTURY_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, CENTURY_MS)
}

fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    // Our own types always serialize; a failure here is a bug worth reporting, not a panic.
    serde_json::to_string(value)
        .map_err(|e| StoreError::corrupt(format!("could not encode {what}: {e}")).caused_by(e))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| {
        StoreError::corrupt(format!("stored {what} does not decode: {e}")).caused_by(e)
    })
}

/// A checkout's raw `data` and `version` fields, decoded.
fn versioned(
    id: &CheckoutId,
    raw: (Option<String>, Option<u64>),
) -> Result<Option<Versioned>, StoreError> {
    match raw {
        (None, None) => Ok(None),
        (Some(data), Some(version)) => Ok(Some(Versioned {
            checkout: from_json("checkout", &data)?,
            version,
        })),
        _ => Err(StoreError::corrupt(format!(
            "checkout {id} has only one of `data` and `version`"
        ))),
    }
}

/// What the compare-and-set script answered (see `scripts::COMPARE_AND_SET`).
enum CasOutcome {
    Applied(u64),
    Conflict { version: u64, data: String },
    NotFound,
}

fn cas_outcome(id: &CheckoutId, reply: ::redis::Value) -> Result<CasOutcome, StoreError> {
    use ::redis::Value;
    // Names the reply's shape only: a record in it is not for the logs.
    let odd = || {
        StoreError::corrupt(format!(
            "compare-and-set of checkout {id} answered neither a version, -1 nor {{version, data}}"
        ))
    };
    match reply {
        Value::Int(-1) => Ok(CasOutcome::NotFound),
        Value::Int(v) => u64::try_from(v)
            .ok()
            .filter(|v| *v > 0)
            .map(CasOutcome::Applied)
            .ok_or_else(odd),
        Value::Array(ref parts) => match parts.as_slice() {
            [Value::Int(version), Value::BulkString(data)] => {
                match (u64::try_from(*version), std::str::from_utf8(data)) {
                    (Ok(version), Ok(data)) => Ok(CasOutcome::Conflict {
                        version,
                        data: data.to_owned(),
                    }),
                    _ => Err(odd()),
                }
            }
            [Value::Int(_), Value::Nil] => Err(StoreError::corrupt(format!(
                "checkout {id} has a `version` but no `data`"
            ))),
            _ => Err(odd()),
        },
        _ => Err(odd()),
    }
}

/// ≥128 random bits, hex: unguessable owner tokens for locks and idempotency claims.
fn fresh_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[async_trait]
impl Records for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", || {
            let mut conn = self.conn();
            async move { ::redis::cmd("PING").query_async::<String>(&mut conn).await }
        })
        .await
        .map(drop)
    }

    async fn insert(
        &self,
        checkout: &Checkout,
        event: &CheckoutEvent,
    ) -> Result<InsertReply, StoreError> {
        self.insert_with("insert", checkout, event, &[], &[]).await
    }

    async fn insert_new(
        &self,
        checkout: &Checkout,
        event: &CheckoutEvent,
        first_sync_unix: i64,
        search: &[(crate::store::console::SearchIndex, String)],
    ) -> Result<InsertReply, StoreError> {
        if self.connection.is_cluster() {
            // The listing's, the record's, the due-time index's and the search entries' keys
            // are in different slots: steps.
            return super::insert_new_in_steps(self, checkout, event, first_sync_unix, search)
                .await;
        }
        let listing = self.listing_writes(checkout);
        let mut after = vec![self.schedule_write(&checkout.id, first_sync_unix)];
        after.extend(self.search_writes(&checkout.id, search));
        self.insert_with("insert_new", checkout, event, &listing, &after)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(checkout_id = %id))]
    async fn get(&self, id: &CheckoutId) -> Result<Option<Versioned>, StoreError> {
        versioned(id, self.stored_raw(id).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(checkout_id = %id))]
    async fn get_recording(
        &self,
        id: &CheckoutId,
        pending: &crate::store::activity::Pending,
    ) -> Result<Option<Versioned>, StoreError> {
        if self.connection.is_cluster() {
            // The counters are another slot: the read, and the records on their own, at once.
            let (got, ()) =
                futures_util::future::join(self.get(id), self.write_pending(id, Some(pending)))
                    .await;
            return got;
        }
        // The checkout's log entries (written only while it exists), then the hour's counters.
        let (logs, counters): (Vec<_>, Vec<_>) = self
            .activity_writes(id, Some(pending))
            .into_iter()
            .partition(|write| matches!(write, IndexWrite::Push { .. }));
        let (logs, counters) = (&logs, &counters);
        let (data, version, refused): (Option<String>, Option<u64>, u64) = self
            .run("get_recording", || {
                let mut conn = self.conn();
                async move {
                    let mut call = self.scripts.get_recording.prepare_invoke();
                    call.key(self.keys.checkout(id))
                        .key(self.keys.msp_log(id))
                        .key(self.keys.notification_log(id))
                        .arg(scripts::packed_len(logs));
                    scripts::pack(&mut call, logs);
                    scripts::pack(&mut call, counters);
                    call.invoke_async(&mut conn).await
                }
            })
            .await?;
        if refused > 0 {
            crate::activity::failed_to_record(
                "with_read",
                Err(StoreError::unavailable(format!(
                    "Redis refused {refused} of the console's writes for checkout {id} (a key of the wrong type?)"
                ))),
            );
        }
        versioned(id, (data, version))
    }

    async fn compare_and_set(
        &self,
        expected_version: u64,
        next: &Checkout,
        event: Option<&CheckoutEvent>,
        outbox: Outbox<'_>,
    ) -> Result<CasReply, StoreError> {
        let nothing = Box::pin(async { Ok(()) });
        if self.connection.is_cluster() {
            let written = self
                .compare_and_set_with(expected_version, next, event, outbox, &[], nothing)
                .await
                .1;
            if let Ok(CasReply::Applied { .. }) = written {
                self.write_pending(&next.id, outbox.activity).await;
            }
            return written;
        }
        let hints = self.activity_writes(&next.id, outbox.activity);
        self.compare_and_set_with(expected_version, next, event, outbox, &hints, nothing)
            .await
            .1
    }

    async fn commit_transition(
        &self,
        expected_version: u64,
        previous: crate::domain::checkout::CheckoutStatus,
        next: &Checkout,
        event: Option<&CheckoutEvent>,
        outbox: Outbox<'_>,
        announce: super::Announcement<'_>,
    ) -> (Result<(), StoreError>, Result<CasReply, StoreError>) {
        let refund_hints = self.refund_writes(next);
        if self.connection.is_cluster() {
            // The hints' keys are not in the checkout's slot: sent after the script, but for
            // the refunds' (their index and the reconciler's), sent before it: a refund whose
            // reservation lands while its writer has stopped waiting is found all the same
            // (unless the reconciler looked in between; one node writes them atomically).
            if !refund_hints.is_empty()
                && let Err(e) = self.run_index_writes("refund_hints", &refund_hints).await
            {
                tracing::warn!(error = %e, "could not index a refund or schedule its checkout; the reconciler finds it on its next change");
            }
            let (announced, written) = self
                .compare_and_set_with(expected_version, next, event, outbox, &[], announce)
                .await;
            if let Ok(CasReply::Applied { .. }) = written {
                super::write_transition_hints(self, previous, next).await;
                self.write_pending(&next.id, outbox.activity).await;
            }
            return (announced, written);
        }
        // On one node the script writes the events' announcement too, once it has applied: with
        // the transition, atomically, instead of a command of its own just before it.
        drop(announce);
        let mut hints = self.announcement_writes(&next.id, outbox.events, outbox.announce_at);
        hints.extend(self.status_move_writes(next, previous));
        hints.extend(refund_hints);
        if next.is_at_rest() {
            hints.push(self.unschedule_write(&next.id));
        }
        // The console's records of the change, also only once applied (and, like every hint,
        // never the change's error).
        hints.extend(self.activity_writes(&next.id, outbox.activity));
        let nothing: super::Announcement<'_> = Box::pin(async { Ok(()) });
        self.compare_and_set_with(expected_version, next, event, outbox, &hints, nothing)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(checkout_id = %id))]
    async fn events(&self, id: &CheckoutId) -> Result<Vec<CheckoutEvent>, StoreError> {
        let key = &self.keys.events(id);
        let raw: Vec<String> = self
            .run("events", || {
                let mut conn = self.conn();
                async move { conn.lrange(key, 0, -1).await }
            })
            .await?;
        raw.iter().map(|e| from_json("event", e)).collect()
    }

    async fn put_pay_session(&self, token: &str, session: &PaySession) -> Result<(), StoreError> {
        let data = &to_json("pay session", session)?;
        let key = &self.keys.pay(token);
        let ttl = millis(self.ttls.session);
        self.run("put_pay_session", || {
            let mut conn = self.conn();
            async move { conn.pset_ex::<_, _, ()>(key, data, ttl).await }
        })
        .await
    }

    async fn get_pay_session(&self, token: &str) -> Result<Option<PaySession>, StoreError> {
        let key = &self.keys.pay(token);
        let raw: Option<String> = self
            .run("get_pay_session", || {
                let mut conn = self.conn();
                async move { conn.get(key).await }
            })
            .await?;
        raw.map(|r| from_json("pay session", &r)).transpose()
    }

    async fn pay_session_and_checkout(
        &self,
        token: &str,
    ) -> Result<Option<(PaySession, Option<Versioned>)>, StoreError> {
        if self.connection.is_cluster() {
            let Some(session) = self.get_pay_session(token).await? else {
                return Ok(None);
            };
            let checkout = self.get(&session.checkout_id).await?;
            return Ok(Some((session, checkout)));
        }
        let key = &self.keys.pay(token);
        let (before, after) = &self.keys.checkout_around_id();
        let raw: Option<(String, Option<String>, Option<u64>)> = self
            .run("get_pay_session", || {
                let mut conn = self.conn();
                async move {
                    self.scripts
                        .pay_session_and_checkout
                        .key(key)
                        .arg(before)
                        .arg(*after)
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        let Some((session, data, version)) = raw else {
            return Ok(None);
        };
        let session: PaySession = from_json("pay session", &session)?;
        let checkout = match (data, version) {
            (None, None) => None,
            (Some(data), Some(version)) => Some(Versioned {
                checkout: from_json("checkout", &data)?,
                version,
            }),
            _ => {
                return Err(StoreError::corrupt(format!(
                    "checkout {} has only one of `data` and `version`",
                    session.checkout_id
                )));
            }
        };
        Ok(Some((session, checkout)))
    }

    async fn index_refund(
        &self,
        refund: &RefundId,
        checkout: &CheckoutId,
    ) -> Result<(), StoreError> {
        let key = &self.keys.refund(refund);
        let value = checkout.as_str();
        let ttl = millis(self.ttls.retention);
        self.run("index_refund", || {
            let mut conn = self.conn();
            async move { conn.pset_ex::<_, _, ()>(key, value, ttl).await }
        })
        .await
    }

    async fn checkout_of_refund(
        &self,
        refund: &RefundId,
    ) -> Result<Option<CheckoutId>, StoreError> {
        let key = &self.keys.refund(refund);
        let raw: Option<String> = self
            .run("checkout_of_refund", || {
                let mut conn = self.conn();
                async move { conn.get(key).await }
            })
            .await?;
        raw.map(|r| {
            CheckoutId::parse(&r).map_err(|e| StoreError::corrupt(format!("refund index: {e}")))
        })
        .transpose()
    }
}

#[async_trait]
impl Idempotency for RedisStore {
    async fn idempotency_claim(
        &self,
        key: &str,
        claim: &Claim<'_>,
    ) -> Result<IdempotencyBegin, StoreError> {
        let owner = fresh_token();
        let ours = IdempotencyRecord::processing(claim, &owner);
        let record = &to_json("idempotency record", &ours)?;
        let redis_key = &self.keys.idempotency(key);
        let ((claimed, current), _): ((i64, Option<String>), Resent) = self
            .run_resending("idempotency_begin", || {
                let mut conn = self.conn();
                async move {
                    self.scripts
                        .claim
                        .key(redis_key)
                        .arg(record)
                        .arg(millis(self.ttls.idempotency))
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        let started = |record: IdempotencyRecord, resumed, released| IdempotencyBegin::Started {
            owner: owner.clone(),
            resource: record.resource,
            resumed,
            released,
        };
        if claimed == 1 {
            return Ok(started(ours, false, false));
        }
        let current = current.ok_or_else(|| {
            StoreError::corrupt("idempotency claim answered neither claimed nor a record")
        })?;
        // Sent twice, the key may hold our own first run's claim: the owner token is fresh,
        // so only that run can have written exactly these bytes.
        if &current == record {
            return Ok(started(ours, false, false));
        }
        let theirs: IdempotencyRecord = from_json("idempotency record", &current)?;
        let Some(taken) = theirs.take_over(claim, &owner) else {
            return Ok(theirs.into_begin());
        };
        // The request that claimed the key never finished: take its claim over, on the exact
        // bytes read (a racer taking it over too, or the original completing late, wins).
        let taken_json = &to_json("idempotency record", &taken)?;
        let (replaced, resent) = self
            .replace_idempotency_record("idempotency_begin", redis_key, &current, taken_json)
            .await?;
        let ours_now = replaced
            || (resent == Resent::Yes
                && self
                    .get_string("idempotency_begin", redis_key)
                    .await?
                    .as_ref()
                    == Some(taken_json));
        if ours_now {
            if theirs.released {
                tracing::info!(
                    resource = taken.resource.as_deref(),
                    "retrying a request whose earlier try sent nothing; going on with its resource"
                );
                return Ok(started(taken, false, true));
            }
            tracing::warn!(
                resource = taken.resource.as_deref(),
                "took over an idempotency key whose request never finished; resuming it"
            );
            return Ok(started(taken, true, false));
        }
        let now: Option<String> = self.get_string("idempotency_begin", redis_key).await?;
        match now {
            Some(raw) => {
                Ok(from_json::<IdempotencyRecord>("idempotency record", &raw)?.into_begin())
            }
            None => Err(StoreError::unavailable(
                "an idempotency key changed while it was taken over; retry",
            )),
        }
    }

    async fn idempotency_complete(
        &self,
        key: &str,
        owner: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let redis_key = &self.keys.idempotency(key);
        // One script checks the owner and completes the record: if it changed owner meanwhile
        // (aborted, expired and claimed again, taken over), this request writes nothing. Safe
        // to send twice: a second run finds the record completed and leaves it.
        let (replaced, resent): (i64, Resent) = self
            .run_resending("idempotency_complete", || {
                let mut conn = self.conn();
                async move {
                    self.scripts
                        .complete_idempotency
                        .key(redis_key)
                        .arg(owner)
                        .arg(response.status)
                        .arg(&response.body)
                        .arg(millis(self.ttls.idempotency))
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        match replaced {
            1 => {}
            0 => tracing::warn!("idempotency key expired before its request completed"),
            _ if resent == Resent::Yes => {} // most likely our own first run's completion
            _ => tracing::warn!(
                "idempotency key is no longer owned by this request; response not stored"
            ),
        }
        Ok(())
    }

    async fn idempotency_abort(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let redis_key = &self.keys.idempotency(key);
        let Some(current) = self.get_string("idempotency_abort", redis_key).await? else {
            return Ok(());
        };
        let record: IdempotencyRecord = from_json("idempotency record", &current)?;
        if !record.is_processing_by(owner) {
            // Completed, or someone else's claim: a late abort must not erase either.
            return Ok(());
        }
        if record.resource.is_some() {
            // Kept, released, with its resource: the retry goes on with what this request
            // may have written after all.
            let released = to_json("idempotency record", &record.released())?;
            self.replace_idempotency_record("idempotency_abort", redis_key, &current, &released)
                .await?;
            return Ok(());
        }
        let current = &current;
        let _deleted: i64 = self
            .run("idempotency_abort", || {
                let mut conn = self.conn();
                async move {
                    self.scripts
                        .delete_if_equal
                        .key(redis_key)
                        .arg(current)
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(())
    }
}

#[async_trait]
impl SyncIndex for RedisStore {
    async fn schedule_sync(&self, id: &CheckoutId, due_unix: i64) -> Result<(), StoreError> {
        let _: i64 = self
            .run("schedule_sync", || {
                let mut conn = self.conn();
                async move {
                    self.scripts
                        .schedule
                        .key(self.keys.sync_due())
                        .arg(due_unix)
                        .arg(id.as_str())
                        .arg(millis(self.ttls.retention))
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(())
    }

    async fn unschedule_sync(&self, id: &CheckoutId) -> Result<(), StoreError> {
        let key = &self.keys.sync_due();
        self.run("unschedule_sync", || {
            let mut conn = self.conn();
            async move { conn.zrem::<_, _, ()>(key, id.as_str()).await }
        })
        .await
    }

    async fn due_for_sync(
        &self,
        now_unix: i64,
        limit: usize,
    ) -> Result<Vec<CheckoutId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = &self.keys.sync_due();
        let members: Vec<String> = self
            .run("due_for_sync", || {
                let mut conn = self.conn();
                async move {
                    // ZRANGEBYSCORE rather than `ZRANGE … BYSCORE`: the same answer, and it
                    // also works on servers older than Redis 6.2.
                    ::redis::cmd("ZRANGEBYSCORE")
                        .arg(key)
                        .arg("-inf")
                        .arg(now_unix)
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let mut due = Vec::with_capacity(members.len());
        let mut junk = Vec::new();
        for member in members {
            match CheckoutId::parse(&member) {
                Ok(id) => due.push(id),
                Err(_) => junk.push(member),
            }
        }
        self.drop_malformed("due_for_sync", key, &junk).await?;
        Ok(due)
    }
}

#[async_trait]
impl Locks for RedisStore {
    #[tracing::instrument(level = "debug", skip_all, fields(checkout_id = %id))]
    async fn try_lock(
        &self,
        id: &CheckoutId,
        ttl: Duration,
    ) -> Result<Option<LockToken>, StoreError> {
        let token = fresh_token();
        let key = &self.keys.lock(id);
        let token_ref = &token;
        let (acquired, resent): (Option<String>, Resent) = self
            .run_resending("try_lock", || {
                let mut conn = self.conn();
                async move {
                    ::redis::cmd("SET")
                        .arg(key)
                        .arg(token_ref)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(ttl))
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        if acquired.is_some() {
            return Ok(Some(LockToken(token)));
        }
        // Sent twice: the lock may be held by our own first run (the token is fresh).
        if resent == Resent::Yes && self.get_string("try_lock", key).await?.as_ref() == Some(&token)
        {
            return Ok(Some(LockToken(token)));
        }
        Ok(None)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(checkout_id = %id))]
    async fn unlock(&self, id: &CheckoutId, token: &LockToken) -> Result<(), StoreError> {
        let key = &self.keys.lock(id);
        let _: i64 = self
            .run("unlock", || {
                let mut conn = self.conn();
                async move {
                    self.scripts
                        .delete_if_equal
                        .key(key)
                        .arg(&token.0)
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(())
    }
}

impl RedisStore {
    /// Replaces an idempotency record only if it still holds exactly `current` (the bytes
    /// read), with the idempotency TTL. Answers whether it replaced it, and whether it was sent
    /// twice (a "no" after a resend may be the first run's own "yes": the caller checks).
    async fn replace_idempotency_record(
        &self,
        op: &'static str,
        key: &str,
        current: &str,
        new: &str,
    ) -> Result<(bool, Resent), StoreError> {
        let (replaced, resent): (i64, Resent) = self
            .run_resending(op, || {
                let mut conn = self.conn();
                async move {
                    self.scripts
                        .replace_if_equal
                        .key(key)
                        .arg(current)
                        .arg(new)
                        .arg(millis(self.ttls.idempotency))
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok((replaced == 1, resent))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(checkout_id = %checkout.id))]
    /// The insert script, running the packed `before` writes first and `after` once inserted
    /// (a single node only: see `scripts::RUN_WRITES`).
    async fn insert_with(
        &self,
        op: &'static str,
        checkout: &Checkout,
        event: &CheckoutEvent,
        before: &[IndexWrite],
        after: &[IndexWrite],
    ) -> Result<InsertReply, StoreError> {
        let data = to_json("checkout", checkout)?;
        let event = to_json("event", event)?;
        let (data, event) = (&data, &event);
        let (inserted, resent): (i64, Resent) = self
            .run_resending(op, || {
                let mut conn = self.conn();
                async move {
                    let mut call = self.scripts.insert.prepare_invoke();
                    call.key(self.keys.checkout(&checkout.id))
                        .key(self.keys.events(&checkout.id))
                        .arg(data)
                        .arg(event)
                        .arg(millis(self.ttls.retention))
                        .arg(scripts::packed_len(before));
                    scripts::pack(&mut call, before);
                    scripts::pack(&mut call, after);
                    call.invoke_async(&mut conn).await
                }
            })
            .await?;
        if inserted == 1 {
            return Ok(InsertReply::Inserted);
        }
        // Sent twice: "exists already" may be our own first run. It was if the record is
        // exactly ours at version 1.
        if resent == Resent::Yes
            && self.stored_raw(&checkout.id).await? == (Some(data.clone()), Some(1))
        {
            return Ok(InsertReply::Inserted);
        }
        Ok(InsertReply::AlreadyExists)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(checkout_id = %next.id, expected_version))]
    /// The compare-and-set script, running the packed `hints` once applied (a single node
    /// only: see `scripts::RUN_WRITES`).
    async fn compare_and_set_with(
        &self,
        expected_version: u64,
        next: &Checkout,
        event: Option<&CheckoutEvent>,
        outbox: Outbox<'_>,
        hints: &[IndexWrite],
        announce: super::Announcement<'_>,
    ) -> (Result<(), StoreError>, Result<CasReply, StoreError>) {
        let written = self
            .compare_and_set_script(expected_version, next, event, outbox, hints, announce)
            .await;
        match written {
            Ok((announced, written)) => (announced, written),
            // Nothing could be encoded: nothing was sent, not even the announcement.
            Err(e) => (Ok(()), Err(e)),
        }
    }

    async fn compare_and_set_script(
        &self,
        expected_version: u64,
        next: &Checkout,
        event: Option<&CheckoutEvent>,
        outbox: Outbox<'_>,
        hints: &[IndexWrite],
        announce: super::Announcement<'_>,
    ) -> Result<(Result<(), StoreError>, Result<CasReply, StoreError>), StoreError> {
        let data = to_json("checkout", next)?;
        let history = event.map(|e| to_json("event", e)).transpose()?;
        let (due, delivery) = match outbox.deliver_at {
            Some(at) if !outbox.events.is_empty() => (
                at.timestamp_millis().to_string(),
                if outbox.to_url {
                    to_json("delivery", &Delivery::due_now(at))?
                } else {
                    String::new()
                },
            ),
            _ => (String::new(), String::new()),
        };
        let events = outbox
            .events
            .iter()
            .map(|e| Ok((e.id.as_str(), to_json("merchant event", &EventHead::of(e))?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let events_prefix = &EventId::checkout_prefix(&next.id);
        let (data_ref, history, due, delivery, events) =
            (&data, &history, &due, &delivery, &events);
        // Everything is encoded: now the announcement goes out, and the script right after it.
        let send = self.run_resending("compare_and_set", || {
            let mut conn = self.conn();
            async move {
                let mut call = self.scripts.compare_and_set.prepare_invoke();
                call.key(self.keys.checkout(&next.id))
                    .key(self.keys.events(&next.id))
                    .key(self.keys.event_records(&next.id))
                    .key(self.keys.deliveries(&next.id))
                    .key(self.keys.outbox(&next.id))
                    .key(self.keys.msp_log(&next.id))
                    .key(self.keys.notification_log(&next.id))
                    .arg(expected_version)
                    .arg(data_ref)
                    .arg(millis(self.ttls.retention))
                    .arg(history.as_deref().unwrap_or_default())
                    .arg(due)
                    .arg(delivery)
                    .arg(events_prefix)
                    .arg(events.len());
                for (id, json) in events {
                    call.arg(*id).arg(json);
                }
                scripts::pack(&mut call, hints);
                call.invoke_async(&mut conn).await
            }
        });
        let (announced, sent) = futures_util::future::join(announce, send).await;
        let (outcome, resent): (::redis::Value, Resent) = match sent {
            Ok(sent) => sent,
            Err(e) => return Ok((announced, Err(e))),
        };
        let written = match cas_outcome(&next.id, outcome) {
            // Sent twice: the conflict may be our own first run. It was if the record is exactly
            // what we wrote, one version up (the event went in with it, once).
            Ok(CasOutcome::Conflict { version, data })
                if resent == Resent::Yes
                    && version == expected_version + 1
                    && data == *data_ref =>
            {
                Ok(CasReply::Applied { version })
            }
            Ok(CasOutcome::Conflict { version, data }) => {
                from_json("checkout", &data).map(|checkout| CasReply::Conflict {
                    current: Box::new(Versioned { checkout, version }),
                })
            }
            Ok(CasOutcome::Applied(version)) => Ok(CasReply::Applied { version }),
            Ok(CasOutcome::NotFound) => Ok(CasReply::NotFound),
            Err(e) => Err(e),
        };
        Ok((announced, written))
    }

    /// `schedule_sync`'s write, for a script on a single node.
    fn schedule_write(&self, id: &CheckoutId, due_unix: i64) -> IndexWrite {
        IndexWrite::Add {
            key: self.keys.sync_due(),
            score: due_unix,
            member: id.as_str().to_owned(),
            ttl_ms: millis(self.ttls.retention),
        }
    }

    /// What a checkout with refunds MSP has not acknowledged needs, written with the change
    /// that makes or keeps them so (the reservation first of all): each refund's entry in the
    /// refund index (found by id), and the checkout's place in the reconciler's index, due now,
    /// so that a reserved refund is always followed up, even if its writer stopped waiting
    /// before the reservation landed. Nothing for other checkouts.
    fn refund_writes(&self, next: &Checkout) -> Vec<IndexWrite> {
        let mut writes: Vec<IndexWrite> = next
            .refunds
            .iter()
            .filter(|r| r.awaits_msp())
            .map(|r| IndexWrite::Set {
                key: self.keys.refund(&r.id),
                value: next.id.as_str().to_owned(),
                ttl_ms: millis(self.ttls.retention),
            })
            .collect();
        if !writes.is_empty() {
            writes.push(self.schedule_write(&next.id, next.updated_at.timestamp()));
        }
        writes
    }

    /// Index writes as their own commands (Redis Cluster: their keys are not the checkout's
    /// slot); each is idempotent.
    async fn run_index_writes(
        &self,
        op: &'static str,
        writes: &[IndexWrite],
    ) -> Result<(), StoreError> {
        self.run(op, || {
            let conn = self.conn();
            async move { timeline::run_grouped(&conn, writes).await }
        })
        .await
    }

    /// `unschedule_sync`'s write, for a script on a single node.
    fn unschedule_write(&self, id: &CheckoutId) -> IndexWrite {
        IndexWrite::Remove {
            key: self.keys.sync_due(),
            member: id.as_str().to_owned(),
        }
    }

    /// The checkout's raw `data` and `version` fields (a read: safe to send twice).
    async fn stored_raw(
        &self,
        id: &CheckoutId,
    ) -> Result<(Option<String>, Option<u64>), StoreError> {
        let key = &self.keys.checkout(id);
        self.run("get", || {
            let mut conn = self.conn();
            async move {
                ::redis::cmd("HMGET")
                    .arg(key)
                    .arg("data")
                    .arg("version")
                    .query_async(&mut conn)
                    .await
            }
        })
        .await
    }

    async fn get_string(&self, op: &'static str, key: &str) -> Result<Option<String>, StoreError> {
        self.run(op, || {
            let mut conn = self.conn();
            async move { conn.get(key).await }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use ::redis::{ErrorKind, RedisError};

    use super::*;
    use crate::store::Cause;

    #[test]
    fn compare_and_set_answers_are_read_by_their_shape() {
        use ::redis::Value;
        let id = CheckoutId::generate();
        assert!(matches!(
            cas_outcome(&id, Value::Int(3)),
            Ok(CasOutcome::Applied(3))
        ));
        assert!(matches!(
            cas_outcome(&id, Value::Int(-1)),
            Ok(CasOutcome::NotFound)
        ));
        let lost = Value::Array(vec![
            Value::Int(2),
            Value::BulkString(b"{\"a\":1}".to_vec()),
        ]);
        assert!(matches!(
            cas_outcome(&id, lost),
            Ok(CasOutcome::Conflict { version: 2, data }) if data == "{\"a\":1}"
        ));
        // A record that is gone mid-way, a zero, any other shape: corrupt, and the message
        // never echoes what Redis sent.
        for odd in [
            Value::Int(0),
            Value::Array(vec![Value::Int(2), Value::Nil]),
            Value::Array(vec![Value::BulkString(b"secret".to_vec())]),
            Value::BulkString(b"secret".to_vec()),
        ] {
            let Err(e) = cas_outcome(&id, odd) else {
                panic!("read an odd answer");
            };
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }

    #[test]
    fn a_value_that_does_not_decode_is_corrupt_and_keeps_the_json_error() {
        let err = from_json::<Vec<u8>>("event", "{").unwrap_err();
        let json = serde_json::from_str::<Vec<u8>>("{").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("a stored value is corrupt: stored event does not decode: {json}")
        );
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
    }

    #[test]
    fn redis_errors_are_sorted_and_kept() {
        let err = classify("get", RedisError::from((ErrorKind::Parse, "not a number")));
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

        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = classify("get", RedisError::from(refused));
        let Some(Cause::Redis(source)) = (match &err {
            StoreError::Unavailable { source, .. } => source.as_ref(),
            StoreError::Corrupt { .. } => None,
        }) else {
            panic!("expected Unavailable with the Redis error: {err:?}");
        };
        assert!(source.is_io_error());
        assert_eq!(
            err.to_string(),
            format!("the store is unavailable: get: {source}")
        );
    }

    #[test]
    fn ttls_are_clamped_to_what_redis_accepts() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(10)), 1);
        assert_eq!(millis(Duration::from_secs(90)), 90_000);
        assert_eq!(millis(Duration::MAX), 100 * 365 * 24 * 3600 * 1000);
    }

    #[test]
    fn owner_tokens_carry_128_random_bits() {
        let (a, b) = (fresh_token(), fresh_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
