//! Test values: a checkout and its events.

use chrono::{TimeZone, Utc};

use gateway::domain::card::CardSummary;
use gateway::domain::checkout::{
    Checkout, CheckoutEvent, CheckoutId, CheckoutStatus, EventSource, PaySession, PspState,
};
use gateway::domain::money::{Currency, MinorUnits};

pub fn checkout(id: &CheckoutId) -> Checkout {
    let at = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
    Checkout {
        schema_version: Checkout::SCHEMA_VERSION,
        id: id.clone(),
        status: CheckoutStatus::Created,
        amount: MinorUnits::new(3495).unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        reference: Some("order-1001".to_owned()),
        description: "Order 1001".to_owned(),
        card: CardSummary {
            brand: "visa".to_owned(),
            last4: "1111".to_owned(),
            exp_month: 12,
            exp_year: 2030,
        },
        saved_card: Default::default(),
        return_url: "https://shop.example/return".to_owned(),
        cancel_url: "https://shop.example/cart".to_owned(),
        metadata: serde_json::Map::new(),
        failure: None,
        psp: PspState::default(),
        pay_token: None,
        shopper_returned: false,
        created_at: at,
        updated_at: at,
        expires_at: at + chrono::Duration::hours(1),
        capture_method: Default::default(),
        amount_captured: None,
        amount_capturable: None,
        capture_before: None,
        refunds: Vec::new(),
        disputes: Vec::new(),
    }
}

/// The same checkout moved to `status`.
pub fn moved(checkout: &Checkout, status: CheckoutStatus) -> Checkout {
    Checkout {
        status,
        updated_at: checkout.updated_at + chrono::Duration::seconds(1),
        ..checkout.clone()
    }
}

pub fn created_event() -> CheckoutEvent {
    CheckoutEvent {
        at: Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap(),
        from: None,
        to: CheckoutStatus::Created,
        source: EventSource::Create,
        psp_status: None,
    }
}

pub fn event(from: CheckoutStatus, to: CheckoutStatus, psp_status: &str) -> CheckoutEvent {
    CheckoutEvent {
        at: Utc.with_ymd_and_hms(2026, 11, 24, 10, 1, 0).unwrap(),
        from: Some(from),
        to,
        source: EventSource::Notification,
        psp_status: Some(psp_status.to_owned()),
    }
}

pub fn pay_session(id: &CheckoutId) -> PaySession {
    PaySession {
        checkout_id: id.clone(),
        payment_url: Some("https://testpayv2.multisafepay.com/connect/abc".to_owned()),
        form_html: None,
    }
}
