//! The chaos soak: money and events conserved under every fault at once.
//!
//! ```text
//! cargo build --release --bin checkout-gateway
//! cargo run --release -p soak -- --minutes 30 [--seed N] [--instances 2] [--clients 8]
//! ```
//!
//! It starts, all on this machine and all its own: `redis-server` with AOF in a temporary
//! directory, two or more `checkout-gateway serve` instances on it (behind a TCP balancer of
//! its own), `checkout-gateway simulator`, and a webhook receiver in this process. Clients then
//! make checkouts (frictionless, 3-D Secure through the simulator's bank page, manual capture,
//! saved cards, declined cards), refund, capture and cancel them, each call retried with its
//! own `Idempotency-Key` as the README tells merchants; meanwhile faults are injected at random
//! ([`faults`]). After `--minutes` the faults stop, every process is brought back, the clients
//! finish, and the system is given `--settle-timeout-s` to settle: the checks ([`check`]) are
//! run until they all hold (the settle time) or the time is up. Then one fresh request of each
//! kind must succeed at once. It prints the figures and every violation, removes what it
//! started (also on Ctrl-C) and exits 0 only when every invariant held.
//!
//! - [`procs`]: the processes and the balancer.
//! - [`client`]: the merchant's retrying calls and the failure counts.
//! - [`scenarios`]: what the clients do, and the ledger of what they were answered.
//! - [`faults`]: the faults and their injector.
//! - [`check`]: the invariants.

mod check;
mod client;
mod faults;
mod procs;
mod scenarios;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use test_support::webhook::Receiver;
use tokio::sync::Mutex as AsyncMutex;

use crate::check::{Checker, INVARIANTS};
use crate::client::{Phase, PhaseCell, Stats, lock};
use crate::faults::{Fault, FaultLog, World};
use crate::procs::{Balancer, Gateway, GatewayConfig, Redis, Simulator};
use crate::scenarios::{Ctx, Ledger, SCENARIOS};

const MSP_KEY: &str = "soak-site-api-key-0001";
const MERCHANT_KEY: &str = "soak-merchant-key-0123456789";
const WEBHOOK_SECRET: &str = "soak-webhook-secret-0123456789abcdef";

#[derive(Parser, Debug)]
#[command(
    about = "Chaos soak of checkout-gateway: every fault at once, then every invariant checked"
)]
struct Args {
    /// How long faults are injected (fractions allowed: 0.5 is 30 s).
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// The random seed (faults, scenarios, amounts); printed, so that a run can be repeated.
    #[arg(long)]
    seed: Option<u64>,
    /// Gateway instances on the one Redis.
    #[arg(long, default_value_t = 2)]
    instances: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Faults of different kinds on at once, at most.
    #[arg(long, default_value_t = 3)]
    max_concurrent_faults: usize,
    /// Only these faults (names as in the report, comma-separated substrings); all by default.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// Seconds between the end of one webhook receiver outage and the start of the next: a
    /// failed delivery is retried after 1 min, then 5 min, so outages close together make the
    /// settle time a matter of the retry schedule, not of the system.
    #[arg(long, default_value_t = 360)]
    receiver_fault_spacing_s: u64,
    /// How long the system may take to settle after the faults stop.
    #[arg(long, default_value_t = 900)]
    settle_timeout_s: u64,
    /// How long one client operation keeps retrying.
    #[arg(long, default_value_t = 600)]
    patience_s: u64,
    /// The `checkout-gateway` binary (default: next to this one).
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// Keep the run's directory (logs, AOF) instead of removing it.
    #[arg(long)]
    keep_dir: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    println!("soak: seed {seed} (repeat with --seed {seed})");
    let dir = std::env::temp_dir().join(format!("soak-{seed}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(&args, seed, &dir) => r,
            _ = tokio::signal::ctrl_c() => {
                println!("soak: interrupted (Ctrl-C); stopping everything it started");
                Ok(false)
            }
            _ = terminated() => {
                println!("soak: terminated (SIGTERM); stopping everything it started");
                Ok(false)
            }
        }
    });
    // Dropping the runtime drops every process handle still held by a task.
    runtime.shutdown_timeout(Duration::from_secs(5));
    if args.keep_dir {
        println!("soak: the run's directory is kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok(true) => Ok(()),
        Ok(false) => std::process::exit(1),
        Err(e) => Err(e),
    }
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

fn gateway_bin(args: &Args) -> anyhow::Result<PathBuf> {
    let bin = match &args.gateway_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the harness's directory")?
            .join("checkout-gateway"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --bin checkout-gateway) or pass --gateway-bin",
            bin.display()
        );
    }
    Ok(bin)
}

async fn run(args: &Args, seed: u64, dir: &std::path::Path) -> anyhow::Result<bool> {
    let bin = gateway_bin(args)?;
    let kinds: Vec<Fault> = faults::ALL
        .into_iter()
        .filter(|f| {
            args.faults.is_empty() || args.faults.iter().any(|n| f.name().contains(n.as_str()))
        })
        .collect();
    anyhow::ensure!(
        !kinds.is_empty(),
        "no fault matches --faults {:?}",
        args.faults
    );
    anyhow::ensure!(args.instances >= 1, "--instances must be at least 1");
    let started = Instant::now();

    let redis = tokio::task::block_in_place(|| Redis::start(dir))?;
    let sim = tokio::task::block_in_place(|| Simulator::start(&bin, MSP_KEY, dir))?;
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    let ports: Vec<u16> = (0..args.instances)
        .map(|_| procs::free_port())
        .collect::<Result<_, _>>()?;
    let balancer = Balancer::start(ports.clone()).await?;
    let config = GatewayConfig {
        bin: bin.clone(),
        redis_url: redis.url(),
        msp_base_url: format!("{}/v1/json", sim.url()),
        msp_key: MSP_KEY.into(),
        merchant_key: MERCHANT_KEY.into(),
        public_url: balancer.url(),
        webhook_url: receiver.url(),
        webhook_secret: WEBHOOK_SECRET.into(),
        dir: dir.to_path_buf(),
    };
    let mut gateways = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let mut g = Gateway::start(i, *port, &config)?;
        tokio::task::block_in_place(|| g.wait_live(Duration::from_secs(60)))?;
        gateways.push(AsyncMutex::new(g));
    }
    println!(
        "soak: {} gateway instances behind {}, redis-server (AOF) on {}, simulator on {}, webhook receiver {}; files in {}",
        args.instances,
        balancer.url(),
        redis.port,
        sim.url(),
        receiver.url(),
        dir.display()
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let ctx = Arc::new(Ctx {
        http: http.clone(),
        browser: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        base: balancer.url(),
        key: MERCHANT_KEY.into(),
        stats: Stats::default(),
        phase: PhaseCell::new(),
        ledger: Ledger::default(),
        patience: Duration::from_secs(args.patience_s),
        run: format!("soak{seed}"),
        sim_url: sim.url(),
    });
    let world = Arc::new(World {
        gateways,
        redis: AsyncMutex::new(redis),
        receiver: AsyncMutex::new(receiver),
        sim_url: sim.url(),
        http: http.clone(),
    });
    let fault_log = Arc::new(FaultLog::default());

    // Clients.
    let mut clients = Vec::new();
    for i in 0..args.clients {
        let ctx = ctx.clone();
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64 + 1));
        clients.push(tokio::spawn(async move {
            while scenarios::keep_going(&ctx) {
                let s = SCENARIOS[pick(&mut rng)];
                scenarios::run(&ctx, s, &mut rng, false).await;
            }
        }));
    }
    // Progress.
    let progress = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            let mut before: BTreeMap<(Phase, &'static str, String), u64> = BTreeMap::new();
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let n = lock(&ctx.ledger.checkouts).len();
                let now = lock(&ctx.stats.failures).clone();
                let failed: u64 = now.values().sum();
                let mut recent: Vec<(u64, String)> = now
                    .iter()
                    .map(|(k, v)| (v - before.get(k).unwrap_or(&0), format!("{}: {}", k.1, k.2)))
                    .filter(|(d, _)| *d > 0)
                    .collect();
                recent.sort_by_key(|r| std::cmp::Reverse(r.0));
                recent.truncate(3);
                before = now;
                println!(
                    "soak: {:>5.0} s: {n} scenarios done, {failed} failed attempts so far; lately {recent:?}",
                    t0.elapsed().as_secs_f64()
                );
            }
        })
    };
    // Faults.
    let until = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    faults::inject(
        world.clone(),
        fault_log.clone(),
        seed,
        until,
        args.max_concurrent_faults.max(1),
        Duration::from_secs(args.receiver_fault_spacing_s),
        kinds,
    )
    .await;
    let faults_end = Instant::now();
    ctx.phase.set(Phase::Settle);
    world.heal().await.context("healing after the faults")?;
    println!(
        "soak: faults stopped after {:.0} s; everything is back up; settling",
        faults_end.duration_since(started).as_secs_f64()
    );
    for c in clients {
        let _ = c.await;
    }
    println!(
        "soak: clients finished {:.0} s after the faults",
        faults_end.elapsed().as_secs_f64()
    );

    let checker = Checker {
        ctx: &ctx,
        sim_url: &world.sim_url,
        msp_key: MSP_KEY,
        http: &http,
    };
    let settle_deadline = faults_end + Duration::from_secs(args.settle_timeout_s);
    let settled = settle(&checker, &world, settle_deadline).await;
    let settle_s = settled.then(|| faults_end.elapsed().as_secs_f64());
    match settle_s {
        Some(s) => println!("soak: settled {s:.1} s after the faults stopped"),
        None => println!("soak: NOT settled within {} s", args.settle_timeout_s),
    }

    // Fresh requests: one of each kind, no retry allowed.
    ctx.phase.set(Phase::Fresh);
    let mut fresh_failed = Vec::new();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xf7e5);
    for s in SCENARIOS {
        let before = fresh_failures(&ctx);
        let ok = scenarios::run(&ctx, s, &mut rng, true).await;
        if !ok || fresh_failures(&ctx) > before {
            fresh_failed.push(s);
        }
    }
    // Their events and refunds settle too (only theirs are waited for: what did not settle
    // before is reported as it is).
    let fresh: HashSet<String> = lock(&ctx.ledger.checkouts)
        .iter()
        .filter(|r| r.fresh)
        .filter_map(|r| r.id.clone())
        .collect();
    let fresh_deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ack = acknowledged(&world).await;
        let f = checker.run(&ack, Some(&fresh)).await;
        if f.unsettled.is_empty() || Instant::now() > fresh_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let acknowledged = acknowledged(&world).await;
    let mut findings = checker.run(&acknowledged, None).await;
    if !fresh_failed.is_empty() {
        findings
            .violations
            .entry(9)
            .or_default()
            .push(format!("failed: {fresh_failed:?}"));
    }
    progress.abort();

    report(
        &ctx,
        &fault_log,
        &findings,
        faults_end.duration_since(started),
        settle_s,
        args,
        seed,
        &bin,
    );
    drop(balancer);
    Ok(findings.all_held() && lock(&fault_log.crashes).is_empty())
}

fn fresh_failures(ctx: &Ctx) -> u64 {
    lock(&ctx.stats.failures)
        .iter()
        .filter(|((p, _, _), _)| *p == Phase::Fresh)
        .map(|(_, n)| n)
        .sum()
}

/// Scenario weights: frictionless 3, 3-D Secure 3, manual capture 2, cancel unpaid 1, saved
/// card 2, declined 1.
fn pick(rng: &mut StdRng) -> usize {
    const W: [u32; 6] = [3, 3, 2, 1, 2, 1];
    let mut n = rng.random_range(0..W.iter().sum::<u32>());
    for (i, w) in W.iter().enumerate() {
        if n < *w {
            return i;
        }
        n -= w;
    }
    0
}

async fn acknowledged(world: &World) -> HashSet<String> {
    world
        .receiver
        .lock()
        .await
        .acknowledged()
        .into_iter()
        .filter(|r| r.verified)
        .filter_map(|r| r.event_id)
        .collect()
}

/// Checks until everything holds or `deadline`; true when it did.
async fn settle(checker: &Checker<'_>, world: &World, deadline: Instant) -> bool {
    let mut only: Option<HashSet<String>> = None;
    loop {
        let pass = Instant::now();
        let ack = acknowledged(world).await;
        let f = checker.run(&ack, only.as_ref()).await;
        // What each pass found, and how long it took: a full pass over a long run's checkouts
        // takes minutes, which is part of the settle time this reports.
        let open: Vec<String> = f
            .violations
            .iter()
            .map(|(i, v)| format!("invariant {}: {}", i + 1, v.len()))
            .collect();
        println!(
            "soak: settle pass over {} took {:.0} s: {}",
            only.as_ref()
                .map_or("every checkout".to_owned(), |o| format!(
                    "{} checkouts",
                    o.len()
                )),
            pass.elapsed().as_secs_f64(),
            if open.is_empty() {
                "all held".to_owned()
            } else {
                open.join(", ")
            }
        );
        if f.all_held() {
            if only.is_none() {
                return true;
            }
            // The ones left hold now: one full pass to be sure.
            only = None;
            continue;
        }
        if Instant::now() > deadline {
            return false;
        }
        only = Some(f.unsettled.clone()).filter(|u| !u.is_empty());
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    ctx: &Ctx,
    faults: &FaultLog,
    findings: &check::Findings,
    fault_time: Duration,
    settle_s: Option<f64>,
    args: &Args,
    seed: u64,
    bin: &std::path::Path,
) {
    println!();
    println!("=== soak report ===");
    println!(
        "seed {seed}; {} instances, {} clients; gateway {}",
        args.instances,
        args.clients,
        bin.display()
    );
    println!(
        "faults injected for {:.1} min",
        fault_time.as_secs_f64() / 60.0
    );
    let recs = lock(&ctx.ledger.checkouts);
    let mut by_scenario: BTreeMap<&str, u64> = BTreeMap::new();
    for r in recs.iter() {
        *by_scenario.entry(r.scenario).or_default() += 1;
    }
    println!("\nscenarios (checkouts) by kind:");
    for (k, n) in &by_scenario {
        println!("  {k:<24} {n}");
    }
    println!("\noperations by kind (attempts):");
    let attempts = lock(&ctx.stats.attempts);
    for (k, n) in lock(&ctx.stats.operations).iter() {
        println!(
            "  {k:<28} {n:>7}  ({} attempts)",
            attempts.get(k).unwrap_or(&0)
        );
    }
    println!("\nfaults by kind (count, seconds on):");
    let secs = lock(&faults.seconds);
    for (f, n) in lock(&faults.count).iter() {
        println!(
            "  {:<50} {n:>4}  {:>7.0} s",
            f.name(),
            secs.get(f).unwrap_or(&0.0)
        );
    }
    for phase in [Phase::Faults, Phase::Settle, Phase::Fresh] {
        println!(
            "\nfailed attempts {} (retried unless the fresh requests), by kind:",
            phase.name()
        );
        let mut any = false;
        for ((p, kind, why), n) in lock(&ctx.stats.failures).iter() {
            if *p == phase {
                println!("  {kind:<28} {why:<40} {n}");
                any = true;
            }
        }
        if !any {
            println!("  none");
        }
    }
    println!("\noperations that ended refused (a final 4xx), by kind:");
    for ((kind, code), n) in lock(&ctx.stats.refusals).iter() {
        println!("  {kind:<28} {code:<40} {n}");
    }
    let notes: Vec<String> = recs
        .iter()
        .flat_map(|r| {
            r.notes
                .iter()
                .map(move |n| format!("{} {:?}: {n}", r.scenario, r.id))
        })
        .collect();
    if !notes.is_empty() {
        println!(
            "\nclient steps that did not succeed ({}; first 20):",
            notes.len()
        );
        for n in notes.iter().take(20) {
            println!("  {n}");
        }
    }
    match settle_s {
        Some(s) => println!("\nsettle time: {s:.1} s after the faults stopped"),
        None => println!(
            "\nsettle time: not settled within {} s",
            args.settle_timeout_s
        ),
    }
    let crashes = lock(&faults.crashes);
    println!("\ninvariants:");
    for (i, name) in INVARIANTS.iter().enumerate() {
        let held = findings.held(i);
        println!("  [{}] {name}", if held { "held" } else { "VIOLATED" });
        if let Some(v) = findings.violations.get(&i) {
            println!("        {} violations; first ones:", v.len());
            for x in v.iter().take(10) {
                println!("        - {x}");
            }
        }
    }
    println!(
        "  [{}] no gateway instance exited by itself{}",
        if crashes.is_empty() {
            "held"
        } else {
            "VIOLATED"
        },
        if crashes.is_empty() {
            String::new()
        } else {
            format!(": {crashes:?}")
        }
    );
}
