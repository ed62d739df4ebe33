//! A real `redis-server` for tests, started on a free loopback port and killed when done.
//!
//! - [`TestRedis::shared`]: one server per test binary; tests isolate themselves with
//!   [`unique_prefix`] instead of flushing anything.
//! - [`TestRedis::start`]: a server of the test's own, which it may [`stop`](TestRedis::stop)
//!   and [`restart`](TestRedis::restart) (same port) to simulate an outage, or
//!   [`pause`](TestRedis::pause) (SIGSTOP) to simulate a stall: connections stay open and
//!   commands wait, unanswered, until the [`Paused`] guard resumes it (SIGCONT).
//! - With `TEST_REDIS_URL` set, both hand out that server instead; `stop`/`restart` then fail
//!   the test with a clear message, since we never stop a Redis we did not start.
//!
//! The server runs under a tiny `sh` wrapper that waits for its stdin to close and then kills
//! it. Our end of that pipe closes when we stop it, and also when the test process exits for any
//! reason (a panic, `process::exit`, a statics-never-dropped shared server), so no `redis-server`
//! outlives its test binary.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

const NOT_FOUND: &str = "redis-server not found: run ./scripts/test, which installs it";
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A fresh key prefix per test, so tests sharing a server never see each other's keys.
pub fn unique_prefix() -> String {
    format!("test:{}", uuid::Uuid::new_v4().simple())
}

pub struct TestRedis {
    url: String,
    server: Option<Mutex<Server>>,
}

struct Server {
    port: u16,
    process: Option<Running>,
}

pub(super) struct Running {
    wrapper: Child,
    /// Dropping it closes the wrapper's stdin, which makes the wrapper kill `redis-server`.
    stdin: ChildStdin,
}

static SHARED: LazyLock<TestRedis> = LazyLock::new(TestRedis::start);

impl TestRedis {
    /// The server this test binary shares (started on first use).
    pub fn shared() -> &'static TestRedis {
        &SHARED
    }

    /// A server of this test's own, killed on drop.
    pub fn start() -> TestRedis {
        if let Some(url) = external_url() {
            return TestRedis { url, server: None };
        }
        // A free port can be taken by someone else between our probe and redis' bind; try a
        // few before giving up.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            match launch(port) {
                Ok(running) => {
                    return TestRedis {
                        url: format!("redis://127.0.0.1:{port}"),
                        server: Some(Mutex::new(Server {
                            port,
                            process: Some(running),
                        })),
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("could not start redis-server: {last_error}");
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server (an outage). The port stays reserved for `restart`.
    pub fn stop(&self) {
        let mut server = self.own_server("stop()");
        if let Some(running) = server.process.take() {
            shut_down(running);
        }
        wait_until(|| !answers_ping(server.port), "redis-server to stop");
    }

    /// Starts the server again on the same port, empty (nothing is persisted).
    pub fn restart(&self) {
        let mut server = self.own_server("restart()");
        if let Some(running) = server.process.take() {
            shut_down(running);
        }
        let port = server.port;
        server.process =
            Some(launch(port).unwrap_or_else(|e| panic!("could not restart redis-server: {e}")));
    }

    /// Freezes the server (SIGSTOP) until the guard resumes it: commands sent meanwhile are
    /// neither answered nor refused, and run, in order, once it resumes (a stall longer than
    /// any client timeout).
    pub fn pause(&self) -> Paused {
        let server = self.own_server("pause()");
        let pid = server_pid(server.port).expect("redis-server answers INFO server");
        signal(pid, "-STOP");
        Paused { pid: Some(pid) }
    }

    fn own_server(&self, what: &str) -> std::sync::MutexGuard<'_, Server> {
        let Some(server) = &self.server else {
            panic!(
                "{what} needs a redis-server this test started itself, but TEST_REDIS_URL points \
                 at an external one: unset TEST_REDIS_URL to run outage tests"
            );
        };
        server.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            let mut server = server.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(running) = server.process.take() {
                shut_down(running);
            }
        }
    }
}

/// A paused server; resumes it when dropped, should the test not do so first.
#[must_use = "the server resumes when the guard is dropped"]
pub struct Paused {
    pid: Option<u32>,
}

impl Paused {
    /// Lets the server run again (SIGCONT): it answers what was sent while it was paused.
    pub fn resume(mut self) {
        if let Some(pid) = self.pid.take() {
            signal(pid, "-CONT");
        }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            signal(pid, "-CONT");
        }
    }
}

fn signal(pid: u32, which: &str) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {which} {pid} failed: {status}");
}

/// The redis-server's own process id (the wrapper's child), from `INFO server`.
fn server_pid(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&reply);
        // A whole line only: a read may end in the middle of the number.
        if let Some(rest) = text.split("\r\nprocess_id:").nth(1)
            && let Some((pid, _)) = rest.split_once("\r\n")
        {
            return pid.trim().parse().ok();
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&buf[..n]);
    }
}

fn external_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

fn launch(port: u16) -> Result<Running, String> {
    launch_with(port, &[], None)
}

/// Starts `redis-server` on `port` with `extra` arguments and waits until it answers. When
/// `remove_after` is given, that directory is deleted once the server has stopped (the wrapper
/// does it, so it happens even when the test process exits without running destructors).
pub(super) fn launch_with(
    port: u16,
    extra: &[String],
    remove_after: Option<&std::path::Path>,
) -> Result<Running, String> {
    match Command::new("redis-server").arg("--version").output() {
        Err(e) if e.kind() == ErrorKind::NotFound => panic!("{NOT_FOUND}"),
        Err(e) => panic!("{NOT_FOUND} ({e})"),
        Ok(_) => {}
    }
    // A marker only this launch knows: a PING could be answered by somebody else's server
    // that took the port first, CONFIG GET of our marker cannot.
    let marker = format!("test-{}.rdb", uuid::Uuid::new_v4().simple());
    let dir = std::env::temp_dir();
    let mut wrapper = Command::new("sh")
        .arg("-c")
        // The wrapper lives exactly as long as redis-server (so `try_wait` sees a failed start),
        // and the background `cat` kills redis-server once our end of stdin closes. The pipe
        // goes through fd 3 because sh gives background jobs /dev/null as their stdin.
        .arg(concat!(
            r#"exec 3<&0; redis-server "$@" </dev/null >/dev/null 2>&1 & pid=$!; "#,
            r#"(cat <&3 >/dev/null; kill "$pid" 2>/dev/null) & wait "$pid"; status=$?; "#,
            r#"if [ -n "$CGW_REMOVE_AFTER" ]; then rm -rf -- "$CGW_REMOVE_AFTER"; fi; exit $status"#
        ))
        .env(
            "CGW_REMOVE_AFTER",
            remove_after.map(|d| d.as_os_str()).unwrap_or_default(),
        )
        .arg("sh")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--dir", &dir.to_string_lossy()])
        .args(["--dbfilename", &marker])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not spawn sh for redis-server: {e}"))?;
    let stdin = wrapper
        .stdin
        .take()
        .ok_or("the wrapper's stdin was not piped")?;
    let mut running = Running { wrapper, stdin };
    let started = Instant::now();
    while started.elapsed() < READY_WITHIN {
        if let Ok(Some(status)) = running.wrapper.try_wait() {
            shut_down(running);
            return Err(format!(
                "redis-server on port {port} exited at start ({status}); is the port taken?"
            ));
        }
        if answers_as(port, &marker) {
            return Ok(running);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    shut_down(running);
    Err(format!(
        "redis-server on port {port} did not answer within {READY_WITHIN:?}"
    ))
}

/// True when the server on `port` is the one launched with `marker` as its dbfilename.
fn answers_as(port: u16, marker: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"CONFIG GET dbfilename\r\n").is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&reply).contains(marker) {
            return true;
        }
    }
    false
}

pub(super) fn shut_down(running: Running) {
    let Running {
        mut wrapper,
        mut stdin,
    } = running;
    let _ = stdin.flush();
    drop(stdin);
    let _ = wrapper.wait();
}

fn answers_ping(port: u16) -> bool {
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

fn wait_until(mut done: impl FnMut() -> bool, what: &str) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < READY_WITHIN,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
