//! The MultiSafepay JSON API under `/v1/json` (reference §2–4, §6): create, get, cancel, refund,
//! void a refund, capture or cancel an authorisation.
//! Answers use MSP's envelope; errors carry MSP's code and a fitting HTTP status.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Map, Value};

use super::cards::{self, CardBehaviour};
use super::faults::{ChangeFailure, CreateFailure, RefundFailure};
use super::orders::{
    CaptureRefusal, CardRecord, NewCapture, NewRefund, Order, OrderKey, RefundRefusal, Status,
    VoidRefusal,
};
use super::wire::{
    self, CreatedOrder, CustomerVerification, Envelope, ErrorEnvelope, MspError, OrderObject,
};
use super::{Sim, challenge, recurring, with_transaction_id};

impl std::fmt::Display for MspError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MSP error {}: {}", self.code, self.info)
    }
}

impl ResponseError for MspError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.http).unwrap_or(StatusCode::BAD_REQUEST)
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(ErrorEnvelope {
            success: false,
            data: Map::new(),
            error_code: self.code,
            error_info: &self.info,
        })
    }
}

fn invalid_key() -> MspError {
    MspError::new(
        1032,
        401,
        "Invalid API key: send one of the simulator's --api-key values in the api_key header, \
         the api_key query parameter or Authorization: Bearer",
    )
}

fn order_id_taken() -> MspError {
    MspError::new(
        1006,
        409,
        "Invalid order ID: it is already used on this site; send a new order_id",
    )
}

fn unknown_order() -> MspError {
    MspError::new(
        1006,
        404,
        "Invalid transaction ID: no order with this id for this API key",
    )
}

/// The site (index of the API key) a request authenticates as: `api_key` header,
/// `Authorization: Bearer` (the Python SDK's only form) or `api_key` query parameter.
pub(crate) fn authenticate(sim: &Sim, req: &HttpRequest) -> Result<usize, MspError> {
    let headers = req.headers();
    let presented = headers
        .get("api_key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(|v| v.trim().to_owned())
        })
        .or_else(|| {
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .find(|(k, _)| k == "api_key")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(invalid_key)?;
    sim.keys
        .iter()
        .position(|k| {
            aws_lc_rs::constant_time::verify_slices_are_equal(k.as_bytes(), presented.as_bytes())
                .is_ok()
        })
        .ok_or_else(invalid_key)
}

pub(crate) async fn latency(sim: &Sim) {
    let ms = sim.faults().latency_ms;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn ok<T: serde::Serialize>(data: T) -> HttpResponse {
    HttpResponse::Ok().json(Envelope {
        success: true,
        data,
    })
}

/// The simulator's today as YYMM, for card expiry dates.
fn today_yymm(sim: &Sim) -> u32 {
    use chrono::Datelike;
    let today = sim.clock.now();
    (today.year() as u32 % 100) * 100 + today.month()
}

/// `POST /v1/json/orders`
pub(crate) async fn create(
    sim: web::Data<Sim>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, MspError> {
    latency(&sim).await;
    let site = authenticate(&sim, &req)?;
    let failure = sim.faults().create_failure;
    match failure {
        CreateFailure::Http500 => {
            return Err(MspError::new(
                9999,
                500,
                "Simulated internal error (fault create_failure=http_500)",
            ));
        }
        CreateFailure::SuccessFalse200 => {
            return Err(MspError::new(1024, 200, "Transaction declined"));
        }
        CreateFailure::None | CreateFailure::Timeout => {}
    }
    let new = wire::parse_new_order(&body, today_yymm(&sim))?;
    let now = sim.clock.naive_now();
    let (card, behaviour, recurring) = match (&new.card, &new.recurring) {
        (Some(card), recurring) => {
            let behaviour = cards::behaviour(card.number.as_str());
            if behaviour == CardBehaviour::DeclinedAtCreation {
                return Err(MspError::new(1024, 402, "declined"));
            }
            let record = CardRecord {
                brand: card.brand,
                last4: card.number.last4().to_owned(),
                expiry: card.expiry.clone(),
                holder: card.holder.clone(),
            };
            let recurring = recurring.as_ref().map(|r| recurring::OrderRecurring {
                model: r.model,
                token: None,
                subsequent: false,
                pending: Some(sim.tokens.pending(card.number.as_str(), behaviour)),
            });
            (record, behaviour, recurring)
        }
        (
            None,
            Some(wire::RecurringRequest {
                model,
                id: Some(token),
            }),
        ) => {
            let (record, behaviour) = sim.tokens.charge(
                site,
                new.customer.reference.as_deref(),
                token,
                *model,
                &new.gateway,
                now,
            )?;
            let recurring = recurring::OrderRecurring {
                model: *model,
                token: Some(token.clone()),
                subsequent: true,
                pending: None,
            };
            (record, behaviour, Some(recurring))
        }
        (None, _) => return Err(MspError::new(1024, 402, "Transaction declined: no card")),
    };
    let transaction_id = sim.next_id();
    let mut order = Order {
        transaction_id,
        order_id: new.order_id,
        status: Status::Initialized,
        reason: String::new(),
        reason_code: String::new(),
        amount: new.amount,
        amount_refunded: 0,
        currency: new.currency,
        description: new.description,
        items: new.items,
        vars: new.vars,
        customer: new.customer,
        card,
        external_transaction_id: (transaction_id % 1_000_000_000).to_string(),
        authentication: None,
        behaviour,
        options: new.options,
        manual_capture: new.manual_capture,
        recurring,
        authorized_at: None,
        captured: None,
        created: now,
        modified: now,
        completed: None,
        related: Vec::new(),
        charged_back_from: None,
        files: Vec::new(),
        quiet: false,
    };
    order.settle_at_creation(now);
    sim.tokens.on_change(site, &mut order);
    let challenged = order.status == Status::Initialized;
    if challenged {
        order.reason = "3D Secure Authorization".to_owned();
    }
    let session = challenged.then(|| uuid::Uuid::new_v4().simple().to_string());
    let customer_verification = match &session {
        Some(s) => Some(CustomerVerification {
            kind: "form",
            html: challenge::verification_html(&sim, s)
                .map_err(|e| MspError::new(9999, 500, format!("Simulator page error: {e}")))?,
        }),
        None => None,
    };
    let key: OrderKey = (site, order.order_id.clone());
    let (body, job, authorised) = {
        // A capture's new_order_id is taken too. The alias shard is locked first, as everywhere.
        let aliases = sim.aliases.shard(&key);
        let mut shard = sim.orders.shard(&key);
        if shard.contains_key(&key) || aliases.contains_key(&key) {
            return Err(order_id_taken());
        }
        let (payment_url, cancel_url) = match &session {
            Some(s) => (
                Some(challenge::session_url(&sim, s)),
                order
                    .options
                    .cancel_url
                    .clone()
                    .map(|u| with_transaction_id(u, &order.order_id)),
            ),
            None => (
                order
                    .options
                    .redirect_url
                    .clone()
                    .map(|u| with_transaction_id(u, &order.order_id)),
                order
                    .options
                    .cancel_url
                    .clone()
                    .map(|u| with_transaction_id(u, &order.order_id)),
            ),
        };
        let body = serde_json::to_vec(&Envelope {
            success: true,
            data: CreatedOrder {
                order: OrderObject::of(&order),
                payment_url,
                cancel_url,
                customer_verification,
            },
        })
        .map_err(|e| MspError::new(9999, 500, format!("Simulator serialisation error: {e}")))?;
        // An order created in its final status is notified as such.
        let job = (!challenged).then(|| sim.job_for(site, &order)).flatten();
        let authorised = (order.status == Status::Authorized)
            .then(|| order.capture_expiry())
            .flatten();
        shard.insert(key.clone(), order);
        (body, job, authorised)
    };
    if let Some(expiry) = authorised {
        sim.schedule_authorization_expiry(key.clone(), expiry);
    }
    if let Some(s) = session {
        sim.sessions.shard(&s).insert(s, key.clone());
        sim.schedule_expiry(key);
    }
    if let Some(job) = job {
        sim.notify(job);
    }
    if failure == CreateFailure::Timeout {
        sim.hold_forever().await;
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// `GET /v1/json/orders/{order_id}`
pub(crate) async fn get(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, MspError> {
    latency(&sim).await;
    let site = authenticate(&sim, &req)?;
    let key = sim.resolve((site, path.into_inner()));
    let shard = sim.orders.shard(&key);
    let order = shard.get(&key).ok_or_else(unknown_order)?;
    Ok(ok(OrderObject::of(order)))
}

/// `PATCH /v1/json/orders/{order_id}` with `status: cancelled`: cancels an order that is not
/// finished (`initialized` or `uncleared`); a final or completed order (an authorisation too) is
/// refused and left as it is.
pub(crate) async fn update(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, MspError> {
    latency(&sim).await;
    let site = authenticate(&sim, &req)?;
    let body = wire::object(&body)?;
    if body.get("status").and_then(Value::as_str) != Some("cancelled") {
        return Err(MspError::new(
            1000,
            400,
            "The simulator only supports PATCH with \"status\": \"cancelled\"",
        ));
    }
    let key = sim.resolve((site, path.into_inner()));
    let now = sim.clock.naive_now();
    let answer = match sim.change(&key, |o| o.cancel(now)) {
        None => Err(unknown_order()),
        Some(Err(illegal)) if illegal.from == Status::Authorized => Err(MspError::new(
            1000,
            409,
            "The order cannot be cancelled: it is completed / initialized, an authorisation; \
             cancel the authorisation with PATCH /capture/{order_id}",
        )),
        Some(Err(illegal)) => Err(MspError::new(
            1000,
            409,
            format!(
                "The order cannot be cancelled: it is {} / {}; only initialized or uncleared \
                 orders can",
                illegal.from.as_str(),
                illegal.from.financial_str()
            ),
        )),
        Some(Ok(())) => Ok(ok(Map::new())),
    };
    lose_answer(&sim, answer.is_ok(), sim.faults().cancel_failure).await;
    answer
}

/// Under a `timeout` fault, a change that was made is never answered (the order shows it).
async fn lose_answer(sim: &Sim, made: bool, failure: ChangeFailure) {
    if made && failure == ChangeFailure::Timeout {
        sim.hold_forever().await;
    }
}

/// `POST /v1/json/orders/{order_id}/refunds`: the order has changed (and the refund is
/// `reserved` in its `related_transactions`) when this answers.
pub(crate) async fn refund(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, MspError> {
    latency(&sim).await;
    let site = authenticate(&sim, &req)?;
    let wire::RefundRequest {
        amount,
        currency,
        description,
        refund_order_id,
    } = wire::parse_refund(&wire::object(&body)?)?;
    let failure = sim.faults().refund_failure;
    let order_id = path.into_inner();
    let now = sim.clock.naive_now();
    let refund_id = sim.next_id();
    let refund = NewRefund {
        transaction_id: refund_id,
        amount,
        description,
        // The id the call named: the order's, or its capture's.
        refund_order_id: refund_order_id.unwrap_or_else(|| order_id.clone()),
        declines: failure == RefundFailure::Declined,
        silent: false,
    };
    let key = sim.resolve((site, order_id));
    let result = sim.change(&key, |o| {
        o.refund(&currency, refund, now)
            .map(|_| o.transaction_id)
            .map_err(|e| (e, o.currency.clone()))
    });
    let transaction_id = match result {
        None => return Err(unknown_order()),
        Some(Ok(transaction_id)) => transaction_id,
        Some(Err((refusal, order_currency))) => return Err(refused(refusal, &order_currency)),
    };
    sim.schedule_settlement(key, refund_id);
    if failure == RefundFailure::Timeout {
        sim.hold_forever().await;
    }
    Ok(ok(wire::RefundCreated {
        transaction_id,
        refund_id,
    }))
}

fn refused(refusal: RefundRefusal, order_currency: &str) -> MspError {
    match refusal {
        RefundRefusal::WrongCurrency => MspError::new(
            1002,
            400,
            format!("Invalid currency: refund in the order's currency, {order_currency}"),
        ),
        RefundRefusal::NotRefundable(s) => MspError::new(
            1034,
            422,
            format!("Cannot refund transaction: the order is {}", s.as_str()),
        ),
        RefundRefusal::OverRefund { remaining } => MspError::new(
            1034,
            422,
            format!("Cannot refund transaction: at most {remaining} is left to refund"),
        ),
        RefundRefusal::SameAmountRecently => MspError::new(
            1034,
            422,
            "Cannot refund transaction: a refund of this amount was made less than 5 minutes ago",
        ),
    }
}

/// `PATCH /v1/json/orders/{order_id}/refunds/{refund_id}` with `status: void`: cancels a refund
/// that is still reserved. `refund_id` is the one the refund call answered.
pub(crate) async fn update_refund(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, MspError> {
    latency(&sim).await;
    let site = authenticate(&sim, &req)?;
    let body = wire::object(&body)?;
    if body.get("status").and_then(Value::as_str) != Some("void") {
        return Err(MspError::new(
            1000,
            400,
            "A refund can only be cancelled: send \"status\": \"void\"",
        ));
    }
    let (order_id, refund_id) = path.into_inner();
    let unknown_refund = || {
        MspError::new(
            1006,
            404,
            "Invalid transaction ID: this order has no refund with this id",
        )
    };
    let refund_id: u64 = refund_id.parse().map_err(|_| unknown_refund())?;
    let key = sim.resolve((site, order_id));
    let now = sim.clock.naive_now();
    match sim.change(&key, |o| o.void_refund(refund_id, now)) {
        None => Err(unknown_order()),
        Some(Err(VoidRefusal::UnknownRefund)) => Err(unknown_refund()),
        Some(Err(VoidRefusal::NotReserved(status))) => Err(MspError::new(
            1000,
            409,
            format!(
                "The refund cannot be cancelled: it is {}; only a reserved refund can",
                status.as_str()
            ),
        )),
        Some(Ok(())) => Ok(ok(Map::new())),
    }
}

/// `POST /v1/json/orders/{order_id}/capture`: captures an authorised manual-capture order, in
/// full or in part, once. The order has changed (`completed` / `completed`, a `capture` entry in
/// `related_transactions`) when this answers. From then on the capture's `new_order_id` is
/// another id of the order: GET, refunds and the rest work with either.
pub(crate) async fn capture(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, MspError> {
    latency(&sim).await;
    let site = authenticate(&sim, &req)?;
    let wire::CaptureRequest {
        amount,
        new_order_id,
        description,
    } = wire::parse_capture(&wire::object(&body)?)?;
    let key = sim.resolve((site, path.into_inner()));
    // Taken before the capture, so that no order and no other capture takes it meanwhile; given
    // back if the capture is refused.
    let alias = new_order_id
        .as_ref()
        .filter(|id| **id != key.1)
        .map(|id| (site, id.clone()));
    if let Some(alias) = &alias
        && !sim.reserve_alias(alias, &key.1)
    {
        return Err(order_id_taken());
    }
    let now = sim.clock.naive_now();
    let transaction_id = sim.next_id();
    let capture = NewCapture {
        transaction_id,
        amount,
        order_id: new_order_id.clone(),
        description,
    };
    let answer = match sim.change(&key, |o| o.capture(capture, now)) {
        None => Err(unknown_order()),
        Some(Err(refusal)) => Err(not_capturable(refusal, "captured")),
        Some(Ok(_)) => Ok(ok(wire::Captured {
            transaction_id,
            order_id: new_order_id.unwrap_or_else(|| key.1.clone()),
        })),
    };
    if let (Err(_), Some(alias)) = (&answer, &alias) {
        sim.release_alias(alias);
    }
    lose_answer(&sim, answer.is_ok(), sim.faults().capture_failure).await;
    answer
}

/// `PATCH /v1/json/capture/{order_id}` with `status: cancelled`: voids an authorisation that is
/// not captured (`void` / `void`, notified). `reason` and `description` are accepted and not kept.
pub(crate) async fn cancel_authorization(
    sim: web::Data<Sim>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, MspError> {
    latency(&sim).await;
    let site = authenticate(&sim, &req)?;
    let body = wire::object(&body)?;
    if body.get("status").and_then(Value::as_str) != Some("cancelled") {
        return Err(MspError::new(
            1000,
            400,
            "An authorisation can only be cancelled: send \"status\": \"cancelled\"",
        ));
    }
    let key = sim.resolve((site, path.into_inner()));
    let now = sim.clock.naive_now();
    let cancelled = sim.change(&key, |o| {
        o.void_authorization(now)
            .map(|()| (o.transaction_id, o.order_id.clone()))
    });
    let answer = match cancelled {
        None => Err(unknown_order()),
        Some(Err(refusal)) => Err(not_capturable(refusal, "cancelled")),
        Some(Ok((transaction_id, order_id))) => Ok(ok(wire::AuthorizationCancelled {
            transaction_id,
            order_id,
            success: true,
        })),
    };
    lose_answer(&sim, answer.is_ok(), sim.faults().cancel_failure).await;
    answer
}

/// The error for a capture, or the cancellation of an authorisation, that the order refuses.
fn not_capturable(refusal: CaptureRefusal, verb: &str) -> MspError {
    match refusal {
        CaptureRefusal::NotAuthorized { status, manual } => {
            let why = match (manual, status) {
                (false, _) => "it was not created with \"capture\": \"manual\"".to_owned(),
                (true, Status::Initialized | Status::Uncleared) => {
                    format!("it is {}, not authorised yet", status.as_str())
                }
                (true, _) => format!(
                    "it is {} / {}; only an authorisation (completed / initialized) can be {verb}",
                    status.as_str(),
                    status.financial_str()
                ),
            };
            MspError::new(1000, 409, format!("The order cannot be {verb}: {why}"))
        }
        CaptureRefusal::OverCapture { authorized } => MspError::new(
            1001,
            400,
            format!("Invalid amount: at most the authorised {authorized} can be captured"),
        ),
    }
}

/// Any other path under `/v1/json`.
pub(crate) async fn not_found() -> HttpResponse {
    MspError::new(
        1000,
        404,
        "Not found: the simulator serves /orders, /orders/{id}, /orders/{id}/refunds, \
         /orders/{id}/refunds/{refund_id}, /orders/{id}/capture and /capture/{id}",
    )
    .error_response()
}
