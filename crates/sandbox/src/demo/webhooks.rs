//! The demo storefront's webhook receiver: it checks each delivery's signature as a
//! real shop must (HMAC-SHA256 of `"{t}.{body}"` with its signing secret, `t` within five
//! minutes, a constant-time compare), keeps the last [`KEPT`] verified deliveries in memory
//! (counting the refused ones), and shows them at `/demo/webhooks`, newest first, pay links
//! hidden.
//!
//! Beside the shop (`webhooks.url`), the sandbox makes two webhook endpoints of its own,
//! an ERP that takes checkouts and a support desk that takes refunds and saved
//! cards, each delivered to `POST /demo/webhooks/{name}` and checked by its Standard Webhooks
//! signature ([`verify_standard`]) with that endpoint's secret: the page says which destination
//! got which event.

use std::collections::VecDeque;
use std::sync::Mutex;

use askama::Template;
use aws_lc_rs::hmac;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

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
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
            let signed = [format!("{t}.").as_bytes(), body].concat();
            // Constant time, as a receiver should.
            hmac::verify(&key, &signed, &s).is_ok()
        });
    if matches {
        Ok(())
    } else {
        Err("no signature matches the shop's secret")
    }
}

/// Checks the Standard Webhooks headers of a delivery against `body`, as of `now` (unix
/// seconds): `webhook-timestamp` within five minutes, and one `v1,` signature equal to the
/// HMAC-SHA256 of `"{id}.{timestamp}.{body}"` keyed with one of `secrets` (a `whsec_` secret by
/// its decoded bytes).
pub fn verify_standard(
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now: i64,
) -> Result<(), &'static str> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let (Some(id), Some(timestamp), Some(signature)) = (id, timestamp, signature) else {
        return Err(
            "the request lacks a webhook-id, webhook-timestamp or webhook-signature header",
        );
    };
    let t: i64 = timestamp
        .parse()
        .map_err(|_| "webhook-timestamp is not a number")?;
    if (now - t).abs() > TOLERANCE_S {
        return Err("the timestamp is more than 5 minutes off: a replayed delivery?");
    }
    let candidates: Vec<Vec<u8>> = signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| engine.decode(s).ok())
        .collect();
    let matches = secrets.iter().any(|secret| {
        let secret = secret.expose_secret();
        let key = secret
            .strip_prefix("whsec_")
            .and_then(|rest| engine.decode(rest).ok())
            .unwrap_or_else(|| secret.as_bytes().to_vec());
        candidates.iter().any(|c| {
            let signed = [format!("{id}.{t}.").as_bytes(), body].concat();
            hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &key), &signed, c).is_ok()
        })
    });
    if matches {
        Ok(())
    } else {
        Err("no signature matches the endpoint's secret")
    }
}

/// A webhook endpoint the sandbox made for its demo: where its deliveries land
/// (`POST /demo/webhooks/{name}`) and the secrets that sign them.
#[derive(Debug, Clone)]
pub struct DemoEndpoint {
    /// The path segment, `erp` or `support`.
    pub name: &'static str,
    /// What the page calls it.
    pub label: &'static str,
    pub id: String,
    pub events: Vec<String>,
    pub secrets: Vec<SecretString>,
}

/// The demo's endpoints: a name, what the page calls it, its filter.
pub const DEMO_ENDPOINTS: &[(&str, &str, &[&str])] = &[
    ("erp", "ERP", &["checkout.*"]),
    (
        "support",
        "Support desk",
        &["refund.*", "payment_method.*", "webhook_endpoint.*"],
    ),
];

/// What the page calls the shop's own endpoint (`webhooks.url`).
pub const SHOP_DESTINATION: &str = "Shop";

/// One verified delivery as the page shows it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Which destination got it: [`SHOP_DESTINATION`] or a [`DemoEndpoint`]'s label.
    pub destination: String,
    pub received_at: DateTime<Utc>,
    pub event_id: String,
    pub kind: String,
    pub object_id: String,
    /// The checkout a refund belongs to.
    pub checkout_id: Option<String>,
    /// The body, pretty-printed, pay links hidden (see [`hide_pay_links`]).
    pub body: String,
}

/// The deliveries received so far: the newest `KEPT` whose signature verified, and how many
/// did not. `/demo/webhooks` needs no key, so anyone who can reach the sandbox could post to it:
/// a forged delivery is counted, never listed, so it cannot push the gateway's real ones out.
pub struct Inbox {
    secret: SecretString,
    state: Mutex<InboxState>,
    /// The demo's webhook endpoints, once made.
    endpoints: Mutex<Vec<DemoEndpoint>>,
}

#[derive(Default)]
struct InboxState {
    received: VecDeque<Received>,
    refused: u64,
    last_refusal: Option<&'static str>,
}

/// What the page shows of the deliveries that were refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused {
    pub count: u64,
    /// Why the latest one was refused.
    pub last_reason: Option<&'static str>,
}

impl Inbox {
    pub fn new(secret: SecretString) -> Self {
        Self {
            secret,
            state: Mutex::new(InboxState::default()),
            endpoints: Mutex::new(Vec::new()),
        }
    }

    /// Receives for this endpoint from now on.
    pub fn add_endpoint(&self, endpoint: DemoEndpoint) {
        self.endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(endpoint);
    }

    /// The demo's endpoints.
    pub fn endpoints(&self) -> Vec<DemoEndpoint> {
        self.endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records one delivery to the demo endpoint `name`, checked by its Standard Webhooks
    /// headers (`id`, `timestamp`, `signature`); answers whether it verified. `None` when the
    /// sandbox has no such endpoint.
    pub fn receive_at_endpoint(
        &self,
        name: &str,
        headers: [Option<&str>; 3],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Option<bool> {
        let endpoint = self.endpoints().into_iter().find(|e| e.name == name)?;
        let [id, timestamp, signature] = headers;
        let verdict = verify_standard(
            id,
            timestamp,
            signature,
            body,
            &endpoint.secrets,
            now.timestamp(),
        );
        Some(self.keep(endpoint.label, verdict, body, now))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records one delivery; answers whether its signature was verified (the route answers 2xx
    /// only then, as a shop should). Only a verified one is kept for the page.
    pub fn receive(&self, signature: Option<&str>, body: &[u8], now: DateTime<Utc>) -> bool {
        let verdict = match signature {
            None => Err("the request carries no Gateway-Signature header"),
            Some(header) => verify_signature(header, body, &self.secret, now.timestamp()),
        };
        self.keep(SHOP_DESTINATION, verdict, body, now)
    }

    /// Keeps a verified delivery to `destination`, or counts a refused one.
    fn keep(
        &self,
        destination: &str,
        verdict: Result<(), &'static str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> bool {
        if let Err(reason) = verdict {
            let mut state = self.state();
            state.refused += 1;
            state.last_refusal = Some(reason);
            return false;
        }
        let mut json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        hide_pay_links(&mut json);
        let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
        let received = Received {
            destination: destination.to_owned(),
            received_at: now,
            event_id: text(&json["id"]),
            kind: text(&json["type"]),
            object_id: text(&json["data"]["object"]["id"]),
            checkout_id: json["data"]["object"]["checkout_id"]
                .as_str()
                .map(str::to_owned),
            body: serde_json::to_string_pretty(&json)
                .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned()),
        };
        let mut state = self.state();
        state.received.push_front(received);
        state.received.truncate(KEPT);
        true
    }

    /// The verified deliveries, newest first.
    pub fn newest_first(&self) -> Vec<Received> {
        self.state().received.iter().cloned().collect()
    }

    /// The deliveries refused so far.
    pub fn refused(&self) -> Refused {
        let state = self.state();
        Refused {
            count: state.refused,
            last_reason: state.last_refusal,
        }
    }
}

/// What the page shows instead of a pay link.
pub const PAY_LINK_HIDDEN: &str = "(the pay link: not shown on this page, which needs no key)";

/// Replaces every pay link (`…/pay/{token}`, a checkout's `next_action`) in `value`: whoever
/// opens a pay link can pay, and `/demo/webhooks` is open to anyone who reaches the sandbox.
pub fn hide_pay_links(value: &mut Value) {
    match value {
        Value::String(s) => {
            let is_pay_link = url::Url::parse(s).is_ok_and(|u| u.path().starts_with("/pay/"));
            if is_pay_link {
                *s = PAY_LINK_HIDDEN.to_owned();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(hide_pay_links),
        Value::Object(fields) => fields.values_mut().for_each(hide_pay_links),
        _ => {}
    }
}

struct Row<'a> {
    destination: &'a str,
    received_at: String,
    /// `20:01:02`: the summary line's time.
    time: String,
    /// `chk_…e798b7`: enough of the object's id to tell the lines apart.
    short_id: String,
    event_id: &'a str,
    kind: &'a str,
    tone: &'static str,
    repeat: bool,
    object_id: &'a str,
    is_refund: bool,
    link: Option<String>,
    body: &'a str,
}

#[derive(Template)]
#[template(path = "demo_webhooks.html")]
struct WebhooksTemplate<'a> {
    rows: Vec<Row<'a>>,
    kept: usize,
    refused: Refused,
    destinations: Vec<Destination>,
}

/// A destination's line in the page's summary: what it takes and how many it got.
struct Destination {
    label: String,
    detail: String,
    count: usize,
}

/// `chk_0193…e798b7` → `chk_…e798b7`; a short id as it is.
fn short_id(id: &str) -> String {
    match id.split_once('_') {
        Some((prefix, rest)) if rest.len() > 8 && rest.is_char_boundary(rest.len() - 6) => {
            format!("{prefix}_…{}", &rest[rest.len() - 6..])
        }
        _ => id.to_owned(),
    }
}

/// The `/demo/webhooks` page, with the demo's endpoints (the shop's `webhooks.url` first).
pub fn webhooks_page_with(
    received: &[Received],
    refused: Refused,
    endpoints: &[DemoEndpoint],
) -> String {
    let count = |label: &str| received.iter().filter(|r| r.destination == label).count();
    let mut destinations = vec![Destination {
        label: SHOP_DESTINATION.to_owned(),
        detail: "webhooks.url · every event · Gateway-Signature and Standard Webhooks".to_owned(),
        count: count(SHOP_DESTINATION),
    }];
    destinations.extend(endpoints.iter().map(|e| Destination {
        label: e.label.to_owned(),
        detail: format!("{} · {} · Standard Webhooks", e.id, e.events.join(", ")),
        count: count(e.label),
    }));
    render(received, refused, destinations)
}

/// The `/demo/webhooks` page.
pub fn webhooks_page(received: &[Received], refused: Refused) -> String {
    webhooks_page_with(received, refused, &[])
}

fn render(received: &[Received], refused: Refused, destinations: Vec<Destination>) -> String {
    let rows = received
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let status = r.kind.rsplit('.').next().unwrap_or_default();
            let tone = match status {
                "succeeded" | "refunded" | "partially_refunded" => "ok",
                "failed" | "charged_back" | "expired" | "disabled" => "bad",
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
                destination: &r.destination,
                received_at: r.received_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                time: r.received_at.format("%H:%M:%S").to_string(),
                short_id: short_id(&r.object_id),
                event_id: &r.event_id,
                kind: &r.kind,
                tone,
                // At least once: the same event may come again (a redelivery, a retry), to
                // the same destination; each destination gets its own copy.
                repeat: received[i + 1..]
                    .iter()
                    .any(|o| o.event_id == r.event_id && o.destination == r.destination),
                object_id: &r.object_id,
                is_refund: r.object_id.starts_with("re_"),
                link,
                body: &r.body,
            }
        })
        .collect();
    WebhooksTemplate {
        rows,
        kept: KEPT,
        refused,
        destinations,
    }
    .render()
    .unwrap_or_else(|e| format!("the page could not be rendered: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let mac = hmac::sign(&key, &[format!("{t}.").as_bytes(), body].concat());
        format!("t={t},v1={}", hex::encode(mac))
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
    fn the_page_lists_verified_deliveries_newest_first_and_marks_repeated_ones() {
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
        let page = webhooks_page(&inbox.newest_first(), inbox.refused());
        let succeeded = page.find("checkout.succeeded").unwrap();
        let requires_action = page.find("checkout.requires_action").unwrap();
        assert!(succeeded < requires_action, "newest first");
        assert!(page.contains("· received again"), "{page}");
        assert!(page.contains("/demo/result?checkout_id=chk_1"));
        assert!(!page.contains("refused"), "{page}");
        assert!(
            !page.contains("http-equiv=\"refresh\""),
            "an opened payload stays open"
        );
    }

    #[test]
    fn forged_deliveries_are_counted_and_never_push_real_ones_out() {
        let inbox = Inbox::new(SecretString::from("whsec_demo_0123456789abcdef"));
        let now = Utc::now();
        let real =
            r#"{"id":"evt_real","type":"checkout.succeeded","data":{"object":{"id":"chk_1"}}}"#;
        let sig = sign(
            "whsec_demo_0123456789abcdef",
            now.timestamp(),
            real.as_bytes(),
        );
        assert!(inbox.receive(Some(&sig), real.as_bytes(), now));
        let forged =
            r#"{"id":"evt_forged","type":"checkout.succeeded","data":{"object":{"id":"chk_2"}}}"#;
        for _ in 0..KEPT + 10 {
            assert!(!inbox.receive(Some("t=1,v1=00"), forged.as_bytes(), now));
        }
        assert!(!inbox.receive(None, forged.as_bytes(), now));
        let kept = inbox.newest_first();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].event_id, "evt_real");
        assert_eq!(inbox.refused().count, KEPT as u64 + 11);
        let page = webhooks_page(&kept, inbox.refused());
        assert!(!page.contains("evt_forged"), "{page}");
        assert!(page.contains("61 deliveries were refused"), "{page}");
        assert!(page.contains("their signatures did not verify"), "{page}");
        assert!(page.contains("no Gateway-Signature header"), "{page}");
    }

    #[test]
    fn a_standard_webhooks_delivery_verifies_with_its_endpoints_secret_only() {
        // The reference library's test vector.
        let secrets = [SecretString::from("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")];
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let (id, t) = ("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553");
        let sig = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        let now = 1_649_367_553;
        assert_eq!(
            verify_standard(Some(id), Some(t), Some(sig), body, &secrets, now),
            Ok(())
        );
        let both = format!("v1,AAAA {sig}");
        assert!(verify_standard(Some(id), Some(t), Some(&both), body, &secrets, now).is_ok());
        let other = [SecretString::from(
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )];
        assert!(verify_standard(Some(id), Some(t), Some(sig), body, &other, now).is_err());
        assert!(verify_standard(Some(id), Some(t), Some(sig), b"{}", &secrets, now).is_err());
        assert!(verify_standard(Some(id), Some(t), Some(sig), body, &secrets, now + 301).is_err());
        assert!(verify_standard(None, Some(t), Some(sig), body, &secrets, now).is_err());
    }

    #[test]
    fn pay_links_are_hidden_wherever_they_are() {
        let mut event = serde_json::json!({
            "id": "evt_1", "type": "checkout.requires_action",
            "data": {"object": {"id": "chk_1", "return_url": "http://127.0.0.1:8080/demo/result",
                "next_action": {"type": "redirect_to_url", "redirect_to_url": {
                    "url": "http://127.0.0.1:8080/pay/tok_secret", "return_url": "http://shop.example/r"}},
                "items": [{"name": "/pay/ is only a name"}]}}
        });
        hide_pay_links(&mut event);
        let text = event.to_string();
        assert!(!text.contains("tok_secret"), "{text}");
        assert!(text.contains(PAY_LINK_HIDDEN), "{text}");
        assert!(text.contains("http://127.0.0.1:8080/demo/result"), "{text}");
        assert!(text.contains("/pay/ is only a name"), "{text}");
    }
}
