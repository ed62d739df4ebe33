//! The background passes: one pass of each periodic job, called directly with a fixed clock,
//! against the filled store (see the harness's doc in `main.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};

use gateway::activity::Recorder;
use gateway::clock::ManualClock;
use gateway::domain::event::{EventOwner, events_between};
use gateway::flows::sweep::SweepConfig;
use gateway::flows::{Context, FlowSettings, OutboxBell};
use gateway::psp::multisafepay::MultiSafepayClient;
use gateway::store::{CasReply, InsertReply, Outbox};
use gateway::webhooks::Deliverer;
use gateway::webhooks::address::AddressGuard;
use msp_simulator::{SimulatorConfig, SimulatorHandle};

use super::*;

/// What the background passes talk to besides the store: the MSP simulator, holding `due`
/// orders that wait for the shopper's 3-D Secure (made before "now"), and a webhook receiver.
pub(crate) struct Outside {
    sim: SimulatorHandle,
    receiver: actix_web::dev::ServerHandle,
    receiver_url: String,
    /// Requests the receiver answered.
    received: Arc<AtomicUsize>,
    /// The simulator's orders: the checkout id each is for, and MSP's transaction id.
    orders: Vec<(CheckoutId, String)>,
}

impl Outside {
    pub(crate) async fn start(client: &reqwest::Client, due: usize) -> anyhow::Result<Self> {
        let mut config = SimulatorConfig::for_tests(MSP_KEY);
        // The orders wait for the shopper for the whole run; nothing is notified again.
        config.challenge_expiry = Duration::from_secs(86_400);
        config.notification_retry_interval = Duration::from_secs(3_600);
        let sim = msp_simulator::spawn(config).await?;
        let mut orders = Vec::with_capacity(due);
        for _ in 0..due {
            let id = CheckoutId::generate();
            let res = client
                .post(format!("{}/orders", sim.api_url()))
                .header("api_key", MSP_KEY)
                .json(&msp_order_body(id.as_str()))
                .send()
                .await?;
            let status = res.status();
            let body: serde_json::Value = res.json().await?;
            if !status.is_success() || body["data"]["status"] != "initialized" {
                bail!(
                    "the simulator did not make an order waiting for 3-D Secure: {status} {body}"
                );
            }
            let tx = match &body["data"]["transaction_id"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            orders.push((id, tx));
        }
        let received = Arc::new(AtomicUsize::new(0));
        let counter = received.clone();
        let server = actix_web::HttpServer::new(move || {
            let counter = counter.clone();
            // The body is read, as a receiver does: actix closes a connection whose request
            // body was left unread, and the deliverer's next POST on it would fail.
            actix_web::App::new().default_service(actix_web::web::to(
                move |_body: actix_web::web::Bytes| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    async { actix_web::HttpResponse::Ok().finish() }
                },
            ))
        })
        .workers(1)
        .keep_alive(Duration::from_secs(3_600))
        .bind(("127.0.0.1", 0))?;
        let port = server
            .addrs()
            .first()
            .map(|a| a.port())
            .context("the webhook receiver has no address")?;
        let server = server.run();
        let receiver = server.handle();
        tokio::spawn(server);
        Ok(Self {
            sim,
            receiver,
            receiver_url: format!("http://127.0.0.1:{port}/webhooks"),
            received,
            orders,
        })
    }

    pub(crate) async fn stop(self) {
        self.receiver.stop(true).await;
        self.sim.stop().await;
    }
}

/// A direct card order as the gateway sends it to MSP, with a card MSP challenges.
fn msp_order_body(order_id: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "direct",
        "gateway": "CREDITCARD",
        "order_id": order_id,
        "currency": "EUR",
        "amount": 3495,
        "description": "Order at Example Shop",
        "payment_options": {
            "notification_url": "http://127.0.0.1:9/notifications/multisafepay",
            "notification_method": "POST",
            "redirect_url": "https://shop.example/checkout/return",
            "cancel_url": "https://shop.example/cart",
            "close_window": false
        },
        "customer": {
            "locale": "nl_NL", "ip_address": "203.0.113.7", "email": "jo@example.com",
            "country": "NL", "first_name": "Jo", "last_name": "Doe",
            "browser": {"javascript_enabled": true, "java_enabled": false, "cookies_enabled": true,
                        "language": "nl-NL", "screen_color_depth": 24, "screen_height": 1080,
                        "screen_width": 1920, "time_zone": -60, "user_agent": "Mozilla/5.0", "platform": "Linux"}
        },
        "gateway_info": {"card_number": "4111111111111111", "card_holder_name": "Jo Doe",
                         "card_expiry_date": "3012", "card_cvc": "123"}
    })
}

/// One background job, in one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    ReconcileIdle,
    ReconcileDue,
    SweepEmpty,
    SweepRows,
    DeliverIdle,
    DeliverDue,
    StatsIdle,
    StatsCounted,
}

impl Job {
    const ALL: [Job; 8] = [
        Job::ReconcileIdle,
        Job::ReconcileDue,
        Job::SweepEmpty,
        Job::SweepRows,
        Job::DeliverIdle,
        Job::DeliverDue,
        Job::StatsIdle,
        Job::StatsCounted,
    ];

    fn name(self, due: usize) -> String {
        match self {
            Job::ReconcileIdle => "reconciler, none due".into(),
            Job::ReconcileDue => format!("reconciler, {due} due (each synced with MSP)"),
            Job::SweepEmpty => "account sweep, no MSP rows in its window".into(),
            Job::SweepRows => format!("account sweep, {due} MSP rows of ours (unchanged)"),
            Job::DeliverIdle => "webhook deliverer, outbox empty".into(),
            Job::DeliverDue => format!("webhook deliverer, {due} events due"),
            Job::StatsIdle => "activity recorder, nothing counted".into(),
            Job::StatsCounted => {
                format!("activity recorder, {due} transitions + {due} webhook attempts")
            }
        }
    }

    fn calls(self) -> &'static str {
        match self {
            Job::ReconcileIdle | Job::ReconcileDue => "flows::reconcile::pass",
            Job::SweepEmpty | Job::SweepRows => "flows::sweep::sweep",
            Job::DeliverIdle | Job::DeliverDue => "webhooks::Deliverer::pass",
            Job::StatsIdle | Job::StatsCounted => "activity::Recorder::write_counts",
        }
    }

    /// What [`Sweeps::pass`] counts.
    fn unit(self) -> &'static str {
        match self {
            Job::ReconcileIdle | Job::ReconcileDue => "checkouts looked at",
            Job::SweepEmpty | Job::SweepRows => "MSP rows",
            Job::DeliverIdle | Job::DeliverDue => "deliveries",
            Job::StatsIdle | Job::StatsCounted => "counts written",
        }
    }
}

pub(crate) struct SweepRow {
    pub(crate) size: usize,
    pub(crate) job: String,
    pub(crate) calls: &'static str,
    /// p50, p99 in ms.
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) found: String,
    /// Redis commands per measured pass, those inside scripts included.
    pub(crate) commands: String,
}

/// The background jobs of one gateway instance, wired as `Application::build_with` wires
/// them (the flows' context, the MSP client with its activity recorder, the webhook deliverer),
/// with a fixed clock, MSP at the simulator and `webhooks.url` at the receiver; none of them
/// runs on its own: every pass is called from here.
pub(crate) struct Sweeps {
    ctx: Arc<Context>,
    clock: Arc<ManualClock>,
    deliverer: Arc<Deliverer>,
    recorder: Arc<Recorder>,
    sweep: SweepConfig,
    pub(crate) outside: Outside,
    /// The reconciler's loaded case: checkouts waiting for 3-D Secure, whose orders the
    /// simulator holds.
    pending: Vec<CheckoutId>,
    /// The deliverer's loaded case: checkouts as stored, with their versions.
    outboxed: Vec<(Checkout, u64)>,
    redis: redis::aio::MultiplexedConnection,
    keys: Keys,
    now: DateTime<Utc>,
    passes: usize,
    due: usize,
}

impl Sweeps {
    pub(crate) async fn new(
        mut settings: Settings,
        store: Arc<dyn CheckoutStore>,
        outside: Outside,
        redis: redis::aio::MultiplexedConnection,
        now: DateTime<Utc>,
        passes: usize,
    ) -> anyhow::Result<Self> {
        settings.multisafepay.base_url = outside.sim.api_url();
        settings.multisafepay.api_key = Some(SecretString::from(MSP_KEY));
        settings.webhooks.url = Some(outside.receiver_url.clone());
        settings.webhooks.secrets = vec![SecretString::from("bench-webhook-secret")];
        let clock = Arc::new(ManualClock::at(now));
        let recorder = Arc::new(Recorder::new(store.clone(), clock.clone()));
        let psp = MultiSafepayClient::new(
            &settings.multisafepay.base_url,
            SecretString::from(MSP_KEY),
            settings.msp_connect_timeout(),
            settings.msp_timeout(),
        )
        .map_err(|e| anyhow::anyhow!("could not build the MSP client: {e}"))?
        .with_recorder(recorder.clone());
        // No deliverer listens on the bell: every delivery here is a pass's.
        let (outbox, _bell) = OutboxBell::new(1024);
        let ctx = Arc::new(Context {
            store: store.clone(),
            psp,
            clock: clock.clone(),
            settings: FlowSettings::new(&settings, "http://127.0.0.1:9".into()),
            outbox,
            syncs: Default::default(),
        });
        let guard = Arc::new(AddressGuard::new(&settings.webhooks, None));
        let deliverer = Arc::new(Deliverer::new(ctx.clone(), &settings.webhooks, guard)?);
        let sweep = SweepConfig::from_settings(&settings.reconcile);

        // Made ten minutes before "now": inside their 3-D Secure window, far from the
        // reconciler's giving up.
        let created = now - TimeDelta::minutes(10);
        let mut pending = Vec::new();
        for (n, (id, tx)) in outside.orders.iter().enumerate() {
            let mut checkout = nth(6, created)?;
            checkout.id = id.clone();
            checkout.reference = Some(format!("bench-pending-{n}"));
            checkout.psp = PspState {
                transaction_id: Some(tx.clone()),
                status: Some("initialized".into()),
                reason_code: String::new(),
                capture_order_id: None,
            };
            checkout.pay_token = Some(format!("bench-pay-token-{n}"));
            checkout.shopper_returned = false;
            insert(store.as_ref(), &checkout).await?;
            pending.push(checkout.id);
        }
        let mut outboxed = Vec::new();
        for n in 0..outside.orders.len() {
            let mut checkout = nth(7, created)?;
            checkout.reference = Some(format!("bench-outbox-{n}"));
            checkout.psp.status = Some("initialized".into());
            insert(store.as_ref(), &checkout).await?;
            outboxed.push((checkout, 1));
        }
        let due = outside.orders.len();
        Ok(Self {
            ctx,
            clock,
            deliverer,
            recorder,
            sweep,
            outside,
            pending,
            outboxed,
            redis,
            keys: Keys::new(PREFIX),
            now,
            passes,
            due,
        })
    }

    pub(crate) async fn run_all(&mut self, size: usize) -> anyhow::Result<Vec<SweepRow>> {
        let (sync_due, outbox_due): (u64, u64) = redis::pipe()
            .zcard(self.keys.sync_due())
            .zcard(self.keys.outbox_due())
            .query_async(&mut self.redis)
            .await?;
        eprintln!("{size} checkouts stored: sync-due holds {sync_due}, outbox-due {outbox_due}");
        let mut rows = Vec::new();
        for job in Job::ALL {
            let row = self.measure(size, job).await?;
            eprintln!(
                "{:>8} | {:<58} | p50 {:.3} ms p99 {:.3} ms | {} | {}",
                row.size, row.job, row.p50, row.p99, row.found, row.commands
            );
            rows.push(row);
        }
        Ok(rows)
    }

    async fn measure(&mut self, size: usize, job: Job) -> anyhow::Result<SweepRow> {
        self.before(job).await?;
        let warmup = (self.passes / 10).max(3);
        let mut took = Vec::with_capacity(self.passes);
        let mut commands = BTreeMap::new();
        let (mut least, mut most) = (usize::MAX, 0);
        for n in 0..warmup + self.passes {
            self.setup(job).await?;
            let measured = n >= warmup;
            let before = if measured {
                command_counts(&mut self.redis).await?
            } else {
                BTreeMap::new()
            };
            let started = Instant::now();
            let found = self.pass(job).await?;
            let elapsed = started.elapsed();
            if measured {
                for (name, calls) in command_counts(&mut self.redis).await? {
                    let delta = calls.saturating_sub(before.get(&name).copied().unwrap_or(0));
                    *commands.entry(name).or_insert(0) += delta;
                }
                took.push(elapsed);
                least = least.min(found);
                most = most.max(found);
            }
        }
        self.clock.set(self.now);
        let (p50, p99) = percentiles(&mut took);
        let found = if least == most {
            format!("{least} {}", job.unit())
        } else {
            format!("{least}–{most} {}", job.unit())
        };
        let commands = per_request(&BTreeMap::new(), &commands, self.passes);
        Ok(SweepRow {
            size,
            job: job.name(self.due),
            calls: job.calls(),
            p50,
            p99,
            found,
            commands: if commands.is_empty() {
                "none".into()
            } else {
                commands
            },
        })
    }

    /// Once before a job's passes.
    async fn before(&mut self, job: Job) -> anyhow::Result<()> {
        self.clock.set(self.now);
        match job {
            Job::SweepEmpty | Job::SweepRows => {
                // Each series starts from no watermark (its first, unmeasured, pass sets it);
                // the empty window is two hours back, before the simulator's orders.
                if job == Job::SweepEmpty {
                    self.clock.set(self.now - TimeDelta::hours(2));
                }
                redis::cmd("DEL")
                    .arg(self.keys.sweep("watermark"))
                    .exec_async(&mut self.redis)
                    .await?;
            }
            // What the passes before counted (MSP calls, webhook attempts) is written first.
            Job::StatsIdle => self.recorder.write_counts().await,
            _ => {}
        }
        Ok(())
    }

    /// Before every pass, unmeasured: what makes the loaded cases' items due.
    async fn setup(&mut self, job: Job) -> anyhow::Result<()> {
        let now = self.now;
        match job {
            Job::ReconcileDue => {
                for id in &self.pending {
                    self.ctx.store.schedule_sync(id, now.timestamp()).await?;
                }
            }
            Job::DeliverDue => {
                // One change per checkout (requires_action and processing in turn), its event
                // written as a change's are: announced, then the compare-and-set with its
                // outbox, due now for webhooks.url.
                for (checkout, version) in &mut self.outboxed {
                    let mut next = checkout.clone();
                    next.status = if checkout.status == CheckoutStatus::RequiresAction {
                        CheckoutStatus::Processing
                    } else {
                        CheckoutStatus::RequiresAction
                    };
                    next.updated_at = now;
                    let events = events_between(checkout, &next, *version + 1, now);
                    self.ctx
                        .store
                        .announce_events(&EventOwner::from(&next.id), &events, Some(now))
                        .await?;
                    let outbox = Outbox {
                        events: &events,
                        deliver_at: Some(now),
                        announce_at: Some(now),
                        to_url: true,
                        activity: None,
                    };
                    match self
                        .ctx
                        .store
                        .compare_and_set(*version, &next, None, outbox)
                        .await?
                    {
                        CasReply::Applied { version: written } => {
                            *version = written;
                            *checkout = next;
                        }
                        other => bail!("the deliverer's checkout was not changed: {other:?}"),
                    }
                }
            }
            Job::StatsCounted => {
                for _ in 0..self.due {
                    self.recorder.transition(
                        CheckoutStatus::RequiresAction,
                        CheckoutStatus::Succeeded,
                        now,
                    );
                    self.recorder.webhook_attempt(true);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// One pass, timed; answers what it found ([`Job::unit`]).
    async fn pass(&mut self, job: Job) -> anyhow::Result<usize> {
        Ok(match job {
            Job::ReconcileIdle | Job::ReconcileDue => {
                gateway::flows::reconcile::pass(&self.ctx).await?
            }
            Job::SweepEmpty | Job::SweepRows => {
                let report = gateway::flows::sweep::sweep(&self.ctx, &self.sweep, "bench")
                    .await?
                    .context("another owner holds the sweep's lease")?;
                if let Some(error) = report.error {
                    bail!("the sweep stopped early: {error}");
                }
                report.rows as usize
            }
            Job::DeliverIdle | Job::DeliverDue => {
                let before = self.outside.received.load(Ordering::Relaxed);
                let tried = self.deliverer.pass().await?;
                let received = self.outside.received.load(Ordering::Relaxed) - before;
                if received != tried {
                    let mut errors = Vec::new();
                    for (checkout, _) in &self.outboxed {
                        let newest = self.ctx.store.checkout_events(&checkout.id).await?;
                        let attempt = newest
                            .first()
                            .and_then(|e| e.delivery.as_ref())
                            .and_then(|d| d.attempts.last().cloned());
                        errors.push(format!("{attempt:?}"));
                    }
                    bail!(
                        "the deliverer tried {tried} deliveries; the receiver got {received}; last attempts: {}",
                        errors.join("; ")
                    );
                }
                tried
            }
            Job::StatsIdle => {
                self.recorder.write_counts().await;
                0
            }
            Job::StatsCounted => {
                self.recorder.write_counts().await;
                2 * self.due
            }
        })
    }
}

/// Stores `checkout` with its first event (`Records::insert`): the record only, no listing
/// entries, so that the listing sees the same store with and without the background passes.
async fn insert(store: &dyn CheckoutStore, checkout: &Checkout) -> anyhow::Result<()> {
    let event = CheckoutEvent {
        at: checkout.created_at,
        from: None,
        to: CheckoutStatus::Created,
        source: EventSource::Create,
        psp_status: None,
    };
    match store.insert(checkout, &event).await? {
        InsertReply::Inserted => Ok(()),
        InsertReply::AlreadyExists => bail!("checkout {} exists already", checkout.id),
    }
}
