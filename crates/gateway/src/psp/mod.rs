//! The payment service provider edge: the MultiSafepay client and the conversion of its answers.
//!
//! The flows see only the PSP-neutral types here ([`PaymentStatus`], [`PspOrder`],
//! [`CreateOrder`], [`PspError`]); MSP's spelling (its status strings, error and reason codes,
//! and the failure table built on them) stays in [`multisafepay`].

use chrono::{DateTime, Utc};

use crate::configuration::NotificationMethod;
use crate::domain::checkout::{CheckoutId, Failure};
use crate::domain::new_checkout::NewCheckout;

pub mod multisafepay;

/// What the PSP's order status means for the payment, before any checkout history is
/// considered (which checkout status that leads to is `flows::transition`'s to say).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// 3-D Secure pending, or the scheme is still authorising.
    AwaitingShopper,
    /// Authorised but held (fraud filter); the PSP decides later.
    Pending,
    Succeeded,
    Declined,
    /// The shopper never finished 3-D Secure.
    Expired,
    Canceled,
    PartiallyRefunded,
    Refunded,
    ChargedBack,
    /// A status that says nothing about the payment, or one we do not know: changes nothing.
    NoChange,
}

/// One direct card order to create at the PSP.
#[derive(Debug)]
pub struct CreateOrder<'a> {
    /// Also the PSP's order id.
    pub id: &'a CheckoutId,
    pub checkout: &'a NewCheckout,
    /// `public_url` + `/notifications/multisafepay`.
    pub notification_url: String,
    pub notification_method: NotificationMethod,
    /// `public_url` + `/return/{id}`.
    pub redirect_url: String,
    /// `public_url` + `/cancel/{id}`.
    pub cancel_url: String,
}

/// An order as the flows need it: from a create answer, a `GET /orders/{id}` or a signed
/// POST notification body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PspOrder {
    pub order_id: String,
    /// The PSP's transaction id; MSP sends it as a number or a string, kept as a string.
    pub transaction_id: Option<String>,
    pub status: PaymentStatus,
    /// The order status as the PSP spelt it (`""` when absent): stored and shown in events.
    pub status_text: String,
    /// The PSP's reason code for the status (`""` when none).
    pub reason_code: String,
    /// Why the payment failed, when it was declined (the PSP's reason in the gateway's terms).
    pub failure: Option<Failure>,
    /// Where to send the shopper for 3-D Secure (redirect mode).
    pub payment_url: Option<String>,
    /// The PSP's 3-D Secure form, when it sent a non-empty one (form mode).
    pub form_html: Option<String>,
    /// The order's refunds as the PSP lists them (MSP: `related_transactions` of type `refund`),
    /// the gateway's and any made elsewhere (MSP's dashboard) alike.
    pub refunds: Vec<PspRefund>,
    /// The payment is authorised, not collected (MSP: `completed` with `financial_status`
    /// `initialized`): a manual-capture order waiting for its capture.
    pub authorized_only: bool,
    /// The order was charged back (MSP: a `chargeback` entry in `related_transactions`, or a
    /// `chargedback`/`chargeback` status).
    pub charged_back: bool,
    /// The order's chargebacks, each with its dispute as the PSP shows it; a
    /// reversed one (MSP: as many `reverse-chargeback` entries as there are, oldest first) is won.
    pub chargebacks: Vec<crate::domain::dispute::SeenChargeback>,
    /// Until when the PSP keeps a manual-capture authorisation, when it says (MSP:
    /// `payment_details.capture_expiry`).
    pub capture_expiry: Option<DateTime<Utc>>,
    /// What was captured of a manual-capture authorisation, when the PSP shows a capture (MSP:
    /// its `capture` entries in `related_transactions`, else what `capture_remain` leaves of
    /// the amount). Read on every sync, so that a capture whose answer was lost still counts.
    pub captured: Option<PspCapture>,
    /// What is still capturable of a manual-capture authorisation, when the PSP says (MSP:
    /// `payment_details.capture_remain`).
    pub capture_remain: Option<i64>,
    /// The token of the card this order saved (MSP: `payment_details.recurring_id`), once MSP
    /// shows one.
    pub recurring_id: Option<crate::domain::payment_method::MspToken>,
}

/// A capture as the PSP shows it on the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PspCapture {
    /// Minor units taken, all captures together.
    pub amount: i64,
    /// The order that holds the captured money, when the PSP made a new one.
    pub order_id: Option<String>,
}

/// One evidence file for a dispute, as the PSP takes it (MSP: `POST /orders/{id}/files`).
#[derive(Debug)]
pub struct EvidenceFile<'a> {
    /// MSP's spelling: `PDF`, `JPEG` or `PNG`.
    pub kind: &'static str,
    /// The file's bytes, base64 (standard alphabet, padded).
    pub base64: &'a str,
    pub description: &'a str,
    pub name: &'a str,
}

/// The PSP cancelled an order or voided an authorisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canceled {
    /// The order status the PSP shows from now on, as it spells it (MSP: `void`).
    pub status_text: String,
}

/// A capture of an authorisation.
#[derive(Debug)]
pub struct CaptureRequest<'a> {
    /// The checkout's id (MSP's `order_id`).
    pub order_id: &'a str,
    /// Minor units, at most the authorised amount.
    pub amount: i64,
    /// The id MSP gives the order that holds the captured money (MSP: `new_order_id`).
    pub new_order_id: &'a str,
}

/// The PSP captured an authorisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureAccepted {
    /// The PSP's id of the capture transaction.
    pub transaction_id: Option<String>,
    /// The order that holds the captured money, when the PSP made a new one.
    pub order_id: Option<String>,
}

/// One refund of an order, as the PSP lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PspRefund {
    /// The id the refund was requested with (MSP: `refund_order_id`); the gateway's refund id
    /// for the gateway's refunds.
    pub refund_order_id: Option<String>,
    /// The PSP's id of the refund transaction.
    pub transaction_id: Option<String>,
    /// Minor units, when the PSP says.
    pub amount: Option<i64>,
    pub status: RefundProgress,
    /// The status as the PSP spelt it.
    pub status_text: String,
}

/// Where a refund is at the PSP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundProgress {
    /// Requested, not settled yet (MSP: `initialized`, `reserved`).
    Pending,
    Completed,
    Declined,
    /// Voided before it settled (MSP: `void`, `cancelled`).
    Voided,
    /// A status that says nothing new.
    Unknown,
}

/// A refund to request at the PSP.
#[derive(Debug)]
pub struct RefundRequest<'a> {
    /// The checkout's id (MSP's `order_id`).
    pub order_id: &'a str,
    /// The gateway's refund id, sent as MSP's `refund_order_id`.
    pub refund_order_id: &'a str,
    /// Minor units; never 0 (MSP reads 0 as "everything").
    pub amount: i64,
    pub currency: &'a str,
    pub description: Option<&'a str>,
    /// When this refund was requested.
    pub requested_at: DateTime<Utc>,
    /// When the latest other refund of the same amount on this order was requested, whatever
    /// became of it: MSP refuses a second refund of one amount within minutes of the first, and
    /// its refusal then says when the amount can be refunded again.
    pub same_amount_requested_at: Option<DateTime<Utc>>,
}

/// The PSP accepted a refund request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundAccepted {
    /// The PSP's id of the refund transaction (MSP: `refund_id`).
    pub transaction_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PspError {
    /// Connect error, timeout or 5xx: MSP may or may not have acted. Never report this as a
    /// failure; sync the order later.
    #[error("MultiSafepay could not be reached or did not answer in time: {detail}")]
    Unreachable {
        detail: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    /// MSP declined the transaction (the card was refused).
    #[error("MultiSafepay declined the transaction (error {error_code}: {error_info})")]
    Declined {
        error_code: i64,
        error_info: String,
        failure: Failure,
    },
    /// MSP refused the request for a reason that is not the card's.
    #[error("MultiSafepay rejected the request (error {error_code}: {error_info})")]
    Rejected {
        error_code: i64,
        error_info: String,
        failure: Failure,
    },
    /// MSP has no such order (for this API key): it never received it, so nothing was charged;
    /// `failure` is why its checkout fails, in the gateway's terms.
    #[error("MultiSafepay has no such order")]
    NotFound { failure: Failure },
    /// An answer that could not be understood.
    #[error("MultiSafepay answered something unusable: {detail}")]
    Unexpected {
        detail: String,
        #[source]
        source: Option<serde_json::Error>,
    },
}

impl PspError {
    pub(crate) fn unexpected(detail: impl Into<String>) -> Self {
        Self::Unexpected {
            detail: detail.into(),
            source: None,
        }
    }
}
