//! Listing benchmark (issue 11): does `GET /v1/checkouts` cost the same with ten
//! thousand and with a million stored checkouts? And (issue 31) does one pass of every periodic
//! background job?
//!
//! ```text
//! cargo bench -p bench --bench listing_bench -- [--sizes 10000,1000000] [--requests 2000]
//!     [--passes 200] [--due 5] [--no-sweeps | --only-sweeps]
//! ```
//!
//! - starts a `redis-server` of its own on a free port (no persistence), killed at the end; it
//!   refuses to run against `TEST_REDIS_URL`, since it writes a million records;
//! - fills it with pipelines, writing exactly what the store writes for a checkout that has
//!   reached its status: the record (`HSET data version`, TTL), its events list, and its
//!   listing entries (all, its status, its reference), with the store's own key builders and
//!   families ([`gateway::store::keys`], [`gateway::store::listing::families_of`]);
//!   creation times are spread evenly over the last 29 days (inside the 30-day retention),
//!   statuses 90 % succeeded, 5 % failed, 3 % requires_action, 1 % canceled, 1 % refunded;
//!   unless `--no-sweeps`, each `requires_action` checkout (not at rest) also has its entry in
//!   the reconciler's `sync-due` index (`ZADD` and `PEXPIRE`, as `SyncIndex::schedule_sync`
//!   writes it), due within the hour after the benchmark's "now", as the reconciler's back-off
//!   leaves a checkout it has looked at (so a pass at "now" finds none due). That is more than
//!   a live store holds, whose reconciler expires or gives up on such checkouts within a day:
//!   here the index grows with the store (3 %);
//! - at each size, times pages through the gateway (`Application::build`, real HTTP on
//!   loopback, one request at a time) and straight on the store (`list_checkouts`), and prints
//!   the median and p99 of each (skipped with `--only-sweeps`);
//! - then (skipped with `--no-sweeps`) times `--passes` passes (after a tenth as many
//!   unmeasured ones, at least 3) of each periodic background job that `startup.rs` runs, called
//!   directly on the filled store with a fixed clock (`ManualClock` at "now"), each in the
//!   common case (nothing due) and with a small steady load (`--due` items per pass), and
//!   prints the median and p99 time per pass and the Redis commands one pass costs
//!   (`INFO commandstats` around every measured pass):
//!   - the reconciler, `flows::reconcile::pass`: nothing due; then `--due` pending 3-D Secure
//!     checkouts due (stored with `Records::insert`, put back due with
//!     `SyncIndex::schedule_sync` before each pass), each synced with the in-process MSP
//!     simulator, which holds their orders waiting for the shopper;
//!   - the account-wide sweep, `flows::sweep::sweep`, against the simulator: a window with no
//!     transactions; then a window holding the `--due` orders above (rows of ours, unchanged);
//!   - the webhook deliverer, `webhooks::Deliverer::pass` (the same store calls as the `run`
//!     loop's private `start_due`, waiting for its deliveries instead of spawning them), with
//!     `webhooks.url` set to a receiver in-process (answers 200): the outbox empty, as a store
//!     at rest holds it (every event delivered); then `--due` checkouts with one fresh event
//!     each, due (written by `EventOutbox::announce_events` and `Records::compare_and_set`
//!     with its outbox before each pass);
//!   - the activity recorder, `activity::Recorder::write_counts` (the pass of
//!     `write_counts_until`): nothing counted; then `--due` transitions and `--due` webhook
//!     attempts counted before each pass.
//!
//!   The checkouts and orders these loads use are extra (2 × `--due`); they are stored without
//!   listing entries, so that the listing sees the same store as without the sweeps.
//!
//! Every loop is bounded by `--requests` or `--passes`; nothing is sent anywhere but 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use gateway::configuration::Settings;
use gateway::domain::card::CardSummary;
use gateway::domain::checkout::{
    Checkout, CheckoutEvent, CheckoutId, CheckoutStatus, EventSource, PspState,
};
use gateway::domain::money::{Currency, MinorUnits};
use gateway::startup::Application;
use gateway::store::CheckoutStore;
use gateway::store::keys::Keys;
use gateway::store::listing::{Cursor, ListQuery, ListReply, entry_of, families_of};
use gateway::store::redis::RedisStore;
use gateway::store::timeline::day_of;
use secrecy::SecretString;
use test_support::redis_server::TestRedis;

mod sweeps;
use sweeps::{Outside, Sweeps};

const MERCHANT_KEY: &str = "bench-merchant-key-0123456789";
const MSP_KEY: &str = "bench-msp-key";
const PREFIX: &str = "bench";
const SPREAD_DAYS: i64 = 29;

#[derive(Parser, Debug)]
#[command(
    about = "Listing benchmark: pages of GET /v1/checkouts and one pass of each background job at several store sizes"
)]
struct Args {
    /// Passed by `cargo bench` to every harness; nothing to do with it.
    #[arg(long = "bench", hide = true)]
    _bench: bool,
    /// Stored checkouts at each measurement, ascending; each size adds to the previous one.
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
    sizes: Vec<usize>,
    /// Timed requests per scenario (after 10 % as many unmeasured ones).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Checkouts written per pipeline while filling.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Timed passes per background job and case (after 10 % as many unmeasured ones, at
    /// least 3).
    #[arg(long, default_value_t = 200)]
    passes: usize,
    /// Items due per pass in the loaded cases (checkouts to sync, MSP rows, events to deliver,
    /// transitions counted).
    #[arg(long, default_value_t = 5)]
    due: usize,
    /// Measure the listing only (the fill then writes no `sync-due` entries, as before).
    #[arg(long, conflicts_with = "only_sweeps")]
    no_sweeps: bool,
    /// Measure the background passes only.
    #[arg(long)]
    only_sweeps: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("TEST_REDIS_URL").is_some() {
        bail!(
            "unset TEST_REDIS_URL: the benchmark writes a million keys into a redis-server of its own"
        );
    }
    let sweeps_on = !args.no_sweeps;
    let redis = TestRedis::start();
    let mut settings = Settings::default();
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.redis.url = Some(SecretString::from(redis.url().to_owned()));
    settings.redis.key_prefix = PREFIX.into();
    settings.redis.command_timeout_ms = 10_000;
    // Listing never calls MSP; nothing listens there.
    settings.multisafepay.base_url = "http://127.0.0.1:9/v1/json".into();
    settings.multisafepay.api_key = Some(SecretString::from("unused"));
    settings.auth.api_keys = vec![SecretString::from(MERCHANT_KEY)];
    settings.auth.rate_limit_per_s = 0;
    settings.reconcile.enabled = false;
    let retention = Duration::from_secs(settings.checkout.retention_s);
    let sweep_settings = settings.clone();

    let store: Arc<dyn CheckoutStore> = Arc::new(
        RedisStore::connect(settings.redis_connect())
            .await
            .map_err(|e| anyhow::anyhow!("could not connect to the bench redis: {e}"))?,
    );
    let app = Application::build(settings, store.clone())?;
    let url = app.public_url().to_owned();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    // Filling sends pipelines of tens of thousands of commands: give them time on a busy machine.
    let fill_config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(120)));
    let mut raw = redis::Client::open(redis.url())?
        .get_multiplexed_async_connection_with_config(&fill_config)
        .await?;

    // The simulator's orders are made before "now", so that a sweep's window ending at "now"
    // holds them.
    let outside = if sweeps_on {
        Some(Outside::start(&client, args.due).await?)
    } else {
        None
    };
    if outside.is_some() {
        // MSP's transaction list is filtered by whole seconds: "now" a second or more after
        // the orders, so that a window ending at "now" holds them.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    let now = Utc::now();
    let keys = Keys::new(PREFIX);
    let mut sweeps = match outside {
        Some(outside) => Some(
            Sweeps::new(
                sweep_settings,
                store.clone(),
                outside,
                raw.clone(),
                now,
                args.passes,
            )
            .await?,
        ),
        None => None,
    };
    let mut filled = 0usize;
    let mut rows = Vec::new();
    let mut sweep_rows = Vec::new();
    for &size in &args.sizes {
        let started = Instant::now();
        fill(
            &mut raw,
            &keys,
            now,
            filled..size,
            args.batch,
            retention,
            sweeps_on,
        )
        .await?;
        let fill_s = started.elapsed().as_secs_f64();
        filled = size.max(filled);
        let memory = used_memory(&mut raw).await?;
        eprintln!(
            "{size} checkouts stored (filled in {fill_s:.1} s); redis used_memory {:.0} MiB",
            memory as f64 / 1_048_576.0
        );
        if !args.only_sweeps {
            let probe = Probe {
                size,
                now,
                url: &url,
                client: &client,
                store: store.as_ref(),
                requests: args.requests,
                redis: raw.clone(),
            };
            rows.extend(probe.run_all().await?);
        }
        if let Some(sweeps) = sweeps.as_mut() {
            sweep_rows.extend(sweeps.run_all(size).await?);
        }
    }
    if !args.only_sweeps {
        println!();
        println!(
            "| stored | scenario | HTTP p50 | HTTP p99 | store p50 | store p99 | checkouts/page | Redis commands/page |"
        );
        println!("|---:|---|---:|---:|---:|---:|---:|---|");
        for r in &rows {
            println!(
                "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} |",
                r.size,
                r.scenario,
                r.http.0,
                r.http.1,
                r.store.0,
                r.store.1,
                r.page_len,
                r.commands
            );
        }
    }
    if sweeps.is_some() {
        println!();
        println!(
            "| stored | background pass | calls | p50 | p99 | found per pass | Redis commands/pass |"
        );
        println!("|---:|---|---|---:|---:|---|---|");
        for r in &sweep_rows {
            println!(
                "| {} | {} | `{}` | {:.3} ms | {:.3} ms | {} | {} |",
                r.size, r.job, r.calls, r.p50, r.p99, r.found, r.commands
            );
        }
    }
    handle.stop(true).await;
    if let Some(sweeps) = sweeps {
        sweeps.outside.stop().await;
    }
    drop(redis);
    Ok(())
}

/// The checkout number `i` of the benchmark, created at `at`: its status and its reference
/// are functions of `i`.
fn nth(i: usize, at: DateTime<Utc>) -> anyhow::Result<Checkout> {
    let status = match i % 100 {
        0 => CheckoutStatus::Refunded,
        1..=5 => CheckoutStatus::Failed,
        6..=8 => CheckoutStatus::RequiresAction,
        9 => CheckoutStatus::Canceled,
        _ => CheckoutStatus::Succeeded,
    };
    Ok(Checkout {
        schema_version: Checkout::SCHEMA_VERSION,
        id: CheckoutId::generate(),
        status,
        amount: MinorUnits::new(3495).map_err(|e| anyhow::anyhow!("{e:?}"))?,
        currency: Currency::parse("EUR").map_err(|e| anyhow::anyhow!("{e:?}"))?,
        reference: Some(format!("order-{i}")),
        description: format!("Order order-{i} at Example Shop"),
        card: CardSummary {
            brand: "visa".into(),
            last4: "1111".into(),
            exp_month: 12,
            exp_year: 2030,
        },
        saved_card: Default::default(),
        return_url: "https://shop.example/checkout/return".into(),
        cancel_url: "https://shop.example/cart".into(),
        metadata: serde_json::Map::from_iter([("cart_id".to_owned(), format!("c-{i}").into())]),
        failure: None,
        psp: PspState {
            transaction_id: Some(format!("{}", 100_000_000 + i)),
            status: Some("completed".into()),
            reason_code: String::new(),
            capture_order_id: None,
        },
        pay_token: None,
        shopper_returned: true,
        created_at: at,
        updated_at: at,
        expires_at: at + TimeDelta::minutes(90),
        capture_method: Default::default(),
        amount_captured: None,
        amount_capturable: None,
        capture_before: None,
        refunds: Vec::new(),
        disputes: Vec::new(),
    })
}

/// Writes checkouts `from..to` of a store of `to` checkouts, as the store would have them;
/// with `sync_due`, those not at rest with their entry in the reconciler's index too.
async fn fill(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    now: DateTime<Utc>,
    range: std::ops::Range<usize>,
    batch: usize,
    retention: Duration,
    sync_due: bool,
) -> anyhow::Result<()> {
    let std::ops::Range {
        start: from,
        end: to,
    } = range;
    let ttl_ms = retention.as_millis() as u64;
    let sync_due_key = keys.sync_due();
    let keep_ms = ttl_ms + 86_400_000;
    // Creation times spread evenly over the span: slot `(i * stride) % to` of `to` slots, a
    // permutation, so that each size's checkouts interleave with the previous size's.
    let span_ms = SPREAD_DAYS * 86_400_000;
    let stride = coprime_stride(to);
    let mut pipe = redis::pipe();
    let mut in_pipe = 0;
    for i in from..to {
        let slot = ((i * stride) % to) as i64;
        let at_ms = now.timestamp_millis() - span_ms + slot * span_ms / to as i64;
        let checkout = nth(i, DateTime::from_timestamp_millis(at_ms).unwrap_or(now))?;
        let created = CheckoutEvent {
            at: checkout.created_at,
            from: None,
            to: CheckoutStatus::Created,
            source: EventSource::Create,
            psp_status: None,
        };
        let last = CheckoutEvent {
            from: Some(CheckoutStatus::Created),
            to: checkout.status,
            psp_status: Some("completed".into()),
            ..created.clone()
        };
        let record = keys.checkout(&checkout.id);
        let events = keys.events(&checkout.id);
        pipe.cmd("HSET")
            .arg(&record)
            .arg("data")
            .arg(serde_json::to_string(&checkout)?)
            .arg("version")
            .arg(2)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&record)
            .arg(ttl_ms)
            .ignore()
            .cmd("RPUSH")
            .arg(&events)
            .arg(serde_json::to_string(&created)?)
            .arg(serde_json::to_string(&last)?)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&events)
            .arg(ttl_ms)
            .ignore();
        let entry = entry_of(&checkout);
        for family in families_of(&checkout) {
            let key = keys.timeline(&family, &day_of(entry.at_ms));
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(entry.at_ms)
                .arg(&entry.member)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(keep_ms)
                .ignore();
        }
        if sync_due && !checkout.is_at_rest() {
            // `SyncIndex::schedule_sync`'s script: ZADD, then the index's TTL. Due within the
            // hour after "now", spread, as the reconciler's back-off (an hour at most) leaves
            // a checkout it has looked at.
            let due = now.timestamp() + 1 + ((i * 7_919) % 3_600) as i64;
            pipe.cmd("ZADD")
                .arg(&sync_due_key)
                .arg(due)
                .arg(checkout.id.as_str())
                .ignore()
                .cmd("PEXPIRE")
                .arg(&sync_due_key)
                .arg(ttl_ms)
                .ignore();
        }
        in_pipe += 1;
        if in_pipe == batch {
            pipe.exec_async(conn).await.context("filling redis")?;
            pipe = redis::pipe();
            in_pipe = 0;
        }
    }
    if in_pipe > 0 {
        pipe.exec_async(conn).await.context("filling redis")?;
    }
    Ok(())
}

fn coprime_stride(n: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let mut s = 7_919usize; // a prime
    while gcd(s, n.max(1)) != 1 {
        s += 2;
    }
    s
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

struct Probe<'a> {
    size: usize,
    now: DateTime<Utc>,
    url: &'a str,
    client: &'a reqwest::Client,
    store: &'a dyn CheckoutStore,
    requests: usize,
    redis: redis::aio::MultiplexedConnection,
}

struct Row {
    size: usize,
    scenario: String,
    /// p50, p99 in ms.
    http: (f64, f64),
    store: (f64, f64),
    page_len: usize,
    /// Redis commands per page on the store path, those inside scripts included.
    commands: String,
}

impl Probe<'_> {
    async fn run_all(&self) -> anyhow::Result<Vec<Row>> {
        // Cursors deep in the listing: checkouts about 20 days old, taken from a page there.
        let deep_at = self.now - TimeDelta::days(20);
        let deep = ListQuery {
            created_lt: Some(deep_at),
            ..ListQuery::first(100, self.now)
        };
        let ListReply::Page(deep_page) = self.store.list_checkouts(&deep).await? else {
            bail!("the deep page answered an unknown cursor");
        };
        let cursors: Vec<String> = deep_page.data.iter().map(|c| c.id.to_string()).collect();
        if cursors.is_empty() {
            bail!("no checkout 20 days old to start a deep page from");
        }
        let reference = format!("order-{}", self.size / 2);
        let window_from = (self.now - TimeDelta::days(15)).to_rfc3339();
        let window_to = (self.now - TimeDelta::days(15) + TimeDelta::hours(1)).to_rfc3339();

        type Make<'m> = Box<dyn Fn(usize) -> (String, ListQuery) + 'm>;
        let first = |limit: usize| ListQuery::first(limit, self.now);
        let scenarios: Vec<(&str, Make<'_>)> = vec![
            (
                "first page, limit 10",
                Box::new(|_| ("limit=10".into(), first(10))),
            ),
            (
                "first page, limit 100",
                Box::new(|_| ("limit=100".into(), first(100))),
            ),
            (
                "status=refunded (1 %), limit 10",
                Box::new(|_| {
                    (
                        "status=refunded&limit=10".into(),
                        ListQuery {
                            status: Some(CheckoutStatus::Refunded),
                            ..first(10)
                        },
                    )
                }),
            ),
            (
                "reference=<one order>",
                Box::new(|_| {
                    (
                        format!("reference={reference}"),
                        ListQuery {
                            reference: Some(reference.clone()),
                            ..first(10)
                        },
                    )
                }),
            ),
            (
                "status=succeeded, 1 h window 15 days back",
                Box::new(|_| {
                    (
                        format!(
                            "status=succeeded&created_gte={}&created_lt={}",
                            window_from.replace('+', "%2B"),
                            window_to.replace('+', "%2B")
                        ),
                        ListQuery {
                            status: Some(CheckoutStatus::Succeeded),
                            created_gte: Some(self.now - TimeDelta::days(15)),
                            created_lt: Some(self.now - TimeDelta::days(15) + TimeDelta::hours(1)),
                            ..first(10)
                        },
                    )
                }),
            ),
            (
                "starting_after a 20-day-old checkout, limit 10",
                Box::new(|n| {
                    let id = &cursors[n % cursors.len()];
                    (
                        format!("limit=10&starting_after={id}"),
                        ListQuery {
                            cursor: Some(Cursor::StartingAfter(
                                CheckoutId::parse(id).unwrap_or_else(|_| CheckoutId::generate()),
                            )),
                            ..first(10)
                        },
                    )
                }),
            ),
            (
                "ending_before a 20-day-old checkout, limit 10",
                Box::new(|n| {
                    let id = &cursors[n % cursors.len()];
                    (
                        format!("limit=10&ending_before={id}"),
                        ListQuery {
                            cursor: Some(Cursor::EndingBefore(
                                CheckoutId::parse(id).unwrap_or_else(|_| CheckoutId::generate()),
                            )),
                            ..first(10)
                        },
                    )
                }),
            ),
        ];

        let mut rows = Vec::new();
        for (name, make) in &scenarios {
            let warmup = (self.requests / 10).max(1);
            let mut http = Vec::with_capacity(self.requests);
            let mut page_len = 0;
            for n in 0..warmup + self.requests {
                let (query, _) = make(n);
                let started = Instant::now();
                let res = self
                    .client
                    .get(format!("{}/v1/checkouts?{query}", self.url))
                    .bearer_auth(MERCHANT_KEY)
                    .send()
                    .await?;
                let status = res.status();
                let body: serde_json::Value = res.json().await?;
                let took = started.elapsed();
                if !status.is_success() {
                    bail!("{name}: {status} {body}");
                }
                page_len = body["data"].as_array().map_or(0, Vec::len);
                if n >= warmup {
                    http.push(took);
                }
            }
            let mut direct = Vec::with_capacity(self.requests);
            let before = command_counts(&mut self.redis.clone()).await?;
            for n in 0..warmup + self.requests {
                let (_, query) = make(n);
                let started = Instant::now();
                let reply = self.store.list_checkouts(&query).await?;
                let took = started.elapsed();
                if !matches!(reply, ListReply::Page(_)) {
                    bail!("{name}: the store answered an unknown cursor");
                }
                if n >= warmup {
                    direct.push(took);
                }
            }
            let after = command_counts(&mut self.redis.clone()).await?;
            let row = Row {
                size: self.size,
                scenario: (*name).to_owned(),
                http: percentiles(&mut http),
                store: percentiles(&mut direct),
                page_len,
                commands: per_request(&before, &after, warmup + self.requests),
            };
            eprintln!(
                "{:>8} | {:<48} | HTTP p50 {:.2} ms p99 {:.2} ms | store p50 {:.2} ms p99 {:.2} ms | {} per page | {}",
                row.size,
                row.scenario,
                row.http.0,
                row.http.1,
                row.store.0,
                row.store.1,
                row.page_len,
                row.commands
            );
            rows.push(row);
        }
        Ok(rows)
    }
}

/// Calls per command from `INFO commandstats` (commands run inside scripts included).
async fn command_counts(
    conn: &mut redis::aio::MultiplexedConnection,
) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect())
}

/// `evalsha 1.0, hget 11.0, …`: what one page cost Redis, `INFO` itself left out.
fn per_request(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
    requests: usize,
) -> String {
    let mut counts: Vec<(String, f64)> = after
        .iter()
        .filter(|(name, _)| name.as_str() != "info")
        .map(|(name, n)| {
            let delta = n - before.get(name).copied().unwrap_or(0);
            (name.clone(), delta as f64 / requests as f64)
        })
        .filter(|(_, per)| *per >= 0.05)
        .collect();
    counts.sort_by(|a, b| b.1.total_cmp(&a.1));
    counts
        .iter()
        .map(|(name, per)| format!("{name} {per:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// (p50, p99) in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let at = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    (at(0.50), at(0.99))
}
