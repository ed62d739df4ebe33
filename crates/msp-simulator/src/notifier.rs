//! Notifications to the merchant (reference §5): on every status change, GET or POST (signed),
//! acknowledged only by HTTP 200 with `OK` in the first 100 characters, otherwise sent again
//! three more times at the retry interval. Every attempt is logged for `GET /sim/notifications`.
//!
//! Retries come due on the simulator's clock (`PUT /sim/clock` brings them forward), but every
//! attempt is signed with the real Unix time: MSP's clock is the real one.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::clock::Clock;
use super::faults::Faults;
use super::orders::NotificationMethod;
use super::signature;

/// First attempt plus three retries (reference §5.5).
const ATTEMPTS: u32 = 4;
/// The log keeps this many attempts; older ones are dropped so a long benchmark cannot grow it
/// without bound.
const LOG_CAPACITY: usize = 100_000;
/// With `reorder_notifications`, how long a notification waits for its order's next one.
const REORDER_HOLD: Duration = Duration::from_secs(1);

type HeldKey = (Arc<str>, String);

/// One notification: the order as it was at the status change that caused it.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub api_key: Arc<str>,
    pub order_id: String,
    pub order_status: &'static str,
    pub url: url::Url,
    pub method: NotificationMethod,
    /// The compact JSON order object (POST only).
    pub body: Option<Arc<[u8]>>,
}

/// One delivery attempt, as listed by `GET /sim/notifications`.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub order_id: String,
    /// The order status the notification reports.
    pub order_status: String,
    pub method: &'static str,
    /// The URL called, `transactionid` and `timestamp` included.
    pub url: String,
    /// The Unix time sent (in `timestamp` and, for POST, in `Auth`).
    pub timestamp: i64,
    /// 1 for the first attempt, up to 4.
    pub attempt: u32,
    /// The HTTP status answered; null when the call failed (refused, timed out).
    pub status: Option<u16>,
    /// The answer's body (its first 1000 characters) or the transport error.
    pub body: Option<String>,
    pub acknowledged: bool,
    /// When the attempt was sent, real Unix milliseconds (not moved by `PUT /sim/clock`).
    pub at_ms: u64,
}

pub(crate) struct Notifier {
    http: reqwest::Client,
    retry_interval: Duration,
    clock: Arc<Clock>,
    log: Mutex<VecDeque<Attempt>>,
    /// `reorder_notifications`: per (API key, order id), the hold id and the job held.
    held: Mutex<HashMap<HeldKey, (u64, Job)>>,
    next_hold: AtomicU64,
}

/// The real time, which `timestamp` and `Auth` carry whatever the simulator's clock says.
fn real_unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// MSP's acknowledgement rule: HTTP 200 and `OK` within the first 100 characters (which also
/// covers `MULTISAFEPAY_OK`).
pub(crate) fn acknowledges(status: u16, body: &str) -> bool {
    status == 200 && body.chars().take(100).collect::<String>().contains("OK")
}

impl Notifier {
    pub(crate) fn new(retry_interval: Duration, clock: Arc<Clock>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // MSP counts a redirect as a failed delivery; it does not follow it.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            retry_interval,
            clock,
            log: Mutex::new(VecDeque::new()),
            held: Mutex::new(HashMap::new()),
            next_hold: AtomicU64::new(0),
        })
    }

    pub(crate) fn attempts(&self) -> Vec<Attempt> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    fn record(&self, attempt: Attempt) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(attempt);
    }

    /// Delivers `job` with its retries. `faults` is read again at every attempt.
    pub(crate) async fn deliver(self: &Arc<Self>, job: Job, faults: impl Fn() -> Faults) {
        let delay = faults().notification_delay_ms;
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        for attempt in 1..=ATTEMPTS {
            let due = self.clock.due_in(self.retry_interval);
            let f = faults();
            let copies = if f.duplicate_notifications { 2 } else { 1 };
            let mut acked = false;
            for _ in 0..copies {
                acked |= self.send(&job, attempt, &f).await;
            }
            if acked {
                return;
            }
            if attempt < ATTEMPTS {
                // Due one interval after the failed attempt started, whatever it took.
                self.clock.sleep_until(due).await;
            }
        }
    }

    /// With `reorder_notifications`: holds `job` until its order's next notification (then sends
    /// the newer first) or until the hold ends. Returns the jobs to deliver now, in order.
    pub(crate) fn hold_for_reorder(&self, job: Job) -> (Vec<Job>, Option<u64>) {
        let key = (job.api_key.clone(), job.order_id.clone());
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match held.remove(&key) {
            Some((_, older)) => (vec![job, older], None),
            None => {
                let id = self.next_hold.fetch_add(1, Ordering::Relaxed);
                held.insert(key, (id, job));
                (vec![], Some(id))
            }
        }
    }

    /// The hold of `id` ended: returns its job if no newer one released it already.
    pub(crate) fn release_hold(&self, api_key: &Arc<str>, order_id: &str, id: u64) -> Option<Job> {
        let key = (api_key.clone(), order_id.to_owned());
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match held.get(&key) {
            Some((held_id, _)) if *held_id == id => held.remove(&key).map(|(_, j)| j),
            _ => None,
        }
    }

    pub(crate) fn reorder_hold() -> Duration {
        REORDER_HOLD
    }

    async fn send(&self, job: &Job, attempt: u32, faults: &Faults) -> bool {
        let now = real_unix_now();
        let timestamp = now.as_secs() as i64 - if faults.stale_timestamps { 3600 } else { 0 };
        let mut url = job.url.clone();
        url.query_pairs_mut()
            .append_pair("transactionid", &job.order_id)
            .append_pair("timestamp", &timestamp.to_string());
        let request = match (job.method, &job.body) {
            (NotificationMethod::Post, Some(body)) => {
                let key: &str = if faults.bad_signatures {
                    "not-the-api-key"
                } else {
                    &job.api_key
                };
                self.http
                    .post(url.clone())
                    .header("Auth", signature::auth_header(key, timestamp, body))
                    .header("Content-Type", "application/json")
                    .body(body.to_vec())
            }
            _ => self.http.get(url.clone()),
        };
        let (status, body) = match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                (
                    Some(status),
                    Some(text.chars().take(1000).collect::<String>()),
                )
            }
            Err(e) => (None, Some(format!("delivery failed: {e}"))),
        };
        let acknowledged = status.is_some_and(|s| acknowledges(s, body.as_deref().unwrap_or("")));
        self.record(Attempt {
            order_id: job.order_id.clone(),
            order_status: job.order_status.to_owned(),
            method: match job.method {
                NotificationMethod::Get => "GET",
                NotificationMethod::Post => "POST",
            },
            url: url.to_string(),
            timestamp,
            attempt,
            status,
            body,
            acknowledged,
            at_ms: now.as_millis() as u64,
        });
        acknowledged
    }
}

#[cfg(test)]
mod tests {
    use super::acknowledges;

    #[test]
    fn only_a_200_with_ok_in_the_first_100_characters_acknowledges() {
        assert!(acknowledges(200, "OK"));
        assert!(acknowledges(200, "MULTISAFEPAY_OK"));
        assert!(acknowledges(200, &format!("{}OK", " ".repeat(98))));
        assert!(!acknowledges(200, &format!("{}OK", " ".repeat(99))));
        assert!(!acknowledges(204, "OK"));
        assert!(!acknowledges(500, "OK"));
        assert!(!acknowledges(200, "ok"));
    }
}
