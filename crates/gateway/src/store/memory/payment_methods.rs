//! [`PaymentMethods`] in memory (the `sandbox` command): one lock around every payment method,
//! its token and its events, so each change is atomic as on Redis. Expiry is not simulated:
//! the sandbox does not live a year.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::event::Delivery;
use crate::domain::payment_method::{
    CustomerReference, MspToken, PaymentMethod, PaymentMethodEvent, PaymentMethodId,
    StoredPaymentMethod,
};
use crate::store::{
    EventOutbox, Outbox, PaymentMethodPage, PaymentMethods, StoreError, StoredEvent,
};

#[derive(Default)]
pub(super) struct Saved(
    Mutex<BTreeMap<PaymentMethodId, (StoredPaymentMethod, Vec<PaymentMethodEvent>)>>,
);

impl Saved {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        BTreeMap<PaymentMethodId, (StoredPaymentMethod, Vec<PaymentMethodEvent>)>,
    > {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryStore {
    /// Stores a change's merchant events beside the payment method, queued as `outbox` says,
    /// and lists (and announces) them as a checkout's.
    async fn write_payment_method_events(
        &self,
        id: &PaymentMethodId,
        outbox: &Outbox<'_>,
    ) -> Result<(), StoreError> {
        {
            let mut state = self.state();
            let mail = state.payment_method_mail.entry(id.clone()).or_default();
            for e in outbox.events {
                if let Some(at) = outbox.deliver_at {
                    mail.outbox.insert(e.id.clone(), at.timestamp_millis());
                }
                mail.merchant_events.insert(
                    e.id.clone(),
                    StoredEvent {
                        event: e.clone(),
                        delivery: outbox
                            .deliver_at
                            .filter(|_| outbox.to_url)
                            .map(Delivery::due_now),
                    },
                );
            }
        }
        if outbox.events.is_empty() {
            return Ok(());
        }
        self.announce_events(&id.into(), outbox.events, outbox.announce_at)
            .await
    }
}

#[async_trait]
impl PaymentMethods for MemoryStore {
    async fn save_payment_method(
        &self,
        method: &PaymentMethod,
        token: &MspToken,
        event: &PaymentMethodEvent,
        outbox: Outbox<'_>,
    ) -> Result<StoredPaymentMethod, StoreError> {
        let (saved, fresh) = {
            let mut all = self.payment_methods.lock();
            let fresh = !all.contains_key(&method.id);
            let entry = all.entry(method.id.clone()).or_insert_with(|| {
                (
                    StoredPaymentMethod {
                        method: method.clone(),
                        token: token.clone(),
                        version: 1,
                    },
                    vec![event.clone()],
                )
            });
            (entry.0.clone(), fresh)
        };
        if fresh {
            self.write_payment_method_events(&method.id, &outbox)
                .await?;
        }
        Ok(saved)
    }

    async fn payment_method(
        &self,
        id: &PaymentMethodId,
    ) -> Result<Option<StoredPaymentMethod>, StoreError> {
        Ok(self.payment_methods.lock().get(id).map(|(s, _)| s.clone()))
    }

    async fn update_payment_method(
        &self,
        expected_version: u64,
        next: &PaymentMethod,
        event: &PaymentMethodEvent,
        outbox: Outbox<'_>,
    ) -> Result<bool, StoreError> {
        let written = {
            let mut all = self.payment_methods.lock();
            match all.get_mut(&next.id) {
                Some((stored, events)) if stored.version == expected_version => {
                    stored.method = next.clone();
                    stored.version += 1;
                    events.push(event.clone());
                    true
                }
                _ => false,
            }
        };
        if written {
            self.write_payment_method_events(&next.id, &outbox).await?;
        }
        Ok(written)
    }

    async fn list_payment_methods(
        &self,
        customer: &CustomerReference,
        limit: usize,
        starting_after: Option<&PaymentMethodId>,
    ) -> Result<PaymentMethodPage, StoreError> {
        let all = self.payment_methods.lock();
        let mut data: Vec<PaymentMethod> = all
            .values()
            .rev()
            .map(|(s, _)| &s.method)
            .filter(|m| &m.customer_reference == customer)
            .filter(|m| starting_after.is_none_or(|after| &m.id < after))
            .take(limit + 1)
            .cloned()
            .collect();
        let has_more = data.len() > limit;
        data.truncate(limit);
        Ok(PaymentMethodPage { data, has_more })
    }

    async fn payment_method_events(
        &self,
        id: &PaymentMethodId,
    ) -> Result<Vec<PaymentMethodEvent>, StoreError> {
        Ok(self
            .payment_methods
            .lock()
            .get(id)
            .map(|(_, e)| e.clone())
            .unwrap_or_default())
    }
}
