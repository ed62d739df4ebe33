//! A storefront's webhook receiver on loopback, for the webhook tests: it verifies each
//! delivery's `Gateway-Signature` with its own code (written from the scheme's description, not the gateway's),
//! records what came, and answers as the test tells it to (down, 500, slow, a redirect, an
//! endless body, fine).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 200 with a short body.
    Ok,
    /// This status, empty body.
    Status(u16),
    /// This status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Waits this long before answering 200.
    Slow(Duration),
    /// 302 to another path.
    Redirect,
    /// 200 with a chunked body that never ends.
    EndlessBody,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub event_id: Option<String>,
    pub signature: Option<String>,
    pub body: Vec<u8>,
    /// Whether one of the `v1=` signatures matched the receiver's secret and `t` was within
    /// five minutes.
    pub verified: bool,
    /// What the receiver answered (0 when it never did).
    pub answered: u16,
    /// Every header, as sent (names as the sender spelled them).
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a delivery's body is JSON")
    }
}

struct Shared {
    mode: Mutex<Mode>,
    received: Mutex<Vec<Received>>,
    secret: String,
}

pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    /// A receiver that is listening, answering `Ok`.
    pub async fn start(secret: &str) -> Receiver {
        let mut r = Self::down(secret).await;
        r.up().await;
        r
    }

    /// A receiver with a port of its own that is not listening yet (connections are refused
    /// until [`up`](Self::up)).
    pub async fn down(secret: &str) -> Receiver {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        Receiver {
            addr,
            shared: Arc::new(Shared {
                mode: Mutex::new(Mode::Ok),
                received: Mutex::new(Vec::new()),
                secret: secret.to_owned(),
            }),
            task: None,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/webhooks", self.addr)
    }

    /// Starts listening on the receiver's port.
    pub async fn up(&mut self) {
        if self.task.is_some() {
            return;
        }
        let listener = TcpListener::bind(self.addr).await.unwrap();
        let shared = self.shared.clone();
        self.task = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        }));
    }

    /// Stops listening (connections are refused again).
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The deliveries it acknowledged with a 2xx.
    pub fn acknowledged(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits (polling, up to `within`) until `n` deliveries were acknowledged, and answers them.
    pub async fn wait_for_acknowledged(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.acknowledged();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} acknowledged deliveries within {within:?}, got {}: {:?}",
                got.len(),
                got.iter().map(|r| &r.event_id).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Checks a `Gateway-Signature` header as a storefront would: `t` within `tolerance_s` of
/// `now`, and one `v1` equal to HMAC-SHA256(secret, "{t}.{body}") in hex.
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &str,
    now: i64,
    tolerance_s: i64,
) -> Result<(), String> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(v),
            _ => {}
        }
    }
    let t = t.ok_or("no t= in the header")?;
    if (now - t).abs() > tolerance_s {
        return Err(format!(
            "t={t} is more than {tolerance_s} s from now ({now})"
        ));
    }
    let matches = candidates.iter().any(|c| {
        hex::decode(c)
            .map(|c| {
                let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
                let signed = [format!("{t}.").as_bytes(), body].concat();
                // Constant-time comparison, as a receiver should.
                hmac::verify(&key, &signed, &c).is_ok()
            })
            .unwrap_or(false)
    });
    if matches {
        Ok(())
    } else {
        Err("no v1 signature matches".into())
    }
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let Some((headers, body)) = read_request(&mut stream).await else {
        return;
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let signature = header("gateway-signature");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let verified = signature
        .as_deref()
        .is_some_and(|s| verify(s, &body, &shared.secret, now, 300).is_ok());
    let mode = *shared.mode.lock().unwrap();
    let index = {
        let mut received = shared.received.lock().unwrap();
        received.push(Received {
            event_id: header("gateway-event-id"),
            signature,
            body,
            verified,
            answered: 0,
            headers: headers.clone(),
        });
        received.len() - 1
    };
    let answered = match mode {
        Mode::Ok => {
            respond(&mut stream, "200 OK", "", "ok").await;
            200
        }
        Mode::Status(status) => {
            respond(&mut stream, &format!("{status} Status"), "", "").await;
            status
        }
        Mode::RetryAfter(status, seconds) => {
            let header = format!("retry-after: {seconds}\r\n");
            respond(&mut stream, &format!("{status} Status"), &header, "").await;
            status
        }
        Mode::Slow(wait) => {
            tokio::time::sleep(wait).await;
            respond(&mut stream, "200 OK", "", "late").await;
            200
        }
        Mode::Redirect => {
            respond(&mut stream, "302 Found", "location: /elsewhere\r\n", "").await;
            302
        }
        Mode::EndlessBody => {
            shared.received.lock().unwrap()[index].answered = 200;
            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("{:x}\r\n{}\r\n", 1024, "x".repeat(1024));
            while stream.write_all(chunk.as_bytes()).await.is_ok() {}
            return;
        }
    };
    shared.received.lock().unwrap()[index].answered = answered;
}

async fn respond(stream: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads one HTTP/1.1 request with a `content-length` body.
async fn read_request(stream: &mut TcpStream) -> Option<(Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((headers, body))
}
