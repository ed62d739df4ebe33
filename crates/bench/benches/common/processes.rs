//! What the harnesses that run the gateway as separate processes share (`limit_bench`,
//! `outbox_bench`, each including this file with `#[path]`): the release build, the simulator
//! and the gateway as child processes killed when dropped, and the waits for them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub const MSP_KEY: &str = "bench-site-api-key-0001";
pub const MERCHANT_KEY: &str = "bench-merchant-key-0123456789";
pub const FRICTIONLESS: &str = "374500000000015";

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    #[allow(dead_code)] // limit_bench reads its processes' CPU; outbox_bench does not.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds the release `checkout-gateway` and answers its path.
pub fn build_gateway() -> anyhow::Result<PathBuf> {
    let status = Command::new(cargo())
        .args(["build", "--release", "--bin", "checkout-gateway"])
        .current_dir(workspace_root())
        .status()?;
    if !status.success() {
        bail!("building checkout-gateway failed");
    }
    Ok(target_dir().join("release/checkout-gateway"))
}

/// `checkout-gateway simulator` on `port`, with MSP's key for the benches. Notifications that
/// fail are retried an hour later, so that only first attempts count in a measurement.
pub fn start_simulator(bin: &Path, port: u16) -> anyhow::Result<Proc> {
    Ok(Proc {
        child: Command::new(bin)
            .args([
                "simulator",
                "--port",
                &port.to_string(),
                "--api-key",
                MSP_KEY,
            ])
            .args(["--notification-retry-interval-ms", "3600000"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the simulator")?,
    })
}

/// `checkout-gateway serve` on `port` against `redis_url` and the simulator at `sim_url`,
/// logging at `level` to `log`, with the benches' keys and no rate limits (every request comes
/// from one address here, far above a shopper's rate). The caller adds what its harness needs
/// and spawns it.
pub fn gateway_command(
    bin: &Path,
    port: u16,
    redis_url: &str,
    sim_url: &str,
    level: &str,
    log: &Path,
) -> anyhow::Result<Command> {
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .env("RUST_LOG", level)
        .env("GATEWAY__SERVER__PORT", port.to_string())
        .env("GATEWAY__REDIS__URL", redis_url)
        .env(
            "GATEWAY__MULTISAFEPAY__BASE_URL",
            format!("{sim_url}/v1/json"),
        )
        .env("GATEWAY__MULTISAFEPAY__API_KEY", MSP_KEY)
        .env("GATEWAY__AUTH__API_KEYS", MERCHANT_KEY)
        .env("GATEWAY__AUTH__RATE_LIMIT_PER_S", "0")
        .env("GATEWAY__SERVER__KEYLESS_RATE_LIMIT_PER_S", "0")
        .stdout(std::fs::File::create(log)?);
    Ok(cmd)
}

/// Polls `url` until it answers at all.
pub async fn wait_up(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(url).send().await.is_err() {
        if Instant::now() > deadline {
            bail!("{url} did not come up within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
