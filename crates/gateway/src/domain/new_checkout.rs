//! A valid `POST /v1/checkouts` request, as domain types. Built only by
//! `api::checkout_request::parse` (through [`NewCheckout::new`]); nothing past that line sees raw
//! strings. Its `Debug` is safe to log: every card field masks itself.

use super::card::{CardExpiry, CardNumber, CardSummary, Cvc};
use super::checkout::CaptureMethod;
use super::customer::Customer;
use super::money::{AmountError, Currency, MinorUnits};
use super::payment_method::{CustomerReference, MspToken, PaymentMethod, PaymentMethodId, Usage};
use super::tax::TaxRate;
use super::url::ReturnUrl;

/// One cart line. `unit_amount` is what the shopper pays per unit, VAT included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineItem {
    pub name: String,
    pub sku: Option<String>,
    /// At least 1.
    pub quantity: u32,
    pub unit_amount: MinorUnits,
    pub tax_rate: TaxRate,
}

impl LineItem {
    pub fn total(&self) -> Result<MinorUnits, AmountError> {
        self.unit_amount.checked_mul(self.quantity)
    }
}

/// The card as the shopper entered it. Held only until MSP's answer; never stored.
#[derive(Clone, Debug)]
pub struct CardDetails {
    pub number: CardNumber,
    pub expiry: CardExpiry,
    pub cvc: Cvc,
    pub holder_name: Option<String>,
}

impl CardDetails {
    pub fn summary(&self) -> CardSummary {
        CardSummary::new(&self.number, self.expiry)
    }
}

/// What pays: a card typed in now, or a saved one.
#[derive(Clone, Debug)]
pub enum PaymentSource {
    Card(CardDetails),
    /// A payment method; `resolved` is filled in from the store (by
    /// `flows::saved_card::resolve`) before anything is sent to MSP.
    Saved {
        id: PaymentMethodId,
        resolved: Option<Box<(PaymentMethod, MspToken)>>,
    },
}

/// Everything [`NewCheckout::new`] needs; the total is computed, never taken from here.
#[derive(Clone, Debug)]
pub struct NewCheckoutParts {
    pub reference: Option<String>,
    pub currency: Currency,
    pub items: Vec<LineItem>,
    pub shipping_amount: Option<MinorUnits>,
    pub shipping_tax_rate: TaxRate,
    pub description: Option<String>,
    pub customer: Customer,
    pub payment: PaymentSource,
    /// `save_card`: keep the card at MSP for later payments of this kind.
    pub save_card: Option<Usage>,
    /// `customer.reference`: required with `save_card`.
    pub customer_reference: Option<CustomerReference>,
    /// `None` only for a merchant-initiated payment with a saved card (no shopper to send back).
    pub return_url: Option<ReturnUrl>,
    pub cancel_url: Option<ReturnUrl>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub capture_method: CaptureMethod,
}

/// A checkout request that has passed every check. Fields are private so that the total always
/// matches the cart it was computed from.
#[derive(Clone, Debug)]
pub struct NewCheckout {
    parts: NewCheckoutParts,
    amount: MinorUnits,
}

impl NewCheckout {
    /// Computes the total, Σ(unit_amount × quantity) + shipping, with checked arithmetic.
    pub fn new(parts: NewCheckoutParts) -> Result<Self, AmountError> {
        let amount = cart_total(&parts.items, parts.shipping_amount)?;
        Ok(Self { parts, amount })
    }

    /// The order total in minor units (what MSP charges).
    pub fn amount(&self) -> MinorUnits {
        self.amount
    }
    pub fn reference(&self) -> Option<&str> {
        self.parts.reference.as_deref()
    }
    pub fn currency(&self) -> Currency {
        self.parts.currency
    }
    pub fn items(&self) -> &[LineItem] {
        &self.parts.items
    }
    pub fn shipping_amount(&self) -> Option<MinorUnits> {
        self.parts.shipping_amount
    }
    pub fn shipping_tax_rate(&self) -> TaxRate {
        self.parts.shipping_tax_rate
    }
    /// The merchant's description, when given (MSP needs one: see the PSP conversion).
    /// What MSP gets (and the checkout keeps) as its description: MSP requires one, so without
    /// one from the storefront it is `Order <reference>`, or `Checkout <id>`.
    pub fn description_or_default(&self, id: &crate::domain::checkout::CheckoutId) -> String {
        match (self.description(), self.reference()) {
            (Some(d), _) => d.to_owned(),
            (None, Some(reference)) => format!("Order {reference}"),
            (None, None) => format!("Checkout {id}"),
        }
    }

    pub fn description(&self) -> Option<&str> {
        self.parts.description.as_deref()
    }
    pub fn customer(&self) -> &Customer {
        &self.parts.customer
    }
    /// The card typed in, when one was (not for a payment with a saved card).
    pub fn card(&self) -> Option<&CardDetails> {
        match &self.parts.payment {
            PaymentSource::Card(card) => Some(card),
            PaymentSource::Saved { .. } => None,
        }
    }
    pub fn payment(&self) -> &PaymentSource {
        &self.parts.payment
    }
    /// The saved card that pays, once resolved.
    pub fn saved(&self) -> Option<&(PaymentMethod, MspToken)> {
        match &self.parts.payment {
            PaymentSource::Saved { resolved, .. } => resolved.as_deref(),
            PaymentSource::Card(_) => None,
        }
    }
    /// Fills in the saved card that pays.
    pub fn resolve_saved(&mut self, method: PaymentMethod, token: MspToken) {
        if let PaymentSource::Saved { resolved, .. } = &mut self.parts.payment {
            *resolved = Some(Box::new((method, token)));
        }
    }
    pub fn save_card(&self) -> Option<Usage> {
        self.parts.save_card
    }
    pub fn customer_reference(&self) -> Option<&CustomerReference> {
        self.parts.customer_reference.as_ref()
    }
    pub fn return_url(&self) -> Option<&ReturnUrl> {
        self.parts.return_url.as_ref()
    }
    /// Defaults to the return URL when the request had none.
    pub fn cancel_url(&self) -> Option<&ReturnUrl> {
        self.parts.cancel_url.as_ref()
    }
    pub fn metadata(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.parts.metadata
    }
    pub fn capture_method(&self) -> CaptureMethod {
        self.parts.capture_method
    }
}

/// Σ(unit_amount × quantity) + shipping, or an overflow.
pub fn cart_total(
    items: &[LineItem],
    shipping: Option<MinorUnits>,
) -> Result<MinorUnits, AmountError> {
    items
        .iter()
        .try_fold(shipping.unwrap_or(MinorUnits::ZERO), |sum, item| {
            sum.checked_add(item.total()?)
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use chrono::NaiveDate;

    use super::*;
    use crate::domain::card::CardBrand;
    use crate::domain::customer::{Address, BrowserInfo, Country, Email, Locale};

    pub(crate) const PAN: &str = "4111111111111111";
    /// Not the usual `123`: that appears in the example's phone number.
    pub(crate) const CVC: &str = "987";

    /// A complete checkout, as the design's example request describes it.
    pub(crate) fn example() -> NewCheckout {
        let number = CardNumber::parse(PAN).unwrap();
        let cvc = Cvc::parse(CVC, CardBrand::Visa).unwrap();
        let expiry =
            CardExpiry::parse(12, 2030, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()).unwrap();
        let return_url = ReturnUrl::parse("https://shop.example/checkout/return", &[]).unwrap();
        NewCheckout::new(NewCheckoutParts {
            reference: Some("order-1001".into()),
            currency: Currency::parse("EUR").unwrap(),
            items: vec![LineItem {
                name: "T-shirt".into(),
                sku: Some("TS-1".into()),
                quantity: 2,
                unit_amount: MinorUnits::new(1500).unwrap(),
                tax_rate: TaxRate::parse("0.21").unwrap(),
            }],
            shipping_amount: Some(MinorUnits::new(495).unwrap()),
            shipping_tax_rate: TaxRate::parse("0.21").unwrap(),
            description: Some("Order 1001 at Example Shop".into()),
            customer: Customer {
                email: Email::parse("jo@example.com").unwrap(),
                first_name: Some("Jo".into()),
                last_name: Some("Doe".into()),
                phone: Some("+31201234567".into()),
                locale: Some(Locale::parse("nl_NL").unwrap()),
                ip_address: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
                user_agent: Some("Mozilla/5.0".into()),
                address: Address {
                    line1: Some("Kraanspoor".into()),
                    house_number: Some("39".into()),
                    zip_code: Some("1033SC".into()),
                    city: Some("Amsterdam".into()),
                    country: Country::parse("NL").unwrap(),
                },
                browser: Some(BrowserInfo {
                    javascript_enabled: Some(true),
                    language: Some("nl-NL".into()),
                    screen_width: Some(1920),
                    screen_height: Some(1080),
                    screen_color_depth: Some(24),
                    time_zone: Some(-60),
                    java_enabled: Some(false),
                    cookies_enabled: Some(true),
                    ..BrowserInfo::default()
                }),
            },
            payment: PaymentSource::Card(CardDetails {
                number,
                expiry,
                cvc,
                holder_name: Some("Jo Doe".into()),
            }),
            save_card: None,
            customer_reference: None,
            cancel_url: Some(ReturnUrl::parse("https://shop.example/cart", &[]).unwrap()),
            return_url: Some(return_url),
            metadata: serde_json::json!({"cart_id": "c-77"})
                .as_object()
                .unwrap()
                .clone(),
            capture_method: CaptureMethod::Automatic,
        })
        .unwrap()
    }

    #[test]
    fn total_is_items_times_quantity_plus_shipping() {
        let checkout = example();
        assert_eq!(checkout.amount(), MinorUnits::new(3495).unwrap());
        assert_eq!(checkout.card().unwrap().summary().last4, "1111");
    }

    #[test]
    fn an_overflowing_cart_is_an_error_not_a_wrap() {
        let mut parts = example().parts;
        parts.items[0].unit_amount = MinorUnits::new(i64::MAX / 2 + 1).unwrap();
        assert_eq!(
            NewCheckout::new(parts.clone()).err(),
            Some(AmountError::Overflow)
        );
        parts.items[0].quantity = 1;
        parts.items.push(parts.items[0].clone());
        assert_eq!(NewCheckout::new(parts).err(), Some(AmountError::Overflow));
    }

    #[test]
    fn debug_of_every_card_holding_type_shows_neither_pan_nor_cvc() {
        let checkout = example();
        let shown = [
            format!("{checkout:?}"),
            format!("{checkout:#?}"),
            format!("{:?}", checkout.card()),
            format!("{:?}", checkout.card().unwrap().number),
            format!("{}", checkout.card().unwrap().number),
            format!("{:?}", checkout.card().unwrap().cvc),
            format!("{:?}", checkout.card().unwrap().summary()),
        ];
        for text in shown {
            assert!(!text.contains(PAN), "PAN in {text}");
            assert!(!text.contains("411111111111"), "PAN prefix in {text}");
            assert!(!text.contains(CVC), "CVC in {text}");
            assert!(text.contains("1111") || text.contains("***"), "{text}");
        }
    }
}
