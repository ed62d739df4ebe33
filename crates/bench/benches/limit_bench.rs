//! How close the gateway gets to the least work a checkout allows (issue "Close to the limit"):
//! Redis, the simulator, the gateway and `limit-baseline` (crates/bench/limit-baseline) as **separate
//! processes**, driven by `wrk`, side by side in one run.
//!
//! ```text
//! cargo bench -p bench --bench limit_bench -- [--duration-s 10] [--connections 32] [--rounds 3] [--smoke]
//! ```
//!
//! It builds the release binary and limit-baseline, starts its own `redis-server` (no
//! persistence), `checkout-gateway simulator`, `checkout-gateway serve` (logs at `info` to a file,
//! as in production; the simulator's signed notification for every order goes to it) and
//! limit-baseline on the same simulator, then measures, each after a warm-up:
//!
//! - throughput at `--connections` of the gateway and of limit-baseline (frictionless card), and
//!   their ratio; and of the gateway with logs at `warn` (what logging at `info` costs); the
//!   three are measured in turns, `--rounds` rounds, each round starting with another of them
//!   and each run on an emptied Redis and a fresh simulator, and each figure is the mean of
//!   its rounds;
//! - the CPU each process used per checkout over those runs (`/proc/PID/stat`, and wrk's own
//!   once it exits): the gateway, the simulator, Redis and wrk against limit-baseline, the
//!   simulator, Redis and wrk, and the gateway at `info` against `warn` (steadier than
//!   throughput on a shared machine), and for each run how many cores the four kept busy;
//! - median latency at 1 connection of the simulator alone (`POST /v1/json/orders`), the gateway
//!   and limit-baseline, each on a fresh simulator, and what each adds over the simulator;
//! - Redis commands clients sent (round trips, or fewer when sent together) per operation,
//!   counted with `MONITOR` (commands run inside Lua scripts are not round trips and not
//!   counted): frictionless create, 3-D Secure create, a notification that changes the status, a
//!   duplicate one, the pay page. Each is counted with its scripts loaded: the first use of a
//!   script after a Redis start loads it, one more round trip once per Redis process, so one
//!   pay page is visited before counting, as the creates before theirs;
//! - Redis memory per pending 3-D Secure checkout (`MEMORY USAGE` of all its keys, less MSP's
//!   form HTML) and the gateway's idle resident memory.
//!
//! `--smoke` runs everything for a second with tiny batches: a check that the harness works, not
//! figures. Requires `wrk` and `redis-server` (Debian packages).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use test_support::checkout::CheckoutRequest;
use test_support::msp::sign_notification;
use test_support::redis_server::TestRedis;

#[path = "common/processes.rs"]
mod processes;
use processes::{
    FRICTIONLESS, MERCHANT_KEY, MSP_KEY, Proc, build_gateway, cargo, free_port, gateway_command,
    start_simulator, target_dir, wait_up, workspace_root,
};

const THREE_DS: &str = "4111111111111111";

#[derive(Parser, Debug)]
#[command(about = "The gateway next to limit-baseline, as separate processes, under wrk")]
struct Args {
    /// Passed by `cargo bench` to every harness; nothing to do with it.
    #[arg(long = "bench", hide = true)]
    _bench: bool,
    /// Measured seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Unmeasured seconds before each measured run.
    #[arg(long, default_value_t = 2)]
    warmup_s: u64,
    /// Connections for the throughput runs.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Rounds of the three throughput runs (gateway at info, at warn, limit-baseline).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// A one-second run of everything with tiny batches: checks the harness, not the figures.
    #[arg(long)]
    smoke: bool,
}

fn build() -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let gateway = build_gateway()?;
    let manifest = workspace_root().join("crates/bench/limit-baseline/Cargo.toml");
    if !manifest.exists() {
        eprintln!(
            "limit-baseline not found at {}: its runs are skipped",
            manifest.display()
        );
        return Ok((gateway, None));
    }
    let baseline_target = target_dir().join("limit-baseline");
    let status = Command::new(cargo())
        .arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&baseline_target)
        .status()?;
    if !status.success() {
        bail!("building limit-baseline failed");
    }
    Ok((
        gateway,
        Some(baseline_target.join("release/limit-baseline")),
    ))
}

/// `checkout-gateway serve` on `port`, logging at `level` to `log`. With `public_url` set to an
/// address where nothing listens, the simulator's notifications do not reach it.
fn start_gateway(
    bin: &Path,
    port: u16,
    redis_url: &str,
    sim_url: &str,
    public_url: Option<&str>,
    log: &Path,
    level: &str,
) -> anyhow::Result<Proc> {
    let mut cmd = gateway_command(bin, port, redis_url, sim_url, level, log)?;
    cmd.stderr(Stdio::null());
    if let Some(url) = public_url {
        cmd.env("GATEWAY__PUBLIC_URL", url);
    }
    Ok(Proc {
        child: cmd.spawn()?,
    })
}

/// Stops `old` and starts a simulator in its place, on the same port, once it answers. Every
/// measured run gets a fresh one, as every throughput run gets an emptied Redis: the simulator
/// keeps every order it is sent, and a run during which its tables doubled paid for it (in one
/// run, its CPU per checkout 40–70 % higher and fewer cores kept busy; README).
async fn fresh_simulator(
    old: Proc,
    bin: &Path,
    port: u16,
    client: &reqwest::Client,
) -> anyhow::Result<Proc> {
    drop(old);
    let sim = start_simulator(bin, port)?;
    wait_up(client, &format!("http://127.0.0.1:{port}")).await?;
    Ok(sim)
}

/// What one wrk run reported.
#[derive(Debug, Clone, Copy)]
struct WrkRun {
    requests: u64,
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

impl WrkRun {
    /// The runs' mean rate and latencies; their requests and errors added up.
    fn mean(runs: &[WrkRun]) -> WrkRun {
        let n = runs.len().max(1) as f64;
        let avg = |f: fn(&WrkRun) -> f64| runs.iter().map(f).sum::<f64>() / n;
        WrkRun {
            requests: runs.iter().map(|r| r.requests).sum(),
            requests_per_s: avg(|r| r.requests_per_s),
            p50_ms: avg(|r| r.p50_ms),
            p99_ms: avg(|r| r.p99_ms),
            non_2xx: runs.iter().map(|r| r.non_2xx).sum(),
        }
    }
}

/// The three throughput runs of a round.
#[derive(Clone, Copy)]
enum Run {
    Info,
    Warn,
    Baseline,
}

fn millis(text: &str) -> Option<f64> {
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| text.split_at(i))?;
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn wrk(
    script: &Path,
    url: &str,
    connections: u32,
    seconds: u64,
    run_id: &str,
) -> anyhow::Result<WrkRun> {
    let threads = connections.clamp(1, 2);
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .arg("--")
        .arg(run_id)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let find = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix).map(|r| r.trim().to_owned()))
    };
    let requests_per_s = find("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("wrk printed no Requests/sec:\n{text}"))?;
    let p50_ms = find("50%").and_then(|v| millis(&v)).unwrap_or(f64::NAN);
    let p99_ms = find("99%").and_then(|v| millis(&v)).unwrap_or(f64::NAN);
    let non_2xx = find("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // `  1234 requests in 10.00s, 1.2MB read`
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or(0);
    Ok(WrkRun {
        requests,
        requests_per_s,
        p50_ms,
        p99_ms,
        non_2xx,
    })
}

/// wrk scripts: the merchant's checkout POST (the same body for the gateway and the baseline:
/// each makes its own order id) and the simulator's order POST (the order id must be unique:
/// run id, wrk thread and a counter, never `math.random`).
fn write_scripts(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let body = CheckoutRequest::new(FRICTIONLESS).body().to_string();
    let checkout = dir.join("checkout.lua");
    std::fs::write(
        &checkout,
        format!(
            "wrk.method = \"POST\"\nwrk.body = [==[{body}]==]\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer {MERCHANT_KEY}\"\n"
        ),
    )?;
    let order = json!({
        "type": "direct", "gateway": "CREDITCARD", "order_id": "ORDER_ID", "currency": "EUR",
        "amount": 3495, "description": "Benchmark order",
        "payment_options": {"notification_url": "http://127.0.0.1:9/n", "notification_method": "POST",
            "redirect_url": "https://shop.example/ok", "cancel_url": "https://shop.example/c"},
        "customer": {"locale": "nl_NL", "ip_address": "203.0.113.7", "email": "jo@example.com", "country": "NL"},
        "gateway_info": {"card_number": FRICTIONLESS, "card_holder_name": "Jo Doe",
            "card_expiry_date": "3012", "card_cvc": "1234"}
    })
    .to_string()
    .replace("ORDER_ID", "%s-%d-%d");
    let orders = dir.join("orders.lua");
    std::fs::write(
        &orders,
        format!(
            r#"local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  run = args[1]
  n = 0
end
local template = [==[{order}]==]
function request()
  n = n + 1
  local body = string.format(template, run, tid, n)
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json", ["api_key"] = "{MSP_KEY}"}}, body)
end
"#
        ),
    )?;
    Ok((checkout, orders))
}

/// Counts the commands clients send to Redis while `work` runs (`MONITOR`; lines from Lua are
/// inside a script, not round trips).
async fn client_commands<F, Fut, T>(
    redis_url: &str,
    dump: &Path,
    work: F,
) -> anyhow::Result<((u64, u64), T)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let port = url::Url::parse(redis_url)?
        .port()
        .context("redis url without port")?;
    let mut monitor = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .context("redis-cli monitor")?;
    let stdout = monitor.stdout.take().context("monitor stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // MONITOR answers OK first; wait for it so that nothing before is counted.
    let first = rx.recv_timeout(Duration::from_secs(5))?;
    if first != "OK" {
        bail!("redis-cli monitor said {first}");
    }
    let result = work().await?;
    // Background work triggered by the requests (an unschedule after the answer) settles.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = monitor.kill();
    let _ = monitor.wait();
    // A MONITOR line: `1700000000.123456 [0 127.0.0.1:53124] "EVALSHA" …`, stamped when Redis
    // starts running it; `[0 lua]` lines are the commands of the script running then. Commands
    // a client sent together (a pipeline, or concurrent commands on one multiplexed connection)
    // run back to back: each starts within microseconds of the end of the one before (its
    // last line, script lines included). A command that waited for the answer to the one
    // before starts a round trip plus the gateway's own work later (here >= 80 us).
    let mut commands = 0u64;
    let mut round_trips = 0u64;
    let mut last_client: Option<String> = None;
    let mut last_at = f64::NEG_INFINITY;
    let lines: Vec<String> = rx.try_iter().collect();
    // Kept for reading: which commands an operation sent.
    std::fs::write(dump, lines.join("\n"))?;
    for line in lines {
        let mut parts = line.splitn(3, ' ');
        let (Some(ts), Some(_db), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(at) = ts.parse::<f64>() else {
            continue;
        };
        if rest.starts_with("lua]") {
            last_at = at;
            continue;
        }
        if line.contains("\"PING\"") {
            continue;
        }
        let client = rest.split(']').next().unwrap_or_default().to_owned();
        commands += 1;
        let together = last_client.as_deref() == Some(client.as_str()) && at - last_at < 0.000_02;
        if !together {
            round_trips += 1;
        }
        last_client = Some(client);
        last_at = at;
    }
    let count = (commands, round_trips);
    Ok((count, result))
}

struct Fixture {
    client: reqwest::Client,
    gateway: String,
    redis_url: String,
    /// Where each operation's MONITOR lines are written (`monitor-<label>.log`).
    monitor_dir: PathBuf,
}

impl Fixture {
    async fn create(&self, card: &str) -> anyhow::Result<Value> {
        let res = self
            .client
            .post(format!("{}/v1/checkouts", self.gateway))
            .bearer_auth(MERCHANT_KEY)
            .json(&CheckoutRequest::new(card).body())
            .send()
            .await?;
        if res.status() != 201 {
            bail!("create answered {}", res.status());
        }
        Ok(res.json().await?)
    }

    async fn notify(&self, order: &Value) -> anyhow::Result<()> {
        let body = serde_json::to_vec(order)?;
        let now = chrono::Utc::now().timestamp();
        let res = self
            .client
            // Without `timestamp` the gateway acknowledges and ignores the notification (MSP's
            // rule), which would count nothing.
            .post(format!(
                "{}/notifications/multisafepay?transactionid={}&timestamp={now}",
                self.gateway,
                order["order_id"].as_str().unwrap_or_default()
            ))
            .header("Auth", sign_notification(MSP_KEY, now, &body))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        if res.status() != 200 {
            bail!("notification answered {}", res.status());
        }
        Ok(())
    }

    /// A shopper's visit to a pay link: a pending session sends the browser on to MSP (303) or
    /// serves its form (200).
    async fn pay_page(&self, link: &str) -> anyhow::Result<()> {
        let res = self.client.get(link).send().await?;
        if !res.status().is_redirection() && !res.status().is_success() {
            bail!("pay page answered {}", res.status());
        }
        Ok(())
    }

    /// Mean client commands and round trips per call of `op` over `n` calls.
    async fn per_op<F, Fut>(&self, label: &str, n: u32, op: F) -> anyhow::Result<(f64, f64)>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let dump = self.monitor_dir.join(format!("monitor-{label}.log"));
        let ((commands, round_trips), ()) = client_commands(&self.redis_url, &dump, || async {
            for _ in 0..n {
                op().await?;
            }
            Ok(())
        })
        .await?;
        Ok((
            commands as f64 / f64::from(n),
            round_trips as f64 / f64::from(n),
        ))
    }
}

/// A completed MSP order for checkout `id`, as MSP's notification body carries it.
fn completed_order(id: &str) -> Value {
    json!({
        "order_id": id, "transaction_id": 4242, "status": "completed",
        "financial_status": "completed", "amount": 3495, "currency": "EUR",
        "payment_details": {"type": "VISA", "last4": "1111"}
    })
}

/// What the keys of a Redis take (`MEMORY USAGE`), in all and by kind of key.
struct Memory {
    total: u64,
    /// The bytes of MSP's 3-D Secure form HTML inside the pay sessions (not ours to shrink).
    form_html: u64,
    by_kind: Vec<(String, u64)>,
}

/// The kind of a key: its last part, or the part after the prefix for the shared ones
/// (`cgw:{chk_…}:checkout` -> `checkout`, `cgw:pay:…` -> `pay`, `cgw:{tl:…}:…` -> `listing index`).
fn kind_of(key: &str) -> String {
    if key.contains("{tl:") {
        return "listing index".into();
    }
    if key.contains("{chk_") {
        return key.rsplit(':').next().unwrap_or_default().to_owned();
    }
    key.split(':').nth(1).unwrap_or_default().to_owned()
}

async fn redis_memory(redis_url: &str) -> anyhow::Result<Memory> {
    let client = redis::Client::open(redis_url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut con).await?;
    let mut memory = Memory {
        total: 0,
        form_html: 0,
        by_kind: Vec::new(),
    };
    for key in &keys {
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut con)
            .await?;
        let bytes = bytes.unwrap_or(0);
        memory.total += bytes;
        let kind = kind_of(key);
        if kind == "pay" {
            let raw: Option<String> = redis::cmd("GET").arg(key).query_async(&mut con).await?;
            let session: Value = serde_json::from_str(raw.as_deref().unwrap_or("{}"))?;
            memory.form_html += session["form_html"].as_str().map_or(0, |html| {
                serde_json::to_string(html).map_or(0, |s| s.len() as u64)
            });
        }
        match memory.by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, total)) => *total += bytes,
            None => memory.by_kind.push((kind, bytes)),
        }
    }
    memory
        .by_kind
        .sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    Ok(memory)
}

/// The sum of fields `first` and `first + 1` of a `/proc/…/stat` file, in clock ticks (fields
/// counted from 1 as in `proc(5)`, after the parenthesised command name, which may hold spaces).
fn stat_ticks(path: &str, first: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // After the name comes field 3 (state).
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let a: u64 = fields.nth(first - 3)?.parse().ok()?;
    let b: u64 = fields.next()?.parse().ok()?;
    Some(a + b)
}

/// CPU time (user + system) `pid` has used so far (utime and stime, fields 14 and 15).
fn cpu_ticks(pid: u32) -> Option<u64> {
    stat_ticks(&format!("/proc/{pid}/stat"), 14)
}

/// CPU time (user + system) of this process' children that it has waited for (cutime and
/// cstime, fields 16 and 17): each wrk run's own, once it has exited.
fn waited_children_ticks() -> Option<u64> {
    stat_ticks("/proc/self/stat", 16)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux almost everywhere).
fn ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Empties the harness' own Redis at `url` (`FLUSHALL`; its scripts stay loaded).
fn flush(url: &str) -> anyhow::Result<()> {
    let out = Command::new("redis-cli")
        .args(["-u", url, "FLUSHALL"])
        .output()
        .context("redis-cli FLUSHALL")?;
    let said = String::from_utf8_lossy(&out.stdout);
    if said.trim() != "OK" {
        bail!("redis-cli FLUSHALL said {said}");
    }
    Ok(())
}

/// The process id of the Redis server at `url` (`INFO server`).
fn redis_pid(url: &str) -> Option<u32> {
    let out = Command::new("redis-cli")
        .args(["-u", url, "INFO", "server"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The whole machine's CPU time so far, in clock ticks (`/proc/stat`'s `cpu` line): `busy` is
/// user, nice, system, irq and softirq (every process and the kernel's own threads), `steal`
/// the time the hypervisor gave this machine's CPUs to others.
#[derive(Debug, Default, Clone, Copy)]
struct MachineTicks {
    busy: u64,
    steal: u64,
}

fn machine_ticks() -> Option<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal …
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    Some(MachineTicks {
        busy: field(0) + field(1) + field(2) + field(5) + field(6),
        steal: field(7),
    })
}

/// The watched processes' CPU ticks (`None` when one cannot be read) and the machine's, at
/// one moment.
struct Sample {
    processes: Vec<Option<u64>>,
    machine: MachineTicks,
}

/// CPU used per request of measured runs by each watched process, in µs, added up over the
/// runs, with the whole machine's CPU over the same runs and their wall-clock seconds.
#[derive(Default)]
struct CpuPerRequest {
    ticks: Vec<u64>,
    machine: MachineTicks,
    requests: u64,
    seconds: f64,
}

impl CpuPerRequest {
    /// One run's: what was used between two samples, for `requests` over `seconds`.
    fn between(before: &Sample, after: &Sample, requests: u64, seconds: f64) -> Self {
        let ticks = before
            .processes
            .iter()
            .zip(&after.processes)
            .map(|(b, a)| a.unwrap_or(0).saturating_sub(b.unwrap_or(0)))
            .collect();
        let machine = MachineTicks {
            busy: after.machine.busy.saturating_sub(before.machine.busy),
            steal: after.machine.steal.saturating_sub(before.machine.steal),
        };
        Self {
            ticks,
            machine,
            requests,
            seconds,
        }
    }

    fn merge(&mut self, other: &CpuPerRequest) {
        self.ticks
            .resize(other.ticks.len().max(self.ticks.len()), 0);
        for (total, t) in self.ticks.iter_mut().zip(&other.ticks) {
            *total += t;
        }
        self.machine.busy += other.machine.busy;
        self.machine.steal += other.machine.steal;
        self.requests += other.requests;
        self.seconds += other.seconds;
    }

    /// `ticks` over the runs' seconds: how many cores they kept busy on average.
    fn per_s(&self, ticks: u64, tick_s: f64) -> f64 {
        ticks as f64 / tick_s / self.seconds.max(f64::EPSILON)
    }

    /// How many cores the watched processes kept busy on average.
    fn cores(&self, tick_s: f64) -> f64 {
        self.per_s(self.ticks.iter().sum(), tick_s)
    }

    /// The ticks the rest of the machine was busy: other processes (the idle servers among
    /// them) and the kernel's own threads.
    fn others(&self) -> u64 {
        self.machine
            .busy
            .saturating_sub(self.ticks.iter().sum::<u64>())
    }

    /// All watched processes' µs per request.
    fn total(&self, tick_s: f64) -> f64 {
        self.per(self.ticks.iter().sum(), tick_s)
    }

    /// The first watched process' µs per request.
    fn first(&self, tick_s: f64) -> f64 {
        self.per(self.ticks.first().copied().unwrap_or(0), tick_s)
    }

    fn per(&self, ticks: u64, tick_s: f64) -> f64 {
        ticks as f64 / tick_s * 1e6 / self.requests.max(1) as f64
    }

    fn line(&self, names: &[&str], tick_s: f64) -> String {
        let per = |t: u64| self.per(t, tick_s);
        let parts: Vec<String> = names
            .iter()
            .zip(&self.ticks)
            .map(|(n, t)| format!("{n} {:.0}", per(*t)))
            .collect();
        format!("{}, total {:.0}", parts.join(", "), self.total(tick_s))
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (seconds, warmup, batch) = if args.smoke {
        (1, 1, 5)
    } else {
        (args.duration_s, args.warmup_s, 100)
    };
    let (gateway_bin, baseline_bin) = build()?;
    let scratch = target_dir().join("limit-bench");
    let (checkout_lua, orders_lua) = write_scripts(&scratch)?;

    let redis = TestRedis::start();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    let sim_port = free_port()?;
    let sim_url = format!("http://127.0.0.1:{sim_port}");
    let mut sim = start_simulator(&gateway_bin, sim_port)?;
    wait_up(&client, &sim_url).await?;

    let gw_port = free_port()?;
    let gateway = format!("http://127.0.0.1:{gw_port}");
    let log_path = scratch.join("gateway.log");
    let gw = start_gateway(
        &gateway_bin,
        gw_port,
        redis.url(),
        &sim_url,
        None,
        &log_path,
        "info",
    )?;
    wait_up(&client, &format!("{gateway}/health/live")).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(gw.pid());

    let base_port = free_port()?;
    let baseline = format!("http://127.0.0.1:{base_port}");
    let _base = match &baseline_bin {
        Some(bin) => {
            let p = Proc {
                child: Command::new(bin)
                    .arg(base_port.to_string())
                    .arg(redis.url())
                    .arg(format!("{sim_url}/v1/json/orders"))
                    .arg(MSP_KEY)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?,
            };
            wait_up(&client, &baseline).await?;
            Some(p)
        }
        None => None,
    };

    let run_id = format!("b{}", chrono::Utc::now().timestamp_millis());
    // A warm-up, then the measured run.
    let measure = |script: &Path, url: &str, conns: u32, label: &str| -> anyhow::Result<WrkRun> {
        let run_id = format!("{run_id}-{label}");
        wrk(script, url, conns, warmup, &format!("{run_id}-w"))?;
        wrk(script, url, conns, seconds, &run_id)
    };
    let orders_url = format!("{sim_url}/v1/json/orders");
    let checkouts = |base: &str| format!("{base}/v1/checkouts");

    println!(
        "# limit_bench ({} s per run, {} s warm-up)",
        seconds, warmup
    );
    let sim_1 = measure(&orders_lua, &orders_url, 1, "sim1")?;
    sim = fresh_simulator(sim, &gateway_bin, sim_port, &client).await?;
    let gw_1 = measure(&checkout_lua, &checkouts(&gateway), 1, "gw1")?;
    let base_1 = match baseline_bin {
        Some(_) => {
            sim = fresh_simulator(sim, &gateway_bin, sim_port, &client).await?;
            Some(measure(&checkout_lua, &checkouts(&baseline), 1, "base1")?)
        }
        None => None,
    };
    // Throughput at `--connections`: the gateway at info, the same at `warn` (a gateway of its
    // own on the same Redis and simulator: what logging at info costs) and limit-baseline,
    // taken in turns, `--rounds` times, so that the shared machine's slow and fast moments fall
    // on all three alike; each figure is the mean of its runs.
    let quiet_port = free_port()?;
    let quiet = format!("http://127.0.0.1:{quiet_port}");
    let quiet_gw = start_gateway(
        &gateway_bin,
        quiet_port,
        redis.url(),
        &sim_url,
        None,
        &scratch.join("gateway-warn.log"),
        "warn",
    )?;
    wait_up(&client, &format!("{quiet}/health/live")).await?;
    let rounds = if args.smoke { 1 } else { args.rounds.max(1) };
    // CPU per request of the gateway at info and of limit-baseline, with the simulator's,
    // Redis' and wrk's share, over the measured runs only (each after its own warm-up).
    let (gw_pid, redis_proc) = (gw.pid(), redis_pid(redis.url()));
    let base_pid = _base.as_ref().map(Proc::pid);
    let sample = |pids: &[Option<u32>]| Sample {
        processes: pids
            .iter()
            .map(|p| p.and_then(cpu_ticks))
            .chain([waited_children_ticks()])
            .collect(),
        machine: machine_ticks().unwrap_or_default(),
    };
    let tick_s = ticks_per_s();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let measure_cpu = |script: &Path,
                       url: String,
                       conns: u32,
                       label: &str,
                       name: &str,
                       pids: &[Option<u32>],
                       cpu: &mut CpuPerRequest|
     -> anyhow::Result<WrkRun> {
        let run_id = format!("{run_id}-{label}");
        flush(redis.url())?;
        wrk(script, &url, conns, warmup, &format!("{run_id}-w"))?;
        let before = sample(pids);
        let started = Instant::now();
        let run = wrk(script, &url, conns, seconds, &run_id)?;
        let this = CpuPerRequest::between(
            &before,
            &sample(pids),
            run.requests,
            started.elapsed().as_secs_f64(),
        );
        println!(
            "  {name:<26} {:>6.0} req/s   CPU µs per checkout: {}; the rest of the machine {:.0}; cores busy of {cores}: theirs {:.2}, the rest {:.2}, stolen {:.2}",
            run.requests_per_s,
            this.line(&["server", "simulator", "Redis", "wrk"], tick_s),
            this.per(this.others(), tick_s),
            this.cores(tick_s),
            this.per_s(this.others(), tick_s),
            this.per_s(this.machine.steal, tick_s),
        );
        cpu.merge(&this);
        Ok(run)
    };
    let (mut gw_cpu, mut quiet_cpu, mut base_cpu): (CpuPerRequest, CpuPerRequest, CpuPerRequest) =
        Default::default();
    let quiet_pid = quiet_gw.pid();
    let (mut gw_runs, mut quiet_runs, mut base_runs) = (Vec::new(), Vec::new(), Vec::new());
    // Each run starts on an emptied Redis and a fresh simulator: a Redis holding the runs
    // before it costs more (bigger listing indexes to add to, a bigger key table), and so does
    // a simulator holding their orders ([`fresh_simulator`]); whichever ran later paid for it.
    // Each round also starts with another of the three, so that each is measured first,
    // second and third in turn, and what still drifts (the machine) falls on all alike.
    let order = [Run::Info, Run::Warn, Run::Baseline];
    let conns = args.connections;
    println!(
        "throughput runs at {conns} conns, in turns (\"server\" is the gateway or limit-baseline):"
    );
    for round in 0..rounds {
        for which in order.iter().cycle().skip(round).take(order.len()) {
            let (url, label, name, pid, runs, cpu) = match which {
                Run::Info => (
                    checkouts(&gateway),
                    "gwn",
                    "gateway at info",
                    Some(gw_pid),
                    &mut gw_runs,
                    &mut gw_cpu,
                ),
                Run::Warn => (
                    checkouts(&quiet),
                    "gwq",
                    "gateway at warn",
                    Some(quiet_pid),
                    &mut quiet_runs,
                    &mut quiet_cpu,
                ),
                Run::Baseline if baseline_bin.is_some() => (
                    checkouts(&baseline),
                    "basen",
                    "limit-baseline",
                    base_pid,
                    &mut base_runs,
                    &mut base_cpu,
                ),
                Run::Baseline => continue,
            };
            sim = fresh_simulator(sim, &gateway_bin, sim_port, &client).await?;
            let label = format!("{label}{round}");
            let name = format!("round {}, {name}", round + 1);
            runs.push(measure_cpu(
                &checkout_lua,
                url,
                conns,
                &label,
                &name,
                &[pid, Some(sim.pid()), redis_proc],
                cpu,
            )?);
        }
    }
    drop(quiet_gw);
    let gw_n = WrkRun::mean(&gw_runs);
    let quiet_n = WrkRun::mean(&quiet_runs);
    let base_n = (!base_runs.is_empty()).then(|| WrkRun::mean(&base_runs));

    let line = |name: &str, r: &WrkRun| {
        println!(
            "{name:<28} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   non-2xx {}",
            r.requests_per_s, r.p50_ms, r.p99_ms, r.non_2xx
        )
    };
    line("simulator alone, 1 conn", &sim_1);
    line("gateway, 1 conn", &gw_1);
    if let Some(b) = &base_1 {
        line("limit-baseline, 1 conn", b);
    }
    line(&format!("gateway, {} conns", args.connections), &gw_n);
    line(
        &format!("gateway at warn, {} conns", args.connections),
        &quiet_n,
    );
    if let Some(b) = &base_n {
        line(&format!("limit-baseline, {} conns", args.connections), b);
    }
    println!();
    if let Some(b) = &base_n {
        println!(
            "throughput gateway / limit-baseline at {} conns: {:.2}x   (target >= 0.9x)",
            args.connections,
            gw_n.requests_per_s / b.requests_per_s
        );
    }
    println!(
        "CPU per checkout at {conns} conns over all rounds, µs (user + system: /proc/PID/stat, and wrk's once it has exited):"
    );
    println!(
        "  gateway side:     {}",
        gw_cpu.line(&["gateway", "simulator", "Redis", "wrk"], tick_s)
    );
    println!(
        "  gateway at warn:  {}",
        quiet_cpu.line(&["gateway", "simulator", "Redis", "wrk"], tick_s)
    );
    if base_n.is_some() {
        println!(
            "  baseline side:    {}",
            base_cpu.line(&["limit-baseline", "simulator", "Redis", "wrk"], tick_s)
        );
    }
    let by_round: Vec<String> = gw_runs
        .iter()
        .zip(&quiet_runs)
        .map(|(info, warn)| {
            format!(
                "{:.0}",
                (1.0 - info.requests_per_s / warn.requests_per_s) * 100.0
            )
        })
        .collect();
    println!(
        "logging at info costs {:.0} % of throughput at {conns} conns (info vs warn, mean of {rounds} rounds; round by round {} %)   (target <= 10 %)",
        (1.0 - gw_n.requests_per_s / quiet_n.requests_per_s) * 100.0,
        by_round.join(", ")
    );
    // Throughput moves with whatever else the shared machine runs, and with how much of the
    // machine the four processes got (the cores figure of each run above); the CPU they spend
    // per checkout moves much less. While they keep the machine busy, throughput is the cores
    // they get over that CPU, so logging's share of throughput is its share of that CPU.
    let (info_us, warn_us) = (gw_cpu.first(tick_s), quiet_cpu.first(tick_s));
    let (info_all, warn_all) = (gw_cpu.total(tick_s), quiet_cpu.total(tick_s));
    println!(
        "  by CPU per checkout: the gateway's is {:.0} % more at info ({info_us:.0} µs, against {warn_us:.0} at warn); all four processes' is {info_all:.0} µs against {warn_all:.0}: on a machine they keep busy, {:.1} % of throughput",
        (info_us / warn_us - 1.0) * 100.0,
        (1.0 - warn_all / info_all) * 100.0
    );
    println!(
        "median latency added over the simulator at 1 conn: gateway {:.2} ms (target <= 0.25){}",
        gw_1.p50_ms - sim_1.p50_ms,
        base_1
            .map(|b| format!(", limit-baseline {:.2} ms", b.p50_ms - sim_1.p50_ms))
            .unwrap_or_default()
    );

    // The throughput runs' log, counted before anything else is logged.
    let log_lines = std::fs::read_to_string(&log_path)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let served = gw_1.requests + gw_n.requests;
    drop(gw);

    // Round trips and memory, one operation at a time, on a gateway of their own with a Redis of
    // its own: nothing else runs there (no throughput run's notifications arriving late), and
    // the simulator's notifications for these orders go nowhere (its public URL is a closed
    // port), so that a create is counted without the notification MSP sends after it; the
    // notifications are counted on their own below.
    let counting_redis = TestRedis::start();
    let count_port = free_port()?;
    let counting = format!("http://127.0.0.1:{count_port}");
    let _count_gw = start_gateway(
        &gateway_bin,
        count_port,
        counting_redis.url(),
        &sim_url,
        Some("http://127.0.0.1:9"),
        &scratch.join("gateway-counting.log"),
        "info",
    )?;
    wait_up(&client, &format!("{counting}/health/live")).await?;
    let fx = Fixture {
        client: client.clone(),
        gateway: counting.clone(),
        redis_url: counting_redis.url().to_owned(),
        monitor_dir: scratch.clone(),
    };
    // Pending 3-D Secure checkouts first, on the empty Redis: everything stored then is theirs.
    let mut pending = Vec::new();
    for _ in 0..batch {
        pending.push(fx.create(THREE_DS).await?);
    }
    let ids: Vec<String> = pending
        .iter()
        .filter_map(|c| c["id"].as_str())
        .map(str::to_owned)
        .collect();
    if ids.len() != pending.len() {
        bail!("a create answered without an id");
    }
    // The pay link carries the public URL (the closed port): the token is what counts.
    let pay_links: Vec<String> = pending
        .iter()
        .filter_map(|c| c["next_action"]["redirect_to_url"]["url"].as_str())
        .filter_map(|url| url.rsplit('/').next())
        .map(|token| format!("{counting}/pay/{token}"))
        .collect();
    if pay_links.len() != pending.len() {
        bail!(
            "{} of {} 3-D Secure creates answered without a pay link",
            pending.len() - pay_links.len(),
            pending.len()
        );
    }
    let memory = redis_memory(counting_redis.url()).await?;
    let n = ids.len().max(1) as f64;

    let create_frictionless = fx
        .per_op("create-frictionless", batch, || async {
            fx.create(FRICTIONLESS).await.map(drop)
        })
        .await?;
    let create_3ds = fx
        .per_op("create-3ds", batch, || async {
            fx.create(THREE_DS).await.map(drop)
        })
        .await?;
    // One pay page before counting: the first after a Redis start loads the pay page's script
    // (one more round trip, once per Redis process), as the creates above loaded theirs.
    fx.pay_page(&pay_links[0]).await?;
    // Likewise one notification that changes a status (the record's read and the change are a
    // script each) on a checkout of its own, made after the memory was measured: without it the
    // first counted notification's NOSCRIPT, SCRIPT LOAD and retry added 2 / batch round trips.
    let warm_up = fx.create(THREE_DS).await?;
    let warm_up_id = warm_up["id"]
        .as_str()
        .context("a create answered without an id")?;
    fx.notify(&completed_order(warm_up_id)).await?;
    let pay_index = std::sync::atomic::AtomicUsize::new(0);
    let pay_page = fx
        .per_op("pay-page", batch, || async {
            let i = pay_index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            fx.pay_page(&pay_links[i % pay_links.len()]).await
        })
        .await?;
    let notify_index = std::sync::atomic::AtomicUsize::new(0);
    let notify_change = fx
        .per_op("notification-change", batch, || async {
            let i = notify_index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            fx.notify(&completed_order(&ids[i % ids.len()])).await
        })
        .await?;
    let dup_index = std::sync::atomic::AtomicUsize::new(0);
    let notify_duplicate = fx
        .per_op("notification-duplicate", batch, || async {
            let i = dup_index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            fx.notify(&completed_order(&ids[i % ids.len()])).await
        })
        .await?;

    println!();
    println!(
        "Redis per operation: round trips (commands sent together counted once) / commands sent"
    );
    println!(
        "(MONITOR, one operation at a time, its scripts loaded; commands run inside Lua scripts"
    );
    println!("are not counted):");
    for (name, (commands, trips), target) in [
        ("frictionless create", create_frictionless, "<= 2"),
        ("3-D Secure create", create_3ds, "<= 3"),
        ("notification changing status", notify_change, "<= 2"),
        ("duplicate notification", notify_duplicate, "1"),
        ("pay page", pay_page, "1"),
    ] {
        println!("  {name:<30} {trips:>5.2} / {commands:>5.2}   (target {target})");
    }
    println!();
    println!(
        "Redis memory per pending 3-D Secure checkout, all its keys and its share of the indexes ({} checkouts alone in a fresh Redis, MEMORY USAGE): {:.0} B, of which MSP's form HTML {:.0} B; without it {:.2} KiB (target <= 2.5 KiB)",
        ids.len(),
        memory.total as f64 / n,
        memory.form_html as f64 / n,
        (memory.total - memory.form_html) as f64 / n / 1024.0,
    );
    for (kind, bytes) in &memory.by_kind {
        println!("  {kind:<28} {:>7.0} B", *bytes as f64 / n);
    }
    if let Some(rss) = idle_rss {
        println!(
            "gateway idle RSS: {:.1} MiB (target <= 16 MiB)",
            rss as f64 / 1024.0
        );
    }
    println!(
        "gateway log lines at info: {log_lines} for {served} requests measured with wrk (and their warm-ups, and the notifications MSP sent for them) (in {})",
        log_path.display()
    );
    Ok(())
}
