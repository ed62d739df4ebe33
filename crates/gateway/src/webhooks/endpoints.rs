//! What deliveries do to a webhook endpoint: a 410 disables it (`gone`), failing
//! for `webhooks.max_age_s` without a single success disables it (`failing`), and a success
//! ends a run of failures. Each change is one compare-and-set on the endpoint, written only
//! when something changes (a healthy endpoint's deliveries write nothing).

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::webhook_endpoint::{DisabledReason, MAX_ENDPOINTS, WebhookEndpoint};
use crate::flows::Context;
use crate::store::StoreError;
use crate::store::endpoints::PutReply;

/// Compare-and-set attempts before leaving it to the next delivery.
const MAX_CAS_ATTEMPTS: usize = 5;

/// What an attempt said about its endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Delivered,
    Failed,
    /// 410 Gone.
    Gone,
}

/// The change `health` at `at` makes to `endpoint`, if any.
pub fn next_state(
    endpoint: &WebhookEndpoint,
    health: Health,
    at: DateTime<Utc>,
    max_age: TimeDelta,
) -> Option<WebhookEndpoint> {
    let mut next = endpoint.clone();
    match health {
        Health::Delivered if endpoint.failing_since.is_some() => next.failing_since = None,
        Health::Delivered => return None,
        _ if endpoint.disabled() => return None,
        Health::Gone => next.disabled_reason = Some(DisabledReason::Gone),
        Health::Failed => match endpoint.failing_since {
            None => next.failing_since = Some(at),
            Some(since) if at - since >= max_age => {
                next.disabled_reason = Some(DisabledReason::Failing);
            }
            Some(_) => return None,
        },
    }
    if next.disabled_reason != endpoint.disabled_reason {
        next.updated_at = at;
    }
    Some(next)
}

/// Applies `health` to the stored endpoint (read fresh: `seen` is only a hint that saves the
/// read when nothing would change). Answers the endpoint when this call disabled it.
pub async fn record(
    ctx: &Context,
    seen: &WebhookEndpoint,
    health: Health,
    at: DateTime<Utc>,
    max_age: TimeDelta,
) -> Result<Option<WebhookEndpoint>, StoreError> {
    if next_state(seen, health, at, max_age).is_none() {
        return Ok(None);
    }
    for _ in 0..MAX_CAS_ATTEMPTS {
        let Some(current) = ctx.store.endpoint(&seen.id).await? else {
            return Ok(None);
        };
        let Some(next) = next_state(&current, health, at, max_age) else {
            return Ok(None);
        };
        if ctx
            .store
            .put_endpoint(&next, Some(&current), MAX_ENDPOINTS)
            .await?
            == PutReply::Written
        {
            let disabled = !current.disabled() && next.disabled();
            if disabled {
                tracing::warn!(
                    endpoint_id = %next.id,
                    reason = next.disabled_reason.map(DisabledReason::as_str),
                    "webhook endpoint disabled; it gets no events until it is re-enabled"
                );
            }
            return Ok(disabled.then_some(next));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook_endpoint::EventFilter;

    fn endpoint(now: DateTime<Utc>) -> WebhookEndpoint {
        WebhookEndpoint::new(
            "https://shop.example/hooks".into(),
            EventFilter::parse(vec!["*".into()]).unwrap(),
            None,
            now,
        )
    }

    #[test]
    fn failures_disable_only_after_max_age_without_a_success() {
        let t0 = Utc::now();
        let max_age = TimeDelta::hours(72);
        let e = endpoint(t0);
        assert_eq!(next_state(&e, Health::Delivered, t0, max_age), None);
        let failing = next_state(&e, Health::Failed, t0, max_age).unwrap();
        assert_eq!(failing.failing_since, Some(t0));
        assert!(!failing.disabled());
        assert_eq!(
            next_state(&failing, Health::Failed, t0 + TimeDelta::hours(71), max_age),
            None
        );
        let healed = next_state(
            &failing,
            Health::Delivered,
            t0 + TimeDelta::hours(71),
            max_age,
        )
        .unwrap();
        assert_eq!(healed.failing_since, None);
        let disabled =
            next_state(&failing, Health::Failed, t0 + TimeDelta::hours(72), max_age).unwrap();
        assert_eq!(disabled.disabled_reason, Some(DisabledReason::Failing));
        let gone = next_state(&e, Health::Gone, t0, max_age).unwrap();
        assert_eq!(gone.disabled_reason, Some(DisabledReason::Gone));
        assert_eq!(next_state(&gone, Health::Gone, t0, max_age), None);
    }
}
