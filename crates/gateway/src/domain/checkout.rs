//! The checkout record, its statuses and the one function that decides every transition.
//!
//! A checkout is the gateway's view of one MultiSafepay order. Its id is also MSP's `order_id`,
//! so a notification's `transactionid` finds the checkout without an index.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::failure::Failure;
use super::refund::{Refund, RefundId, RefundStatus};

use super::card::CardSummary;
use super::money::{Currency, MinorUnits};

super::id::prefixed_id!(
    /// `chk_` followed by the 32 lowercase hex digits of a UUID v7: ids sort by creation time.
    /// It is also MSP's `order_id`.
    CheckoutId,
    InvalidCheckoutId,
    "chk_",
    "a checkout id is `chk_` followed by 32 lowercase hex digits"
);

/// The gateway's statuses. Spelled in snake_case on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutStatus {
    Created,
    RequiresAction,
    Processing,
    /// Authorised and waiting for the merchant's capture (`capture_method: manual`).
    RequiresCapture,
    Succeeded,
    Failed,
    Canceled,
    Expired,
    PartiallyRefunded,
    Refunded,
    ChargedBack,
}

impl CheckoutStatus {
    pub const ALL: [CheckoutStatus; 11] = [
        Self::Created,
        Self::RequiresAction,
        Self::Processing,
        Self::RequiresCapture,
        Self::Succeeded,
        Self::Failed,
        Self::Canceled,
        Self::Expired,
        Self::PartiallyRefunded,
        Self::Refunded,
        Self::ChargedBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::RequiresCapture => "requires_capture",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::ChargedBack => "charged_back",
        }
    }

    /// No transition ever leaves a final status.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Failed | Self::Canceled | Self::Expired | Self::ChargedBack
        )
    }

    /// Settled: nothing more will happen unless money moves back (refund, chargeback).
    /// The reconciler stops looking at a checkout once this is true. An authorisation waiting
    /// for its capture is not settled: MSP voids it if it is never captured.
    pub fn is_settled(self) -> bool {
        !matches!(
            self,
            Self::Created | Self::RequiresAction | Self::Processing | Self::RequiresCapture
        )
    }

    /// The one function that decides every transition.
    ///
    /// `target` is where MSP's news would take the checkout. Transitions only move forward:
    /// `created → requires_action → processing → requires_capture → {succeeded, failed,
    /// canceled, expired}`, and after
    /// `succeeded`: `partially_refunded → refunded`, with `charged_back` reachable from
    /// `succeeded`, `partially_refunded` and `refunded`. A forward skip is one transition.
    pub fn decide(self, target: CheckoutStatus) -> Decision {
        use CheckoutStatus as S;
        if self == target {
            return Decision::Unchanged;
        }
        let legal = match (self, target) {
            // Nothing leaves a final status.
            (S::Failed | S::Canceled | S::Expired | S::ChargedBack, _) => false,
            // Nothing goes back to `created`.
            (_, S::Created) => false,
            // Before the payment settles: forward by rank, to any later status, refund and
            // chargeback included (a forward skip is one transition).
            (S::Created, _) => true,
            (S::RequiresAction, to) => to != S::RequiresAction,
            (S::Processing, to) => !matches!(to, S::RequiresAction),
            (S::RequiresCapture, to) => !matches!(to, S::RequiresAction | S::Processing),
            // After `succeeded`, only money moving back.
            (S::Succeeded, to) => matches!(to, S::PartiallyRefunded | S::Refunded | S::ChargedBack),
            (S::PartiallyRefunded, to) => matches!(to, S::Refunded | S::ChargedBack),
            (S::Refunded, to) => matches!(to, S::ChargedBack),
        };
        if legal {
            Decision::Move(target)
        } else {
            Decision::Anomaly
        }
    }
}

impl fmt::Display for CheckoutStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`CheckoutStatus::decide`] says about a proposed status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A real transition: persist it and record one event.
    Move(CheckoutStatus),
    /// Already there (a duplicate notification, say): nothing to do, nothing to record.
    Unchanged,
    /// Backwards, out of a final status, or otherwise illegal: nothing changes; log and count it.
    Anomaly,
}

/// When the money is taken: at once, or when the merchant captures an
/// authorisation (MSP: Visa, Mastercard and Maestro only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    #[default]
    Automatic,
    Manual,
}

impl CaptureMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::Manual => "manual",
        }
    }
}

/// Who caused a transition (`GET /v1/checkouts/{id}/events`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    Create,
    Notification,
    BrowserReturn,
    Refresh,
    Reconcile,
    Expiry,
    Api,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Notification => "notification",
            Self::BrowserReturn => "browser_return",
            Self::Refresh => "refresh",
            Self::Reconcile => "reconcile",
            Self::Expiry => "expiry",
            Self::Api => "api",
        }
    }
}

/// One real transition in a checkout's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutEvent {
    #[serde(with = "crate::domain::time::rfc3339")]
    pub at: DateTime<Utc>,
    /// `None` for the event that records the checkout's creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<CheckoutStatus>,
    pub to: CheckoutStatus,
    pub source: EventSource,
    /// MSP's status that caused it, as MSP spelt it, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_status: Option<String>,
}

/// What the gateway last heard from MSP about the order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PspState {
    /// MSP's `transaction_id` (its PSP id), kept as a string: MSP sends numbers and strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// MSP's order `status`, as spelt by MSP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub reason_code: String,
    /// The MSP order that holds captured money, when MSP made a new one for the capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_order_id: Option<String>,
}

/// The pending 3-D Secure session: what the pay page serves. It lives under the pay token's own
/// key with `checkout.session_ttl_s`; the checkout record only keeps the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaySession {
    pub checkout_id: CheckoutId,
    /// MSP's `payment_url` (redirect mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
    /// MSP's `customer_verification.html` (form mode), served byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_html: Option<String>,
}

/// The stored checkout. Never holds a full card number or a CVC: only [`CardSummary`].
/// Options that are `None` are left out of the stored JSON: every byte of it is kept once per
/// checkout and once per merchant event that shows it (issue 12's memory target).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    /// Bumped when the stored layout changes incompatibly.
    pub schema_version: u32,
    pub id: CheckoutId,
    pub status: CheckoutStatus,
    pub amount: MinorUnits,
    pub currency: Currency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub description: String,
    pub card: CardSummary,
    /// Saved cards: what this checkout saves or pays with.
    #[serde(default, skip_serializing_if = "SavedCardState::is_empty")]
    pub saved_card: SavedCardState,
    pub return_url: String,
    pub cancel_url: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub psp: PspState,
    /// The `/pay/{token}` token while a 3DS session exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_token: Option<String>,
    /// Set when the shopper's browser came back through `/return` or `/cancel`: from then on
    /// MSP's `initialized` means `processing`, not `requires_action`.
    pub shopper_returned: bool,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// When the 3DS window (MSP: 1 h for cards) plus a margin ends.
    #[serde(with = "crate::domain::time::rfc3339")]
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub capture_method: CaptureMethod,
    /// What the merchant captured of a manual-capture authorisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_captured: Option<MinorUnits>,
    /// What MSP says is still capturable of a manual-capture authorisation (its
    /// `capture_remain`), as of the last news of the order that showed it; `None` until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_capturable: Option<MinorUnits>,
    /// Until when MSP keeps an authorisation (Visa 7 days, Mastercard and Maestro 30).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::domain::time::rfc3339_opt"
    )]
    pub capture_before: Option<DateTime<Utc>>,
    /// Its refunds, oldest first; see [`super::refund`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<Refund>,
    /// Its disputes, oldest first; see [`super::dispute`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disputes: Vec<super::dispute::Dispute>,
}

impl Checkout {
    pub const SCHEMA_VERSION: u32 = 1;
}

/// A checkout's part in saved cards: the card it saves (`save`, under `customer_reference`) and
/// the payment method it saved or paid with, once there is one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCardState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save: Option<super::payment_method::Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_reference: Option<super::payment_method::CustomerReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<super::payment_method::PaymentMethodId>,
}

impl SavedCardState {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Why a refund cannot be reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundRefusal {
    /// Only `succeeded` and `partially_refunded` checkouts can be refunded.
    NotRefundable(CheckoutStatus),
    /// More than what is left: the checkout's amount minus every refund that holds its amount.
    TooLarge { left: MinorUnits },
    /// The checkout holds [`crate::domain::refund::MAX_REFUNDS_PER_CHECKOUT`] refunds already.
    LimitReached,
    /// A dispute is open: refunding and then losing it would pay the shopper twice.
    Disputed,
}

impl Checkout {
    /// What the merchant may still capture: for a manual-capture checkout waiting for its
    /// capture, what MSP last said remains capturable (at most the amount), else the whole
    /// authorisation; 0 once it stopped waiting; `None` for an automatic-capture checkout.
    pub fn capturable(&self) -> Option<MinorUnits> {
        if self.capture_method != CaptureMethod::Manual {
            return None;
        }
        if self.status != CheckoutStatus::RequiresCapture {
            return Some(MinorUnits::ZERO);
        }
        Some(
            self.amount_capturable
                .map_or(self.amount, |left| left.min(self.amount)),
        )
    }

    /// The money collected: what was captured of a manual-capture authorisation, else the amount.
    pub fn collected(&self) -> MinorUnits {
        self.amount_captured.unwrap_or(self.amount)
    }

    /// What is left to refund: the money collected minus every refund not `failed` or
    /// `canceled`.
    pub fn refundable(&self) -> MinorUnits {
        let held: i64 = self
            .refunds
            .iter()
            .filter(|r| r.status.holds_amount())
            .map(|r| r.amount.value())
            .sum();
        MinorUnits::new(self.collected().value() - held).unwrap_or(MinorUnits::ZERO)
    }

    /// Completed refunds: what the shopper has had back.
    pub fn refunded(&self) -> MinorUnits {
        let done: i64 = self
            .refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Succeeded)
            .map(|r| r.amount.value())
            .sum();
        MinorUnits::new(done).unwrap_or(MinorUnits::ZERO)
    }

    /// Whether the reconciler still has something to do: a refund not settled at MSP.
    pub fn has_pending_refunds(&self) -> bool {
        self.refunds
            .iter()
            .any(|r| r.status == RefundStatus::Pending)
    }

    /// Nothing more will happen by itself: settled, with no refund pending and no dispute open and no
    /// card still to save (a paid checkout with `save_card` waits for MSP's token: the reconciler asks).
    pub fn is_at_rest(&self) -> bool {
        self.status.is_settled()
            && !self.has_pending_refunds()
            && !self.has_open_dispute()
            && !self.card_still_to_save()
    }

    /// It asked to save the card and has paid, and the card is not saved yet.
    pub fn card_still_to_save(&self) -> bool {
        self.saved_card.save.is_some()
            && self.saved_card.payment_method.is_none()
            && matches!(
                self.status,
                CheckoutStatus::RequiresCapture
                    | CheckoutStatus::Succeeded
                    | CheckoutStatus::PartiallyRefunded
                    | CheckoutStatus::Refunded
            )
    }

    pub fn refund(&self, id: &RefundId) -> Option<&Refund> {
        self.refunds.iter().find(|r| r.id == *id)
    }

    /// When the latest other refund of `refund`'s amount requested before it was requested,
    /// whatever became of it (a PSP may refuse a second refund of one amount soon after).
    pub fn same_amount_requested_before(&self, refund: &Refund) -> Option<DateTime<Utc>> {
        self.refunds
            .iter()
            .filter(|r| {
                r.id != refund.id && r.amount == refund.amount && r.created_at <= refund.created_at
            })
            .map(|r| r.created_at)
            .max()
    }

    /// Whether `amount` may be refunded now (`None`: everything left).
    pub fn check_refund(&self, amount: Option<MinorUnits>) -> Result<MinorUnits, RefundRefusal> {
        // Before the status rule: an open dispute is why, whatever the status.
        if self.has_open_dispute() {
            return Err(RefundRefusal::Disputed);
        }
        if !matches!(
            self.status,
            CheckoutStatus::Succeeded | CheckoutStatus::PartiallyRefunded
        ) {
            return Err(RefundRefusal::NotRefundable(self.status));
        }
        if self.refunds.len() >= crate::domain::refund::MAX_REFUNDS_PER_CHECKOUT {
            return Err(RefundRefusal::LimitReached);
        }
        let left = self.refundable();
        let amount = amount.unwrap_or(left);
        if amount > left || amount == MinorUnits::ZERO {
            return Err(RefundRefusal::TooLarge { left });
        }
        Ok(amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckoutStatus as S;

    #[test]
    fn generated_ids_parse_and_sort_by_creation() {
        let a = CheckoutId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = CheckoutId::generate();
        assert!(CheckoutId::parse(a.as_str()).is_ok());
        assert_eq!(a.as_str().len(), 36);
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "chk_",
            "chk_0123",
            "CHK_0123456789abcdef0123456789abcdef",
            "chk_0123456789ABCDEF0123456789abcdef",
            "chk_0123456789abcdef0123456789abcdeg",
            "chk_0123456789abcdef0123456789abcdef0",
            "ord_0123456789abcdef0123456789abcdef",
        ] {
            assert!(
                CheckoutId::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    /// The whole status table, one row per current status.
    #[test]
    fn every_pair_of_statuses_follows_the_rank_rules() {
        let moves: &[(S, &[S])] = &[
            (
                S::Created,
                &[
                    S::RequiresAction,
                    S::Processing,
                    S::RequiresCapture,
                    S::Succeeded,
                    S::Failed,
                    S::Canceled,
                    S::Expired,
                    S::PartiallyRefunded,
                    S::Refunded,
                    S::ChargedBack,
                ],
            ),
            (
                S::RequiresAction,
                &[
                    S::Processing,
                    S::RequiresCapture,
                    S::Succeeded,
                    S::Failed,
                    S::Canceled,
                    S::Expired,
                    S::PartiallyRefunded,
                    S::Refunded,
                    S::ChargedBack,
                ],
            ),
            (
                S::Processing,
                &[
                    S::RequiresCapture,
                    S::Succeeded,
                    S::Failed,
                    S::Canceled,
                    S::Expired,
                    S::PartiallyRefunded,
                    S::Refunded,
                    S::ChargedBack,
                ],
            ),
            (
                S::RequiresCapture,
                &[
                    S::Succeeded,
                    S::Failed,
                    S::Canceled,
                    S::Expired,
                    S::PartiallyRefunded,
                    S::Refunded,
                    S::ChargedBack,
                ],
            ),
            (
                S::Succeeded,
                &[S::PartiallyRefunded, S::Refunded, S::ChargedBack],
            ),
            (S::PartiallyRefunded, &[S::Refunded, S::ChargedBack]),
            (S::Refunded, &[S::ChargedBack]),
            (S::Failed, &[]),
            (S::Canceled, &[]),
            (S::Expired, &[]),
            (S::ChargedBack, &[]),
        ];
        assert_eq!(moves.len(), S::ALL.len());
        for (from, legal) in moves {
            for to in S::ALL {
                let expected = if *from == to {
                    Decision::Unchanged
                } else if legal.contains(&to) {
                    Decision::Move(to)
                } else {
                    Decision::Anomaly
                };
                assert_eq!(from.decide(to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn final_statuses_are_exactly_the_four_of_the_design() {
        let finals: Vec<_> = S::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [S::Failed, S::Canceled, S::Expired, S::ChargedBack]);
    }

    #[test]
    fn statuses_serialize_as_the_contract_spells_them() {
        for s in S::ALL {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
    }
}
