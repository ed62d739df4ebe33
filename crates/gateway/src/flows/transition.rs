//! The transition pipeline's pure half: what a caller learned ([`News`]) becomes the checkout's
//! next state, its failure and its event, in [`transition`]. Nowhere else chooses a status:
//! callers report news, [`CheckoutStatus::decide`] rules whether the move is legal, and
//! [`apply`](super::apply) writes the result with one compare-and-set.

use chrono::{DateTime, Utc};

use crate::domain::checkout::{
    Checkout, CheckoutEvent, CheckoutStatus, Decision, EventSource, Failure,
};
use crate::metrics::ANOMALIES;
use crate::psp::{PaymentStatus, PspOrder};

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
    /// MSP has never heard of the order: it was never created, so nothing was charged.
    NeverReceived,
    /// The 3-D Secure window (MSP's hour plus our margin) is over and the shopper never finished.
    ThreeDsWindowOver,
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

    /// Where the news would take a checkout (design §3's table), before [`CheckoutStatus::decide`]
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
            Self::Refused(_) | Self::NeverReceived => Some(S::Failed),
            Self::ThreeDsWindowOver => Some(S::Expired),
        }
    }

    /// Why a checkout that this news fails has failed.
    fn failure(self) -> Failure {
        match self {
            Self::Refused(failure) => failure.clone(),
            Self::NeverReceived => Failure {
                code: "processing_error".into(),
                message: "MultiSafepay never received this order; nothing was charged. Start a new checkout.".into(),
                psp_reason_code: crate::psp::multisafepay::status::ERROR_INVALID_ORDER_ID
                    .to_string(),
            },
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
        P::Succeeded => S::Succeeded,
        P::Declined => S::Failed,
        P::Expired => S::Expired,
        P::Canceled => S::Canceled,
        P::PartiallyRefunded => S::PartiallyRefunded,
        P::Refunded => S::Refunded,
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
    let target = news.target(next.shopper_returned);
    if target.is_none() {
        if let Some(order) = order {
            tracing::info!(psp_status = %order.status_text, "MultiSafepay status with no gateway meaning; nothing changes");
        }
    }
    let mut event = None;
    match target.map(|t| current.status.decide(t)) {
        Some(Decision::Move(to)) => {
            next.status = to;
            if let Some(order) = order {
                next.psp.status = Some(order.status_text.clone());
                next.psp.reason_code = order.reason_code.clone();
            }
            if to == CheckoutStatus::Failed {
                next.failure = Some(news.failure());
            }
            event = Some(CheckoutEvent {
                at: now,
                from: Some(current.status),
                to,
                source,
                psp_status: order.map(|o| o.status_text.clone()),
            });
        }
        Some(Decision::Anomaly) => {
            let to = target.map(CheckoutStatus::as_str).unwrap_or("?");
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

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::card::CardSummary;
    use crate::domain::checkout::{CheckoutId, PspState};
    use crate::domain::money::{Currency, MinorUnits};
    use crate::psp::multisafepay::status::{failure_for_reason, payment_status};
    use CheckoutStatus as S;

    fn checkout(status: CheckoutStatus, shopper_returned: bool) -> Checkout {
        let now = Utc::now();
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
            refunds: Vec::new(),
        }
    }

    fn order(status: &str) -> PspOrder {
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
            charged_back: false,
        }
    }

    /// Design §3's two tables composed: every current status × every MSP status (and an
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
            "partial_refunded" => Some(S::PartiallyRefunded),
            "refunded" => Some(S::Refunded),
            "chargedback" | "chargeback" => Some(S::ChargedBack),
            _ => None,
        };
        for current in S::ALL {
            for returned in [false, true] {
                for msp in msp_statuses {
                    let before = checkout(current, returned);
                    let o = order(msp);
                    let after = transition(
                        &before,
                        News::Order(&o),
                        EventSource::Notification,
                        Utc::now(),
                    );
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
            Utc::now(),
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
                Utc::now(),
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
            Utc::now(),
        )
        .unwrap();
        assert_eq!(next.status, S::Processing);
        assert!(next.shopper_returned);
        assert_eq!(event.unwrap().psp_status, None);
        // Already settled: nothing changes.
        let settled = checkout(S::Succeeded, true);
        assert!(transition(&settled, news, EventSource::BrowserReturn, Utc::now()).is_none());
    }

    #[test]
    fn a_return_with_msp_still_initialized_is_processing() {
        let o = order("initialized");
        let news = News::ShopperReturned { order: Some(&o) };
        let (next, _) = transition(
            &checkout(S::RequiresAction, false),
            news,
            EventSource::BrowserReturn,
            Utc::now(),
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
            Utc::now(),
        )
        .unwrap();
        assert_eq!(next.status, S::RequiresAction);
        assert_eq!(next.pay_token.as_deref(), Some("tok"));
        assert_eq!(event.unwrap().psp_status.as_deref(), Some("initialized"));
    }

    #[test]
    fn news_without_an_order_and_where_it_leads() {
        let refused = failure_for_reason("4001", "Declined");
        let rows = [
            (News::Refused(&refused), S::Failed, Some("card_declined")),
            (News::OutcomeUnknown, S::Processing, None),
            (News::NeverReceived, S::Failed, Some("processing_error")),
            (News::ThreeDsWindowOver, S::Expired, None),
        ];
        for (news, to, failure) in rows {
            let now = Utc::now();
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
            News::NeverReceived,
        ] {
            let failed = checkout(S::Failed, false);
            assert!(transition(&failed, news, EventSource::Reconcile, Utc::now()).is_none());
        }
    }
}
