//! The demo storefront's webhook receiver (design §12): it checks each delivery's signature as a
//! real shop must (HMAC-SHA256 of `"{t}.{body}"` with its signing secret, `t` within five
//! minutes, a constant-time compare), keeps the last [`KEPT`] deliveries in memory, and shows
//! them at `/demo/webhooks`, newest first.

use std::collections::VecDeque;
use std::sync::Mutex;

use askama::Template;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;

/// How many deliveries the page keeps.
pub const KEPT: usize = 50;
/// How far `t` may be from the receiver's clock (Stripe's libraries' default).
pub const TOLERANCE_S: i64 = 300;

/// Checks a `Gateway-Signature` header against `body`, as of `now` (unix seconds).
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secret: &SecretString,
    now: i64,
) -> Result<(), &'static str> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let t = t.ok_or("the header has no timestamp")?;
    if (now - t).abs() > TOLERANCE_S {
        return Err("the timestamp is more than 5 minutes off: a replayed delivery?");
    }
    let matches = signatures
        .iter()
        .filter_map(|s| hex::decode(s).ok())
        .any(|s| {
            Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
                .map(|mut mac| {
                    mac.update(format!("{t}.").as_bytes());
                    mac.update(body);
                    mac.verify_slice(&s).is_ok()
                })
                .unwrap_or(false)
        });
    if matches {
        Ok(())
    } else {
        Err("no signature matches the shop's secret")
    }
}

/// One delivery as the page shows it.
#[derive(Debug, Clone)]
pub struct Received {
    pub received_at: DateTime<Utc>,
    pub event_id: String,
    pub kind: String,
    pub object_id: String,
    /// The checkout a refund belongs to.
    pub checkout_id: Option<String>,
    /// Why the signature was refused; `None` when it was verified.
    pub rejection: Option<&'static str>,
    /// The body, pretty-printed.
    pub body: String,
}

/// The deliveries received so far (the newest [`KEPT`]).
pub struct Inbox {
    secret: SecretString,
    received: Mutex<VecDeque<Received>>,
}

impl Inbox {
    pub fn new(secret: SecretString) -> Self {
        Self {
            secret,
            received: Mutex::new(VecDeque::new()),
        }
    }

    /// Records one delivery; answers whether its signature was verified (the route answers 2xx
    /// only then, as a shop should).
    pub fn receive(&self, signature: Option<&str>, body: &[u8], now: DateTime<Utc>) -> bool {
        let rejection = match signature {
            None => Some("the request carries no Gateway-Signature header"),
            Some(header) => verify_signature(header, body, &self.secret, now.timestamp()).err(),
        };
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
        let received = Received {
            received_at: now,
            event_id: text(&json["id"]),
            kind: text(&json["type"]),
            object_id: text(&json["data"]["object"]["id"]),
            checkout_id: json["data"]["object"]["checkout_id"]
                .as_str()
                .map(str::to_owned),
            rejection,
            body: serde_json::to_string_pretty(&json)
                .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned()),
        };
        let mut all = self
            .received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        all.push_front(received);
        all.truncate(KEPT);
        rejection.is_none()
    }

    /// Newest first.
    pub fn newest_first(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

struct Row<'a> {
    received_at: String,
    event_id: &'a str,
    kind: &'a str,
    tone: &'static str,
    repeat: bool,
    object_id: &'a str,
    is_refund: bool,
    link: Option<String>,
    verified: bool,
    rejection: &'static str,
    body: &'a str,
}

#[derive(Template)]
#[template(path = "demo_webhooks.html")]
struct WebhooksTemplate<'a> {
    rows: Vec<Row<'a>>,
}

/// The `/demo/webhooks` page.
pub fn webhooks_page(received: &[Received]) -> String {
    let rows = received
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let status = r.kind.rsplit('.').next().unwrap_or_default();
            let tone = match status {
                "succeeded" | "refunded" | "partially_refunded" => "ok",
                "failed" | "charged_back" | "expired" => "bad",
                "canceled" => "neutral",
                _ => "wait",
            };
            // A checkout's page is the result page, which also shows its refunds.
            let checkout = if r.object_id.starts_with("chk_") {
                Some(r.object_id.clone())
            } else {
                r.checkout_id.clone()
            };
            let link = checkout.map(|id| format!("/demo/result?checkout_id={id}"));
            Row {
                received_at: r.received_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                event_id: &r.event_id,
                kind: &r.kind,
                tone,
                // At least once: the same event may come again (a redelivery, a retry).
                repeat: received[i + 1..].iter().any(|o| o.event_id == r.event_id),
                object_id: &r.object_id,
                is_refund: r.object_id.starts_with("re_"),
                link,
                verified: r.rejection.is_none(),
                rejection: r.rejection.unwrap_or_default(),
                body: &r.body,
            }
        })
        .collect();
    WebhooksTemplate { rows }
        .render()
        .unwrap_or_else(|e| format!("the page could not be rendered: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn only_a_fresh_delivery_signed_with_the_shop_secret_is_accepted() {
        let secret = SecretString::from("whsec_demo_0123456789abcdef");
        let body = br#"{"id":"evt_1","type":"checkout.succeeded"}"#;
        let now = 1_800_000_000;
        let good = sign("whsec_demo_0123456789abcdef", now, body);
        assert_eq!(verify_signature(&good, body, &secret, now), Ok(()));
        // Rotation: one of several signatures matching is enough.
        let rotated = format!("{good},v1={}", "00".repeat(32));
        assert_eq!(verify_signature(&rotated, body, &secret, now), Ok(()));
        let other = sign("whsec_other_0123456789abcdef", now, body);
        assert!(verify_signature(&other, body, &secret, now).is_err());
        assert!(verify_signature(&good, b"{}", &secret, now).is_err());
        assert!(verify_signature(&good, body, &secret, now + 301).is_err());
        assert!(verify_signature("v1=abc", body, &secret, now).is_err());
    }

    #[test]
    fn the_page_lists_newest_first_and_marks_rejected_and_repeated_deliveries() {
        let inbox = Inbox::new(SecretString::from("whsec_demo_0123456789abcdef"));
        let now = Utc::now();
        let body = |id: &str, kind: &str| {
            format!(r#"{{"id":"{id}","type":"{kind}","data":{{"object":{{"id":"chk_1"}}}}}}"#)
        };
        let first = body("evt_a", "checkout.requires_action");
        let second = body("evt_b", "checkout.succeeded");
        let sig = |b: &str| sign("whsec_demo_0123456789abcdef", now.timestamp(), b.as_bytes());
        assert!(inbox.receive(Some(&sig(&first)), first.as_bytes(), now));
        assert!(inbox.receive(Some(&sig(&second)), second.as_bytes(), now));
        assert!(inbox.receive(Some(&sig(&second)), second.as_bytes(), now));
        assert!(!inbox.receive(Some("t=1,v1=00"), second.as_bytes(), now));
        let page = webhooks_page(&inbox.newest_first());
        let succeeded = page.find("checkout.succeeded").unwrap();
        let requires_action = page.find("checkout.requires_action").unwrap();
        assert!(succeeded < requires_action, "newest first");
        assert!(page.contains("rejected"));
        assert!(page.contains("(received again)"));
        assert!(page.contains("/demo/result?checkout_id=chk_1"));
    }
}
