//! Creating a checkout: store it, ask MSP for a direct card order, apply MSP's answer.
//!
//! The order of the steps is what keeps money safe:
//! 1. The checkout is stored (`created`) and put in the reconciler's index *before* MSP is
//!    called, so that a crash between the two leaves a record that the reconciler resolves.
//!    If this fails, nothing was sent to MSP and the caller gets 503: a retry is safe.
//! 2. MSP is called once. The checkout id is MSP's `order_id`, so MSP itself refuses a second
//!    order for the same checkout (error 1006): a retry can never charge twice.
//! 3. MSP's answer goes through the same compare-and-set as everything else. MSP may notify
//!    before its answer is read here; then the compare-and-set sees the newer state and the
//!    flow answers what is stored.
//!
//! An unknown outcome (MSP unreachable, timed out, 5xx, or an answer we cannot read) is never
//! reported as failed: the checkout becomes `processing` and is resolved by `?refresh=true` or
//! by the reconciler.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::Context;
use super::apply::{ApplyError, apply_from};
use super::transition::{News, transition};
use crate::domain::checkout::{
    Checkout, CheckoutEvent, CheckoutId, CheckoutStatus, EventSource, PaySession, PspState,
};
use crate::domain::new_checkout::NewCheckout;
use crate::psp::{CreateOrder, PaymentStatus, PspError, PspOrder};
use crate::store::console::SearchIndex;
use crate::store::{InsertReply, StoreError, Versioned};

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The store failed before MSP was called: nothing happened, retrying is safe.
    #[error("the store is unavailable; nothing was sent to MultiSafepay")]
    StoreUnavailable(#[source] StoreError),
    /// MSP refused the order for a reason that is not the card's (error code and text are MSP's).
    #[error("MultiSafepay refused the order: {code} {info}")]
    Rejected {
        checkout: Box<Checkout>,
        code: i64,
        info: String,
    },
    /// MSP answered something we could not read: the outcome is unknown (checkout `processing`).
    #[error("MultiSafepay answered something unusable: {detail}")]
    Unusable {
        checkout: Box<Checkout>,
        detail: String,
    },
}

/// Runs the create flow for an already-validated checkout request.
pub async fn create_checkout(ctx: &Context, new: &NewCheckout) -> Result<Checkout, CreateError> {
    create_checkout_as(ctx, CheckoutId::generate(), new).await
}

/// As [`create_checkout`], under an id chosen beforehand (recorded with an idempotency claim
/// before anything reached MSP, so that a retry after a crash uses the same one).
#[tracing::instrument(name = "create_checkout", skip_all, fields(checkout_id = %id))]
pub async fn create_checkout_as(
    ctx: &Context,
    id: CheckoutId,
    new: &NewCheckout,
) -> Result<Checkout, CreateError> {
    let record = initial_record(ctx, &id, new);
    let search = crate::store::console::new_checkout_search(
        new.customer().email.as_str(),
        &record.card.last4,
    );
    store_before_calling_msp(ctx, &record, &search).await?;

    let answer = ctx.psp.create_order(&order_for(ctx, &id, new)).await;
    // The card data is not needed past this point; `new` is dropped by the caller right after.
    let pay_token = match &answer {
        Ok(order) if order.status == PaymentStatus::AwaitingShopper => {
            open_pay_session(ctx, &id, order).await
        }
        _ => None,
    };
    // Boxed: settling's future is the largest of this flow's (5.5 KiB), and held inline it
    // would be part of every checkout's future for all of MSP's answer time too (issue 31).
    let checkout = Box::pin(settle(ctx, &record, news_of(&answer, pay_token.as_deref()))).await;
    match answer {
        Err(PspError::Rejected {
            error_code,
            error_info,
            ..
        }) => Err(CreateError::Rejected {
            checkout: Box::new(checkout),
            code: error_code,
            info: error_info,
        }),
        Err(e @ (PspError::Unexpected { .. } | PspError::NotFound { .. })) => {
            Err(CreateError::Unusable {
                checkout: Box::new(checkout),
                detail: e.to_string(),
            })
        }
        _ => Ok(checkout),
    }
}

/// Step 1: the record, its listing entries, its place in the reconciler's index and the
/// console's `search` entries, before MSP hears of it.
async fn store_before_calling_msp(
    ctx: &Context,
    record: &Checkout,
    search: &[(SearchIndex, String)],
) -> Result<(), CreateError> {
    let created = CheckoutEvent {
        at: record.created_at,
        from: None,
        to: CheckoutStatus::Created,
        source: EventSource::Create,
        psp_status: None,
    };
    // The listing indexes first: an entry without its record is skipped when
    // listing, a record without its entries could never be listed. Then the record, then its
    // place in the reconciler's index: one store call (one round trip on a single Redis node).
    let first_sync = (record.created_at + ctx.settings.first_sync_after).timestamp();
    match ctx
        .store
        .insert_new(record, &created, first_sync, search)
        .await
    {
        Ok(InsertReply::Inserted) => Ok(()),
        // A UUID v7 collision: treat it as the store misbehaving rather than overwrite anything.
        Ok(InsertReply::AlreadyExists) => Err(CreateError::StoreUnavailable(StoreError::corrupt(
            format!("checkout id {} exists already", record.id),
        ))),
        Err(e) => Err(CreateError::StoreUnavailable(e)),
    }
}

fn order_for<'a>(ctx: &Context, id: &'a CheckoutId, new: &'a NewCheckout) -> CreateOrder<'a> {
    let base = &ctx.settings.public_url;
    CreateOrder {
        id,
        checkout: new,
        notification_url: format!("{base}/notifications/multisafepay"),
        notification_method: ctx.settings.notification_method,
        redirect_url: format!("{base}/return/{id}"),
        cancel_url: format!("{base}/cancel/{id}"),
    }
}

/// What MSP's answer to the create call tells about the checkout.
fn news_of<'a>(answer: &'a Result<PspOrder, PspError>, pay_token: Option<&'a str>) -> News<'a> {
    match answer {
        Ok(order) => News::Created { order, pay_token },
        Err(PspError::Declined { failure, .. } | PspError::Rejected { failure, .. }) => {
            News::Refused(failure)
        }
        Err(e @ PspError::Unreachable { .. }) => {
            tracing::warn!(error = %e, "MultiSafepay did not answer the create call; the outcome is unknown");
            News::OutcomeUnknown
        }
        Err(e @ (PspError::Unexpected { .. } | PspError::NotFound { .. })) => {
            tracing::error!(error = %e, "MultiSafepay's answer to the create call is unusable; the outcome is unknown");
            News::OutcomeUnknown
        }
    }
}

/// Applies MSP's answer. If the store fails now, MSP has the order already, so the caller still
/// gets the answer (computed from the record in memory); the stored record stays `created` and
/// is in the reconciler's index, which resolves it.
async fn settle(ctx: &Context, record: &Checkout, news: News<'_>) -> Checkout {
    // The record was inserted at version 1; start there rather than read it back.
    let inserted = Versioned {
        checkout: record.clone(),
        version: 1,
    };
    match apply_from(ctx, inserted, EventSource::Create, news).await {
        Ok(checkout) => checkout,
        Err(e @ (ApplyError::Store(_) | ApplyError::NotFound)) => {
            tracing::error!(error = %e, "could not store MultiSafepay's answer; the reconciler will resolve the checkout");
            transition(record, news, EventSource::Create, ctx.clock.now())
                .map(|(c, _)| c)
                .unwrap_or_else(|| record.clone())
        }
    }
}

/// Stores the pending 3DS session under a fresh unguessable token (256 random bits), or returns
/// `None` when MSP gave nothing to show or the store failed (the checkout then has no pay link
/// and is resolved by the reconciler when MSP's 3DS window ends).
async fn open_pay_session(ctx: &Context, id: &CheckoutId, order: &PspOrder) -> Option<String> {
    if order.payment_url.is_none() && order.form_html.is_none() {
        tracing::warn!("MultiSafepay asked for 3-D Secure but sent neither payment_url nor a form");
        return None;
    }
    let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let session = PaySession {
        checkout_id: id.clone(),
        payment_url: order.payment_url.clone(),
        form_html: order.form_html.clone(),
    };
    match ctx.store.put_pay_session(&token, &session).await {
        Ok(()) => Some(token),
        Err(e) => {
            tracing::error!(error = %e, "could not store the 3-D Secure session");
            None
        }
    }
}

fn initial_record(ctx: &Context, id: &CheckoutId, new: &NewCheckout) -> Checkout {
    let now = ctx.clock.now();
    Checkout {
        schema_version: Checkout::SCHEMA_VERSION,
        id: id.clone(),
        status: CheckoutStatus::Created,
        amount: new.amount(),
        currency: new.currency(),
        reference: new.reference().map(str::to_owned),
        description: new.description_or_default(id),
        card: super::saved_card::card_of(new),
        saved_card: super::saved_card::state_of(new),
        return_url: new
            .return_url()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
        cancel_url: new
            .cancel_url()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
        metadata: new.metadata().clone(),
        failure: None,
        psp: PspState::default(),
        pay_token: None,
        shopper_returned: false,
        created_at: now,
        updated_at: now,
        expires_at: now + ctx.settings.session_ttl,
        capture_method: new.capture_method(),
        amount_captured: None,
        amount_capturable: None,
        capture_before: None,
        refunds: Vec::new(),
        disputes: Vec::new(),
    }
}
