//! The processes the soak starts, all on loopback: `redis-server` with AOF in the run's
//! directory, `checkout-gateway serve` instances, `checkout-gateway simulator`, and the
//! in-process TCP balancer in front of the instances.
//!
//! Every process runs under a small `sh` wrapper (the same trick as test-support's
//! `TestRedis`): the wrapper prints the real process id, and kills the process with SIGKILL as
//! soon as its stdin, a pipe from the harness, closes. Dropping a [`Proc`] closes it, and so does
//! the harness exiting for any reason (Ctrl-C, a panic, even SIGKILL), so nothing outlives the
//! run. Background jobs of a non-interactive `sh` ignore SIGINT, so Ctrl-C reaches the harness
//! only, which stops everything in order.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::net::{TcpListener, TcpStream as TokioStream};

/// A process under its wrapper; SIGKILLed when dropped.
pub struct Proc {
    name: String,
    wrapper: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
}

impl Proc {
    /// Starts `program args` with `envs`, its stdout and stderr appended to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log: &Path,
    ) -> anyhow::Result<Proc> {
        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(concat!(
                r#"exec 3<&0; "$@" </dev/null >>"$SOAK_LOG" 2>&1 & pid=$!; echo "$pid"; "#,
                r#"(cat <&3 >/dev/null; kill -9 "$pid" 2>/dev/null) & wait "$pid""#
            ))
            .arg("sh")
            .arg(program)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SOAK_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let stdin = wrapper.stdin.take();
        let stdout = wrapper.stdout.take().context("the wrapper's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the process id")?;
        let pid: u32 = line
            .trim()
            .parse()
            .with_context(|| format!("{name}: no process id from its wrapper ({line:?})"))?;
        Ok(Proc {
            name: name.to_owned(),
            wrapper,
            stdin,
            pid,
        })
    }

    /// Whether the process is still running (the wrapper waits for it).
    pub fn running(&mut self) -> bool {
        matches!(self.wrapper.try_wait(), Ok(None))
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`) to the process itself.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("kill -{signal} {} ({}) failed", self.pid, self.name);
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A stopped process does not die of SIGKILL before it is continued on some kernels'
        // accounting; continue it first so that nothing stays frozen.
        let _ = self.signal("CONT");
        let _ = self.signal("KILL");
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.wrapper.wait();
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `ready` every 50 ms for up to `within`.
pub fn wait_until(
    within: Duration,
    what: &str,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > within {
            bail!("{what} not ready within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `redis-server` with AOF (`appendfsync everysec`, as production runs it) in `dir`: a restart
/// on the same port and directory loads what was written.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
}

impl Redis {
    pub fn start(dir: &Path) -> anyhow::Result<Redis> {
        let mut redis = Redis {
            port: free_port()?,
            dir: dir.join("redis"),
            log: dir.join("redis.log"),
            proc: None,
        };
        std::fs::create_dir_all(&redis.dir)?;
        redis.launch()?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &self.dir.to_string_lossy(),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.proc = Some(Proc::spawn(
            "redis-server",
            Path::new("redis-server"),
            &args,
            &[],
            &self.log,
        )?);
        let port = self.port;
        // Loading a long AOF takes a while.
        wait_until(Duration::from_secs(60), "redis-server", || ping(port))
    }

    /// SIGKILL, then a new process on the same port and directory (it replays the AOF).
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.take() {
            let _ = p.signal("KILL");
            drop(p);
        }
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch()
    }

    pub fn is_up(&self) -> bool {
        self.proc.is_some()
    }

    pub fn pause(&self) -> anyhow::Result<()> {
        match &self.proc {
            Some(p) => p.signal("STOP"),
            None => Ok(()),
        }
    }

    pub fn resume(&self) -> anyhow::Result<()> {
        match &self.proc {
            Some(p) => p.signal("CONT"),
            None => Ok(()),
        }
    }
}

/// `PING` answered `+PONG` (a loading server answers `-LOADING`).
pub fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// What every gateway instance is started with.
#[derive(Clone)]
pub struct GatewayConfig {
    pub bin: PathBuf,
    pub redis_url: String,
    pub msp_base_url: String,
    pub msp_key: String,
    pub merchant_key: String,
    pub public_url: String,
    pub webhook_url: String,
    pub webhook_secret: String,
    pub dir: PathBuf,
}

/// One `checkout-gateway serve` on a port of its own.
pub struct Gateway {
    pub port: u16,
    pub index: usize,
    config: GatewayConfig,
    proc: Option<Proc>,
}

impl Gateway {
    pub fn start(index: usize, port: u16, config: &GatewayConfig) -> anyhow::Result<Gateway> {
        let mut g = Gateway {
            port,
            index,
            config: config.clone(),
            proc: None,
        };
        g.launch()?;
        Ok(g)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let c = &self.config;
        let envs: Vec<(String, String)> = [
            ("RUST_LOG", "info"),
            ("GATEWAY__SERVER__PORT", &self.port.to_string()),
            ("GATEWAY__PUBLIC_URL", &c.public_url),
            ("GATEWAY__REDIS__URL", &c.redis_url),
            ("GATEWAY__MULTISAFEPAY__BASE_URL", &c.msp_base_url),
            ("GATEWAY__MULTISAFEPAY__API_KEY", &c.msp_key),
            // A slow MultiSafepay is a timeout within seconds, not 15 s: more lost answers.
            ("GATEWAY__MULTISAFEPAY__CONNECT_TIMEOUT_MS", "1000"),
            ("GATEWAY__MULTISAFEPAY__TIMEOUT_MS", "4000"),
            // Greater than (1000 + 4000) / 1000 + 1, as the configuration requires.
            ("GATEWAY__IDEMPOTENCY__IN_FLIGHT_TTL_S", "10"),
            ("GATEWAY__AUTH__API_KEYS", &c.merchant_key),
            ("GATEWAY__AUTH__RATE_LIMIT_PER_S", "0"),
            ("GATEWAY__SERVER__KEYLESS_RATE_LIMIT_PER_S", "0"),
            ("GATEWAY__SERVER__SHUTDOWN_TIMEOUT_S", "2"),
            // The reconciler looks soon and often, so that the run settles in minutes.
            ("GATEWAY__RECONCILE__FIRST_AFTER_S", "5"),
            ("GATEWAY__RECONCILE__INTERVAL_S", "10"),
            ("GATEWAY__RECONCILE__TRANSACTIONS_INTERVAL_S", "60"),
            ("GATEWAY__WEBHOOKS__URL", &c.webhook_url),
            ("GATEWAY__WEBHOOKS__SECRETS", &c.webhook_secret),
            ("GATEWAY__WEBHOOKS__TIMEOUT_MS", "3000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let log = c.dir.join(format!("gateway-{}.log", self.index));
        self.proc = Some(Proc::spawn(
            &format!("gateway {}", self.index),
            &c.bin,
            &["serve".to_string()],
            &envs,
            &log,
        )?);
        Ok(())
    }

    /// Waits until `/health/live` answers (it does not need Redis, which may be down).
    pub fn wait_live(&mut self, within: Duration) -> anyhow::Result<()> {
        let port = self.port;
        let started = Instant::now();
        loop {
            if http_status(port, "/health/live") == Some(200) {
                return Ok(());
            }
            if let Some(p) = &mut self.proc
                && !p.running()
            {
                bail!(
                    "gateway {} exited at start: see {}",
                    self.index,
                    self.config
                        .dir
                        .join(format!("gateway-{}.log", self.index))
                        .display()
                );
            }
            if started.elapsed() > within {
                bail!("gateway {} not live within {within:?}", self.index);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        if let Some(p) = self.proc.take() {
            let _ = p.signal("KILL");
            drop(p);
        }
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch()
    }

    pub fn is_up(&self) -> bool {
        self.proc.is_some()
    }

    /// The process exited although nobody killed it (a crash).
    pub fn crashed(&mut self) -> bool {
        match &mut self.proc {
            Some(p) => !p.running(),
            None => false,
        }
    }
}

/// `checkout-gateway simulator`.
pub struct Simulator {
    pub port: u16,
    _proc: Proc,
}

impl Simulator {
    pub fn start(bin: &Path, key: &str, dir: &Path) -> anyhow::Result<Simulator> {
        let port = free_port()?;
        let args: Vec<String> = [
            "simulator",
            "--port",
            &port.to_string(),
            "--api-key",
            key,
            // A notification the gateway did not acknowledge is sent again 3 s later.
            "--notification-retry-interval-ms",
            "3000",
            // Refunds settle (reserved → completed) after 5 s.
            "--refund-delay-ms",
            "5000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let proc = Proc::spawn(
            "simulator",
            bin,
            &args,
            &[("RUST_LOG".into(), "warn".into())],
            &dir.join("simulator.log"),
        )?;
        wait_until(Duration::from_secs(30), "simulator", || {
            http_status(port, "/sim/clock") == Some(200)
        })?;
        Ok(Simulator { port, _proc: proc })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A bare HTTP/1.0 GET on loopback: the status, or None.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A TCP balancer in front of the instances, as a load balancer would be: each connection goes
/// to the next instance that accepts it (round robin; one that refuses is skipped). Clients,
/// browsers and the simulator's notifications all come through it.
pub struct Balancer {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    pub async fn start(backends: Vec<u16>) -> anyhow::Result<Balancer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let backends = Arc::new(backends);
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let backends = backends.clone();
                let start = next.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    for i in 0..backends.len() {
                        let port = backends[(start + i) % backends.len()];
                        let connect = TokioStream::connect(("127.0.0.1", port));
                        if let Ok(Ok(mut outbound)) =
                            tokio::time::timeout(Duration::from_millis(500), connect).await
                        {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                    // No instance up: the connection is closed unanswered.
                });
            }
        });
        Ok(Balancer { port, task })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
