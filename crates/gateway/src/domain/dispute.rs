//! Disputes: a chargeback the cardholder's bank raised against a payment, and what
//! became of it.
//!
//! MSP has no dispute webhook: a chargeback shows up as a `chargeback` entry in the order's
//! `related_transactions` (with a `dispute` object), and as a `chargeback` row of
//! `GET /transactions`. Wherever the gateway sees one first (a notification, an order sync, the
//! sweep), [`sync_disputes`] makes it a dispute, once: disputes live inside their checkout's record,
//! like refunds, keyed by the chargeback's own transaction id, so making one and every later
//! change of it is the checkout's one compare-and-set.
//!
//! A dispute's id names its checkout (`dp_` + the checkout's 32 hex digits + 2 of position), so
//! that `GET /v1/disputes/{id}` finds it without an index, as event ids do.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::checkout::{Checkout, CheckoutId};
use super::money::MinorUnits;

/// `dp_`, the checkout's 32 hex digits, the dispute's position in the checkout (2 hex).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisputeId(String);

#[derive(Debug, thiserror::Error)]
#[error("a dispute id is `dp_` followed by 34 lowercase hex digits")]
pub struct InvalidDisputeId;

impl DisputeId {
    pub const PREFIX: &'static str = "dp_";
    const HEX_LEN: usize = 32 + 2;

    pub fn new(checkout: &CheckoutId, position: u8) -> Self {
        let hex = &checkout.as_str()[CheckoutId::PREFIX.len()..];
        Self(format!("{}{hex}{position:02x}", Self::PREFIX))
    }

    pub fn parse(s: &str) -> Result<Self, InvalidDisputeId> {
        let hex = s.strip_prefix(Self::PREFIX).ok_or(InvalidDisputeId)?;
        let well_formed = hex.len() == Self::HEX_LEN
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if well_formed {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidDisputeId)
        }
    }

    /// The checkout whose record holds this dispute.
    pub fn checkout_id(&self) -> Option<CheckoutId> {
        let hex = &self.0[Self::PREFIX.len()..Self::PREFIX.len() + 32];
        CheckoutId::parse(&format!("{}{hex}", CheckoutId::PREFIX)).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisputeId {
    type Error = InvalidDisputeId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DisputeId> for String {
    fn from(id: DisputeId) -> Self {
        id.0
    }
}

impl fmt::Display for DisputeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DisputeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    /// The merchant may answer with evidence (MSP `new`, `open`, `ready`).
    NeedsResponse,
    /// Evidence is with MSP or the scheme (MSP `submitted`, `processed`).
    UnderReview,
    /// Decided for the merchant: the money came back (a `reverse-chargeback`).
    Won,
    /// Decided for the cardholder (MSP `accepted`, closed without a reversal, or the deadline
    /// passed with no evidence).
    Lost,
}

impl DisputeStatus {
    pub const ALL: [DisputeStatus; 4] = [
        Self::NeedsResponse,
        Self::UnderReview,
        Self::Won,
        Self::Lost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NeedsResponse => "needs_response",
            Self::UnderReview => "under_review",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Not decided yet: refunds of its checkout wait.
    pub fn is_open(self) -> bool {
        matches!(self, Self::NeedsResponse | Self::UnderReview)
    }

    /// Its money is with the cardholder: open or lost.
    pub fn holds_amount(self) -> bool {
        self != Self::Won
    }

    /// MSP's dispute status (and whether the chargeback was reversed) in the gateway's terms;
    /// `None` when MSP's status says nothing the gateway knows.
    pub fn from_msp(status: &str, reversed: bool) -> Option<Self> {
        if reversed {
            return Some(Self::Won);
        }
        Some(match status.to_ascii_lowercase().as_str() {
            "new" | "open" | "opened" | "ready" | "" => Self::NeedsResponse,
            "submitted" | "processed" => Self::UnderReview,
            "accepted" | "closed" => Self::Lost,
            _ => return None,
        })
    }
}

impl fmt::Display for DisputeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the gateway knows of the chargeback at MSP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputePsp {
    /// The chargeback's own transaction id: its `related_transactions` entry and its
    /// `GET /transactions` row.
    pub transaction_id: String,
    /// MSP's dispute status as MSP spelt it (`new`, `submitted`, …).
    #[serde(default)]
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub id: DisputeId,
    pub amount: MinorUnits,
    pub status: DisputeStatus,
    /// The scheme's reason code (e.g. `4837`).
    #[serde(default)]
    pub reason_code: String,
    #[serde(default)]
    pub reason: String,
    /// MSP's due date for the merchant's answer.
    #[serde(default, with = "crate::domain::time::rfc3339_opt")]
    pub respond_by: Option<DateTime<Utc>>,
    #[serde(default, with = "crate::domain::time::rfc3339_opt")]
    pub evidence_submitted_at: Option<DateTime<Utc>>,
    pub psp: DisputePsp,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// A chargeback as MSP shows it (the PSP-neutral half of `psp::PspChargeback`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenChargeback {
    pub transaction_id: String,
    /// Minor units, when MSP says.
    pub amount: Option<i64>,
    /// MSP's dispute status, as spelt (`""` when it sent no dispute).
    pub status: String,
    pub reason_code: String,
    pub reason: String,
    pub respond_by: Option<DateTime<Utc>>,
    /// MSP reversed it (the merchant won).
    pub reversed: bool,
}

/// `dispute.created`, `dispute.updated`, `dispute.closed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DisputeChange {
    Created,
    Updated,
    Closed,
}

impl DisputeChange {
    pub const ALL: [DisputeChange; 3] = [Self::Created, Self::Updated, Self::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Closed => "closed",
        }
    }

    /// What changed between `before` (`None`: the dispute is new) and `after`, as events:
    /// none when nothing the merchant sees changed.
    pub fn between(before: Option<&Dispute>, after: &Dispute) -> Vec<DisputeChange> {
        let closed = !after.status.is_open();
        match before {
            None if closed => vec![Self::Created, Self::Closed],
            None => vec![Self::Created],
            Some(b) if b.status != after.status && closed => vec![Self::Closed],
            Some(b)
                if b.status != after.status
                    || b.evidence_submitted_at != after.evidence_submitted_at
                    || b.respond_by != after.respond_by
                    || b.amount != after.amount =>
            {
                vec![Self::Updated]
            }
            Some(_) => vec![],
        }
    }
}

impl Checkout {
    pub fn dispute(&self, id: &DisputeId) -> Option<&Dispute> {
        self.disputes.iter().find(|d| d.id == *id)
    }

    /// Whether a dispute is still undecided: refunds wait (409 `checkout_disputed`).
    pub fn has_open_dispute(&self) -> bool {
        self.disputes.iter().any(|d| d.status.is_open())
    }

    /// What the cardholder's bank holds: every dispute open or lost.
    pub fn amount_disputed(&self) -> MinorUnits {
        let held: i64 = self
            .disputes
            .iter()
            .filter(|d| d.status.holds_amount())
            .map(|d| d.amount.value())
            .sum();
        MinorUnits::new(held).unwrap_or(MinorUnits::ZERO)
    }

    /// Every dispute is decided for the merchant: the money is back (the one move
    /// out of `charged_back`).
    pub fn disputes_all_won(&self) -> bool {
        !self.disputes.is_empty() && self.disputes.iter().all(|d| d.status == DisputeStatus::Won)
    }
}

/// The most disputes one checkout holds (positions are 2 hex digits).
pub const MAX_DISPUTES_PER_CHECKOUT: usize = 255;

/// Brings the checkout's disputes in line with the chargebacks MSP shows: a chargeback not seen
/// before becomes a dispute (once: it is recognised by its transaction id from then on), an open
/// one follows MSP's dispute status, and one whose `respond_by` has passed with no evidence is
/// lost. A decided dispute never changes again. Returns whether anything changed.
pub fn sync_disputes(next: &mut Checkout, seen: &[SeenChargeback], now: DateTime<Utc>) -> bool {
    let before = next.disputes.clone();
    for cb in seen {
        let status = DisputeStatus::from_msp(&cb.status, cb.reversed);
        let known = next
            .disputes
            .iter()
            .position(|d| d.psp.transaction_id == cb.transaction_id);
        let count = next.disputes.len();
        match known.map(|i| &mut next.disputes[i]) {
            Some(d) if d.status.is_open() => {
                if let Some(status) = status {
                    d.status = status;
                }
                d.psp.status = cb.status.clone();
                if cb.respond_by.is_some() {
                    d.respond_by = cb.respond_by;
                }
            }
            Some(_) => {}
            None if count < MAX_DISPUTES_PER_CHECKOUT => {
                let left = next.collected().value() - next.refunded().value();
                let amount = cb
                    .amount
                    .map(i64::abs)
                    .filter(|a| *a > 0)
                    .unwrap_or(left.max(0));
                let position = count as u8;
                next.disputes.push(Dispute {
                    id: DisputeId::new(&next.id, position),
                    amount: MinorUnits::new(amount).unwrap_or(MinorUnits::ZERO),
                    status: status.unwrap_or(DisputeStatus::NeedsResponse),
                    reason_code: cb.reason_code.clone(),
                    reason: cb.reason.clone(),
                    respond_by: cb.respond_by,
                    evidence_submitted_at: None,
                    psp: DisputePsp {
                        transaction_id: cb.transaction_id.clone(),
                        status: cb.status.clone(),
                    },
                    created_at: now,
                    updated_at: now,
                });
            }
            None => tracing::warn!(
                checkout_id = %next.id,
                "a checkout holds the most disputes it can; a further chargeback is not recorded"
            ),
        }
    }
    for d in &mut next.disputes {
        let overdue = d.status == DisputeStatus::NeedsResponse
            && d.evidence_submitted_at.is_none()
            && d.respond_by.is_some_and(|by| by < now);
        if overdue {
            d.status = DisputeStatus::Lost;
        }
    }
    for (d, b) in next.disputes.iter_mut().zip(before.iter()) {
        if d != b {
            d.updated_at = now;
        }
    }
    next.disputes != before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msp_statuses_map_to_the_four_of_the_design() {
        use DisputeStatus as D;
        for (msp, want) in [
            ("new", D::NeedsResponse),
            ("open", D::NeedsResponse),
            ("ready", D::NeedsResponse),
            ("submitted", D::UnderReview),
            ("processed", D::UnderReview),
            ("accepted", D::Lost),
            ("closed", D::Lost),
        ] {
            assert_eq!(D::from_msp(msp, false), Some(want), "{msp}");
        }
        assert_eq!(D::from_msp("closed", true), Some(D::Won));
        assert_eq!(D::from_msp("martian", false), None);
    }

    #[test]
    fn a_dispute_id_names_its_checkout() {
        let checkout = CheckoutId::parse("chk_0193a1b2c3d4e5f60718293a4b5c6d7e").unwrap();
        let id = DisputeId::new(&checkout, 1);
        assert_eq!(id.as_str(), "dp_0193a1b2c3d4e5f60718293a4b5c6d7e01");
        assert_eq!(DisputeId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.checkout_id(), Some(checkout));
        for bad in ["", "dp_", "dp_0193A1B2C3D4E5F60718293A4B5C6D7E01", "dp_12"] {
            assert!(DisputeId::parse(bad).is_err(), "{bad}");
        }
    }
}
