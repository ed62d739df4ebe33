//! Saved cards in the store: each payment method with MSP's token beside it, its
//! events written in the same atomic step as each change, and an index by customer reference.
//! A payment method lives until one year past its card's expiry (its TTL); a deleted one is kept
//! (status `deleted`) until then, so that using it answers 409 rather than 404.

use async_trait::async_trait;

use super::{Outbox, StoreError};
use crate::domain::payment_method::{
    CustomerReference, MspToken, PaymentMethod, PaymentMethodEvent, PaymentMethodId,
    StoredPaymentMethod,
};

/// One page of a customer's payment methods, newest first.
#[derive(Clone, Debug, Default)]
pub struct PaymentMethodPage {
    pub data: Vec<PaymentMethod>,
    pub has_more: bool,
}

#[async_trait]
pub trait PaymentMethods: Send + Sync + 'static {
    /// Stores a new payment method, its token and its `payment_method.saved` event in one
    /// atomic step, and indexes it under its customer reference. A payment method with this id
    /// already stored is left as it is and returned (a retried save saves once). `outbox`
    /// holds the event as merchants see it (`GET /v1/events`, webhooks), written beside the
    /// payment method in the same step, listed, and queued as a checkout's events are.
    async fn save_payment_method(
        &self,
        method: &PaymentMethod,
        token: &MspToken,
        event: &PaymentMethodEvent,
        outbox: Outbox<'_>,
    ) -> Result<StoredPaymentMethod, StoreError>;

    async fn payment_method(
        &self,
        id: &PaymentMethodId,
    ) -> Result<Option<StoredPaymentMethod>, StoreError>;

    /// Writes `next` and its event in one compare-and-set (with `outbox`'s merchant event, as
    /// [`save_payment_method`](Self::save_payment_method)): `false` when the stored version is
    /// not `expected_version` any more (nothing written).
    async fn update_payment_method(
        &self,
        expected_version: u64,
        next: &PaymentMethod,
        event: &PaymentMethodEvent,
        outbox: Outbox<'_>,
    ) -> Result<bool, StoreError>;

    /// A customer's payment methods, newest first, after `starting_after` when given.
    async fn list_payment_methods(
        &self,
        customer: &CustomerReference,
        limit: usize,
        starting_after: Option<&PaymentMethodId>,
    ) -> Result<PaymentMethodPage, StoreError>;

    /// The payment method's events, oldest first.
    async fn payment_method_events(
        &self,
        id: &PaymentMethodId,
    ) -> Result<Vec<PaymentMethodEvent>, StoreError>;
}
