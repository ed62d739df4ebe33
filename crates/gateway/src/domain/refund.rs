//! Refunds: money going back to the shopper, in full or in part.
//!
//! A checkout's refunds live inside its record, so that reserving a refund's amount against what
//! is left, and every later change of a refund, is one compare-and-set of the checkout: two
//! concurrent refunds can never together exceed the amount, and a refund and the checkout's
//! status (`partially_refunded`, `refunded`) can never disagree.
//!
//! The refund id is also MSP's `refund_order_id`, so a refund is recognisable at MSP whatever
//! happened to the answer of the call that made it. What is left to refund, and whether a refund
//! fits, are the checkout's to say (`Checkout::refundable`, `Checkout::check_refund`).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::failure::Failure;
use super::money::MinorUnits;

/// The most refunds one checkout holds, whatever their status: a checkout's refunds
/// live in its record, which every change rewrites, so their number is bounded. The merchant's
/// next refund is refused with `refund_limit_reached`; refunds made in MSP's dashboard are still
/// recorded, since they move money.
pub const MAX_REFUNDS_PER_CHECKOUT: usize = 200;

super::id::prefixed_id!(
    /// `re_` followed by the 32 lowercase hex digits of a UUID v7; also MSP's `refund_order_id`.
    RefundId,
    InvalidRefundId,
    "re_",
    "a refund id is `re_` followed by 32 lowercase hex digits"
);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Requested; MSP has it `initialized` or `reserved`, or its answer has not come yet.
    Pending,
    /// MSP completed it.
    Succeeded,
    /// MSP refused or declined it; its amount is free again.
    Failed,
    /// Voided before it settled; its amount is free again.
    Canceled,
}

impl RefundStatus {
    pub const ALL: [RefundStatus; 4] =
        [Self::Pending, Self::Succeeded, Self::Failed, Self::Canceled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// Whether the refund's amount counts against what is left to refund.
    pub fn holds_amount(self) -> bool {
        matches!(self, Self::Pending | Self::Succeeded)
    }

    /// Only a pending refund may still change.
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    RequestedByCustomer,
    Duplicate,
    Fraudulent,
    Other,
}

impl RefundReason {
    pub const ALL: [RefundReason; 4] = [
        Self::RequestedByCustomer,
        Self::Duplicate,
        Self::Fraudulent,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestedByCustomer => "requested_by_customer",
            Self::Duplicate => "duplicate",
            Self::Fraudulent => "fraudulent",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What the gateway knows of the refund at MSP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPsp {
    /// MSP's id of the refund transaction, once MSP said it.
    pub transaction_id: Option<String>,
    /// The refund transaction's status at MSP as MSP spelt it (`reserved`, `completed`, …).
    pub status: Option<String>,
    /// Whether MSP is known to have the refund: its answer to the refund call arrived, or the
    /// refund was seen among the order's `related_transactions`. While `false` the outcome of the
    /// call is unknown, and the refund is never sent again before MSP has been asked.
    pub acknowledged: bool,
}

/// Who made a refund: the merchant through the API, or someone in MSP's dashboard (found on
/// MSP's order or by the sweep of `GET /transactions`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundSource {
    #[default]
    Api,
    Dashboard,
}

impl RefundSource {
    pub fn is_api(&self) -> bool {
        *self == Self::Api
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: RefundId,
    /// Left out of the stored JSON for the API's own refunds.
    #[serde(default, skip_serializing_if = "RefundSource::is_api")]
    pub source: RefundSource,
    pub amount: MinorUnits,
    pub status: RefundStatus,
    pub reason: Option<RefundReason>,
    pub failure: Option<Failure>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub psp: RefundPsp,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl Refund {
    /// Pending and not known to MSP: the answer of the call that requested it has not been
    /// recorded (it is on its way, was lost, or the call was never made). The reconciler looks
    /// for it at MSP, and fails it once MSP provably never received it.
    pub fn awaits_msp(&self) -> bool {
        self.status == RefundStatus::Pending && !self.psp.acknowledged
    }
}
