//! The one path by which a checkout's state changes after creation.
//!
//! Callers (the create flow, notifications, the browser return, refresh, the reconciler) say what
//! they learned as a [`Change`]; [`apply`] reads the stored checkout, lets
//! [`CheckoutStatus::decide`] rule on the proposed status, and writes the result with one
//! compare-and-set. When another writer got there first the loop re-reads and decides again, so
//! racers end in the same state whatever their order (design §6).

use chrono::Utc;

use crate::domain::checkout::{
    Checkout, CheckoutEvent, CheckoutId, CheckoutStatus, Decision, EventSource, Failure,
};
use crate::metrics::{ANOMALIES, TRANSITIONS};
use crate::psp::PspOrder;
use crate::store::{CasOutcome, CheckoutStore, StoreError, Versioned};

/// What a caller learned about a checkout.
#[derive(Debug, Default)]
pub struct Change<'a> {
    /// MSP's order as MSP described it (create answer, notification body, `GET /orders`).
    pub order: Option<&'a PspOrder>,
    /// Where to go when there is no `order` (MSP unreachable on return → processing; 3DS window
    /// over → expired).
    pub fallback: Option<CheckoutStatus>,
    /// The shopper's browser came back (`/return`, `/cancel`).
    pub shopper_returned: bool,
    /// The pay token of a fresh 3DS session (create flow).
    pub pay_token: Option<String>,
    /// Why it failed, when the caller knows better than the order (a decline at creation).
    pub failure: Option<Failure>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("no such checkout")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `change` to checkout `id` and returns the stored state afterwards (changed or not).
#[tracing::instrument(name = "apply_change", skip_all, fields(checkout_id = %id, source = source.as_str()))]
pub async fn apply(
    store: &dyn CheckoutStore,
    id: &CheckoutId,
    source: EventSource,
    change: &Change<'_>,
) -> Result<Checkout, ApplyError> {
    let stored = store.get(id).await?.ok_or(ApplyError::NotFound)?;
    apply_from(store, stored, source, change).await
}

/// As [`apply`], starting from a state the caller already holds (the create flow knows its
/// record at version 1), which saves the first read. If that state is stale, the
/// compare-and-set says so and the loop re-reads, as it does for any racer.
pub async fn apply_from(
    store: &dyn CheckoutStore,
    mut stored: Versioned,
    source: EventSource,
    change: &Change<'_>,
) -> Result<Checkout, ApplyError> {
    let id = stored.checkout.id.clone();
    loop {
        let current = stored.checkout;
        let Some((next, event)) = next_state(&current, source, change) else {
            return Ok(current);
        };
        let outcome = store
            .compare_and_set(stored.version, &next, event.as_ref())
            .await?;
        match outcome {
            CasOutcome::Applied { .. } => {
                if let Some(e) = &event {
                    record_transition(e, current.status);
                }
                if next.status.is_settled() {
                    // The due-time index is only a hint (design §6): a failure here is logged,
                    // and the reconciler drops settled checkouts it finds there anyway.
                    if let Err(e) = store.unschedule_sync(&id).await {
                        tracing::warn!(error = %e, "could not take a settled checkout out of the reconciler index");
                    }
                }
                return Ok(next);
            }
            CasOutcome::Conflict => {
                tracing::debug!("lost a compare-and-set race; deciding again on the fresh state");
                stored = store.get(&id).await?.ok_or(ApplyError::NotFound)?;
            }
            CasOutcome::NotFound => return Err(ApplyError::NotFound),
        }
    }
}

/// The pure part: the state after `change`, and the event to record, or `None` when nothing
/// changes.
pub fn next_state(
    current: &Checkout,
    source: EventSource,
    change: &Change<'_>,
) -> Option<(Checkout, Option<CheckoutEvent>)> {
    let mut next = current.clone();
    next.shopper_returned |= change.shopper_returned;
    if let Some(token) = &change.pay_token {
        next.pay_token = Some(token.clone());
    }
    if let Some(tx) = change.order.and_then(|o| o.transaction_id.as_ref()) {
        next.psp.transaction_id = Some(tx.clone());
    }
    let target = match change.order {
        Some(order) => {
            let target = order.outcome.target(next.shopper_returned);
            if target.is_none() {
                tracing::info!(psp_status = %order.status, "MultiSafepay status with no gateway meaning; nothing changes");
            }
            target
        }
        None => change.fallback,
    };
    let mut event = None;
    match target.map(|t| current.status.decide(t)) {
        Some(Decision::Move(to)) => {
            next.status = to;
            if let Some(order) = change.order {
                next.psp.status = Some(order.status.clone());
                next.psp.reason_code = order.reason_code.clone();
            }
            if to == CheckoutStatus::Failed {
                next.failure = change
                    .failure
                    .clone()
                    .or_else(|| change.order.and_then(PspOrder::failure))
                    .or_else(|| Some(generic_failure()));
            }
            event = Some(CheckoutEvent {
                at: Utc::now(),
                from: Some(current.status),
                to,
                source,
                psp_status: change.order.map(|o| o.status.clone()),
            });
        }
        Some(Decision::Anomaly) => {
            let to = target.map(CheckoutStatus::as_str).unwrap_or("?");
            tracing::warn!(
                from = current.status.as_str(),
                to,
                psp_status = change.order.map(|o| o.status.as_str()),
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
    next.updated_at = Utc::now();
    Some((next, event))
}

fn generic_failure() -> Failure {
    Failure {
        code: "processing_error".into(),
        message: "The payment failed at MultiSafepay.".into(),
        psp_reason_code: String::new(),
    }
}

fn record_transition(e: &CheckoutEvent, from: CheckoutStatus) {
    tracing::info!(
        from = from.as_str(),
        to = e.to.as_str(),
        psp_status = e.psp_status.as_deref(),
        "checkout status changed"
    );
    metrics::counter!(TRANSITIONS, "from" => from.as_str(), "to" => e.to.as_str(), "source" => e.source.as_str())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::card::CardSummary;
    use crate::domain::checkout::{CheckoutId, PspState};
    use crate::domain::money::{Currency, MinorUnits};
    use crate::psp::PaymentOutcome;
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
        }
    }

    fn order(status: &str) -> PspOrder {
        PspOrder {
            order_id: "chk".into(),
            transaction_id: Some("42".into()),
            status: status.into(),
            outcome: PaymentOutcome::from_msp_status(status),
            reason: String::new(),
            reason_code: if status == "declined" {
                "4002".into()
            } else {
                String::new()
            },
            payment_url: None,
            form_html: None,
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
                    let change = Change {
                        order: Some(&o),
                        ..Change::default()
                    };
                    let after = next_state(&before, EventSource::Notification, &change);
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
        let (next, _) = next_state(
            &checkout(S::RequiresAction, false),
            EventSource::Notification,
            &Change {
                order: Some(&o),
                ..Change::default()
            },
        )
        .unwrap();
        let failure = next.failure.unwrap();
        assert_eq!(
            (failure.code.as_str(), failure.psp_reason_code.as_str()),
            ("insufficient_funds", "4002")
        );
        // `void` on a succeeded checkout: not even the PSP id is written.
        let o = order("void");
        let change = Change {
            order: Some(&o),
            ..Change::default()
        };
        assert!(
            next_state(
                &checkout(S::Succeeded, false),
                EventSource::Notification,
                &change
            )
            .is_none()
        );
    }

    #[test]
    fn without_an_order_the_fallback_decides_and_the_return_is_remembered() {
        let change = Change {
            fallback: Some(S::Processing),
            shopper_returned: true,
            ..Change::default()
        };
        let (next, event) = next_state(
            &checkout(S::RequiresAction, false),
            EventSource::BrowserReturn,
            &change,
        )
        .unwrap();
        assert_eq!(next.status, S::Processing);
        assert!(next.shopper_returned);
        assert_eq!(event.unwrap().psp_status, None);
        // Already settled: the fallback is refused and nothing changes.
        assert!(
            next_state(
                &checkout(S::Succeeded, true),
                EventSource::BrowserReturn,
                &change
            )
            .is_none()
        );
    }
}
