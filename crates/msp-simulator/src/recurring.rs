//! Recurring payments (): tokens made by initial orders, subsequent
//! orders that pay with a token, MSP's limit of one card recurring payment per token per 24
//! hours, and the token API (`/recurring/{reference}/…`).
//!
//! A token belongs to one site (API key) and one `customer.reference`; one card number under one
//! reference has one token, however often it is saved again. The card number itself is never
//! kept: a keyed SHA-256 of it recognises it again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::digest;
use chrono::{NaiveDateTime, TimeDelta};
use serde::Serialize;
use serde_json::Value;

use super::Sim;
use super::api::authenticate;
use super::cards::{Brand, CardBehaviour};
use super::orders::{CardRecord, Order, Status};
use super::wire::{Envelope, MspError};

/// MSP's recurring models (`RecurringModel.yaml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Model {
    CardOnFile,
    Subscription,
    Unscheduled,
}

impl Model {
    pub(crate) fn parse(s: &str) -> Option<Model> {
        match s {
            "cardOnFile" => Some(Model::CardOnFile),
            "subscription" => Some(Model::Subscription),
            "unscheduled" => Some(Model::Unscheduled),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Model::CardOnFile => "cardOnFile",
            Model::Subscription => "subscription",
            Model::Unscheduled => "unscheduled",
        }
    }
}

/// How long a token waits between two subsequent payments (MSP's default limit for cards).
pub(crate) const LIMIT: TimeDelta = TimeDelta::hours(24);

/// What an order has to do with recurring payments.
#[derive(Clone, Debug)]
pub(crate) struct OrderRecurring {
    pub model: Model,
    /// The token: an initial order's once it completed, a subsequent order's from the start.
    pub token: Option<String>,
    /// `recurring_flow`: `token` for a subsequent order, `None` for an initial one.
    pub subsequent: bool,
    /// An initial order's card, kept until it completes and the token is stored.
    pub pending: Option<PendingToken>,
}

/// What an initial order's token will hold once the order completes.
#[derive(Clone, Debug)]
pub(crate) struct PendingToken {
    pub fingerprint: [u8; 32],
    pub bin: String,
    pub behaviour: CardBehaviour,
}

/// One stored token.
#[derive(Clone, Debug)]
struct TokenRecord {
    token: String,
    fingerprint: [u8; 32],
    card: CardRecord,
    bin: String,
    model: Model,
    behaviour: CardBehaviour,
    last_payment: Option<NaiveDateTime>,
}

/// Every site's tokens, by `(site, customer.reference)`; deleted tokens are gone.
pub(crate) struct Tokens {
    key: [u8; 32],
    by_reference: Mutex<HashMap<(usize, String), Vec<TokenRecord>>>,
}

impl Tokens {
    pub(crate) fn new() -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self {
            key,
            by_reference: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, String), Vec<TokenRecord>>> {
        self.by_reference
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What an initial order with this card will store once it completes.
    pub(crate) fn pending(&self, number: &str, behaviour: CardBehaviour) -> PendingToken {
        let mut h = digest::Context::new(&digest::SHA256);
        h.update(&self.key);
        h.update(number.as_bytes());
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(h.finish().as_ref());
        PendingToken {
            fingerprint,
            bin: number.chars().take(6).collect(),
            behaviour,
        }
    }

    /// Called after every change of an order: an initial order that has just been approved
    /// stores its token (or finds the one its card already has under its reference) and shows it.
    pub(crate) fn on_change(&self, site: usize, order: &mut Order) {
        let approved = matches!(order.status, Status::Completed | Status::Authorized);
        let Some(reference) = order.customer.reference.clone() else {
            return;
        };
        let Some(recurring) = order.recurring.as_mut() else {
            return;
        };
        if !approved || recurring.token.is_some() {
            return;
        }
        let Some(pending) = recurring.pending.take() else {
            return;
        };
        let mut all = self.lock();
        let tokens = all.entry((site, reference)).or_default();
        let token = match tokens
            .iter_mut()
            .find(|t| t.fingerprint == pending.fingerprint)
        {
            Some(existing) => {
                // Saved again: the newest expiry and model win.
                existing.card = order.card.clone();
                existing.model = recurring.model;
                existing.token.clone()
            }
            None => {
                let token = new_token();
                tokens.push(TokenRecord {
                    token: token.clone(),
                    fingerprint: pending.fingerprint,
                    card: order.card.clone(),
                    bin: pending.bin,
                    model: recurring.model,
                    behaviour: pending.behaviour,
                    last_payment: None,
                });
                token
            }
        };
        recurring.token = Some(token);
    }

    /// A subsequent order's payment with `token`: the card it stands for and how the order
    /// behaves (no 3-D Secure for `subscription` and `unscheduled`; `cardOnFile` follows the
    /// card). Counts against the 24-hour limit.
    pub(crate) fn charge(
        &self,
        site: usize,
        reference: Option<&str>,
        token: &str,
        model: Model,
        gateway: &str,
        now: NaiveDateTime,
    ) -> Result<(CardRecord, CardBehaviour), MspError> {
        let mut all = self.lock();
        let record = reference
            .and_then(|r| all.get_mut(&(site, r.to_owned())))
            .and_then(|ts| ts.iter_mut().find(|t| t.token == token))
            .ok_or_else(|| {
                MspError::new(
                    1000,
                    410,
                    "Token not found: no token with this recurring_id for this customer.reference",
                )
            })?;
        if !gateway.is_empty() && gateway != record.card.brand.gateway() {
            return Err(MspError::new(
                1023,
                400,
                format!(
                    "Gateway unavailable: a token order's gateway is empty, absent or the \
                     token's code, {}",
                    record.card.brand.gateway()
                ),
            ));
        }
        if let Some(last) = record.last_payment
            && now < last + LIMIT
        {
            let lifts = (last + LIMIT).format("%Y-%m-%dT%H:%M:%SZ");
            return Err(MspError::new(
                1024,
                402,
                format!(
                    "Transaction declined: recurring payment limit reached (one card recurring \
                     payment per token per 24 hours); the next one is possible from {lifts}"
                ),
            ));
        }
        record.last_payment = Some(now);
        let behaviour = match model {
            Model::CardOnFile => record.behaviour,
            Model::Subscription | Model::Unscheduled => CardBehaviour::NotEnrolled,
        };
        Ok((record.card.clone(), behaviour))
    }

    fn list(&self, site: usize, reference: &str) -> Vec<TokenRecord> {
        self.lock()
            .get(&(site, reference.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    fn with_token<R>(
        &self,
        site: usize,
        reference: &str,
        token: &str,
        f: impl FnOnce(&mut Vec<TokenRecord>, usize) -> R,
    ) -> Option<R> {
        let mut all = self.lock();
        let tokens = all.get_mut(&(site, reference.to_owned()))?;
        let i = tokens.iter().position(|t| t.token == token)?;
        Some(f(tokens, i))
    }
}

/// A token as MSP writes one: letters and digits (MSP's look like `QZTCh7jdk8`).
fn new_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(14)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A token of the token API (`schemas/Token.yaml`; the example calls the model
/// `recurring_model`, the schema `model`: both are sent).
#[derive(Serialize)]
struct TokenObject<'a> {
    token: &'a str,
    code: &'static str,
    display: String,
    bin: &'a str,
    name_holder: Option<&'a str>,
    expiry_date: &'a str,
    expired: u8,
    last4: &'a str,
    model: &'static str,
    recurring_model: &'static str,
}

fn token_object(t: &TokenRecord, today_yymm: u32) -> TokenObject<'_> {
    let expired = t
        .card
        .expiry
        .parse::<u32>()
        .map(|e| u8::from(e < today_yymm))
        .unwrap_or(0);
    let display = match t.card.brand {
        Brand::Amex => format!("Card xxxx xxxxxx x{}", t.card.last4),
        _ => format!("Card xxxx xxxx xxxx {}", t.card.last4),
    };
    TokenObject {
        token: &t.token,
        code: t.card.brand.gateway(),
        display,
        bin: &t.bin,
        name_holder: t.card.holder.as_deref(),
        expiry_date: &t.card.expiry,
        expired,
        last4: &t.card.last4,
        model: t.model.as_str(),
        recurring_model: t.model.as_str(),
    }
}

fn today_yymm(sim: &Sim) -> u32 {
    use chrono::Datelike;
    let today = sim.clock.now();
    (today.year() as u32 % 100) * 100 + today.month()
}

fn ok<T: Serialize>(data: T) -> HttpResponse {
    HttpResponse::Ok().json(Envelope {
        success: true,
        data,
    })
}

fn not_found(what: &str) -> MspError {
    MspError::new(1000, 410, format!("Token not {what}"))
}

#[derive(serde::Deserialize)]
pub(crate) struct Page {
    limit: Option<usize>,
    offset: Option<usize>,
}

/// `GET /recurring/{reference}`: the reference's tokens (`limit`, default 10; `offset`, default
/// 0) as `data.tokens[]`; a reference without tokens has an empty list.
pub(crate) async fn list(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<String>,
    page: web::Query<Page>,
) -> Result<HttpResponse, MspError> {
    let site = authenticate(&sim, &req)?;
    let tokens = sim.tokens.list(site, &path);
    let today = today_yymm(&sim);
    let shown: Vec<_> = tokens
        .iter()
        .skip(page.offset.unwrap_or(0))
        .take(page.limit.unwrap_or(10))
        .map(|t| token_object(t, today))
        .collect();
    Ok(ok(serde_json::json!({ "tokens": shown })))
}

/// `GET /recurring/{reference}/token/{token}`
pub(crate) async fn get(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, MspError> {
    let site = authenticate(&sim, &req)?;
    let (reference, token) = path.into_inner();
    let today = today_yymm(&sim);
    let found = sim
        .tokens
        .with_token(site, &reference, &token, |ts, i| {
            serde_json::to_value(token_object(&ts[i], today))
        })
        .ok_or_else(|| not_found("found"))?
        .map_err(|e| MspError::new(9999, 500, format!("Simulator serialisation error: {e}")))?;
    Ok(ok(found))
}

/// `PATCH /recurring/{reference}/update/{token}` `{"expiry_date": "YYMM"}`
pub(crate) async fn update(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, MspError> {
    let site = authenticate(&sim, &req)?;
    let (reference, token) = path.into_inner();
    let body = super::wire::object(&body)?;
    let expiry = match body.get("expiry_date") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(format!("{n:0>4}")),
        _ => None,
    }
    .filter(|e| {
        e.len() == 4
            && e.parse::<u32>()
                .is_ok_and(|v| (1..=12).contains(&(v % 100)))
    })
    .ok_or_else(|| {
        MspError::new(
            1000,
            400,
            "Invalid expiry_date: send the card's new expiry as YYMM, e.g. \"3012\"",
        )
    })?;
    sim.tokens
        .with_token(site, &reference, &token, |ts, i| ts[i].card.expiry = expiry)
        .ok_or_else(|| not_found("updated"))?;
    Ok(ok(serde_json::json!({ "updated": true })))
}

/// `DELETE /recurring/{reference}/remove/{token}`: the token is gone; orders with it are
/// refused from now on.
pub(crate) async fn remove(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, MspError> {
    let site = authenticate(&sim, &req)?;
    let (reference, token) = path.into_inner();
    sim.tokens
        .with_token(site, &reference, &token, |ts, i| {
            ts.remove(i);
        })
        .ok_or_else(|| not_found("found"))?;
    Ok(ok(serde_json::json!({ "removed": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fourteen_letters_and_digits() {
        let t = new_token();
        assert_eq!(t.len(), 14);
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(t, new_token());
    }

    #[test]
    fn models_are_msps_three() {
        for m in ["cardOnFile", "subscription", "unscheduled"] {
            assert_eq!(Model::parse(m).map(Model::as_str), Some(m));
        }
        assert_eq!(Model::parse("card_on_file"), None);
    }
}
