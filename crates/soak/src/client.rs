//! The merchant's side: calls to the gateway that retry the way the README tells merchants to
//! (the same `Idempotency-Key` and body until an answer that is not "try again"), and the
//! counts of what failed, by kind of request and by phase of the run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

/// The phase of the run an attempt was made in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Faults = 0,
    Settle = 1,
    Fresh = 2,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Faults => "during faults",
            Phase::Settle => "while settling",
            Phase::Fresh => "fresh requests",
        }
    }
}

pub struct PhaseCell(AtomicU8);

impl PhaseCell {
    pub fn new() -> Self {
        Self(AtomicU8::new(0))
    }
    pub fn get(&self) -> Phase {
        match self.0.load(Ordering::SeqCst) {
            0 => Phase::Faults,
            1 => Phase::Settle,
            _ => Phase::Fresh,
        }
    }
    pub fn set(&self, p: Phase) {
        self.0.store(p as u8, Ordering::SeqCst);
    }
}

/// Counters: (phase, kind of request, what happened) → count.
#[derive(Default)]
pub struct Stats {
    /// Operations started, by kind (each may take several attempts).
    pub operations: Mutex<BTreeMap<&'static str, u64>>,
    /// Attempts, by kind.
    pub attempts: Mutex<BTreeMap<&'static str, u64>>,
    /// Failed attempts (retried or not): (phase, kind, why).
    pub failures: Mutex<BTreeMap<(Phase, &'static str, String), u64>>,
    /// Operations that ended refused (a 4xx that is not "try again"): (kind, code).
    pub refusals: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Stats {
    pub fn count_operation(&self, kind: &'static str) {
        *lock(&self.operations).entry(kind).or_default() += 1;
    }
    fn count_attempt(&self, kind: &'static str) {
        *lock(&self.attempts).entry(kind).or_default() += 1;
    }
    pub fn count_failure(&self, phase: Phase, kind: &'static str, why: String) {
        *lock(&self.failures).entry((phase, kind, why)).or_default() += 1;
    }
    fn count_refusal(&self, kind: &'static str, code: String) {
        *lock(&self.refusals).entry((kind, code)).or_default() += 1;
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How an operation ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// A 2xx, with its body.
    Done(Value),
    /// A final 4xx: the status and the error's `code`.
    Refused(u16, String),
    /// No final answer before the operation's deadline.
    GaveUp(String),
}

pub struct Api<'a> {
    pub http: &'a reqwest::Client,
    pub base: &'a str,
    pub key: &'a str,
    pub stats: &'a Stats,
    pub phase: &'a PhaseCell,
    /// How long one operation keeps retrying.
    pub patience: Duration,
    /// Fresh requests: a failed attempt is not retried (they must all succeed at once).
    pub no_retry: bool,
}

impl Api<'_> {
    /// One merchant call, retried with the same key and body while the answer says "try
    /// again": no answer, 5xx, 409 `idempotency_key_in_use`, 429.
    pub async fn call(
        &self,
        kind: &'static str,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Outcome {
        self.stats.count_operation(kind);
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            self.stats.count_attempt(kind);
            let phase = self.phase.get();
            let mut req = self
                .http
                .request(method.clone(), format!("{}{}", self.base, path))
                .bearer_auth(self.key)
                .timeout(Duration::from_secs(30));
            if let Some(k) = key {
                req = req.header("Idempotency-Key", k);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let why = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let text = resp.text().await.unwrap_or_default();
                    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let code = json["error"]["code"].as_str().unwrap_or("").to_owned();
                    if (200..300).contains(&status) {
                        return Outcome::Done(json);
                    }
                    // 502: MultiSafepay's answer is unknown; the same key replays it, so the
                    // caller reads the checkout instead (the API reference's advice).
                    let unknown = status == 502 && code == "psp_unusable_response";
                    let again = !unknown && status >= 500
                        || status == 429
                        || status == 408
                        || (status == 409 && code == "idempotency_key_in_use");
                    if unknown {
                        self.stats
                            .count_failure(phase, kind, format!("{status} {code}"));
                    }
                    if !again {
                        self.stats.count_refusal(kind, format!("{status} {code}"));
                        return Outcome::Refused(status, code);
                    }
                    if let Some(s) = retry_after {
                        delay = delay.max(Duration::from_secs(s.min(10)));
                    }
                    format!("{status} {code}").trim().to_owned()
                }
                Err(e) if e.is_timeout() => "no answer (timeout)".to_owned(),
                Err(e) if e.is_connect() => "connection refused".to_owned(),
                Err(_) => "connection lost".to_owned(),
            };
            self.stats.count_failure(phase, kind, why.clone());
            if self.no_retry || started.elapsed() > self.patience {
                return Outcome::GaveUp(why);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// A GET that must succeed (retried like the rest); its body or None.
    pub async fn get(&self, kind: &'static str, path: &str) -> Option<Value> {
        match self.call(kind, Method::GET, path, None, None).await {
            Outcome::Done(v) => Some(v),
            _ => None,
        }
    }
}
