//! The transition pipeline's pure half: what a caller learned ([`News`]) becomes the checkout's
//! next state, its failure and its event, in [`transition`]. Nowhere else chooses a status:
//! callers report news, [`CheckoutStatus::decide`] rules whether the move is legal, and
//! [`apply`](super::apply) writes the result with one compare-and-set.

use chrono::{DateTime, Utc};

use crate::domain::checkout::{
    CaptureMethod, Checkout, CheckoutEvent, CheckoutStatus, Decision, EventSource, Failure,
};
use crate::domain::money::MinorUnits;
use crate::domain::refund::{Refund, RefundId, RefundPsp, RefundStatus};
use crate::metrics::ANOMALIES;
use crate::psp::{
    Canceled, CaptureAccepted, PaymentStatus, PspOrder, PspRefund, RefundAccepted, RefundProgress,
};

/// What a caller learned about a checkout.
#[derive(Clone, Copy, Debug)]
pub enum News<'a> {
    /// MSP described the order: a signed notification's body, or `GET /orders/{id}`.
    Order(&'a PspOrder),
    /// MSP's answer to the create call, with the pay token of the 3-D Secure session opened for
    /// it (when MSP asked for 3-D Secure and the session could be stored).
    Created {
        order: &'a PspOrder,
        pay_token: Option<&'a str>,
    },
    /// MSP refused the create call (a declined card, or an order MSP would not take); the
    /// failure is MSP's reason in the gateway's terms.
    Refused(&'a Failure),
    /// The create call's outcome is unknown (MSP unreachable, timed out, 5xx, or an answer that
    /// could not be read): the shopper may have been charged, so never `failed`.
    OutcomeUnknown,
    /// The shopper's browser is back from MSP (`/return`, `/cancel`), with what MSP said then,
    /// or `None` when MSP could not be asked.
    ShopperReturned { order: Option<&'a PspOrder> },
    /// MSP has never heard of the order: it was never created, so nothing was charged; the
    /// failure says so in the gateway's terms.
    NeverReceived(&'a Failure),
    /// The 3-D Secure window (MSP's hour plus our margin) is over and the shopper never finished.
    ThreeDsWindowOver,
    /// The merchant asked for a refund: it is reserved if the checkout is refundable and the
    /// amount fits what is left, else nothing changes (the caller reads why from the state).
    RefundRequested(&'a Refund),
    /// MSP's answer to the call that requested refund `id`.
    RefundAnswered {
        id: &'a RefundId,
        answer: RefundAnswer<'a>,
    },
    /// MSP voided pending refund `id` at the merchant's request.
    RefundCanceled(&'a RefundId),
    /// MSP agreed to cancel the order (or void the authorisation) at the merchant's request,
    /// and shows it from now on as `Canceled::status_text`.
    CanceledAtMsp(&'a Canceled),
    /// MSP captured `amount` of the authorisation at the merchant's request.
    Captured {
        amount: MinorUnits,
        accepted: &'a CaptureAccepted,
    },
    /// MSP took the merchant's evidence for dispute `id`.
    EvidenceSubmitted(&'a crate::domain::dispute::DisputeId),
}

/// What MSP answered to a refund request.
#[derive(Clone, Copy, Debug)]
pub enum RefundAnswer<'a> {
    Accepted(&'a RefundAccepted),
    /// Refused at once (more than is left to refund, and the like): the refund failed, its
    /// amount is free.
    Refused(&'a Failure),
    /// MSP provably never received it (not among the order's refunds, long after any call
    /// could have arrived): nothing was refunded; the refund failed, its amount is free.
    NeverReceived(&'a Failure),
}

impl<'a> News<'a> {
    /// MSP's order, when the news carries one.
    fn order(self) -> Option<&'a PspOrder> {
        match self {
            Self::Order(order) | Self::Created { order, .. } => Some(order),
            Self::ShopperReturned { order } => order,
            _ => None,
        }
    }

    /// Where the news would take a checkout, before [`CheckoutStatus::decide`]
    /// rules on it; `None` when it has no meaning for the status.
    fn target(self, shopper_returned: bool) -> Option<CheckoutStatus> {
        use CheckoutStatus as S;
        match self {
            Self::Order(order) | Self::Created { order, .. } => {
                status_for(order.status, shopper_returned)
            }
            Self::ShopperReturned { order: Some(order) } => status_for(order.status, true),
            // The shopper is done with 3-D Secure, so the checkout no longer waits for them.
            Self::ShopperReturned { order: None } | Self::OutcomeUnknown => Some(S::Processing),
            Self::Refused(_) | Self::NeverReceived(_) => Some(S::Failed),
            Self::ThreeDsWindowOver => Some(S::Expired),
            // Refund news changes the refunds; completed refunds move the status (below).
            Self::RefundRequested(_) | Self::RefundAnswered { .. } | Self::RefundCanceled(_) => {
                None
            }
            Self::CanceledAtMsp(_) => Some(S::Canceled),
            Self::Captured { .. } => Some(S::Succeeded),
            Self::EvidenceSubmitted(_) => None,
        }
    }

    /// Why a checkout that this news fails has failed.
    fn failure(self) -> Failure {
        match self {
            Self::Refused(failure) | Self::NeverReceived(failure) => failure.clone(),
            _ => self
                .order()
                .and_then(|o| o.failure.clone())
                .unwrap_or_else(|| Failure {
                    code: "processing_error".into(),
                    message: "The payment failed at MultiSafepay.".into(),
                    psp_reason_code: String::new(),
                }),
        }
    }
}

/// MSP's order status as a checkout status. `initialized` waits for the shopper
/// (`requires_action`), or is `processing` once the shopper has come back: MSP has not heard
/// the end of 3-D Secure yet, but the shopper is done with it.
fn status_for(status: PaymentStatus, shopper_returned: bool) -> Option<CheckoutStatus> {
    use CheckoutStatus as S;
    use PaymentStatus as P;
    Some(match status {
        P::AwaitingShopper if shopper_returned => S::Processing,
        P::AwaitingShopper => S::RequiresAction,
        P::Pending => S::Processing,
        // MSP shows a refund on the order as soon as it is requested (and takes it back if it is
        // declined): the checkout follows completed refunds instead, so these
        // say only that the payment was collected.
        P::Succeeded | P::PartiallyRefunded | P::Refunded => S::Succeeded,
        P::Declined => S::Failed,
        P::Expired => S::Expired,
        P::Canceled => S::Canceled,
        P::ChargedBack => S::ChargedBack,
        P::NoChange => return None,
    })
}

/// The state after `news`, and the event to record, or `None` when nothing changes.
pub fn transition(
    current: &Checkout,
    news: News<'_>,
    source: EventSource,
    now: DateTime<Utc>,
) -> Option<(Checkout, Option<CheckoutEvent>)> {
    let mut next = current.clone();
    if let News::ShopperReturned { .. } = news {
        next.shopper_returned = true;
    }
    if let News::Created {
        pay_token: Some(token),
        ..
    } = news
    {
        next.pay_token = Some(token.to_owned());
    }
    let order = news.order();
    if let Some(tx) = order.and_then(|o| o.transaction_id.as_ref()) {
        next.psp.transaction_id = Some(tx.clone());
    }
    apply_refund_news(&mut next, news, now);
    // What was captured is bookkeeping, whatever the order of the news: MSP's notification of
    // the capture often arrives before the capture call's own answer.
    if let News::Captured { amount, accepted } = news
        && next.amount_captured.is_none()
        && !current.status.is_final()
    {
        next.amount_captured = Some(amount);
        next.psp.capture_order_id = accepted.order_id.clone();
    }
    // What MSP shows captured is the truth, on every sync: a capture whose answer was lost (the
    // gateway died, or the store stalled, after MSP captured) is learned here, and refunds then
    // count against it, not against the whole authorisation.
    if let Some(captured) = order.and_then(|o| o.captured.as_ref())
        && next.capture_method == CaptureMethod::Manual
        && let Ok(amount) = MinorUnits::new(captured.amount)
    {
        next.amount_captured = Some(amount);
        if captured.order_id.is_some() {
            next.psp.capture_order_id = captured.order_id.clone();
        }
    }
    let mut target = news.target(next.shopper_returned);
    // A manual-capture order that MSP authorised waits for the merchant's capture.
    if target == Some(CheckoutStatus::Succeeded)
        && next.capture_method == CaptureMethod::Manual
        && order.is_some_and(|o| o.authorized_only)
    {
        target = Some(CheckoutStatus::RequiresCapture);
    }
    // Chargebacks become disputes, once, and follow MSP's dispute status; the merchant's
    // evidence is recorded.
    if let News::EvidenceSubmitted(id) = news
        && let Some(d) = next.disputes.iter_mut().find(|d| d.id == *id)
        && d.status == crate::domain::dispute::DisputeStatus::NeedsResponse
    {
        d.evidence_submitted_at = Some(now);
        d.updated_at = now;
    }
    let chargebacks = order.map(|o| o.chargebacks.as_slice()).unwrap_or_default();
    crate::domain::dispute::sync_disputes(&mut next, chargebacks, now);
    if let Some(order) = order {
        for psp_refund in &order.refunds {
            settle_refund(&mut next, psp_refund, now);
        }
        if order.charged_back && !next.disputes_all_won() {
            target = Some(CheckoutStatus::ChargedBack);
        }
        // What MSP says is left to capture is what the checkout shows as capturable.
        if let Some(remain) = order.capture_remain
            && next.capture_method == CaptureMethod::Manual
            && let Ok(remain) = MinorUnits::new(remain)
        {
            next.amount_capturable = Some(remain);
        }
        // Where MSP says until when it keeps the authorisation, that wins.
        if let Some(expiry) = order.capture_expiry
            && next.capture_method == CaptureMethod::Manual
            && next.amount_captured.is_none()
        {
            next.capture_before = Some(expiry);
        }
    }
    if next.disputes.iter().any(|d| d.status.holds_amount()) && !next.status.is_final() {
        target = Some(CheckoutStatus::ChargedBack);
    }
    // A won dispute gives the money back: the one move out of `charged_back`.
    let reinstate = current.status == CheckoutStatus::ChargedBack && next.disputes_all_won();
    if reinstate {
        target = Some(status_after_refunds(&next));
    }
    // A collected payment's status is its completed refunds' to say.
    let collected = matches!(
        current.status,
        CheckoutStatus::Succeeded | CheckoutStatus::PartiallyRefunded
    );
    if target == Some(CheckoutStatus::Succeeded)
        || (target.is_none() && collected && next.refunds != current.refunds)
    {
        target = Some(status_after_refunds(&next));
    }
    if let Some(order) = order.filter(|o| o.status == PaymentStatus::NoChange) {
        tracing::info!(psp_status = %order.status_text, "MultiSafepay status with no gateway meaning");
    }
    let mut event = None;
    let decision = match target {
        Some(to) if reinstate => Some(Decision::Move(to)),
        _ => target.map(|t| current.status.decide(t)),
    };
    match decision {
        Some(Decision::Move(to)) => {
            next.status = to;
            if let Some(order) = order {
                next.psp.reason_code = order.reason_code.clone();
            }
            // What MSP shows now: its order, or what a cancel it agreed to leaves.
            let psp_status = match news {
                News::CanceledAtMsp(canceled) => Some(canceled.status_text.clone()),
                _ => order.map(|o| o.status_text.clone()),
            };
            if psp_status.is_some() {
                next.psp.status = psp_status.clone();
            }
            if to == CheckoutStatus::Failed {
                next.failure = Some(news.failure());
            }
            if to == CheckoutStatus::RequiresCapture {
                next.capture_before = order
                    .and_then(|o| o.capture_expiry)
                    .or_else(|| Some(now + authorisation_lifetime(&next.card.brand)));
            }

            event = Some(CheckoutEvent {
                at: now,
                from: Some(current.status),
                to,
                source,
                psp_status,
            });
        }
        Some(Decision::Anomaly) => {
            let to = target.map(CheckoutStatus::as_str).unwrap_or("?");
            if current.status == CheckoutStatus::Canceled
                && matches!(
                    target,
                    Some(CheckoutStatus::Succeeded | CheckoutStatus::RequiresCapture)
                )
            {
                tracing::error!(
                    to,
                    "MultiSafepay reports a payment on a checkout that was canceled: the checkout stays canceled; refund the payment at MultiSafepay"
                );
            }
            tracing::warn!(
                from = current.status.as_str(),
                to,
                psp_status = order.map(|o| o.status_text.as_str()),
                "refused a transition that would move backwards or out of a final status; nothing changes"
            );
            metrics::counter!(ANOMALIES, "from" => current.status.as_str(), "to" => to, "source" => source.as_str())
                .increment(1);
            // An anomaly changes nothing at all, not even the bookkeeping fields.
            return None;
        }
        Some(Decision::Unchanged) | None => {}
    }
    if next == *current {
        return None;
    }
    next.updated_at = now;
    Some((next, event))
}

/// How long MSP keeps an authorisation before it voids it (MSP's manual-capture docs): 7 days
/// for Visa, 30 for Mastercard and Maestro.
fn authorisation_lifetime(brand: &str) -> chrono::TimeDelta {
    if brand == "visa" {
        chrono::TimeDelta::days(7)
    } else {
        chrono::TimeDelta::days(30)
    }
}

/// A collected payment's status by its completed refunds: `succeeded` until one completes, then
/// `partially_refunded`, `refunded` once they add up to the whole amount.
fn status_after_refunds(checkout: &Checkout) -> CheckoutStatus {
    let refunded = checkout.refunded();
    if refunded == MinorUnits::ZERO {
        CheckoutStatus::Succeeded
    } else if refunded >= checkout.collected() {
        CheckoutStatus::Refunded
    } else {
        CheckoutStatus::PartiallyRefunded
    }
}

/// The refund news of the merchant's own calls (reserve, MSP's answer, void).
fn apply_refund_news(next: &mut Checkout, news: News<'_>, now: DateTime<Utc>) {
    match news {
        News::RefundRequested(refund)
            if next.refund(&refund.id).is_none()
                && next.check_refund(Some(refund.amount)).is_ok() =>
        {
            next.refunds.push(refund.clone());
        }
        News::RefundAnswered { id, answer } => {
            let Some(refund) = pending_refund(next, id) else {
                return;
            };
            refund.psp.acknowledged = !matches!(answer, RefundAnswer::NeverReceived(_));
            match answer {
                RefundAnswer::Accepted(accepted) => {
                    if accepted.transaction_id.is_some() {
                        refund.psp.transaction_id = accepted.transaction_id.clone();
                    }
                }
                RefundAnswer::Refused(failure) | RefundAnswer::NeverReceived(failure) => {
                    refund.status = RefundStatus::Failed;
                    refund.failure = Some(failure.clone());
                }
            }
            refund.updated_at = now;
        }
        News::RefundCanceled(id) => {
            if let Some(refund) = pending_refund(next, id) {
                refund.status = RefundStatus::Canceled;
                refund.psp.status = Some("void".into());
                refund.updated_at = now;
            }
        }
        _ => {}
    }
}

fn pending_refund<'c>(checkout: &'c mut Checkout, id: &RefundId) -> Option<&'c mut Refund> {
    checkout
        .refunds
        .iter_mut()
        .find(|r| r.id == *id && r.status == RefundStatus::Pending)
}

/// One refund as MSP lists it: ours (by `refund_order_id`, or by MSP's transaction id), or one
/// made elsewhere (MSP's dashboard), which is recorded so that it counts like ours. A refund that
/// is final here never changes again.
fn settle_refund(next: &mut Checkout, seen: &PspRefund, now: DateTime<Utc>) {
    let ours = next.refunds.iter_mut().find(|r| {
        seen.refund_order_id.as_deref() == Some(r.id.as_str())
            || (seen.transaction_id.is_some() && seen.transaction_id == r.psp.transaction_id)
    });
    let status = match seen.status {
        RefundProgress::Pending => RefundStatus::Pending,
        RefundProgress::Completed => RefundStatus::Succeeded,
        RefundProgress::Declined => RefundStatus::Failed,
        RefundProgress::Voided => RefundStatus::Canceled,
        RefundProgress::Unknown => return,
    };
    let failure = (status == RefundStatus::Failed).then(|| Failure {
        code: "refund_declined".into(),
        message: "MultiSafepay declined the refund; its amount can be refunded again.".into(),
        psp_reason_code: String::new(),
    });
    match ours {
        Some(refund) if refund.status == RefundStatus::Pending => {
            let before = refund.clone();
            refund.psp.acknowledged = true;
            refund.psp.status = Some(seen.status_text.clone());
            if refund.psp.transaction_id.is_none() {
                refund.psp.transaction_id = seen.transaction_id.clone();
            }
            refund.status = status;
            refund.failure = failure;
            if *refund != before {
                refund.updated_at = now;
            }
        }
        Some(_) => {}
        None => {
            // Made elsewhere: recorded once, recognised by MSP's transaction id from then on.
            let (Some(amount), Some(_)) = (
                seen.amount.and_then(|a| MinorUnits::new(a).ok()),
                seen.transaction_id.as_ref(),
            ) else {
                return;
            };
            next.refunds.push(Refund {
                id: RefundId::generate(),
                source: crate::domain::refund::RefundSource::Dashboard,
                amount,
                status,
                reason: None,
                failure,
                metadata: serde_json::Map::new(),
                psp: RefundPsp {
                    transaction_id: seen.transaction_id.clone(),
                    status: Some(seen.status_text.clone()),
                    acknowledged: true,
                },
                created_at: now,
                updated_at: now,
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed instant: the transition is a pure function of its inputs.
    pub(crate) fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap()
    }
    use crate::domain::card::CardSummary;
    use crate::domain::checkout::{CheckoutId, PspState};
    use crate::domain::money::{Currency, MinorUnits};
    use crate::psp::multisafepay::status::{
        failure_for_reason, failure_for_unknown_order, payment_status,
    };
    use CheckoutStatus as S;

    pub(crate) fn checkout(status: CheckoutStatus, shopper_returned: bool) -> Checkout {
        let now = at();
        Checkout {
            schema_version: Checkout::SCHEMA_VERSION,
            id: CheckoutId::generate(),
            status,
            amount: MinorUnits::new(3495).unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            reference: None,
            description: "Checkout".into(),
            card: CardSummary {
                brand: "visa".into(),
                last4: "1111".into(),
                exp_month: 12,
                exp_year: 2030,
            },
            saved_card: Default::default(),
            return_url: "https://shop.example/r".into(),
            cancel_url: "https://shop.example/c".into(),
            metadata: Default::default(),
            failure: None,
            psp: PspState::default(),
            pay_token: None,
            shopper_returned,
            created_at: now,
            updated_at: now,
            expires_at: now,
            capture_method: Default::default(),
            amount_captured: None,
            amount_capturable: None,
            capture_before: None,
            refunds: Vec::new(),
            disputes: Vec::new(),
        }
    }

    pub(crate) fn order(status: &str) -> PspOrder {
        let declined = status == "declined";
        PspOrder {
            order_id: "chk".into(),
            transaction_id: Some("42".into()),
            status: payment_status(status),
            status_text: status.into(),
            reason_code: if declined {
                "4002".into()
            } else {
                String::new()
            },
            failure: declined.then(|| failure_for_reason("4002", "")),
            payment_url: None,
            form_html: None,
            refunds: Vec::new(),
            chargebacks: Vec::new(),
            capture_expiry: None,
            capture_remain: None,
            authorized_only: false,
            charged_back: false,
            captured: None,
            recurring_id: None,
        }
    }

    /// The merchant API contract's two tables composed: every current status × every MSP status (and an
    /// unknown one), before and after the shopper's return. `None` = nothing changes.
    #[test]
    fn every_current_status_and_every_msp_status() {
        let msp_statuses = [
            "initialized",
            "uncleared",
            "completed",
            "declined",
            "expired",
            "void",
            "cancelled",
            "partial_refunded",
            "refunded",
            "chargedback",
            "chargeback",
            "reserved",
            "shipped",
            "mystery",
        ];
        let mapped = |msp: &str, returned: bool| match msp {
            "initialized" if returned => Some(S::Processing),
            "initialized" => Some(S::RequiresAction),
            "uncleared" => Some(S::Processing),
            "completed" => Some(S::Succeeded),
            "declined" => Some(S::Failed),
            "expired" => Some(S::Expired),
            "void" | "cancelled" => Some(S::Canceled),
            // A refund requested at MSP is not a refund made: the status follows completed
            // refunds, and these orders carry none.
            "partial_refunded" | "refunded" => Some(S::Succeeded),
            "chargedback" | "chargeback" => Some(S::ChargedBack),
            _ => None,
        };
        for current in S::ALL {
            for returned in [false, true] {
                for msp in msp_statuses {
                    let before = checkout(current, returned);
                    let o = order(msp);
                    let after =
                        transition(&before, News::Order(&o), EventSource::Notification, at());
                    let expected = mapped(msp, returned).and_then(|t| match current.decide(t) {
                        Decision::Move(to) => Some(to),
                        Decision::Unchanged | Decision::Anomaly => None,
                    });
                    let what = format!("{current} + {msp} (returned: {returned})");
                    match (expected, after) {
                        (Some(to), Some((next, Some(event)))) => {
                            assert_eq!(next.status, to, "{what}");
                            assert_eq!((event.from, event.to), (Some(current), to), "{what}");
                            assert_eq!(event.psp_status.as_deref(), Some(msp), "{what}");
                            assert_eq!(next.failure.is_some(), to == S::Failed, "{what}");
                        }
                        // Only bookkeeping (the PSP id) may change without a transition.
                        (None, Some((next, None))) => assert_eq!(next.status, current, "{what}"),
                        (None, None) => {}
                        (expected, after) => panic!(
                            "{what}: expected {expected:?}, got {:?}",
                            after.map(|(c, e)| (c.status, e))
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn a_decline_records_why_and_an_anomaly_changes_nothing_at_all() {
        let o = order("declined");
        let (next, _) = transition(
            &checkout(S::RequiresAction, false),
            News::Order(&o),
            EventSource::Notification,
            at(),
        )
        .unwrap();
        let failure = next.failure.unwrap();
        assert_eq!(
            (failure.code.as_str(), failure.psp_reason_code.as_str()),
            ("insufficient_funds", "4002")
        );
        // `void` on a succeeded checkout: not even the PSP id is written.
        let o = order("void");
        assert!(
            transition(
                &checkout(S::Succeeded, false),
                News::Order(&o),
                EventSource::Notification,
                at(),
            )
            .is_none()
        );
    }

    #[test]
    fn a_return_without_an_answer_from_msp_is_processing_and_is_remembered() {
        let news = News::ShopperReturned { order: None };
        let (next, event) = transition(
            &checkout(S::RequiresAction, false),
            news,
            EventSource::BrowserReturn,
            at(),
        )
        .unwrap();
        assert_eq!(next.status, S::Processing);
        assert!(next.shopper_returned);
        assert_eq!(event.unwrap().psp_status, None);
        // Already settled: nothing changes.
        let settled = checkout(S::Succeeded, true);
        assert!(transition(&settled, news, EventSource::BrowserReturn, at()).is_none());
    }

    #[test]
    fn a_return_with_msp_still_initialized_is_processing() {
        let o = order("initialized");
        let news = News::ShopperReturned { order: Some(&o) };
        let (next, _) = transition(
            &checkout(S::RequiresAction, false),
            news,
            EventSource::BrowserReturn,
            at(),
        )
        .unwrap();
        assert_eq!(next.status, S::Processing);
        assert!(next.shopper_returned);
        assert_eq!(next.psp.transaction_id.as_deref(), Some("42"));
    }

    #[test]
    fn the_create_answer_keeps_the_pay_token() {
        let o = order("initialized");
        let news = News::Created {
            order: &o,
            pay_token: Some("tok"),
        };
        let (next, event) = transition(
            &checkout(S::Created, false),
            news,
            EventSource::Create,
            at(),
        )
        .unwrap();
        assert_eq!(next.status, S::RequiresAction);
        assert_eq!(next.pay_token.as_deref(), Some("tok"));
        assert_eq!(event.unwrap().psp_status.as_deref(), Some("initialized"));
    }

    #[test]
    fn news_without_an_order_and_where_it_leads() {
        let refused = failure_for_reason("4001", "Declined");
        let unknown = failure_for_unknown_order();
        let rows = [
            (News::Refused(&refused), S::Failed, Some("card_declined")),
            (News::OutcomeUnknown, S::Processing, None),
            (
                News::NeverReceived(&unknown),
                S::Failed,
                Some("processing_error"),
            ),
            (News::ThreeDsWindowOver, S::Expired, None),
        ];
        for (news, to, failure) in rows {
            let now = at();
            let (next, event) = transition(
                &checkout(S::Created, false),
                news,
                EventSource::Reconcile,
                now,
            )
            .unwrap();
            assert_eq!(next.status, to, "{news:?}");
            assert_eq!(next.failure.map(|f| f.code).as_deref(), failure, "{news:?}");
            assert_eq!(next.updated_at, now);
            let event = event.unwrap();
            assert_eq!(
                (event.from, event.to, event.at),
                (Some(S::Created), to, now)
            );
        }
        // Nothing of it may leave a final status.
        for news in [
            News::OutcomeUnknown,
            News::ThreeDsWindowOver,
            News::NeverReceived(&unknown),
        ] {
            let failed = checkout(S::Failed, false);
            assert!(transition(&failed, news, EventSource::Reconcile, at()).is_none());
        }
    }

    fn refund(amount: i64) -> Refund {
        let now = at();
        Refund {
            id: RefundId::generate(),
            source: Default::default(),
            amount: MinorUnits::new(amount).unwrap(),
            status: RefundStatus::Pending,
            reason: None,
            failure: None,
            metadata: Default::default(),
            psp: RefundPsp::default(),
            created_at: now,
            updated_at: now,
        }
    }

    fn step(c: &Checkout, news: News<'_>) -> Checkout {
        transition(c, news, EventSource::Api, at()).map_or_else(|| c.clone(), |(next, _)| next)
    }

    fn msp_refund(r: &Refund, status: &str, progress: RefundProgress) -> PspRefund {
        PspRefund {
            refund_order_id: Some(r.id.as_str().to_owned()),
            transaction_id: Some("77".into()),
            amount: Some(r.amount.value()),
            status: progress,
            status_text: status.into(),
        }
    }

    fn order_with(status: &str, refunds: Vec<PspRefund>) -> PspOrder {
        PspOrder {
            refunds,
            ..order(status)
        }
    }

    #[test]
    fn a_refund_is_reserved_only_on_a_collected_payment_and_within_what_is_left() {
        let paid = checkout(S::Succeeded, false);
        let first = refund(3000);
        let after = step(&paid, News::RefundRequested(&first));
        assert_eq!(after.refunds, vec![first.clone()]);
        assert_eq!(after.status, S::Succeeded, "a request is not a refund made");
        assert_eq!(after.refundable().value(), 495);
        // More than what is left, or the same refund twice: nothing changes.
        assert_eq!(step(&after, News::RefundRequested(&refund(496))), after);
        assert_eq!(step(&after, News::RefundRequested(&first)), after);
        for status in [
            S::Created,
            S::RequiresAction,
            S::Processing,
            S::Failed,
            S::ChargedBack,
        ] {
            let c = checkout(status, false);
            assert_eq!(step(&c, News::RefundRequested(&first)), c, "{status}");
        }
    }

    #[test]
    fn a_checkout_takes_200_refunds_and_a_never_received_one_fails_unacknowledged() {
        let mut c = checkout(S::Succeeded, false);
        c.amount = MinorUnits::new(1_000).unwrap();
        for _ in 0..crate::domain::refund::MAX_REFUNDS_PER_CHECKOUT {
            c = step(&c, News::RefundRequested(&refund(1)));
        }
        assert_eq!(c.refunds.len(), 200);
        assert_eq!(step(&c, News::RefundRequested(&refund(1))), c, "the 201st");
        assert_eq!(
            c.check_refund(Some(MinorUnits::new(1).unwrap())),
            Err(crate::domain::checkout::RefundRefusal::LimitReached)
        );

        let lost = c.refunds[0].id.clone();
        let failure = Failure {
            code: "refund_not_received".into(),
            message: "never received".into(),
            psp_reason_code: String::new(),
        };
        let c = step(
            &c,
            News::RefundAnswered {
                id: &lost,
                answer: RefundAnswer::NeverReceived(&failure),
            },
        );
        let r = c.refund(&lost).unwrap();
        assert_eq!(r.status, RefundStatus::Failed);
        assert!(!r.psp.acknowledged, "MSP never had it");
        assert_eq!(r.failure.as_ref(), Some(&failure));
        assert_eq!(c.refundable().value(), 801, "its amount is free again");
    }

    #[test]
    fn msps_answer_and_settlement_move_the_refund_and_completed_refunds_the_checkout() {
        let r = refund(1000);
        let c = step(&checkout(S::Succeeded, false), News::RefundRequested(&r));
        let accepted = RefundAccepted {
            transaction_id: Some("77".into()),
        };
        let c = step(
            &c,
            News::RefundAnswered {
                id: &r.id,
                answer: RefundAnswer::Accepted(&accepted),
            },
        );
        assert!(c.refunds[0].psp.acknowledged);
        assert_eq!(c.refunds[0].psp.transaction_id.as_deref(), Some("77"));

        // MSP shows `partial_refunded` as soon as the refund is reserved: still succeeded.
        let reserved = order_with(
            "partial_refunded",
            vec![msp_refund(&r, "reserved", RefundProgress::Pending)],
        );
        let c = step(&c, News::Order(&reserved));
        assert_eq!(
            (c.status, c.refunds[0].status),
            (S::Succeeded, RefundStatus::Pending)
        );

        let completed = order_with(
            "partial_refunded",
            vec![msp_refund(&r, "completed", RefundProgress::Completed)],
        );
        let (c, event) =
            transition(&c, News::Order(&completed), EventSource::Notification, at()).unwrap();
        assert_eq!(
            (c.status, c.refunds[0].status),
            (S::PartiallyRefunded, RefundStatus::Succeeded)
        );
        assert_eq!(c.refunded().value(), 1000);
        assert_eq!(event.unwrap().to, S::PartiallyRefunded);
        // A final refund never changes again.
        let declined = order_with(
            "completed",
            vec![msp_refund(&r, "declined", RefundProgress::Declined)],
        );
        assert_eq!(
            step(&c, News::Order(&declined)).refunds[0].status,
            RefundStatus::Succeeded
        );
    }

    #[test]
    fn a_refused_or_declined_refund_frees_its_amount() {
        let r = refund(3495);
        let c = step(&checkout(S::Succeeded, false), News::RefundRequested(&r));
        assert_eq!(c.refundable(), MinorUnits::ZERO);
        let failure = Failure {
            code: "refund_refused".into(),
            message: "no".into(),
            psp_reason_code: "1034".into(),
        };
        let refused = step(
            &c,
            News::RefundAnswered {
                id: &r.id,
                answer: RefundAnswer::Refused(&failure),
            },
        );
        assert_eq!(refused.refunds[0].status, RefundStatus::Failed);
        assert_eq!(refused.refundable().value(), 3495);
        let declined = order_with(
            "completed",
            vec![msp_refund(&r, "declined", RefundProgress::Declined)],
        );
        let c = step(&c, News::Order(&declined));
        assert_eq!(
            (c.status, c.refunds[0].status),
            (S::Succeeded, RefundStatus::Failed)
        );
        assert_eq!(
            c.refunds[0].failure.as_ref().unwrap().code,
            "refund_declined"
        );
        let voided = step(
            &step(&checkout(S::Succeeded, false), News::RefundRequested(&r)),
            News::RefundCanceled(&r.id),
        );
        assert_eq!(voided.refunds[0].status, RefundStatus::Canceled);
        assert_eq!(voided.refundable().value(), 3495);
    }

    #[test]
    fn a_refund_made_at_msp_counts_once_and_a_chargeback_is_final() {
        let external = PspRefund {
            refund_order_id: None,
            transaction_id: Some("900".into()),
            amount: Some(3495),
            status: RefundProgress::Completed,
            status_text: "completed".into(),
        };
        let o = order_with("refunded", vec![external]);
        let c = step(&checkout(S::Succeeded, false), News::Order(&o));
        assert_eq!((c.status, c.refunds.len()), (S::Refunded, 1));
        assert_eq!(
            step(&c, News::Order(&o)).refunds.len(),
            1,
            "recognised by MSP's id"
        );

        let charged_back = PspOrder {
            charged_back: true,
            ..order("void")
        };
        let (c, event) = transition(
            &checkout(S::Succeeded, false),
            News::Order(&charged_back),
            EventSource::Notification,
            at(),
        )
        .unwrap();
        assert_eq!(
            (c.status, event.unwrap().to),
            (S::ChargedBack, S::ChargedBack)
        );
    }

    #[test]
    fn a_capture_whose_answer_was_lost_is_learned_from_msps_order() {
        use crate::psp::PspCapture;
        let mut authorised = checkout(S::RequiresCapture, false);
        authorised.capture_method = CaptureMethod::Manual;
        let captured = PspOrder {
            captured: Some(PspCapture {
                amount: 3000,
                order_id: Some("chk-c".into()),
            }),
            ..order("completed")
        };
        let (c, event) = transition(
            &authorised,
            News::Order(&captured),
            EventSource::Refresh,
            at(),
        )
        .unwrap();
        assert_eq!(
            (c.status, c.amount_captured.map(|a| a.value())),
            (S::Succeeded, Some(3000))
        );
        assert_eq!(c.psp.capture_order_id.as_deref(), Some("chk-c"));
        assert_eq!(
            c.refundable().value(),
            3000,
            "refunds count against the capture"
        );
        assert_eq!(event.unwrap().to, S::Succeeded);
        // A checkout that succeeded without hearing the amount (MSP's notification came, the
        // capture's answer never did) learns it from the next order, with no event.
        let mut succeeded = checkout(S::Succeeded, false);
        succeeded.capture_method = CaptureMethod::Manual;
        let (c, event) = transition(
            &succeeded,
            News::Order(&captured),
            EventSource::Reconcile,
            at(),
        )
        .unwrap();
        assert_eq!(c.amount_captured.map(|a| a.value()), Some(3000));
        assert!(event.is_none());
        // Once known, the same order changes nothing.
        assert!(transition(&c, News::Order(&captured), EventSource::Reconcile, at()).is_none());
        // An automatic checkout has nothing to capture: such an entry changes nothing.
        let mut automatic = checkout(S::Succeeded, false);
        automatic.psp.transaction_id = Some("42".into());
        assert!(
            transition(
                &automatic,
                News::Order(&captured),
                EventSource::Reconcile,
                at()
            )
            .is_none()
        );
    }

    #[test]
    fn a_cancel_msp_agreed_to_shows_msps_new_status() {
        let mut waiting = checkout(S::RequiresAction, false);
        waiting.psp.status = Some("initialized".into());
        let canceled = Canceled {
            status_text: "void".into(),
        };
        let (c, event) = transition(
            &waiting,
            News::CanceledAtMsp(&canceled),
            EventSource::Api,
            at(),
        )
        .unwrap();
        assert_eq!(
            (c.status, c.psp.status.as_deref()),
            (S::Canceled, Some("void"))
        );
        let event = event.unwrap();
        assert_eq!(
            (event.to, event.psp_status.as_deref()),
            (S::Canceled, Some("void"))
        );
    }

    #[test]
    fn a_capture_is_recorded_whether_its_answer_or_msps_notification_comes_first() {
        let mut authorised = checkout(S::RequiresCapture, false);
        authorised.capture_method = CaptureMethod::Manual;
        let accepted = CaptureAccepted {
            transaction_id: Some("9".into()),
            order_id: None,
        };
        let captured = News::Captured {
            amount: MinorUnits::new(3000).unwrap(),
            accepted: &accepted,
        };
        // The answer first.
        let (c, event) = transition(&authorised, captured, EventSource::Api, at()).unwrap();
        assert_eq!(
            (c.status, c.amount_captured.map(|a| a.value())),
            (S::Succeeded, Some(3000))
        );
        assert_eq!(event.unwrap().source, EventSource::Api);
        // The notification first: the answer still records the amount, with no second event.
        let collected = order("completed");
        let (after_notification, _) = transition(
            &authorised,
            News::Order(&collected),
            EventSource::Notification,
            at(),
        )
        .unwrap();
        assert_eq!(after_notification.status, S::Succeeded);
        let (c, event) = transition(&after_notification, captured, EventSource::Api, at()).unwrap();
        assert_eq!(
            (c.status, c.amount_captured.map(|a| a.value())),
            (S::Succeeded, Some(3000))
        );
        assert!(event.is_none());
        assert_eq!(
            c.refundable().value(),
            3000,
            "refunds count against the capture"
        );
        // An authorisation MSP reports as authorised waits for the capture.
        let authorised_order = PspOrder {
            authorized_only: true,
            ..order("completed")
        };
        let mut fresh = checkout(S::RequiresAction, false);
        fresh.capture_method = CaptureMethod::Manual;
        let (c, _) = transition(
            &fresh,
            News::Order(&authorised_order),
            EventSource::Notification,
            at(),
        )
        .unwrap();
        assert_eq!(c.status, S::RequiresCapture);
        assert!(c.capture_before.is_some());
        // ... but only on a manual-capture checkout (an Amex collected through the merchant-number flow).
        let (c, _) = transition(
            &checkout(S::RequiresAction, false),
            News::Order(&authorised_order),
            EventSource::Notification,
            at(),
        )
        .unwrap();
        assert_eq!(c.status, S::Succeeded);
    }
}
