//! The faults, injected at random (from the run's seed) while the clients run: each lasts a few
//! seconds, and up to `--max-concurrent-faults` of different kinds overlap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use test_support::webhook::{Mode, Receiver};
use tokio::sync::Mutex as AsyncMutex;

use crate::client::lock;
use crate::procs::{Gateway, Redis};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    KillInstance,
    KillRedis,
    PauseRedis,
    MspSlow,
    Msp5xx,
    MspLoseCreateAnswer,
    MspLoseRefundAnswer,
    MspLoseCaptureCancelAnswer,
    DropNotifications,
    RepeatNotifications,
    ReorderNotifications,
    ReceiverFailing,
    ReceiverDown,
}

pub const ALL: [Fault; 13] = [
    Fault::KillInstance,
    Fault::KillRedis,
    Fault::PauseRedis,
    Fault::MspSlow,
    Fault::Msp5xx,
    Fault::MspLoseCreateAnswer,
    Fault::MspLoseRefundAnswer,
    Fault::MspLoseCaptureCancelAnswer,
    Fault::DropNotifications,
    Fault::RepeatNotifications,
    Fault::ReorderNotifications,
    Fault::ReceiverFailing,
    Fault::ReceiverDown,
];

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::KillInstance => "gateway instance SIGKILLed, restarted",
            Fault::KillRedis => "Redis SIGKILLed, restarted (AOF)",
            Fault::PauseRedis => "Redis paused (SIGSTOP/SIGCONT)",
            Fault::MspSlow => "MultiSafepay slow (1-6 s)",
            Fault::Msp5xx => "MultiSafepay 500 on create",
            Fault::MspLoseCreateAnswer => "MultiSafepay loses create answers (order made)",
            Fault::MspLoseRefundAnswer => "MultiSafepay loses refund answers (refund made)",
            Fault::MspLoseCaptureCancelAnswer => "MultiSafepay loses capture/cancel answers (done)",
            Fault::DropNotifications => "notifications dropped",
            Fault::RepeatNotifications => "notifications repeated",
            Fault::ReorderNotifications => "notifications reordered",
            Fault::ReceiverFailing => "webhook receiver answers 500",
            Fault::ReceiverDown => "webhook receiver down (refused)",
        }
    }

    fn is_receiver(self) -> bool {
        matches!(self, Fault::ReceiverFailing | Fault::ReceiverDown)
    }

    /// The simulator faults this sets, and what clears them.
    fn sim_patch(self, rng: &mut StdRng) -> Option<(Value, Value)> {
        Some(match self {
            Fault::MspSlow => (
                json!({"latency_ms": rng.random_range(1000..6000)}),
                json!({"latency_ms": 0}),
            ),
            Fault::Msp5xx => (
                json!({"create_failure": "http_500"}),
                json!({"create_failure": "none"}),
            ),
            Fault::MspLoseCreateAnswer => (
                json!({"create_failure": "timeout"}),
                json!({"create_failure": "none"}),
            ),
            Fault::MspLoseRefundAnswer => (
                json!({"refund_failure": "timeout"}),
                json!({"refund_failure": "none"}),
            ),
            Fault::MspLoseCaptureCancelAnswer => (
                json!({"capture_failure": "timeout", "cancel_failure": "timeout"}),
                json!({"capture_failure": "none", "cancel_failure": "none"}),
            ),
            Fault::DropNotifications => (
                json!({"drop_notifications": true}),
                json!({"drop_notifications": false}),
            ),
            Fault::RepeatNotifications => (
                json!({"duplicate_notifications": true}),
                json!({"duplicate_notifications": false}),
            ),
            Fault::ReorderNotifications => (
                json!({"reorder_notifications": true}),
                json!({"reorder_notifications": false}),
            ),
            _ => return None,
        })
    }

    /// Two faults that set the same simulator field cannot overlap.
    fn conflicts(self, other: Fault) -> bool {
        use Fault::*;
        self == other
            || matches!(
                (self, other),
                (Msp5xx, MspLoseCreateAnswer) | (MspLoseCreateAnswer, Msp5xx)
            )
            || (self.is_receiver() && other.is_receiver())
            || matches!(
                (self, other),
                (KillRedis, PauseRedis) | (PauseRedis, KillRedis)
            )
    }
}

/// What the faults act on.
pub struct World {
    pub gateways: Vec<AsyncMutex<Gateway>>,
    pub redis: AsyncMutex<Redis>,
    pub receiver: AsyncMutex<Receiver>,
    pub sim_url: String,
    pub http: reqwest::Client,
}

impl World {
    pub async fn sim_faults(&self, patch: &Value) -> anyhow::Result<()> {
        let resp = self
            .http
            .put(format!("{}/sim/faults", self.sim_url))
            .json(patch)
            .timeout(Duration::from_secs(5))
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "PUT /sim/faults: {}",
            resp.status()
        );
        Ok(())
    }

    /// Everything back to normal: no simulator faults, Redis running, every instance up, the
    /// receiver answering.
    pub async fn heal(&self) -> anyhow::Result<()> {
        let clear = json!({
            "latency_ms": 0, "notification_delay_ms": 0, "create_failure": "none",
            "refund_failure": "none", "capture_failure": "none", "cancel_failure": "none",
            "drop_notifications": false, "duplicate_notifications": false,
            "reorder_notifications": false, "stale_timestamps": false, "bad_signatures": false
        });
        self.sim_faults(&clear).await?;
        {
            let mut redis = self.redis.lock().await;
            if redis.is_up() {
                redis.resume()?;
            } else {
                redis.restart()?;
            }
        }
        for g in &self.gateways {
            let mut g = g.lock().await;
            if !g.is_up() || g.crashed() {
                g.restart()?;
            }
        }
        let mut r = self.receiver.lock().await;
        r.set_mode(Mode::Ok);
        r.up().await;
        Ok(())
    }
}

#[derive(Default)]
pub struct FaultLog {
    /// Faults injected, by kind.
    pub count: Mutex<BTreeMap<Fault, u64>>,
    /// Seconds each kind was on, summed.
    pub seconds: Mutex<BTreeMap<Fault, f64>>,
    /// Gateway instances found dead that nobody killed.
    pub crashes: Mutex<Vec<String>>,
}

/// Injects faults until `until`; then returns (the caller heals).
pub async fn inject(
    world: Arc<World>,
    log: Arc<FaultLog>,
    seed: u64,
    until: Instant,
    max_concurrent: usize,
    receiver_spacing: Duration,
    kinds: Vec<Fault>,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17);
    let active: Arc<Mutex<Vec<Fault>>> = Arc::default();
    let mut last_receiver_end: Option<Instant> = None;
    let receiver_ends: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut tasks = Vec::new();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1000..6000))).await;
        // Crashes: an instance that died by itself is a finding; restart it and note it.
        for g in &world.gateways {
            let mut g = g.lock().await;
            if g.crashed() {
                lock(&log.crashes).push(format!("gateway {} exited by itself", g.index));
                let _ = g.restart();
            }
        }
        if Instant::now() >= until {
            break;
        }
        if let Some(end) = *lock(&receiver_ends) {
            last_receiver_end = Some(end);
        }
        let fault = kinds[rng.random_range(0..kinds.len())];
        {
            let active = lock(&active);
            if active.len() >= max_concurrent || active.iter().any(|a| a.conflicts(fault)) {
                continue;
            }
        }
        if fault.is_receiver() {
            // A webhook that failed is retried 1 min, then 5 min later: receiver outages far
            // enough apart that the run settles in minutes, not hours.
            let busy = lock(&active).iter().any(|a| a.is_receiver());
            if busy || last_receiver_end.is_some_and(|e| e.elapsed() < receiver_spacing) {
                continue;
            }
        }
        let secs = match fault {
            Fault::KillInstance | Fault::KillRedis => rng.random_range(1.0..6.0),
            Fault::PauseRedis => rng.random_range(1.0..8.0),
            Fault::ReceiverFailing | Fault::ReceiverDown => rng.random_range(3.0..20.0),
            _ => rng.random_range(2.0..15.0),
        };
        let duration = Duration::from_secs_f64(secs);
        lock(&active).push(fault);
        *lock(&log.count).entry(fault).or_default() += 1;
        *lock(&log.seconds).entry(fault).or_default() += secs;
        let world = world.clone();
        let active = active.clone();
        let receiver_ends = receiver_ends.clone();
        let instance = rng.random_range(0..world.gateways.len());
        let patch = fault.sim_patch(&mut rng);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = apply(&world, fault, duration, instance, patch).await {
                eprintln!("fault {}: {e:#}", fault.name());
            }
            if fault.is_receiver() {
                *lock(&receiver_ends) = Some(Instant::now());
            }
            lock(&active).retain(|a| *a != fault);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn apply(
    world: &World,
    fault: Fault,
    duration: Duration,
    instance: usize,
    patch: Option<(Value, Value)>,
) -> anyhow::Result<()> {
    match fault {
        Fault::KillInstance => {
            world.gateways[instance].lock().await.kill();
            tokio::time::sleep(duration).await;
            world.gateways[instance].lock().await.restart()?;
        }
        Fault::KillRedis => {
            world.redis.lock().await.kill();
            tokio::time::sleep(duration).await;
            // Restarting blocks while the AOF loads.
            let redis = &world.redis;
            let mut r = redis.lock().await;
            tokio::task::block_in_place(|| r.restart())?;
        }
        Fault::PauseRedis => {
            world.redis.lock().await.pause()?;
            tokio::time::sleep(duration).await;
            world.redis.lock().await.resume()?;
        }
        Fault::ReceiverFailing => {
            world.receiver.lock().await.set_mode(Mode::Status(500));
            tokio::time::sleep(duration).await;
            world.receiver.lock().await.set_mode(Mode::Ok);
        }
        Fault::ReceiverDown => {
            world.receiver.lock().await.stop().await;
            tokio::time::sleep(duration).await;
            world.receiver.lock().await.up().await;
        }
        _ => {
            let (on, off) = patch.unwrap_or((json!({}), json!({})));
            world.sim_faults(&on).await?;
            tokio::time::sleep(duration).await;
            world.sim_faults(&off).await?;
        }
    }
    Ok(())
}
