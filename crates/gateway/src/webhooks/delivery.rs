//! One delivery attempt: the signed POST, what its answer means, and how it moves the
//! delivery's schedule.
//!
//! A 2xx is delivered; anything else is retried on the schedule of
//! [`crate::domain::event::retry_after`]. A 429 or 503 with `Retry-After` is not tried again
//! before the time it asks for. Redirects are never followed; the answer's body is never read.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::address::{AddressGuard, Refused};
use super::signing::Signer;
use crate::domain::event::{Delivery, DeliveryStatus};

/// What one POST came to.
#[derive(Debug)]
pub struct Outcome {
    /// The receiver's status, when it answered.
    pub http_status: Option<u16>,
    /// Why it does not count as delivered, in words for the merchant's engineers.
    pub error: Option<String>,
    /// How long the receiver asked us to wait (`Retry-After` on a 429 or 503).
    pub retry_after: Option<TimeDelta>,
    pub duration: Duration,
}

impl Outcome {
    pub fn delivered(&self) -> bool {
        self.http_status.is_some_and(|s| (200..300).contains(&s))
    }

    /// 410 Gone: the receiver asks to be disabled (Standard Webhooks).
    pub fn gone(&self) -> bool {
        self.http_status == Some(410)
    }
}

/// Where a POST goes and how it is signed.
pub struct Destination<'a> {
    pub client: &'a reqwest::Client,
    pub url: &'a str,
    pub signer: &'a Signer,
    /// The address guard, for endpoints made through the API (not for `webhooks.url`).
    pub guard: Option<&'a AddressGuard>,
    /// The client's timeout, for the message.
    pub timeout: Duration,
}

/// One signed POST of `body` to `to`. `attempt_at` (the gateway's clock) is the
/// `webhook-timestamp`; `Gateway-Signature` keeps the real time, as it always had.
pub async fn post(to: &Destination<'_>, event_id: &str, attempt_at: i64, body: Vec<u8>) -> Outcome {
    let Destination {
        client,
        url,
        signer,
        guard,
        timeout,
    } = *to;
    let started = Instant::now();
    let finish = |http_status, error: Option<String>, retry_after| Outcome {
        http_status,
        error,
        retry_after,
        duration: started.elapsed(),
    };
    if let Some(guard) = guard
        && let Err(why) = guard.check_before_sending(url)
    {
        return finish(None, Some(why), None);
    }
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let signed = signer.sign(event_id, t, attempt_at, &body);
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("gateway-signature", signed.gateway_signature)
        .header("gateway-event-id", event_id)
        .header("webhook-id", signed.webhook_id)
        .header("webhook-timestamp", signed.webhook_timestamp)
        .header("webhook-signature", signed.webhook_signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = match status {
                429 | 503 => retry_after(response.headers()),
                _ => None,
            };
            // The body is never read: dropping the response closes the connection.
            drop(response);
            let error = match status {
                200..=299 => None,
                300..=399 => Some(format!(
                    "answered {status}: redirects are not followed; configure the final URL"
                )),
                410 => Some(format!(
                    "answered {status}: the receiver is gone (a webhook endpoint answering 410 is disabled)"
                )),
                _ => Some(format!("answered {status}; a 2xx acknowledges an event")),
            };
            finish(Some(status), error, retry_after)
        }
        Err(e) => {
            let error = if let Some(refused) = Refused::find(&e) {
                refused
            } else if e.is_timeout() {
                format!(
                    "no answer within {} ms (webhooks.timeout_ms)",
                    timeout.as_millis()
                )
            } else if e.is_connect() {
                "could not connect".to_owned()
            } else {
                "the request failed before an answer came".to_owned()
            };
            finish(None, Some(error), None)
        }
    }
}

/// `Retry-After` as a wait: delay-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<TimeDelta> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return (seconds >= 0).then(|| TimeDelta::seconds(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - Utc::now()).max(TimeDelta::zero()))
}

/// After [`Delivery::record`]: a pending delivery waits at least until `at + wait`, or is
/// `failed` when that is past `max_age` after the event.
pub fn hold_for(
    delivery: &mut Delivery,
    at: DateTime<Utc>,
    wait: TimeDelta,
    event_created: DateTime<Utc>,
    max_age: TimeDelta,
) {
    let Some(next) = delivery.next_attempt_at else {
        return;
    };
    let held = at + wait;
    if held <= next {
        return;
    }
    if held > event_created + max_age {
        delivery.status = DeliveryStatus::Failed;
        delivery.next_attempt_at = None;
    } else {
        delivery.next_attempt_at = Some(held);
    }
}

/// Gives a delivery up without an attempt (its endpoint was deleted or disabled).
pub fn abandon(delivery: &mut Delivery) {
    delivery.status = DeliveryStatus::Failed;
    delivery.next_attempt_at = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&h), Some(TimeDelta::seconds(120)));
        let later = (Utc::now() + TimeDelta::hours(1)).to_rfc2822();
        h.insert(RETRY_AFTER, later.parse().unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(
            (wait - TimeDelta::hours(1)).num_seconds().abs() <= 2,
            "{wait}"
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn a_hold_moves_the_next_attempt_later_never_earlier() {
        let created = Utc::now();
        let mut d = Delivery::due_now(created);
        d.next_attempt_at = Some(created + TimeDelta::minutes(1));
        hold_for(
            &mut d,
            created,
            TimeDelta::seconds(10),
            created,
            TimeDelta::days(3),
        );
        assert_eq!(d.next_attempt_at, Some(created + TimeDelta::minutes(1)));
        hold_for(
            &mut d,
            created,
            TimeDelta::minutes(10),
            created,
            TimeDelta::days(3),
        );
        assert_eq!(d.next_attempt_at, Some(created + TimeDelta::minutes(10)));
        hold_for(
            &mut d,
            created,
            TimeDelta::days(4),
            created,
            TimeDelta::days(3),
        );
        assert_eq!(d.status, DeliveryStatus::Failed);
    }
}
