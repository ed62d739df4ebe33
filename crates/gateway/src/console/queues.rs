//! The work queues of the overview: what needs a person. Read from the gateway's own indexes,
//! each bounded (the reconciler's index of checkouts not at rest, the listing's status indexes,
//! the recent events), so that the page costs the same however many checkouts are stored.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::view::{self, Tone};
use crate::domain::checkout::{Checkout, CheckoutId, CheckoutStatus};
use crate::domain::dispute::{DisputeChange, DisputeStatus};
use crate::domain::event::{DeliveryStatus, EventType};
use crate::domain::refund::RefundStatus;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::listing::{ListQuery, ListReply};

/// How many entries each source is read to.
const SCAN: usize = 100;
/// How many entries a queue shows.
const SHOWN: usize = 25;

pub struct QueueItem {
    pub href: Option<String>,
    pub title: String,
    pub detail: String,
    pub tone: Tone,
    pub word: String,
    pub due: String,
    /// What the queue is ordered by.
    order: i64,
}

pub struct Queue {
    pub title: &'static str,
    pub explain: &'static str,
    pub items: Vec<QueueItem>,
    /// Items left out past the shown ones.
    pub more: usize,
}

impl Queue {
    fn new(title: &'static str, explain: &'static str, mut items: Vec<QueueItem>) -> Self {
        items.sort_by_key(|i| i.order);
        let more = items.len().saturating_sub(SHOWN);
        items.truncate(SHOWN);
        Self {
            title,
            explain,
            items,
            more,
        }
    }

    pub fn count(&self) -> usize {
        self.items.len() + self.more
    }
}

fn href(id: &CheckoutId) -> Option<String> {
    Some(format!("/console/checkouts/{id}"))
}

fn item(
    c: &Checkout,
    tone: Tone,
    word: &str,
    detail: String,
    due: String,
    order: DateTime<Utc>,
) -> QueueItem {
    QueueItem {
        href: href(&c.id),
        title: c.id.to_string(),
        detail: format!(
            "{}{} · {detail}",
            view::amount(c.amount, c.currency),
            c.reference
                .as_ref()
                .map(|r| format!(" · {r}"))
                .unwrap_or_default()
        ),
        tone,
        word: word.to_owned(),
        due,
        order: order.timestamp_millis(),
    }
}

/// The checkouts the queues look at: those not at rest (the reconciler's index), the newest of
/// the statuses that wait on someone, and those with a recent dispute.
async fn candidates(state: &AppState, now: DateTime<Utc>) -> Result<Vec<Checkout>, StoreError> {
    let store = state.flows.store.as_ref();
    let mut found: BTreeMap<CheckoutId, Checkout> = BTreeMap::new();
    for status in [
        CheckoutStatus::RequiresAction,
        CheckoutStatus::Processing,
        CheckoutStatus::RequiresCapture,
    ] {
        let mut q = ListQuery::first(SCAN, now);
        q.status = Some(status);
        if let ListReply::Page(page) = store.list_checkouts(&q).await? {
            for c in page.data {
                found.insert(c.id.clone(), c);
            }
        }
    }
    let retention = TimeDelta::seconds(
        i64::try_from(state.settings.checkout.retention_s).unwrap_or(i64::MAX / 2_000),
    );
    let mut ids: Vec<CheckoutId> = store.due_for_sync(i64::MAX, SCAN).await?;
    let disputes = store
        .recent_events(
            Some(EventType::Dispute(DisputeChange::Created)),
            None,
            (now - retention, now + TimeDelta::days(1)),
            SCAN,
        )
        .await?;
    ids.extend(disputes.iter().map(|e| e.event.id.checkout_id()));
    for id in ids {
        if found.contains_key(&id) {
            continue;
        }
        if let Some(v) = store.get(&id).await? {
            found.insert(id, v.checkout);
        }
    }
    Ok(found.into_values().collect())
}

/// Every queue, in the order the overview shows them.
pub async fn queues(state: &AppState) -> Result<Vec<Queue>, StoreError> {
    let store = state.flows.store.as_ref();
    let now = state.flows.clock.now();
    let checkouts = candidates(state, now).await?;

    let mut stuck = Vec::new();
    let mut refunds = Vec::new();
    let mut captures = Vec::new();
    let mut disputes = Vec::new();
    for c in &checkouts {
        if matches!(
            c.status,
            CheckoutStatus::RequiresAction | CheckoutStatus::Processing
        ) && c.expires_at < now
        {
            let (tone, word) = view::checkout_status(c.status);
            stuck.push(item(
                c,
                tone,
                word,
                format!("created {}", view::time(c.created_at)),
                format!("window ended {}", view::relative(c.expires_at, now)),
                c.expires_at,
            ));
        }
        for r in &c.refunds {
            if r.status == RefundStatus::Pending && r.created_at < now - TimeDelta::hours(48) {
                refunds.push(item(
                    c,
                    "warn",
                    "Pending",
                    format!("refund {} of {}", r.id, view::amount(r.amount, c.currency)),
                    format!("asked {}", view::relative(r.created_at, now)),
                    r.created_at,
                ));
            }
        }
        if c.status == CheckoutStatus::RequiresCapture
            && let Some(by) = c.capture_before
            && by <= now + TimeDelta::hours(24)
        {
            let (tone, word) = if by <= now {
                ("bad", "Expired")
            } else {
                ("warn", "Capture soon")
            };
            captures.push(item(
                c,
                tone,
                word,
                format!("capture before {}", view::time(by)),
                view::relative(by, now),
                by,
            ));
        }
        for d in &c.disputes {
            if d.status == DisputeStatus::NeedsResponse {
                let by = d.respond_by.unwrap_or(d.created_at + TimeDelta::days(30));
                let tone = if by <= now + TimeDelta::days(2) {
                    "bad"
                } else {
                    "warn"
                };
                disputes.push(item(
                    c,
                    tone,
                    "Needs response",
                    format!("dispute {} of {}", d.id, view::amount(d.amount, c.currency)),
                    format!(
                        "respond by {} ({})",
                        view::time(by),
                        view::relative(by, now)
                    ),
                    by,
                ));
            }
        }
    }

    let retention = TimeDelta::seconds(
        i64::try_from(state.settings.checkout.retention_s).unwrap_or(i64::MAX / 2_000),
    );
    let mut failed = Vec::new();
    for stored in store
        .recent_events(
            None,
            None,
            (now - retention, now + TimeDelta::days(1)),
            SCAN,
        )
        .await?
    {
        let e = &stored.event;
        let checkout = e.id.checkout_id();
        let mut failed_to = Vec::new();
        if stored
            .delivery
            .as_ref()
            .is_some_and(|d| d.status == DeliveryStatus::Failed)
        {
            failed_to.push("the shop's webhook URL".to_owned());
        }
        for (endpoint, d) in store.endpoint_deliveries(&e.id).await? {
            if d.status == DeliveryStatus::Failed {
                failed_to.push(format!("endpoint {endpoint}"));
            }
        }
        if !failed_to.is_empty() {
            failed.push(QueueItem {
                href: href(&checkout),
                title: e.id.to_string(),
                detail: format!("{} to {}", e.kind, failed_to.join(", ")),
                tone: "bad",
                word: "Failed".to_owned(),
                due: format!("event of {}", view::time(e.created_at)),
                order: -e.created_at.timestamp_millis(),
            });
        }
    }

    let disabled = store
        .endpoints()
        .await?
        .into_iter()
        .filter(|e| e.disabled())
        .map(|e| QueueItem {
            href: None,
            title: match &e.description {
                Some(d) if !d.is_empty() => format!("{d} ({})", e.id),
                _ => e.id.to_string(),
            },
            detail: match e.disabled_reason.map(|r| r.as_str()) {
                Some("gone") => "it answered 410 Gone".to_owned(),
                Some("failing") => "it kept failing".to_owned(),
                _ => "the merchant disabled it".to_owned(),
            },
            tone: "muted",
            word: "Disabled".to_owned(),
            due: format!("since {}", view::time(e.updated_at)),
            order: -e.updated_at.timestamp_millis(),
        })
        .collect();

    Ok(vec![
        Queue::new(
            "Stuck payments",
            "Checkouts still processing or awaiting 3-D Secure after their window ended.",
            stuck,
        ),
        Queue::new(
            "Refunds pending over 48 hours",
            "Refunds MultiSafepay has not settled two days after they were asked.",
            refunds,
        ),
        Queue::new(
            "Authorisations to capture",
            "Authorised payments within 24 hours of the last day they can be captured.",
            captures,
        ),
        Queue::new(
            "Disputes to answer",
            "Chargebacks that need the shop's evidence, by their deadline.",
            disputes,
        ),
        Queue::new(
            "Failed webhook events",
            "Events that could not be delivered after every retry: redeliver them from the checkout's page.",
            failed,
        ),
        Queue::new(
            "Disabled webhook endpoints",
            "Endpoints that no longer get events.",
            disabled,
        ),
    ])
}
