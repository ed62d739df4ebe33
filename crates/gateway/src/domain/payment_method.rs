//! Saved cards: a **payment method** is a card MSP keeps for a shopper (the shop's
//! `customer_reference`), which the gateway knows by MSP's token and shows to merchants by its
//! own id. The token is a credential: [`MspToken`] masks itself in `Debug`, is stored only in the
//! payment method's own Redis key, and is never part of [`PaymentMethod`] (what the API, events
//! and logs see).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::card::CardSummary;
use super::checkout::CheckoutId;
use super::validation::FieldError;
use crate::error_code::ErrorCode;

super::id::prefixed_id!(
    /// `pm_` + 32 lowercase hex digits: the hex digits of the checkout that saved the card (a
    /// UUID v7), so that ids sort by creation and one checkout can never save two.
    PaymentMethodId,
    InvalidPaymentMethodId,
    "pm_",
    "a payment method id is `pm_` followed by 32 lowercase hex digits"
);

impl PaymentMethodId {
    /// The payment method a checkout saves.
    pub fn saved_by(checkout: &CheckoutId) -> Self {
        let hex = &checkout.as_str()[CheckoutId::PREFIX.len()..];
        Self(format!("{}{hex}", Self::PREFIX))
    }
}

/// How the card will be used (MSP's `recurring_model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Usage {
    /// One-click payments with the shopper present (MSP `cardOnFile`).
    CardOnFile,
    /// Payments on a fixed schedule, without the shopper (MSP `subscription`).
    Subscription,
    /// Payments the shop triggers, without the shopper, such as top-ups (MSP `unscheduled`).
    Unscheduled,
}

impl Usage {
    pub fn parse(s: &str) -> Option<Usage> {
        match s {
            "card_on_file" => Some(Usage::CardOnFile),
            "subscription" => Some(Usage::Subscription),
            "unscheduled" => Some(Usage::Unscheduled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Usage::CardOnFile => "card_on_file",
            Usage::Subscription => "subscription",
            Usage::Unscheduled => "unscheduled",
        }
    }

    /// MSP's `recurring_model`.
    pub fn msp_model(self) -> &'static str {
        match self {
            Usage::CardOnFile => "cardOnFile",
            Usage::Subscription => "subscription",
            Usage::Unscheduled => "unscheduled",
        }
    }

    /// Whether a payment with the card runs without the shopper (no 3-D Secure, no return URL
    /// needed).
    pub fn merchant_initiated(self) -> bool {
        !matches!(self, Usage::CardOnFile)
    }
}

/// `active`, or `deleted` (at MSP too): a deleted one can no longer pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethodStatus {
    Active,
    Deleted,
}

impl PaymentMethodStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deleted => "deleted",
        }
    }
}

/// MSP's token for a saved card (`payment_details.recurring_id`): a credential, so `Debug` and
/// `Display` show nothing of it; [`MspToken::expose`] is called only where MSP is sent it and
/// where the store writes it.
#[derive(Clone, PartialEq, Eq)]
pub struct MspToken(String);

impl MspToken {
    pub fn new(token: String) -> Option<Self> {
        let token = token.trim().to_owned();
        (!token.is_empty() && token.len() <= 200).then_some(Self(token))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MspToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MspToken([REDACTED])")
    }
}

/// The shop's own stable id for the shopper: at most 50 characters of plain text (MSP's
/// `customer.reference`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerReference(String);

impl CustomerReference {
    pub const MAX: usize = 50;

    pub fn parse(param: &str, value: &str) -> Result<Self, FieldError> {
        if value.trim().is_empty() {
            return Err(FieldError::new(
                param,
                ErrorCode::InvalidParameter,
                format!(
                    "`{param}` is your own id for the shopper, such as `cus-42`: it cannot be blank"
                ),
            ));
        }
        if value.chars().count() > Self::MAX {
            return Err(FieldError::new(
                param,
                ErrorCode::InvalidParameter,
                format!(
                    "`{param}` is at most {} characters: use a shorter id for the shopper",
                    Self::MAX
                ),
            ));
        }
        super::text::check(param, value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A saved card as merchants see it (the API's answer and the events' object): never MSP's
/// token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub id: PaymentMethodId,
    pub customer_reference: CustomerReference,
    pub usage: Usage,
    pub status: PaymentMethodStatus,
    pub card: CardSummary,
    pub created_from: CheckoutId,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl PaymentMethod {
    /// When the payment method is forgotten unless deleted first: one year past the end of its
    /// card's expiry month.
    pub fn forget_at(&self) -> DateTime<Utc> {
        let (year, month) = if self.card.exp_month >= 12 {
            (i32::from(self.card.exp_year) + 1, 1)
        } else {
            (
                i32::from(self.card.exp_year),
                u32::from(self.card.exp_month) + 1,
            )
        };
        chrono::NaiveDate::from_ymd_opt(year + 1, month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .unwrap_or(self.updated_at + chrono::TimeDelta::days(366))
    }
}

/// A payment method and the token it stands for, as the store holds them.
#[derive(Clone, Debug)]
pub struct StoredPaymentMethod {
    pub method: PaymentMethod,
    pub token: MspToken,
    /// Bumped by every change: the compare-and-set's expected version.
    pub version: u64,
}

/// `payment_method.saved`, `.updated` or `.deleted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentMethodEventType {
    Saved,
    Updated,
    Deleted,
}

impl PaymentMethodEventType {
    pub const ALL: [Self; 3] = [Self::Saved, Self::Updated, Self::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Saved => "payment_method.saved",
            Self::Updated => "payment_method.updated",
            Self::Deleted => "payment_method.deleted",
        }
    }
}

/// An event about a payment method, written in the same atomic step as the change: `id` is
/// `evt_` + the payment method's hex digits + the version it wrote (8 hex), so that a retried
/// write can never mint a second event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethodEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// The checkout that saved the card (`payment_method.saved` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_id: Option<CheckoutId>,
    pub data: PaymentMethodEventData,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethodEventData {
    pub object: PaymentMethod,
}

impl PaymentMethodEvent {
    pub fn new(
        kind: PaymentMethodEventType,
        method: &PaymentMethod,
        version: u64,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: crate::domain::event::EventId::of_payment_method(&method.id, version).to_string(),
            kind: kind.as_str().to_owned(),
            created_at: at,
            checkout_id: (kind == PaymentMethodEventType::Saved)
                .then(|| method.created_from.clone()),
            data: PaymentMethodEventData {
                object: method.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug() {
        let t = MspToken::new("QZTCh7jdk8".into()).unwrap();
        assert!(!format!("{t:?}").contains("QZTCh7jdk8"));
        assert!(!format!("{:?}", Some(&t)).contains("QZTCh7jdk8"));
    }

    #[test]
    fn a_checkout_saves_the_payment_method_of_its_own_hex_digits() {
        let chk = CheckoutId::generate();
        let pm = PaymentMethodId::saved_by(&chk);
        assert_eq!(&pm.as_str()[3..], &chk.as_str()[4..]);
        assert!(PaymentMethodId::parse(pm.as_str()).is_ok());
        assert!(PaymentMethodId::parse("pm_123").is_err());
        assert!(PaymentMethodId::parse(chk.as_str()).is_err());
    }

    #[test]
    fn a_customer_reference_is_short_plain_text_without_card_numbers() {
        assert!(CustomerReference::parse("customer.reference", "cus-42").is_ok());
        for bad in [
            "",
            "   ",
            "<b>x</b>",
            "4111 1111 1111 1111",
            &"x".repeat(51),
        ] {
            let e = CustomerReference::parse("customer.reference", bad).unwrap_err();
            assert_eq!(e.param, "customer.reference");
            assert!(!e.message.contains("4111"), "{}", e.message);
        }
    }

    #[test]
    fn it_is_forgotten_a_year_past_the_cards_expiry() {
        let now = Utc::now();
        let pm = PaymentMethod {
            id: PaymentMethodId::saved_by(&CheckoutId::generate()),
            customer_reference: CustomerReference::parse("r", "c").unwrap(),
            usage: Usage::Subscription,
            status: PaymentMethodStatus::Active,
            card: CardSummary {
                brand: "visa".into(),
                last4: "1111".into(),
                exp_month: 12,
                exp_year: 2030,
            },
            created_from: CheckoutId::generate(),
            created_at: now,
            updated_at: now,
        };
        assert_eq!(pm.forget_at().to_rfc3339(), "2032-01-01T00:00:00+00:00");
    }
}
