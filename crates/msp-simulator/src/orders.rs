//! Simulated orders: what is kept of each (never a full card number or a CVC), the status
//! machine (reference §4.2–4.3), and a sharded in-memory book so that concurrent requests rarely
//! wait on one another.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::NaiveDateTime;

use super::cards::{AfterChallenge, Brand, CardBehaviour};

/// An order's place in the book: the site (index of the API key that created it) and the
/// merchant's order id. Orders are visible only to the key that created them.
pub(crate) type OrderKey = (usize, String);

/// The order status, which also fixes the financial status (reference §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Initialized,
    Completed,
    /// A manual-capture order authorised and not captured: `completed` / `initialized`
    /// (reference §4.2). Nothing is collected until it is captured.
    Authorized,
    Uncleared,
    Declined,
    Expired,
    /// Voided by the scheme (an uncleared payment that did not clear).
    Void,
    /// Cancelled by the merchant: `void` with a `cancelled` transaction.
    Cancelled,
    PartialRefunded,
    Refunded,
    /// Charged back by the cardholder's bank: `void` / `void` (reference §4.2).
    ChargedBack,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Initialized => "initialized",
            Status::Completed | Status::Authorized => "completed",
            Status::Uncleared => "uncleared",
            Status::Declined => "declined",
            Status::Expired => "expired",
            Status::Void | Status::Cancelled | Status::ChargedBack => "void",
            Status::PartialRefunded => "partial_refunded",
            Status::Refunded => "refunded",
        }
    }

    pub(crate) fn financial_str(self) -> &'static str {
        match self {
            Status::Cancelled => "cancelled",
            Status::Authorized => "initialized",
            // A refund is a transaction of its own; the payment itself stays collected.
            Status::PartialRefunded | Status::Refunded => "completed",
            other => other.as_str(),
        }
    }
}

/// What the shopper did on the challenge page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Authenticated,
    Failed,
    Cancelled,
}

/// The 3-D Secure result kept for `payment_details.card_authentication_result`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Authentication {
    /// EMV 3DS transaction status: `Y` or `N`.
    pub status: &'static str,
    /// `challenge` or `frictionless`.
    pub flow: &'static str,
    /// EMV 3DS `challengeCancel` code `01` when the shopper cancelled.
    pub challenge_cancel: Option<&'static str>,
}

/// What is kept of the card: enough to render `payment_details`, nothing a thief could use.
#[derive(Clone, Debug)]
pub(crate) struct CardRecord {
    pub brand: Brand,
    pub last4: String,
    /// YYMM, as sent.
    pub expiry: String,
    pub holder: Option<String>,
}

/// What a related transaction is (reference §4.1; the simulator makes these four).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransactionKind {
    Refund,
    Chargeback,
    Capture,
    /// A chargeback the merchant won: the money comes back.
    ReverseChargeback,
}

impl TransactionKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Refund => "refund",
            TransactionKind::Chargeback => "chargeback",
            TransactionKind::Capture => "capture",
            TransactionKind::ReverseChargeback => "reverse-chargeback",
        }
    }
}

/// The status of a related transaction: a refund is `reserved` until it settles (reference §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransactionStatus {
    Reserved,
    Completed,
    Declined,
    Void,
}

impl TransactionStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TransactionStatus::Reserved => "reserved",
            TransactionStatus::Completed => "completed",
            TransactionStatus::Declined => "declined",
            TransactionStatus::Void => "void",
        }
    }
}

/// A refund as asked for, before the order accepts it.
#[derive(Clone, Debug)]
pub(crate) struct NewRefund {
    pub transaction_id: u64,
    /// 0 = everything left.
    pub amount: u64,
    pub description: Option<String>,
    pub refund_order_id: String,
    /// Made under the `declined` refund fault: it declines when it would have settled.
    pub declines: bool,
    /// Made in the dashboard with `notify: false`: no notification tells of it.
    pub silent: bool,
}

/// A capture as asked for, before the order accepts it.
#[derive(Clone, Debug)]
pub(crate) struct NewCapture {
    pub transaction_id: u64,
    /// `None` = everything authorised.
    pub amount: Option<u64>,
    /// `new_order_id`: the merchant's id for the captured money (the order id when none was sent).
    pub order_id: Option<String>,
    pub description: Option<String>,
}

/// An entry of the order's `related_transactions`: a refund, a chargeback or a capture.
#[derive(Clone, Debug)]
pub(crate) struct Related {
    pub kind: TransactionKind,
    pub transaction_id: u64,
    pub amount: u64,
    pub description: Option<String>,
    /// Refunds only: the merchant's id for the refund (the order id when none was sent).
    pub refund_order_id: Option<String>,
    /// Captures only: `new_order_id`, when one was sent (the entry shows the order id otherwise).
    pub order_id: Option<String>,
    pub status: TransactionStatus,
    pub created: NaiveDateTime,
    pub modified: NaiveDateTime,
    pub declines: bool,
    /// Chargebacks only: the dispute MSP runs for it.
    pub dispute: Option<crate::disputes::Dispute>,
    /// No notification tells of this transaction (a dashboard refund made with `notify: false`).
    pub silent: bool,
}

impl Related {
    /// A refund whose amount is off the order's balance: still reserved, or paid out.
    fn holds_amount(&self) -> bool {
        self.kind == TransactionKind::Refund
            && matches!(
                self.status,
                TransactionStatus::Reserved | TransactionStatus::Completed
            )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotificationMethod {
    Get,
    Post,
}

#[derive(Clone, Debug)]
pub(crate) struct PaymentOptions {
    pub notification_url: Option<url::Url>,
    pub notification_method: NotificationMethod,
    pub redirect_url: Option<url::Url>,
    pub cancel_url: Option<url::Url>,
}

/// The customer fields echoed back in the order object, as MSP names them there.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct Customer {
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub country_name: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub house_number: Option<String>,
    pub last_name: Option<String>,
    pub locale: Option<String>,
    pub phone1: Option<String>,
    pub phone2: Option<String>,
    /// The merchant's id for the shopper: recurring tokens are stored under it.
    pub reference: Option<String>,
    pub state: Option<String>,
    pub zip_code: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Order {
    pub transaction_id: u64,
    pub order_id: String,
    pub status: Status,
    pub reason: String,
    pub reason_code: String,
    pub amount: u64,
    pub amount_refunded: u64,
    pub currency: String,
    pub description: String,
    pub items: Option<String>,
    pub vars: [Option<String>; 3],
    pub customer: Customer,
    pub card: CardRecord,
    pub external_transaction_id: String,
    pub authentication: Option<Authentication>,
    /// What the card number does to the order (MSP's test-card table).
    pub behaviour: CardBehaviour,
    pub options: PaymentOptions,
    /// `capture: "manual"`: the payment is only authorised, and collected when captured.
    pub manual_capture: bool,
    /// An initial order that makes a token, or a subsequent one that pays with one.
    pub recurring: Option<super::recurring::OrderRecurring>,
    /// When a manual-capture order was authorised.
    pub authorized_at: Option<NaiveDateTime>,
    /// What a manual-capture order's capture took.
    pub captured: Option<u64>,
    pub created: NaiveDateTime,
    pub modified: NaiveDateTime,
    pub completed: Option<NaiveDateTime>,
    /// Refunds and chargebacks, oldest first.
    pub related: Vec<Related>,
    /// The paid status a chargeback took the order from, given back when its dispute is won.
    pub charged_back_from: Option<Status>,
    /// Evidence uploaded for its disputes (`POST /orders/{id}/files`).
    pub files: Vec<crate::disputes::EvidenceFile>,
    /// Set by a change that must notify nobody (a dashboard refund made with `notify: false`);
    /// `Sim::change` clears it.
    pub quiet: bool,
}

/// A change the status machine does not allow; the caller turns it into its own error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Illegal {
    pub from: Status,
}

/// What a refund request may be refused for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RefundRefusal {
    NotRefundable(Status),
    WrongCurrency,
    OverRefund {
        remaining: u64,
    },
    /// MSP refuses a refund of the same amount within five minutes as a likely double click.
    SameAmountRecently,
}

/// Why a capture (or the cancellation of an authorisation) is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CaptureRefusal {
    /// Not an authorisation: not a manual-capture order, not authorised yet, or captured,
    /// voided or declined.
    NotAuthorized {
        status: Status,
        manual: bool,
    },
    OverCapture {
        authorized: u64,
    },
}

/// Why a refund cannot be voided (or settled): only a reserved refund changes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VoidRefusal {
    UnknownRefund,
    NotReserved(TransactionStatus),
}

impl Order {
    fn set_status(&mut self, status: Status, now: NaiveDateTime) {
        self.status = status;
        if status == Status::Completed && self.completed.is_none() {
            self.completed = Some(now);
        }
        if status == Status::Authorized && self.authorized_at.is_none() {
            self.authorized_at = Some(now);
        }
    }

    /// The scheme approved the payment: collected (`completed`), or for a manual-capture order
    /// only authorised.
    fn approve(&mut self, now: NaiveDateTime) {
        let status = if self.manual_capture {
            Status::Authorized
        } else {
            Status::Completed
        };
        self.set_status(status, now);
    }

    /// What the payment collected, what refunds and chargebacks count against: the amount, or
    /// for a manual-capture order what was captured (nothing while it is only authorised).
    fn collected(&self) -> u64 {
        if self.manual_capture {
            self.captured.unwrap_or(0)
        } else {
            self.amount
        }
    }

    /// When an authorisation not captured by then is voided by the scheme.
    pub(crate) fn capture_expiry(&self) -> Option<NaiveDateTime> {
        let lifetime = self.card.brand.authorization_lifetime()?;
        self.authorized_at?.checked_add_signed(lifetime)
    }

    /// The shopper answered the challenge. Returns the settlement still due, for uncleared cards.
    pub(crate) fn answer_challenge(
        &mut self,
        answer: Answer,
        now: NaiveDateTime,
    ) -> Result<Option<bool>, Illegal> {
        if self.status != Status::Initialized {
            return Err(Illegal { from: self.status });
        }
        let after = match self.behaviour {
            CardBehaviour::Challenge(after) => after,
            _ => return Err(Illegal { from: self.status }),
        };
        let mut settle = None;
        match (answer, after) {
            (Answer::Authenticated, AfterChallenge::Complete) => {
                self.authenticated("challenge");
                self.approve(now);
            }
            (Answer::Authenticated, AfterChallenge::Uncleared { then_complete }) => {
                self.authenticated("challenge");
                self.set_status(Status::Uncleared, now);
                settle = Some(then_complete);
            }
            (Answer::Authenticated, AfterChallenge::Decline { reason_code: 4002 }) => {
                // 3-D Secure passed; the issuer refused for lack of funds.
                self.authenticated("challenge");
                self.decline(4002, "Insufficient funds", now);
            }
            (Answer::Authenticated, AfterChallenge::Decline { .. }) | (Answer::Failed, _) => {
                self.authentication = Some(Authentication {
                    status: "N",
                    flow: "challenge",
                    challenge_cancel: None,
                });
                self.decline(
                    3001,
                    "3DS Authentication Failed / Card authentication failed",
                    now,
                );
            }
            (Answer::Cancelled, _) => {
                self.authentication = Some(Authentication {
                    status: "N",
                    flow: "challenge",
                    challenge_cancel: Some("01"),
                });
                self.decline(
                    3001,
                    "3DS Authentication Failed / Card authentication failed",
                    now,
                );
            }
        }
        Ok(settle)
    }

    fn authenticated(&mut self, flow: &'static str) {
        self.authentication = Some(Authentication {
            status: "Y",
            flow,
            challenge_cancel: None,
        });
    }

    fn decline(&mut self, code: u16, reason: &str, now: NaiveDateTime) {
        self.reason = reason.to_owned();
        self.reason_code = code.to_string();
        self.set_status(Status::Declined, now);
    }

    /// Applies the create-time behaviour of a card that is not challenged.
    pub(crate) fn settle_at_creation(&mut self, now: NaiveDateTime) {
        match self.behaviour {
            CardBehaviour::Frictionless => {
                self.authenticated("frictionless");
                self.approve(now);
            }
            CardBehaviour::NotEnrolled => self.approve(now),
            CardBehaviour::Challenge(_) | CardBehaviour::DeclinedAtCreation => {}
        }
    }

    /// The challenge window closed unanswered.
    pub(crate) fn expire(&mut self, now: NaiveDateTime) -> Result<(), Illegal> {
        if self.status != Status::Initialized {
            return Err(Illegal { from: self.status });
        }
        self.set_status(Status::Expired, now);
        Ok(())
    }

    /// An uncleared payment clears (`completed`, or authorised for manual capture) or does not
    /// (`void`).
    pub(crate) fn clear(&mut self, complete: bool, now: NaiveDateTime) -> Result<(), Illegal> {
        if self.status != Status::Uncleared {
            return Err(Illegal { from: self.status });
        }
        if complete {
            self.approve(now);
        } else {
            self.set_status(Status::Void, now);
        }
        Ok(())
    }

    /// The merchant cancels an unfinished order.
    pub(crate) fn cancel(&mut self, now: NaiveDateTime) -> Result<(), Illegal> {
        match self.status {
            Status::Initialized | Status::Uncleared => {
                self.set_status(Status::Cancelled, now);
                Ok(())
            }
            from => Err(Illegal { from }),
        }
    }

    /// Captures an authorisation, in full or in part, once: the order becomes `completed` /
    /// `completed` with a `capture` entry. Returns the amount captured.
    pub(crate) fn capture(
        &mut self,
        capture: NewCapture,
        now: NaiveDateTime,
    ) -> Result<u64, CaptureRefusal> {
        if self.status != Status::Authorized {
            return Err(CaptureRefusal::NotAuthorized {
                status: self.status,
                manual: self.manual_capture,
            });
        }
        let amount = capture.amount.unwrap_or(self.amount);
        if amount == 0 || amount > self.amount {
            return Err(CaptureRefusal::OverCapture {
                authorized: self.amount,
            });
        }
        self.related.push(Related {
            kind: TransactionKind::Capture,
            transaction_id: capture.transaction_id,
            amount,
            description: capture.description,
            refund_order_id: None,
            order_id: capture.order_id,
            status: TransactionStatus::Completed,
            created: now,
            modified: now,
            declines: false,
            dispute: None,
            silent: false,
        });
        self.captured = Some(amount);
        self.set_status(Status::Completed, now);
        Ok(amount)
    }

    /// The authorisation is voided, nothing collected: cancelled by the merchant
    /// (`PATCH /capture/{id}`), or expired. `void` / `void` (reference §4.2).
    pub(crate) fn void_authorization(&mut self, now: NaiveDateTime) -> Result<(), CaptureRefusal> {
        if self.status != Status::Authorized {
            return Err(CaptureRefusal::NotAuthorized {
                status: self.status,
                manual: self.manual_capture,
            });
        }
        self.set_status(Status::Void, now);
        Ok(())
    }

    /// Refunds `amount` (0 = everything left). The order shows it at once (`partial_refunded`
    /// or `refunded`, `amount_refunded` up); the refund itself starts `reserved`. Returns the
    /// refund's amount.
    pub(crate) fn refund(
        &mut self,
        currency: &str,
        refund: NewRefund,
        now: NaiveDateTime,
    ) -> Result<u64, RefundRefusal> {
        if !matches!(self.status, Status::Completed | Status::PartialRefunded) {
            return Err(RefundRefusal::NotRefundable(self.status));
        }
        if currency != self.currency {
            return Err(RefundRefusal::WrongCurrency);
        }
        let remaining = self.collected().saturating_sub(self.amount_refunded);
        let amount = if refund.amount == 0 {
            remaining
        } else {
            refund.amount
        };
        if amount == 0 || amount > remaining {
            return Err(RefundRefusal::OverRefund { remaining });
        }
        // Any refund request counts, whatever became of it: the rule is against double clicks.
        let five_minutes = chrono::Duration::minutes(5);
        if self.related.iter().any(|r| {
            r.kind == TransactionKind::Refund
                && r.amount == amount
                && now - r.created < five_minutes
        }) {
            return Err(RefundRefusal::SameAmountRecently);
        }
        self.related.push(Related {
            kind: TransactionKind::Refund,
            transaction_id: refund.transaction_id,
            amount,
            description: refund.description,
            refund_order_id: Some(refund.refund_order_id),
            order_id: None,
            status: TransactionStatus::Reserved,
            created: now,
            modified: now,
            declines: refund.declines,
            dispute: None,
            silent: refund.silent,
        });
        self.recount(now);
        Ok(amount)
    }

    fn refund_mut(&mut self, refund_id: u64) -> Option<&mut Related> {
        self.related
            .iter_mut()
            .find(|r| r.kind == TransactionKind::Refund && r.transaction_id == refund_id)
    }

    /// A reserved refund settles: `completed`, or `declined` when it was made to decline (its
    /// amount then goes back on the order). `Err` when it is not reserved any more.
    pub(crate) fn settle_refund(
        &mut self,
        refund_id: u64,
        now: NaiveDateTime,
    ) -> Result<TransactionStatus, VoidRefusal> {
        let refund = self
            .refund_mut(refund_id)
            .ok_or(VoidRefusal::UnknownRefund)?;
        if refund.status != TransactionStatus::Reserved {
            return Err(VoidRefusal::NotReserved(refund.status));
        }
        refund.status = if refund.declines {
            TransactionStatus::Declined
        } else {
            TransactionStatus::Completed
        };
        refund.modified = now;
        let settled = refund.status;
        self.recount(now);
        Ok(settled)
    }

    /// The merchant voids a refund that is still reserved; its amount goes back on the order.
    pub(crate) fn void_refund(
        &mut self,
        refund_id: u64,
        now: NaiveDateTime,
    ) -> Result<(), VoidRefusal> {
        let refund = self
            .refund_mut(refund_id)
            .ok_or(VoidRefusal::UnknownRefund)?;
        if refund.status != TransactionStatus::Reserved {
            return Err(VoidRefusal::NotReserved(refund.status));
        }
        refund.status = TransactionStatus::Void;
        refund.modified = now;
        self.recount(now);
        Ok(())
    }

    /// The cardholder's bank takes back what was paid and not refunded (or `amount` of it): the
    /// order becomes `void` / `void` with a `chargeback` entry carrying its `dispute`. Returns
    /// the amount charged back.
    pub(crate) fn charge_back(
        &mut self,
        transaction_id: u64,
        amount: Option<u64>,
        dispute: crate::disputes::Dispute,
        now: NaiveDateTime,
    ) -> Result<u64, Illegal> {
        if !matches!(self.status, Status::Completed | Status::PartialRefunded) {
            return Err(Illegal { from: self.status });
        }
        let left = self.collected().saturating_sub(self.amount_refunded);
        let amount = amount.filter(|a| *a > 0 && *a <= left).unwrap_or(left);
        self.related.push(Related {
            kind: TransactionKind::Chargeback,
            transaction_id,
            amount,
            description: Some("Chargeback".to_owned()),
            refund_order_id: None,
            order_id: None,
            status: TransactionStatus::Completed,
            created: now,
            modified: now,
            declines: false,
            dispute: Some(dispute),
            silent: false,
        });
        self.charged_back_from = Some(self.status);
        self.set_status(Status::ChargedBack, now);
        Ok(amount)
    }

    /// The chargeback `transaction_id`'s dispute moves to `status`; a dispute `won` adds a
    /// `reverse-chargeback` entry of its amount and gives the order back its paid status.
    pub(crate) fn move_dispute(
        &mut self,
        transaction_id: u64,
        status: &str,
        won: Option<(u64, bool)>,
        now: NaiveDateTime,
    ) -> Result<(), VoidRefusal> {
        let entry = self
            .related
            .iter_mut()
            .find(|r| r.kind == TransactionKind::Chargeback && r.transaction_id == transaction_id)
            .ok_or(VoidRefusal::UnknownRefund)?;
        let amount = entry.amount;
        if let Some(dispute) = entry.dispute.as_mut() {
            dispute.status = status.to_owned();
        }
        entry.modified = now;
        if let Some((reverse_id, true)) = won {
            self.related.push(Related {
                kind: TransactionKind::ReverseChargeback,
                transaction_id: reverse_id,
                amount,
                description: Some("Reverse chargeback".to_owned()),
                refund_order_id: None,
                order_id: None,
                status: TransactionStatus::Completed,
                created: now,
                modified: now,
                declines: false,
                dispute: None,
                silent: false,
            });
            if let Some(before) = self.charged_back_from.take() {
                self.status = before;
                self.recount(now);
            }
        }
        Ok(())
    }

    /// Whether `transaction_id` (a refund) was made with `notify: false`.
    pub(crate) fn is_silent(&self, transaction_id: u64) -> bool {
        self.related
            .iter()
            .any(|r| r.transaction_id == transaction_id && r.silent)
    }

    /// `amount_refunded` from the refunds that still hold an amount, and the order status that
    /// follows from it while the order is a paid one (a charged-back order stays `void`).
    fn recount(&mut self, now: NaiveDateTime) {
        self.amount_refunded = self
            .related
            .iter()
            .filter(|r| r.holds_amount())
            .map(|r| r.amount)
            .sum();
        if matches!(
            self.status,
            Status::Completed | Status::PartialRefunded | Status::Refunded
        ) {
            let status = if self.amount_refunded == 0 {
                Status::Completed
            } else if self.amount_refunded >= self.collected() {
                Status::Refunded
            } else {
                Status::PartialRefunded
            };
            self.set_status(status, now);
        }
    }
}

const SHARDS: usize = 32;

/// A map split into independently locked shards; locks are held only for a lookup or a change.
pub(crate) struct Sharded<K, V> {
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<K, V>>]>,
}

impl<K: std::hash::Hash + Eq, V> Sharded<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// The first key whose value `matches`, shard by shard (a scan: for the simulator's
    /// controls and `GET /transactions`, not for hot paths).
    pub(crate) fn find(&self, mut matches: impl FnMut(&K, &V) -> bool) -> Option<K>
    where
        K: Clone,
    {
        self.shards.iter().find_map(|shard| {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard
                .iter()
                .find(|(k, v)| matches(k, v))
                .map(|(k, _)| k.clone())
        })
    }

    /// What `f` makes of every entry, shard by shard.
    pub(crate) fn collect<T>(&self, mut f: impl FnMut(&K, &V) -> Vec<T>) -> Vec<T> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            for (k, v) in shard.iter() {
                out.extend(f(k, v));
            }
        }
        out
    }

    pub(crate) fn shard(&self, key: &K) -> MutexGuard<'_, HashMap<K, V>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding a shard leaves plain data behind, still usable.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(behaviour: CardBehaviour) -> Order {
        let now = chrono::Utc::now().naive_utc();
        Order {
            transaction_id: 1,
            order_id: "o".into(),
            status: Status::Initialized,
            reason: String::new(),
            reason_code: String::new(),
            amount: 1000,
            amount_refunded: 0,
            currency: "EUR".into(),
            description: "d".into(),
            items: None,
            vars: [None, None, None],
            customer: Customer::default(),
            card: CardRecord {
                brand: Brand::Visa,
                last4: "1111".into(),
                expiry: "3012".into(),
                holder: None,
            },
            external_transaction_id: "1".into(),
            authentication: None,
            behaviour,
            options: PaymentOptions {
                notification_url: None,
                notification_method: NotificationMethod::Get,
                redirect_url: None,
                cancel_url: None,
            },
            manual_capture: false,
            recurring: None,
            authorized_at: None,
            captured: None,
            created: now,
            modified: now,
            completed: None,
            related: vec![],
            charged_back_from: None,
            files: vec![],
            quiet: false,
        }
    }

    fn refund_of(amount: u64) -> NewRefund {
        refund_with_id(2, amount)
    }

    fn refund_with_id(transaction_id: u64, amount: u64) -> NewRefund {
        NewRefund {
            transaction_id,
            amount,
            description: None,
            refund_order_id: "o".into(),
            declines: false,
            silent: false,
        }
    }

    #[test]
    fn terminal_statuses_never_change() {
        let now = chrono::Utc::now().naive_utc();
        let mut o = order(CardBehaviour::Challenge(AfterChallenge::Complete));
        o.answer_challenge(Answer::Failed, now).unwrap();
        assert_eq!(o.status, Status::Declined);
        assert!(o.answer_challenge(Answer::Authenticated, now).is_err());
        assert!(o.expire(now).is_err());
        assert!(o.cancel(now).is_err());
        assert!(o.refund("EUR", refund_of(0), now).is_err());
    }

    #[test]
    fn refunds_walk_partial_then_full_and_refuse_the_rest() {
        let now = chrono::Utc::now().naive_utc();
        let mut o = order(CardBehaviour::Frictionless);
        o.settle_at_creation(now);
        assert_eq!(
            o.refund("USD", refund_of(100), now),
            Err(RefundRefusal::WrongCurrency)
        );
        assert_eq!(o.refund("EUR", refund_of(300), now), Ok(300));
        assert_eq!(o.status, Status::PartialRefunded);
        assert_eq!(
            o.refund("EUR", refund_of(300), now),
            Err(RefundRefusal::SameAmountRecently)
        );
        assert_eq!(
            o.refund("EUR", refund_of(800), now),
            Err(RefundRefusal::OverRefund { remaining: 700 })
        );
        assert_eq!(o.refund("EUR", refund_of(0), now), Ok(700));
        assert_eq!(o.status, Status::Refunded);
        assert_eq!(o.status.financial_str(), "completed");
    }

    #[test]
    fn a_voided_or_declined_refund_gives_its_amount_back() {
        let now = chrono::Utc::now().naive_utc();
        let mut o = order(CardBehaviour::Frictionless);
        o.settle_at_creation(now);
        o.refund("EUR", refund_with_id(2, 1000), now).unwrap();
        assert_eq!((o.status, o.amount_refunded), (Status::Refunded, 1000));
        o.void_refund(2, now).unwrap();
        assert_eq!((o.status, o.amount_refunded), (Status::Completed, 0));
        assert_eq!(
            o.void_refund(2, now),
            Err(VoidRefusal::NotReserved(TransactionStatus::Void))
        );
        assert_eq!(
            o.settle_refund(2, now),
            Err(VoidRefusal::NotReserved(TransactionStatus::Void))
        );
        assert_eq!(o.void_refund(99, now), Err(VoidRefusal::UnknownRefund));

        o.refund("EUR", refund_with_id(3, 400), now).unwrap();
        let declining = NewRefund {
            declines: true,
            ..refund_with_id(4, 500)
        };
        o.refund("EUR", declining, now).unwrap();
        assert_eq!(
            (o.status, o.amount_refunded),
            (Status::PartialRefunded, 900)
        );
        assert_eq!(o.settle_refund(3, now), Ok(TransactionStatus::Completed));
        assert_eq!(o.settle_refund(4, now), Ok(TransactionStatus::Declined));
        assert_eq!(
            (o.status, o.amount_refunded),
            (Status::PartialRefunded, 400)
        );
        assert_eq!(
            o.void_refund(3, now),
            Err(VoidRefusal::NotReserved(TransactionStatus::Completed))
        );
    }

    fn capture_of(amount: Option<u64>) -> NewCapture {
        NewCapture {
            transaction_id: 9,
            amount,
            order_id: None,
            description: None,
        }
    }

    #[test]
    fn a_manual_order_is_authorised_then_captured_once_and_refunded_from_the_capture() {
        let now = chrono::Utc::now().naive_utc();
        let mut o = order(CardBehaviour::Challenge(AfterChallenge::Complete));
        o.manual_capture = true;
        let early = o.capture(capture_of(None), now);
        assert_eq!(
            early,
            Err(CaptureRefusal::NotAuthorized {
                status: Status::Initialized,
                manual: true
            })
        );
        o.answer_challenge(Answer::Authenticated, now).unwrap();
        assert_eq!(
            (o.status.as_str(), o.status.financial_str()),
            ("completed", "initialized")
        );
        assert_eq!(o.authorized_at, Some(now));
        assert_eq!(
            o.refund("EUR", refund_of(0), now),
            Err(RefundRefusal::NotRefundable(Status::Authorized))
        );
        assert_eq!(
            o.capture(capture_of(Some(1001)), now),
            Err(CaptureRefusal::OverCapture { authorized: 1000 })
        );
        assert_eq!(o.capture(capture_of(Some(600)), now), Ok(600));
        assert_eq!(
            (o.status.as_str(), o.status.financial_str()),
            ("completed", "completed")
        );
        assert!(matches!(
            o.capture(capture_of(Some(100)), now),
            Err(CaptureRefusal::NotAuthorized {
                status: Status::Completed,
                ..
            })
        ));
        assert_eq!(
            o.refund("EUR", refund_of(700), now),
            Err(RefundRefusal::OverRefund { remaining: 600 })
        );
        assert_eq!(o.refund("EUR", refund_of(0), now), Ok(600));
        assert_eq!(o.status, Status::Refunded);
        assert!(o.void_authorization(now).is_err(), "captured");
    }

    #[test]
    fn a_voided_authorisation_is_final() {
        let now = chrono::Utc::now().naive_utc();
        let mut o = order(CardBehaviour::NotEnrolled);
        o.manual_capture = true;
        o.settle_at_creation(now);
        assert_eq!(o.status, Status::Authorized);
        o.void_authorization(now).unwrap();
        assert_eq!(
            (o.status.as_str(), o.status.financial_str()),
            ("void", "void")
        );
        assert!(o.void_authorization(now).is_err());
        assert!(o.capture(capture_of(None), now).is_err());
        assert!(o.cancel(now).is_err());
        assert!(o.refund("EUR", refund_of(0), now).is_err());
    }

    #[test]
    fn a_chargeback_takes_what_is_left_and_voids_the_order() {
        let now = chrono::Utc::now().naive_utc();
        let mut o = order(CardBehaviour::Frictionless);
        o.settle_at_creation(now);
        o.refund("EUR", refund_with_id(2, 300), now).unwrap();
        assert_eq!(
            o.charge_back(5, None, crate::disputes::Dispute::new_for_tests(now), now),
            Ok(700)
        );
        assert_eq!(
            (o.status.as_str(), o.status.financial_str()),
            ("void", "void")
        );
        assert!(
            o.charge_back(6, None, crate::disputes::Dispute::new_for_tests(now), now)
                .is_err(),
            "once"
        );
        assert!(o.refund("EUR", refund_with_id(7, 100), now).is_err());
        // A refund still reserved can be voided; the order stays charged back.
        o.void_refund(2, now).unwrap();
        assert_eq!((o.status, o.amount_refunded), (Status::ChargedBack, 0));
    }
}
