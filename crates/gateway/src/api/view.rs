//! The checkout as the merchant API shows it. Built from the stored record only, so
//! that a replayed, a fetched and a freshly created checkout look the same.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::card::CardSummary;
use crate::domain::checkout::{
    CaptureMethod, Checkout, CheckoutEvent, CheckoutId, CheckoutStatus, Failure,
};
use crate::domain::event::{self, DeliveryStatus, Event};
use crate::domain::money::MinorUnits;
use crate::domain::refund::{Refund, RefundReason, RefundStatus};
use crate::store::StoredEvent;

#[derive(Debug, Serialize)]
pub struct CheckoutView<'a> {
    pub id: &'a str,
    pub status: CheckoutStatus,
    pub amount: i64,
    pub currency: &'a str,
    pub reference: Option<&'a str>,
    pub description: &'a str,
    pub card: &'a CardSummary,
    /// The saved card this checkout saved or paid with; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<&'a str>,
    pub next_action: Option<NextAction<'a>>,
    pub failure: Option<&'a Failure>,
    pub psp: PspView<'a>,
    /// What completed refunds gave back, in minor units.
    pub amount_refunded: i64,
    /// What open and lost disputes hold, in minor units.
    pub amount_disputed: i64,
    pub capture_method: CaptureMethod,
    /// What was captured of a manual-capture authorisation.
    pub amount_captured: Option<i64>,
    /// What may still be captured of a manual-capture authorisation (MSP's `capture_remain`
    /// when it says, else the authorised amount); 0 once it no longer waits for a capture;
    /// `null` for automatic capture.
    pub amount_capturable: Option<i64>,
    /// Until when MSP keeps the authorisation (RFC 3339), for a `requires_capture` checkout.
    pub capture_before: Option<String>,
    pub metadata: &'a serde_json::Map<String, serde_json::Value>,
    pub return_url: &'a str,
    pub cancel_url: &'a str,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize)]
pub struct NextAction<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub redirect_to_url: RedirectToUrl<'a>,
}

#[derive(Debug, Serialize)]
pub struct RedirectToUrl<'a> {
    pub url: String,
    pub return_url: &'a str,
}

#[derive(Debug, Serialize)]
pub struct PspView<'a> {
    pub name: &'static str,
    pub order_id: &'a str,
    pub transaction_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub reason_code: &'a str,
}

pub fn timestamp(t: &DateTime<Utc>) -> String {
    crate::domain::time::with_text(t, SecondsFormat::Secs, str::to_owned)
}

impl<'a> CheckoutView<'a> {
    pub fn new(c: &'a Checkout, public_url: &str) -> Self {
        // The pay link is only offered while the shopper still has something to do.
        let next_action = match (&c.status, &c.pay_token) {
            (CheckoutStatus::RequiresAction, Some(token)) => Some(NextAction {
                kind: "redirect_to_url",
                redirect_to_url: RedirectToUrl {
                    url: format!("{public_url}/pay/{token}"),
                    return_url: &c.return_url,
                },
            }),
            _ => None,
        };
        Self {
            id: c.id.as_str(),
            status: c.status,
            amount: c.amount.value(),
            currency: c.currency.code(),
            reference: c.reference.as_deref(),
            description: &c.description,
            card: &c.card,
            payment_method: c.saved_card.payment_method.as_ref().map(|id| id.as_str()),
            next_action,
            failure: c
                .failure
                .as_ref()
                .filter(|_| c.status == CheckoutStatus::Failed),
            psp: PspView {
                name: "multisafepay",
                order_id: c.id.as_str(),
                transaction_id: c.psp.transaction_id.as_deref(),
                status: c.psp.status.as_deref(),
                reason_code: &c.psp.reason_code,
            },
            amount_refunded: c.refunded().value(),
            amount_disputed: c.amount_disputed().value(),
            capture_method: c.capture_method,
            amount_captured: c.amount_captured.map(MinorUnits::value),
            amount_capturable: c.capturable().map(MinorUnits::value),
            capture_before: c.capture_before.as_ref().map(timestamp),
            metadata: &c.metadata,
            return_url: &c.return_url,
            cancel_url: &c.cancel_url,
            created_at: timestamp(&c.created_at),
            updated_at: timestamp(&c.updated_at),
            expires_at: timestamp(&c.expires_at),
        }
    }
}

/// A refund as the merchant API shows it.
#[derive(Debug, Serialize)]
pub struct RefundView<'a> {
    pub id: &'a str,
    pub checkout_id: &'a str,
    /// `api`, or `dashboard` for a refund made in MSP's dashboard.
    pub source: crate::domain::refund::RefundSource,
    pub amount: i64,
    pub currency: &'a str,
    pub status: RefundStatus,
    pub reason: Option<RefundReason>,
    pub failure: Option<&'a Failure>,
    pub metadata: &'a serde_json::Map<String, serde_json::Value>,
    pub psp: RefundPspView<'a>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct RefundPspView<'a> {
    pub refund_order_id: &'a str,
    pub transaction_id: Option<&'a str>,
    pub status: Option<&'a str>,
}

impl<'a> RefundView<'a> {
    pub fn new(checkout: &'a Checkout, r: &'a Refund) -> Self {
        Self::of(checkout.id.as_str(), checkout.currency.code(), r)
    }

    /// The refund `r` of the checkout `checkout_id`, whose currency is `currency`.
    pub fn of(checkout_id: &'a str, currency: &'a str, r: &'a Refund) -> Self {
        Self {
            id: r.id.as_str(),
            checkout_id,
            source: r.source,
            amount: r.amount.value(),
            currency,
            status: r.status,
            reason: r.reason,
            failure: r.failure.as_ref(),
            metadata: &r.metadata,
            psp: RefundPspView {
                refund_order_id: r.id.as_str(),
                transaction_id: r.psp.transaction_id.as_deref(),
                status: r.psp.status.as_deref(),
            },
            created_at: timestamp(&r.created_at),
            updated_at: timestamp(&r.updated_at),
        }
    }
}

/// One entry of a checkout's history (`GET /v1/checkouts/{id}/events`).
#[derive(Debug, Serialize)]
pub struct EventView<'a> {
    /// `hst_`, the checkout id's 32 hex digits, `_` and the entry's place in the history (from
    /// 1): the history only grows, so an entry keeps its id, the list's cursor.
    pub id: String,
    pub at: String,
    pub from: Option<CheckoutStatus>,
    pub to: CheckoutStatus,
    pub source: &'static str,
    pub psp_status: Option<&'a str>,
}

impl<'a> EventView<'a> {
    /// The `index`-th (from 0) entry of checkout `checkout`'s history.
    pub fn new(checkout: &CheckoutId, index: usize, e: &'a CheckoutEvent) -> Self {
        let hex = checkout.as_str().trim_start_matches("chk_");
        Self {
            id: format!("hst_{hex}_{}", index + 1),
            at: timestamp(&e.at),
            from: e.from,
            to: e.to,
            source: e.source.as_str(),
            psp_status: e.psp_status.as_deref(),
        }
    }
}

/// A merchant event as the API and the webhook show it: the object is the checkout
/// or the refund as it was right after the change, rendered as `GET` shows it.
#[derive(Debug, Serialize)]
pub struct MerchantEventView<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub previous_status: Option<&'a str>,
    pub data: EventData<'a>,
}

#[derive(Debug, Serialize)]
pub struct EventData<'a> {
    pub object: EventObject<'a>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EventObject<'a> {
    Checkout(Box<CheckoutView<'a>>),
    Refund(RefundView<'a>),
    Dispute(super::disputes::DisputeView<'a>),
    WebhookEndpoint(&'a crate::domain::webhook_endpoint::EndpointSnapshot),
    /// As `GET /v1/payment_methods/{id}` shows it (never MSP's token).
    PaymentMethod(&'a crate::domain::payment_method::PaymentMethod),
}

impl<'a> MerchantEventView<'a> {
    pub fn new(e: &'a Event, public_url: &str) -> Self {
        let object = match &e.object {
            event::EventObject::Refund {
                checkout,
                currency,
                refund,
            } => EventObject::Refund(RefundView::of(checkout.as_str(), currency.code(), refund)),
            event::EventObject::Checkout(checkout) => {
                EventObject::Checkout(Box::new(CheckoutView::new(checkout, public_url)))
            }
            event::EventObject::Dispute {
                checkout,
                currency,
                dispute,
            } => EventObject::Dispute(super::disputes::DisputeView::of(
                checkout.as_str(),
                currency.code(),
                dispute,
            )),
            event::EventObject::WebhookEndpoint { endpoint, .. } => {
                EventObject::WebhookEndpoint(endpoint)
            }
            event::EventObject::PaymentMethod(method) => EventObject::PaymentMethod(method),
        };
        Self {
            id: e.id.as_str(),
            kind: e.kind.to_string(),
            created_at: timestamp(&e.created_at),
            previous_status: e.previous_status.as_deref(),
            data: EventData { object },
        }
    }
}

/// An event with its delivery, for `GET /v1/events/{id}`.
#[derive(Debug, Serialize)]
pub struct StoredEventView<'a> {
    #[serde(flatten)]
    pub event: MerchantEventView<'a>,
    /// `null` when no webhook URL was configured when the event happened.
    pub delivery: Option<DeliveryView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct DeliveryView<'a> {
    pub status: DeliveryStatus,
    pub attempts: Vec<AttemptView<'a>>,
    pub next_attempt_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AttemptView<'a> {
    pub at: String,
    pub http_status: Option<u16>,
    pub error: Option<&'a str>,
    pub duration_ms: u64,
}

impl<'a> StoredEventView<'a> {
    pub fn new(e: &'a StoredEvent, public_url: &str) -> Self {
        Self {
            event: MerchantEventView::new(&e.event, public_url),
            delivery: e.delivery.as_ref().map(|d| DeliveryView {
                status: d.status,
                attempts: d
                    .attempts
                    .iter()
                    .map(|a| AttemptView {
                        at: timestamp(&a.at),
                        http_status: a.http_status,
                        error: a.error.as_deref(),
                        duration_ms: a.duration_ms,
                    })
                    .collect(),
                next_attempt_at: d.next_attempt_at.as_ref().map(timestamp),
            }),
        }
    }
}
