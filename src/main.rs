//! The `checkout-gateway` binary: parses the command line and hands over to the libraries.
//!
//! - `serve`: [`gateway`] on Redis ([`gateway::startup::Application`]), configured by
//!   `--config` / `GATEWAY_CONFIG` and `GATEWAY__…` variables.
//! - `simulator`: the MultiSafepay simulator ([`msp_simulator::run`]).
//! - `sandbox`: both in one process with the demo shop ([`sandbox::run`]).
//!
//! All in this one file: the memory allocator (mimalloc), the log writer (JSON lines on stdout
//! from a thread of their own), and the exit status: 2 for a bad configuration (naming the key),
//! 1 for any other error, printed on stderr as one line of causes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use gateway::configuration::{Mode, Settings};
use gateway::startup::Application;
use gateway::store::redis::RedisStore;
use gateway::telemetry;
use msp_simulator::SimulatorArgs;

/// mimalloc rather than glibc's malloc (issue 12): a checkout makes a few thousand small
/// allocations, and glibc's free lists were about a fifth of the gateway's instructions; A/B
/// under `wrk` at 32 connections the gateway used 230–256 µs of CPU per checkout against
/// 280–346 µs. Built without transparent huge pages (`no_thp`): with them each thread's first
/// arena page is a resident 2 MiB and idle RSS doubled to 29 MiB; without, it is within 1 MiB of
/// glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "checkout-gateway",
    version,
    about = "A checkout gateway in front of MultiSafepay direct card orders"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (configuration from --config / GATEWAY_CONFIG and GATEWAY__… variables; Redis required; until it answers, readiness says 503).
    Serve(ConfigArgs),
    /// Run the stateful MultiSafepay simulator.
    Simulator(SimulatorArgs),
    /// Run gateway + simulator in one process with a demo storefront at /demo (no Redis needed).
    Sandbox(ConfigArgs),
}

#[derive(Args)]
struct ConfigArgs {
    /// A TOML configuration file (see deploy/config.example.toml).
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Log lines are formatted where they happen and written by a thread of their own, in
    // batches while lines keep coming (issue 12: a `write` per line on the request's thread
    // was a good part of what logging cost). Not lossy: when the writer falls behind by 4096
    // lines, logging waits rather than drops lines (the queue is allocated whole: the
    // crate's default of 128 000 lines took 4 MiB of idle memory). After each batch the thread
    // pauses for 10 ms, so that it is not woken for every line (`FlushPause`). The
    // guard writes what is left when `main` returns.
    let (log_writer, _log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(4096)
        .thread_name("log-writer")
        .finish(telemetry::FlushPause::new(
            std::io::BufWriter::new(std::io::stdout()),
            std::time::Duration::from_millis(10),
        ));
    telemetry::init_subscriber(telemetry::get_subscriber(
        telemetry::DEFAULT_FILTER,
        log_writer,
    ));
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Simulator(args) => msp_simulator::run(args.into()).await,
        Command::Sandbox(args) => match load(&args, Mode::Sandbox) {
            Ok(settings) => sandbox::run(settings).await,
            Err(code) => return code,
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain in one line, never `?e`: anyhow's `Debug` appends the backtrace it
            // captured (`RUST_BACKTRACE` set), and a start-up refusal such as a port that is
            // taken is an operator's message, not a crash.
            tracing::error!(error.cause_chain = %format_args!("{e:#}"), "stopped with an error");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads and validates the settings; a bad configuration exits with status 2 and names the key.
fn load(args: &ConfigArgs, mode: Mode) -> Result<Settings, ExitCode> {
    Settings::load(args.config.as_deref())
        .and_then(|s| s.validate(mode).map(|()| s))
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })
}

async fn serve(args: ConfigArgs) -> anyhow::Result<()> {
    let settings = match load(&args, Mode::Serve) {
        Ok(s) => s,
        Err(_) => std::process::exit(2),
    };
    // Started whether or not Redis answers yet (issue 30): until it does, readiness and the
    // requests that need it answer 503 with `Retry-After`, and the store keeps trying.
    let store = RedisStore::connect_in_background(settings.redis_connect())?;
    let app = Application::build(settings, Arc::new(store))?;
    app.run_until_stopped().await
}
