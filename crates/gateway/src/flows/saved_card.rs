//! Saved cards, the flows' half:
//!
//! - before a payment with a saved card, [`resolve`] reads the payment method and checks that
//!   it may pay this checkout (active, the same customer, a return URL when the shopper is
//!   present);
//! - after every change of a checkout, [`after_apply`] saves the card of a checkout that asked
//!   for it as soon as MSP's order (the create answer, a notification or a sync, whichever comes
//!   first) shows its token on a successful payment: the payment method and its
//!   `payment_method.saved` event in one atomic step, then the checkout's `payment_method`;
//!   each change's merchant event is written with it and queued for the webhooks like a
//!   checkout's (`queued`);
//! - [`update_expiry`] and [`delete`] change a payment method at MSP first, then in the store
//!   with its event, in one compare-and-set.

use chrono::{DateTime, SubsecRound, Utc};

use super::Context;
use super::transition::News;
use crate::domain::card::CardSummary;
use crate::domain::checkout::SavedCardState;
use crate::domain::event::{Event, payment_method_event};
use crate::domain::new_checkout::{NewCheckout, PaymentSource};
use crate::domain::payment_method::{
    MspToken, PaymentMethod, PaymentMethodEvent, PaymentMethodEventType, PaymentMethodId,
    PaymentMethodStatus, StoredPaymentMethod,
};
use crate::psp::PspError;
use crate::store::{CasReply, Outbox, StoreError, Versioned};

/// How often [`after_apply`] and the payment method changes retry a lost compare-and-set.
const MAX_ATTEMPTS: u32 = 8;

/// What the checkout record shows of its card: the card typed in, or the saved one.
pub(crate) fn card_of(new: &NewCheckout) -> CardSummary {
    match (new.card(), new.saved()) {
        (Some(card), _) => card.summary(),
        (None, Some((method, _))) => method.card.clone(),
        (None, None) => CardSummary {
            brand: "unknown".into(),
            last4: String::new(),
            exp_month: 0,
            exp_year: 0,
        },
    }
}

/// The checkout's saved-card state at creation.
pub(crate) fn state_of(new: &NewCheckout) -> SavedCardState {
    match new.payment() {
        PaymentSource::Card(_) => SavedCardState {
            save: new.save_card(),
            customer_reference: new.customer_reference().cloned(),
            payment_method: None,
        },
        PaymentSource::Saved { id, resolved } => SavedCardState {
            save: None,
            customer_reference: resolved.as_ref().map(|r| r.0.customer_reference.clone()),
            payment_method: Some(id.clone()),
        },
    }
}

/// Why a saved card cannot pay this checkout; each names its field.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no such payment method")]
    NotFound,
    #[error("the payment method is {0}")]
    Inactive(&'static str),
    #[error("customer.reference differs from the payment method's")]
    OtherCustomer,
    #[error("a card-on-file payment needs return_url")]
    ReturnUrlMissing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads the payment method a checkout pays with and checks it may; a checkout with a card
/// typed in is returned as it is.
pub async fn resolve(ctx: &Context, mut new: NewCheckout) -> Result<NewCheckout, ResolveError> {
    let PaymentSource::Saved { id, .. } = new.payment() else {
        return Ok(new);
    };
    let stored = ctx
        .store
        .payment_method(id)
        .await?
        .ok_or(ResolveError::NotFound)?;
    let StoredPaymentMethod { method, token, .. } = stored;
    if method.status != PaymentMethodStatus::Active {
        return Err(ResolveError::Inactive(method.status.as_str()));
    }
    if new
        .customer_reference()
        .is_some_and(|r| r != &method.customer_reference)
    {
        return Err(ResolveError::OtherCustomer);
    }
    if !method.usage.merchant_initiated() && new.return_url().is_none() {
        return Err(ResolveError::ReturnUrlMissing);
    }
    new.resolve_saved(method, token);
    Ok(new)
}

/// The token MSP's news carries, when it carries an order that shows one.
fn token_of<'a>(news: &News<'a>) -> Option<&'a MspToken> {
    match news {
        News::Order(order) | News::Created { order, .. } => order.recurring_id.as_ref(),
        News::ShopperReturned { order: Some(order) } => order.recurring_id.as_ref(),
        _ => None,
    }
}

/// Saves the card of `applied`, a checkout just written, when it asked for that, paid, and MSP
/// has shown the token; returns the checkout as stored afterwards. A failure to save is logged
/// and leaves the checkout as it was: it is not at rest while its card is still to save, so the
/// reconciler syncs it again (and the next news of its order tries again); the save is
/// idempotent (the payment method's id is the checkout's). The same card saved again for the
/// same shopper (MSP answers the same token) is the payment method it already is.
pub async fn after_apply(ctx: &Context, applied: Versioned, news: News<'_>) -> Versioned {
    let state = &applied.checkout.saved_card;
    let (true, Some(usage), Some(reference), Some(token)) = (
        applied.checkout.card_still_to_save(),
        state.save,
        state.customer_reference.clone(),
        token_of(&news),
    ) else {
        return applied;
    };
    // MSP keeps one token per card and shopper: a card saved again is the payment method it
    // already is (deleting one of two would break the other at MSP).
    match already_saved(ctx, &reference, token).await {
        Ok(Some(existing)) => {
            tracing::info!(checkout_id = %applied.checkout.id, payment_method = %existing, "card saved already");
            return attach(ctx, applied.clone(), &existing).await.unwrap_or_else(|e| {
                tracing::error!(checkout_id = %applied.checkout.id, error = %e, "could not show the saved card on the checkout; the reconciler tries again");
                applied
            });
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(checkout_id = %applied.checkout.id, error = %e, "could not look for the card among the saved ones; the reconciler tries again");
            return applied;
        }
    }
    // Whole seconds, as the API writes every other time.
    let now = ctx.clock.now().trunc_subsecs(0);
    let checkout = &applied.checkout;
    let method = PaymentMethod {
        id: PaymentMethodId::saved_by(&checkout.id),
        customer_reference: reference,
        usage,
        status: PaymentMethodStatus::Active,
        card: checkout.card.clone(),
        created_from: checkout.id.clone(),
        created_at: now,
        updated_at: now,
    };
    let event = PaymentMethodEvent::new(PaymentMethodEventType::Saved, &method, 1, now);
    let merchant = [payment_method_event(
        PaymentMethodEventType::Saved,
        &method,
        1,
        now,
    )];
    let outbox = queued(ctx, &merchant, now).await;
    let saved = match ctx
        .store
        .save_payment_method(&method, token, &event, outbox)
        .await
    {
        Ok(saved) => saved,
        Err(e) => {
            tracing::error!(checkout_id = %checkout.id, error = %e, "could not save the card; the reconciler tries again");
            return applied;
        }
    };
    tracing::info!(checkout_id = %checkout.id, payment_method = %saved.method.id, usage = usage.as_str(), "card saved");
    if outbox.deliver_at.is_some() {
        ctx.outbox.ring(&saved.method.id);
    }
    match attach(ctx, applied.clone(), &saved.method.id).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(checkout_id = %checkout.id, error = %e, "could not show the saved card on the checkout; the reconciler tries again");
            applied
        }
    }
}

/// The active payment method of `reference` that stands for `token`, if any.
async fn already_saved(
    ctx: &Context,
    reference: &crate::domain::payment_method::CustomerReference,
    token: &MspToken,
) -> Result<Option<PaymentMethodId>, StoreError> {
    let mut after = None;
    loop {
        let page = ctx
            .store
            .list_payment_methods(reference, 100, after.as_ref())
            .await?;
        for method in &page.data {
            if method.status != PaymentMethodStatus::Active {
                continue;
            }
            if let Some(stored) = ctx.store.payment_method(&method.id).await?
                && stored.token == *token
            {
                return Ok(Some(method.id.clone()));
            }
        }
        match (page.has_more, page.data.last()) {
            (true, Some(last)) => after = Some(last.id.clone()),
            _ => return Ok(None),
        }
    }
}

/// Writes the payment method's id on the checkout, with no transition and no event.
async fn attach(
    ctx: &Context,
    mut stored: Versioned,
    id: &PaymentMethodId,
) -> Result<Versioned, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        if stored.checkout.saved_card.payment_method.is_some() {
            return Ok(stored);
        }
        let mut next = stored.checkout.clone();
        next.saved_card.payment_method = Some(id.clone());
        next.updated_at = ctx.clock.now();
        match ctx
            .store
            .compare_and_set(stored.version, &next, None, Outbox::NONE)
            .await?
        {
            CasReply::Applied { version } => {
                return Ok(Versioned {
                    checkout: next,
                    version,
                });
            }
            CasReply::Conflict { current } => stored = *current,
            CasReply::NotFound => {
                return Err(StoreError::corrupt("the checkout is gone"));
            }
        }
    }
    Err(StoreError::unavailable(
        "the checkout kept changing while its saved card was written",
    ))
}

/// Why a payment method could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no such payment method")]
    NotFound,
    #[error("the payment method is deleted")]
    Inactive,
    #[error(transparent)]
    Psp(#[from] PspError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new expiry for the card: at MSP first (`PATCH /recurring/{ref}/update/{token}`), then the
/// payment method and its `payment_method.updated` event.
pub async fn update_expiry(
    ctx: &Context,
    id: &PaymentMethodId,
    exp_month: u8,
    exp_year: u16,
) -> Result<PaymentMethod, ChangeError> {
    let stored = ctx
        .store
        .payment_method(id)
        .await?
        .ok_or(ChangeError::NotFound)?;
    if stored.method.status != PaymentMethodStatus::Active {
        return Err(ChangeError::Inactive);
    }
    let yymm = format!("{:02}{exp_month:02}", exp_year % 100);
    ctx.psp
        .update_token(&stored.method.customer_reference, &stored.token, &yymm)
        .await?;
    change(ctx, stored, PaymentMethodEventType::Updated, |m| {
        m.card.exp_month = exp_month;
        m.card.exp_year = exp_year;
    })
    .await
}

/// Deletes the card at MSP first (`DELETE /recurring/{ref}/remove/{token}`), then marks the
/// payment method `deleted` with its `payment_method.deleted` event. Deleting a deleted one
/// answers it as it is.
pub async fn delete(ctx: &Context, id: &PaymentMethodId) -> Result<PaymentMethod, ChangeError> {
    let stored = ctx
        .store
        .payment_method(id)
        .await?
        .ok_or(ChangeError::NotFound)?;
    if stored.method.status == PaymentMethodStatus::Deleted {
        return Ok(stored.method);
    }
    ctx.psp
        .remove_token(&stored.method.customer_reference, &stored.token)
        .await?;
    change(ctx, stored, PaymentMethodEventType::Deleted, |m| {
        m.status = PaymentMethodStatus::Deleted;
    })
    .await
}

/// A payment method's merchant events, queued for delivery as a checkout's are: for `webhooks.url` when it is configured, and for the webhook endpoints while there
/// are any.
async fn queued<'a>(ctx: &Context, events: &'a [Event], now: DateTime<Utc>) -> Outbox<'a> {
    let deliver = !events.is_empty()
        && (ctx.settings.deliver_webhooks
            || ctx
                .outbox
                .endpoints
                .queue(&ctx.store, now.timestamp_millis(), events)
                .await);
    Outbox {
        events,
        deliver_at: deliver.then_some(now),
        announce_at: deliver.then(|| now + ctx.settings.outbox_grace),
        to_url: ctx.settings.deliver_webhooks,
        activity: None,
    }
}

/// One compare-and-set of a payment method with its event, retried on a lost race.
async fn change(
    ctx: &Context,
    mut stored: StoredPaymentMethod,
    kind: PaymentMethodEventType,
    edit: impl Fn(&mut PaymentMethod),
) -> Result<PaymentMethod, ChangeError> {
    for _ in 0..MAX_ATTEMPTS {
        let now = ctx.clock.now().trunc_subsecs(0);
        let mut next = stored.method.clone();
        edit(&mut next);
        if next == stored.method {
            return Ok(next);
        }
        next.updated_at = now;
        let event = PaymentMethodEvent::new(kind, &next, stored.version + 1, now);
        let merchant = [payment_method_event(kind, &next, stored.version + 1, now)];
        let outbox = queued(ctx, &merchant, now).await;
        if ctx
            .store
            .update_payment_method(stored.version, &next, &event, outbox)
            .await?
        {
            tracing::info!(payment_method = %next.id, event = kind.as_str(), "payment method changed");
            if outbox.deliver_at.is_some() {
                ctx.outbox.ring(&next.id);
            }
            return Ok(next);
        }
        stored = ctx
            .store
            .payment_method(&next.id)
            .await?
            .ok_or(ChangeError::NotFound)?;
    }
    Err(ChangeError::Store(StoreError::unavailable(
        "the payment method kept changing; retry in a moment",
    )))
}
