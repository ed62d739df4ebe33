//! What the soak's clients do: a shop's checkouts of every kind, and what it then does with them
//! (refunds, captures, cancels), each call retried with its own `Idempotency-Key`. Everything a
//! client was answered goes into the [`Ledger`], which the checks hold the system against.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use reqwest::Method;
use serde_json::{Value, json};
use test_support::checkout::CheckoutRequest;

use crate::client::{Api, Outcome, Phase, PhaseCell, Stats, lock};

pub const FRICTIONLESS: &str = "374500000000015";
pub const CHALLENGED: &str = "4111111111111111";
/// Not enrolled: paid (or authorised) in the create answer, and manual capture is allowed (Visa).
pub const NOT_ENROLLED_VISA: &str = "4012001038443335";
pub const REFUSED: &str = "4242424242424242";

pub const SCENARIOS: [&str; 6] = [
    "frictionless",
    "three_ds",
    "manual_capture",
    "cancel_unpaid",
    "saved_card",
    "declined",
];

/// One keyed request and every answer it got.
#[derive(Clone, Debug, Default)]
pub struct KeyedRec {
    pub kind: &'static str,
    pub key: String,
    /// The object id of every 2xx answer to this key (the first answer, and deliberate
    /// replays).
    pub ids: Vec<String>,
    /// The amount asked for (refunds, captures), None for "all".
    pub amount: Option<i64>,
    /// How it ended: `done`, `refused <status> <code>`, `gave up: …`.
    pub outcome: String,
}

/// A checkout as its client knows it.
#[derive(Clone, Debug, Default)]
pub struct CheckoutRec {
    pub scenario: &'static str,
    pub create: KeyedRec,
    pub id: Option<String>,
    /// Refunds, captures and cancels of this checkout.
    pub later: Vec<KeyedRec>,
    /// Made by the fresh requests after the run (they must all have succeeded at once).
    pub fresh: bool,
    /// A step that went wrong for the client (not necessarily a violation: the checks decide).
    pub notes: Vec<String>,
}

#[derive(Default)]
pub struct Ledger {
    pub checkouts: Mutex<Vec<CheckoutRec>>,
}

pub struct Ctx {
    pub http: reqwest::Client,
    /// A client that follows no redirects: the shopper's browser, step by step.
    pub browser: reqwest::Client,
    pub base: String,
    pub key: String,
    pub stats: Stats,
    pub phase: PhaseCell,
    pub ledger: Ledger,
    pub patience: Duration,
    pub run: String,
    /// The simulator's URL: where the bank's 3-D Secure page is.
    pub sim_url: String,
}

impl Ctx {
    pub fn api(&self, no_retry: bool) -> Api<'_> {
        Api {
            http: &self.http,
            base: &self.base,
            key: &self.key,
            stats: &self.stats,
            phase: &self.phase,
            patience: self.patience,
            no_retry,
        }
    }
}

/// Runs one scenario to its end and records it. `fresh`: no retries (the fresh requests).
pub async fn run(ctx: &Ctx, scenario: &'static str, rng: &mut StdRng, fresh: bool) -> bool {
    let api = ctx.api(fresh);
    let mut rec = CheckoutRec {
        scenario,
        fresh,
        ..Default::default()
    };
    let ok = drive(ctx, &api, scenario, rng, &mut rec).await;
    lock(&ctx.ledger.checkouts).push(rec);
    ok
}

/// The scenario's steps; false when a step did not succeed.
async fn drive(
    ctx: &Ctx,
    api: &Api<'_>,
    scenario: &'static str,
    rng: &mut StdRng,
    rec: &mut CheckoutRec,
) -> bool {
    // A shop's order number: digits the card-number rule never reads as a card number (a bare
    // UUID's hex sometimes holds 13 Luhn-valid digits in a row, which the gateway refuses, as
    // its contract says, about once in 600 checkouts).
    static ORDER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let order = ORDER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reference = format!("{}-order-{order}", ctx.run);
    let mut body = match scenario {
        "frictionless" => CheckoutRequest::new(FRICTIONLESS)
            .reference(&reference)
            .body(),
        "three_ds" | "cancel_unpaid" => CheckoutRequest::new(CHALLENGED)
            .reference(&reference)
            .body(),
        "manual_capture" => {
            let card = if rng.random_bool(0.5) {
                NOT_ENROLLED_VISA
            } else {
                CHALLENGED
            };
            let mut b = CheckoutRequest::new(card).reference(&reference).body();
            b["capture_method"] = json!("manual");
            b
        }
        "declined" => CheckoutRequest::new(REFUSED).reference(&reference).body(),
        "saved_card" => saved_card_body(&reference),
        _ => unreachable!("unknown scenario {scenario}"),
    };
    if scenario != "saved_card" {
        // Amounts differ from checkout to checkout (one T-shirt more or less).
        let quantity = rng.random_range(1..=4);
        body["items"][0]["quantity"] = json!(quantity);
        body["amount"] = json!(1500 * quantity + 495);
    }
    let kind = match scenario {
        "saved_card" => "create saved card",
        "manual_capture" => "create manual capture",
        "three_ds" | "cancel_unpaid" => "create 3-D Secure",
        "declined" => "create declined",
        _ => "create frictionless",
    };
    let Some(checkout) = keyed(
        api,
        rng,
        &mut rec.create,
        kind,
        "/v1/checkouts".into(),
        &body,
    )
    .await
    else {
        return false;
    };
    let id = checkout["id"].as_str().unwrap_or_default().to_owned();
    rec.id = Some(id.clone());
    let mut checkout = checkout;

    if scenario == "declined" {
        return checkout["status"] == "failed"
            || note(rec, format!("declined card: {}", checkout["status"]));
    }
    if scenario == "cancel_unpaid" {
        return change(api, rng, rec, "cancel", &id, &json!(null), "canceled")
            .await
            .is_some();
    }
    if checkout["status"] == "requires_action" {
        let url = checkout["next_action"]["redirect_to_url"]["url"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Err(e) = pay(ctx, api, &url).await {
            return note(rec, format!("3-D Secure: {e}"));
        }
    }
    // What the shop does next needs the payment's outcome: ask (with `refresh`) until MSP's
    // answer is known.
    let want = if scenario == "manual_capture" {
        "requires_capture"
    } else {
        "succeeded"
    };
    match settle_status(api, &id, want).await {
        Some(c) => checkout = c,
        None => return note(rec, format!("never {want}")),
    }
    let mut captured = checkout["amount"].as_i64().unwrap_or(0);
    if scenario == "saved_card" {
        let Some(pm) = checkout["payment_method"].as_str().map(str::to_owned) else {
            return note(rec, "no payment_method after the saving checkout".into());
        };
        // The saved card pays a second checkout, without the shopper.
        let charge_body = json!({
            "currency": "EUR",
            "reference": format!("{reference}-charge"),
            "items": [{"name": "Monthly plan", "quantity": 1, "unit_amount": rng.random_range(500..3000)}],
            "payment_method": pm,
            "customer": {"email": "jo@example.com", "ip_address": "203.0.113.7", "address": {"country": "NL"}}
        });
        let mut charge = CheckoutRec {
            scenario: "saved_card_charge",
            fresh: rec.fresh,
            ..Default::default()
        };
        let Some(c) = keyed(
            api,
            rng,
            &mut charge.create,
            "charge saved card",
            "/v1/checkouts".into(),
            &charge_body,
        )
        .await
        else {
            lock(&ctx.ledger.checkouts).push(charge);
            return false;
        };
        let charge_id = c["id"].as_str().unwrap_or_default().to_owned();
        charge.id = Some(charge_id.clone());
        let ok = match settle_status(api, &charge_id, "succeeded").await {
            Some(c) => {
                let amount = c["amount"].as_i64().unwrap_or(0);
                refunds(api, rng, &charge_id, amount, &mut charge).await
            }
            None => note(&mut charge, "saved-card charge never succeeded".into()),
        };
        lock(&ctx.ledger.checkouts).push(charge);
        return ok;
    }
    if scenario == "manual_capture" {
        let amount = checkout["amount"].as_i64().unwrap_or(0);
        if rng.random_bool(0.3) {
            return change(api, rng, rec, "cancel", &id, &json!(null), "canceled")
                .await
                .is_some();
        }
        let part = rng.random_bool(0.5);
        let capture_amount = if part {
            Some(amount - rng.random_range(100..1000))
        } else {
            None
        };
        let capture_body = match capture_amount {
            Some(a) => json!({"amount": a}),
            None => json!(null),
        };
        let done = change(api, rng, rec, "capture", &id, &capture_body, "succeeded").await;
        match done {
            Some(c) => {
                captured = c["amount_captured"]
                    .as_i64()
                    .unwrap_or(capture_amount.unwrap_or(amount))
            }
            None => return false,
        }
    }
    refunds(api, rng, &id, captured, rec).await
}

/// A capture or cancel, as the API reference says to make one: with a key, retried with it
/// while the answer says "try again"; a 502 (MultiSafepay's answer unknown, which a retry with
/// the same key replays) is followed by reading the checkout (`?refresh=true`) until it shows
/// the change, and only when it does not after a minute, a new request with a new key.
async fn change(
    api: &Api<'_>,
    rng: &mut StdRng,
    rec: &mut CheckoutRec,
    kind: &'static str,
    id: &str,
    body: &Value,
    done_status: &str,
) -> Option<Value> {
    for _ in 0..3 {
        let mut r = KeyedRec::default();
        let done = keyed(
            api,
            rng,
            &mut r,
            kind,
            format!("/v1/checkouts/{id}/{kind}"),
            body,
        )
        .await;
        let unknown = r.outcome == "refused 502 psp_unusable_response";
        rec.later.push(r);
        if done.is_some() || !unknown {
            return done;
        }
        if let Some(c) = settle_status(api, id, done_status).await {
            return Some(c);
        }
    }
    None
}

fn note(rec: &mut CheckoutRec, what: String) -> bool {
    rec.notes.push(what);
    false
}

fn saved_card_body(reference: &str) -> Value {
    json!({
        "currency": "EUR",
        "amount": 0,
        "reference": reference,
        "save_card": "unscheduled",
        "customer": {"reference": format!("cus-{reference}"), "email": "jo@example.com",
                     "ip_address": "203.0.113.7", "address": {"country": "NL"}},
        "card": {"number": CHALLENGED, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        "return_url": "https://shop.example/checkout/return"
    })
}

/// A keyed POST, recorded in `rec`; sometimes sent a second time with the same key and body,
/// as a merchant whose answer was lost would. The first answer's body, when it succeeded.
async fn keyed(
    api: &Api<'_>,
    rng: &mut StdRng,
    rec: &mut KeyedRec,
    kind: &'static str,
    path: String,
    body: &Value,
) -> Option<Value> {
    let key = format!(
        "{}-{}",
        kind.replace(' ', "-"),
        uuid::Uuid::new_v4().simple()
    );
    rec.kind = kind;
    rec.key = key.clone();
    if rec.amount.is_none() {
        rec.amount = body["amount"].as_i64();
    }
    let body = (!body.is_null()).then_some(body);
    let outcome = api.call(kind, Method::POST, &path, Some(&key), body).await;
    let first = match &outcome {
        Outcome::Done(v) => {
            rec.ids
                .push(v["id"].as_str().unwrap_or_default().to_owned());
            rec.outcome = "done".into();
            Some(v.clone())
        }
        Outcome::Refused(status, code) => {
            rec.outcome = format!("refused {status} {code}");
            None
        }
        Outcome::GaveUp(why) => {
            rec.outcome = format!("gave up: {why}");
            None
        }
    };
    if first.is_some()
        && rng.random_bool(0.25)
        && let Outcome::Done(v) = api.call(kind, Method::POST, &path, Some(&key), body).await
    {
        rec.ids
            .push(v["id"].as_str().unwrap_or_default().to_owned());
    }
    first
}

/// The shopper's browser through 3-D Secure: the pay link (303 to the bank's page), Confirm
/// on the bank's page (303 back to the gateway), the return (303 to the shop).
async fn pay(ctx: &Ctx, api: &Api<'_>, pay_url: &str) -> Result<(), String> {
    if pay_url.is_empty() {
        return Err("requires_action without a pay link".into());
    }
    let bank = browser_step(ctx, api, "browser: pay link", Method::GET, pay_url, false).await?;
    if !bank.starts_with(&ctx.sim_url) {
        // The gateway sent the shopper back to the shop instead of to the bank: the checkout
        // cannot be paid (any more).
        return Err(format!(
            "the pay link sent the shopper to {bank:?}, not to the bank"
        ));
    }
    let back = browser_step(ctx, api, "browser: bank's page", Method::POST, &bank, true).await?;
    browser_step(ctx, api, "browser: return", Method::GET, &back, false).await?;
    Ok(())
}

/// One browser request, retried while it fails; the `Location` it was sent on to.
async fn browser_step(
    ctx: &Ctx,
    api: &Api<'_>,
    kind: &'static str,
    method: Method,
    url: &str,
    confirm: bool,
) -> Result<String, String> {
    ctx.stats.count_operation(kind);
    let started = std::time::Instant::now();
    loop {
        let phase = ctx.phase.get();
        let mut req = ctx
            .browser
            .request(method.clone(), url)
            .timeout(Duration::from_secs(30));
        if confirm {
            req = req.form(&[("result", "Y")]);
        }
        let why = match req.send().await {
            Ok(resp) if resp.status().is_redirection() => {
                return Ok(resp
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or_default()
                    .to_owned());
            }
            Ok(resp) if resp.status().is_success() => return Ok(String::new()),
            Ok(resp) if resp.status().is_client_error() && resp.status().as_u16() != 429 => {
                let status = resp.status().as_u16();
                ctx.stats.count_failure(phase, kind, format!("{status}"));
                return Err(format!("{kind} answered {status}"));
            }
            Ok(resp) => format!("{}", resp.status().as_u16()),
            Err(e) if e.is_timeout() => "no answer (timeout)".into(),
            Err(e) if e.is_connect() => "connection refused".into(),
            Err(e) if e.is_builder() => return Err(format!("{kind}: not a URL: {url:?}")),
            Err(_) => "connection lost".into(),
        };
        ctx.stats.count_failure(phase, kind, why.clone());
        if api.no_retry || started.elapsed() > api.patience {
            return Err(format!("{kind}: {why}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reads the checkout (asking MSP first) until it is `want` or final otherwise; the
/// checkout when it is `want`.
async fn settle_status(api: &Api<'_>, id: &str, want: &str) -> Option<Value> {
    let started = std::time::Instant::now();
    loop {
        let c = api
            .get("read checkout", &format!("/v1/checkouts/{id}?refresh=true"))
            .await?;
        let status = c["status"].as_str().unwrap_or_default();
        if status == want {
            return Some(c);
        }
        if !matches!(status, "processing" | "requires_action" | "created")
            || api.no_retry && started.elapsed() > Duration::from_secs(10)
        {
            return None;
        }
        // A shop waits a minute for a payment's outcome, then moves on (the checks find a
        // checkout that never settles).
        if started.elapsed() > Duration::from_secs(60) {
            return None;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Refunds of a paid checkout of `captured`: none, one part, two at once that together
/// exceed it (one must be refused), or all that is left.
async fn refunds(
    api: &Api<'_>,
    rng: &mut StdRng,
    id: &str,
    captured: i64,
    rec: &mut CheckoutRec,
) -> bool {
    if captured <= 0 {
        return true;
    }
    let path = format!("/v1/checkouts/{id}/refunds");
    match rng.random_range(0..4) {
        0 => true,
        1 => {
            let mut r = KeyedRec::default();
            let amount = rng.random_range(1..=captured / 3).max(1);
            let done = keyed(api, rng, &mut r, "refund", path, &json!({"amount": amount})).await;
            rec.later.push(r);
            done.is_some()
        }
        2 => {
            // Two refunds at once, 60 % and 50 % of the captured amount: never both.
            let (a, b) = (captured * 6 / 10, captured / 2);
            let mut ra = KeyedRec::default();
            let mut rb = KeyedRec::default();
            let mut rng_b: StdRng = rand::SeedableRng::seed_from_u64(rng.random());
            let (body_a, body_b) = (json!({"amount": a}), json!({"amount": b}));
            let (da, db) = tokio::join!(
                keyed(api, rng, &mut ra, "refund", path.clone(), &body_a),
                keyed(api, &mut rng_b, &mut rb, "refund", path.clone(), &body_b)
            );
            rec.later.push(ra);
            rec.later.push(rb);
            // One of them is refused (more than is left): that is the expected answer.
            da.is_some() || db.is_some()
        }
        _ => {
            let mut r = KeyedRec::default();
            let done = keyed(api, rng, &mut r, "refund", path, &json!({})).await;
            rec.later.push(r);
            done.is_some()
        }
    }
}

/// Whether the phase lets a client start another scenario.
pub fn keep_going(ctx: &Ctx) -> bool {
    ctx.phase.get() == Phase::Faults
}
