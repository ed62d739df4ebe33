//! Chargebacks with their disputes, dispute outcomes, refunds made in MSP's dashboard and the
//! evidence upload:
//!
//! - `POST /sim/orders/{id}/chargeback` `{"amount", "reason_code", "reason", "notify"}` (all
//!   optional): a `chargeback` entry with a `dispute` (`new`, due 14 days of simulator time
//!   ahead); the order goes `void`.
//! - `PUT /sim/disputes/{transaction_id}` `{"status", "outcome": "won" | "lost"}`: moves the
//!   dispute; `won` adds a `reverse-chargeback` entry and gives the order its paid status back.
//! - `POST /sim/orders/{id}/dashboard_refund` `{"amount", "notify"}`: a refund made in MSP's
//!   dashboard; with `notify: false` no notification ever tells of it.
//! - `POST /v1/json/orders/{id}/files` (MSP's `challengeChargeback`) and
//!   `GET /sim/orders/{id}/files`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Sim;
use super::api;
use super::orders::{NewRefund, OrderKey, RefundRefusal, TransactionKind};
use super::wire::{MspError, OrderObject};

/// How long the merchant has to answer a new dispute (MSP's due date), simulator time.
const RESPONSE_WINDOW_DAYS: i64 = 14;

/// The dispute MSP runs for a chargeback (OAS `ChargebackDispute.yaml`).
#[derive(Clone, Debug)]
pub(crate) struct Dispute {
    /// `new`, `open`, `ready`, `accepted`, `submitted`, `processed` or `closed`.
    pub status: String,
    /// The scheme's reason code, e.g. `4837`.
    pub reason_code: String,
    pub reason_description: String,
    /// When the merchant must have answered (UTC, like every stamp the simulator keeps).
    pub due: NaiveDateTime,
}

impl Dispute {
    #[cfg(test)]
    pub(crate) fn new_for_tests(now: NaiveDateTime) -> Self {
        Self {
            status: "new".into(),
            reason_code: "4837".into(),
            reason_description: "No cardholder authorization".into(),
            due: now,
        }
    }
}

/// `dispute` of a `chargeback` entry, as MSP writes it.
#[derive(Serialize)]
pub(crate) struct DisputeView<'a> {
    merchant_response_date: String,
    reason_code: &'a str,
    reason_description: &'a str,
    status: &'a str,
}

impl<'a> DisputeView<'a> {
    pub(crate) fn of(d: &'a Dispute) -> Self {
        Self {
            merchant_response_date: super::clock::msp_time(d.due),
            reason_code: &d.reason_code,
            reason_description: &d.reason_description,
            status: &d.status,
        }
    }
}

/// Evidence uploaded for a dispute: what `GET /sim/orders/{id}/files` shows (not the bytes).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct EvidenceFile {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    /// Decoded size in bytes.
    pub size: usize,
    /// The first bytes, hex, so that a test can see what arrived.
    pub head_hex: String,
    pub uploaded: String,
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message.to_string() }))
}

fn body_or_empty<T: for<'de> Deserialize<'de> + Default>(
    body: &[u8],
    shape: &str,
) -> Result<T, HttpResponse> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("Invalid body: {e}. Send {shape}"),
        )
    })
}

fn reason_for(code: &str) -> &'static str {
    match code {
        "4837" | "10.4" => "No cardholder authorization",
        "4853" | "13.3" => "Not as described or defective merchandise",
        "4855" | "13.1" => "Goods or services not provided",
        "4834" | "12.6" => "Duplicate processing",
        _ => "Chargeback requested by the cardholder's bank",
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ChargebackBody {
    amount: Option<u64>,
    reason_code: Option<String>,
    reason: Option<String>,
    notify: Option<bool>,
}

/// `POST /sim/orders/{order_id}/chargeback`: the cardholder's bank charges a paid order back,
/// as MSP shows it (reference §4.2): order `void` / `void`, a `chargeback` entry with a `new`
/// dispute for what was not refunded (or `amount`), and a notification unless `notify: false`.
/// Answers the order.
pub(crate) async fn chargeback(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let body: ChargebackBody = match body_or_empty(
        &body,
        r#"{"amount": minor units, "reason_code": "4837", "reason": "…", "notify": true} (all optional)"#,
    ) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let key = match super::control::find_order(&sim, &req, &path.into_inner()) {
        Ok(key) => key,
        Err(answer) => return answer,
    };
    let transaction_id = sim.next_id();
    let now = sim.clock.naive_now();
    let reason_code = body.reason_code.unwrap_or_else(|| "4837".to_owned());
    let dispute = Dispute {
        status: "new".to_owned(),
        reason_description: body
            .reason
            .unwrap_or_else(|| reason_for(&reason_code).to_owned()),
        reason_code,
        due: now + chrono::TimeDelta::days(RESPONSE_WINDOW_DAYS),
    };
    let quiet = body.notify == Some(false);
    match sim.change(&key, |o| {
        o.quiet = quiet;
        o.charge_back(transaction_id, body.amount, dispute, now)
    }) {
        None => error(StatusCode::NOT_FOUND, "The order is gone"),
        Some(Err(illegal)) => error(
            StatusCode::CONFLICT,
            format!(
                "Only a completed or partially refunded order can be charged back; this one is {}",
                illegal.from.as_str()
            ),
        ),
        Some(Ok(_)) => answer_order(&sim, &key),
    }
}

fn answer_order(sim: &Sim, key: &OrderKey) -> HttpResponse {
    match sim.orders.shard(key).get(key) {
        Some(order) => HttpResponse::Ok().json(OrderObject::of(order)),
        None => error(StatusCode::NOT_FOUND, "The order is gone"),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DisputeBody {
    status: Option<String>,
    outcome: Option<String>,
}

const DISPUTE_STATUSES: [&str; 7] = [
    "new",
    "open",
    "ready",
    "accepted",
    "submitted",
    "processed",
    "closed",
];

/// `PUT /sim/disputes/{transaction_id}`: moves the dispute of chargeback `transaction_id` to
/// `status` (one of MSP's), and with `outcome` closes it: `won` adds a `reverse-chargeback`
/// entry and gives the order back the paid status it had; `lost` leaves it charged back. Notifies
/// like every change of an order. Answers the order.
pub(crate) async fn put_dispute(
    sim: web::Data<Sim>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let body: DisputeBody = match body_or_empty(
        &body,
        r#"{"status": "new|open|ready|accepted|submitted|processed|closed", "outcome": "won|lost"}"#,
    ) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let Ok(transaction_id) = path.into_inner().parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "The path names a chargeback's transaction_id, a number",
        );
    };
    let won = match body.outcome.as_deref() {
        None => None,
        Some("won") => Some(true),
        Some("lost") => Some(false),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("outcome {other:?} is neither \"won\" nor \"lost\""),
            );
        }
    };
    let status = body
        .status
        .unwrap_or_else(|| if won.is_some() { "closed" } else { "open" }.to_owned());
    if !DISPUTE_STATUSES.contains(&status.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("status {status:?} is not one of {DISPUTE_STATUSES:?}"),
        );
    }
    let found = sim.orders.find(|_, o| {
        o.related
            .iter()
            .any(|r| r.kind == TransactionKind::Chargeback && r.transaction_id == transaction_id)
    });
    let Some(key) = found else {
        return error(
            StatusCode::NOT_FOUND,
            format!("No chargeback with transaction_id {transaction_id}"),
        );
    };
    let reverse_id = sim.next_id();
    let now = sim.clock.naive_now();
    match sim.change(&key, |o| {
        o.move_dispute(transaction_id, &status, won.map(|w| (reverse_id, w)), now)
    }) {
        Some(Ok(())) => answer_order(&sim, &key),
        _ => error(StatusCode::NOT_FOUND, "The chargeback is gone"),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DashboardRefundBody {
    amount: Option<u64>,
    notify: Option<bool>,
    description: Option<String>,
}

/// `POST /sim/orders/{order_id}/dashboard_refund` `{"amount", "notify"}`: a refund made in MSP's
/// dashboard (no `refund_order_id` of the merchant's). It settles like any refund; with
/// `notify: false` no notification tells of it at all, so only `GET /transactions` or a look at
/// the order finds it. Answers the order.
pub(crate) async fn dashboard_refund(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let body: DashboardRefundBody = match body_or_empty(
        &body,
        r#"{"amount": minor units (absent: everything left), "notify": true|false}"#,
    ) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let key = match super::control::find_order(&sim, &req, &path.into_inner()) {
        Ok(key) => key,
        Err(answer) => return answer,
    };
    let refund_id = sim.next_id();
    let now = sim.clock.naive_now();
    let silent = body.notify == Some(false);
    let refund = NewRefund {
        transaction_id: refund_id,
        amount: body.amount.unwrap_or(0),
        description: body.description.or_else(|| Some("Refund".to_owned())),
        refund_order_id: key.1.clone(),
        declines: false,
        silent,
    };
    let result = sim.change(&key, |o| {
        o.quiet = silent;
        let currency = o.currency.clone();
        o.refund(&currency, refund, now)
    });
    match result {
        None => error(StatusCode::NOT_FOUND, "The order is gone"),
        Some(Err(refusal)) => error(
            StatusCode::CONFLICT,
            match refusal {
                RefundRefusal::NotRefundable(s) => {
                    format!("The order is {}: it cannot be refunded", s.as_str())
                }
                RefundRefusal::OverRefund { remaining } => {
                    format!("At most {remaining} is left to refund")
                }
                RefundRefusal::SameAmountRecently => {
                    "A refund of this amount was made in the last 5 minutes".to_owned()
                }
                RefundRefusal::WrongCurrency => "Wrong currency".to_owned(),
            },
        ),
        Some(Ok(_)) => {
            sim.schedule_settlement(key.clone(), refund_id);
            answer_order(&sim, &key)
        }
    }
}

fn bad_file(info: &str) -> MspError {
    MspError::new(1000, 400, info)
}

/// `POST /v1/json/orders/{order_id}/files` (MSP's `challengeChargeback`): one evidence file,
/// `{type: PDF|JPEG|PNG, base64, description, name}`, all required; answers
/// `{"success": true, "data": {}}`.
pub(crate) async fn upload_file(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, MspError> {
    let site = api::authenticate(&sim, &req)?;
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| bad_file(&format!("Invalid JSON body: {e}")))?;
    let field = |name: &str| -> Result<String, MspError> {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| bad_file(&format!("Field {name} is required")))
    };
    let kind = field("type")?.to_ascii_uppercase();
    if !["PDF", "JPEG", "PNG"].contains(&kind.as_str()) {
        return Err(bad_file("Field type must be one of PDF, JPEG, PNG"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(field("base64")?)
        .map_err(|_| bad_file("Field base64 is not base64"))?;
    let file = EvidenceFile {
        name: field("name")?,
        kind,
        description: field("description")?,
        size: bytes.len(),
        head_hex: hex::encode(&bytes[..bytes.len().min(8)]),
        uploaded: super::clock::msp_time(sim.clock.naive_now()),
    };
    let key = sim.resolve((site, path.into_inner()));
    let mut shard = sim.orders.shard(&key);
    let order = shard.get_mut(&key).ok_or_else(|| {
        MspError::new(
            1006,
            404,
            "Invalid transaction ID: no order with this id for this API key",
        )
    })?;
    order.files.push(file);
    Ok(HttpResponse::Ok().json(serde_json::json!({"success": true, "data": {}})))
}

/// `GET /sim/orders/{order_id}/files`: the evidence uploaded for the order, oldest first.
pub(crate) async fn files(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let key = match super::control::find_order(&sim, &req, &path.into_inner()) {
        Ok(key) => key,
        Err(answer) => return answer,
    };
    match sim.orders.shard(&key).get(&key) {
        Some(order) => HttpResponse::Ok().json(&order.files),
        None => error(StatusCode::NOT_FOUND, "The order is gone"),
    }
}
