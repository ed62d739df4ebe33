//! Saved cards in the demo shop: the checkout form's tick boxes ("save this card", "order this
//! every month") save the card under the demo's one shopper; the checkout page then offers each
//! saved card as one button ("Pay again with Visa •••• 1111"; "Charge again" for the monthly
//! order, which the shop charges without the shopper).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    DEMO_CURRENCY, DEMO_ITEMS, DEMO_SHIPPING, DEMO_TAX_RATE, DemoCheckoutForm, demo_total,
};

/// The demo has no accounts: every visitor is this one shopper (`customer.reference`).
pub const DEMO_SHOPPER: &str = "demo-shopper";

/// One saved card, as the checkout page offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    /// `pm_…`, posted back by its button.
    pub id: String,
    /// `Visa •••• 1111`.
    pub label: String,
    /// `12/2030`.
    pub expiry: String,
    /// Saved for the monthly order: its button charges it without the shopper.
    pub subscription: bool,
}

/// The `save_card` the tick boxes ask for: the monthly order wins (its card is charged by the
/// shop), else "save this card" (one-click payments).
pub(crate) fn usage_chosen(form: &DemoCheckoutForm) -> Option<&'static str> {
    if !form.subscribe.trim().is_empty() {
        Some("subscription")
    } else if !form.save_card.trim().is_empty() {
        Some("card_on_file")
    } else {
        None
    }
}

fn brand_name(brand: &str) -> &str {
    match brand {
        "visa" => "Visa",
        "mastercard" => "Mastercard",
        "amex" => "American Express",
        "maestro" => "Maestro",
        _ => "Card",
    }
}

/// The active saved cards of a `GET /v1/payment_methods` answer, as the page shows them.
pub fn saved_cards(page: &Value) -> Vec<SavedCard> {
    page["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|pm| pm["status"] == "active")
        .filter_map(|pm| {
            let card = &pm["card"];
            Some(SavedCard {
                id: pm["id"].as_str()?.to_owned(),
                label: format!(
                    "{} •••• {}",
                    brand_name(card["brand"].as_str().unwrap_or_default()),
                    card["last4"].as_str().unwrap_or_default()
                ),
                expiry: format!(
                    "{:02}/{}",
                    card["exp_month"].as_u64().unwrap_or_default(),
                    card["exp_year"].as_u64().unwrap_or_default()
                ),
                subscription: pm["usage"] == "subscription",
            })
        })
        .collect()
}

/// The one-click form as posted: which saved card pays.
#[derive(Debug, Deserialize)]
pub struct DemoSavedCardForm {
    pub payment_method: String,
}

/// The `POST /v1/checkouts` body that pays the demo cart with a saved card.
pub fn saved_card_request_json(
    payment_method: &str,
    return_url: &str,
    cancel_url: &str,
    shopper_ip: &str,
) -> Value {
    let items: Vec<Value> = DEMO_ITEMS
        .iter()
        .map(|i| {
            json!({
                "name": i.name,
                "sku": i.sku,
                "quantity": i.quantity,
                "unit_amount": i.unit_amount,
                "tax_rate": DEMO_TAX_RATE,
            })
        })
        .collect();
    let reference = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    json!({
        "reference": reference,
        "currency": DEMO_CURRENCY,
        "items": items,
        "shipping_amount": DEMO_SHIPPING,
        "shipping_tax_rate": DEMO_TAX_RATE,
        "amount": demo_total(),
        "description": "Demo order at the checkout-gateway sandbox",
        "customer": {
            "reference": DEMO_SHOPPER,
            "email": "shopper@example.com",
            "ip_address": shopper_ip,
            "locale": "nl_NL",
            "address": {"line1": "Kraanspoor", "house_number": "39", "zip_code": "1033SC",
                        "city": "Amsterdam", "country": "NL"}
        },
        "payment_method": payment_method,
        "return_url": return_url,
        "cancel_url": cancel_url,
        "metadata": {"source": "sandbox-demo"}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_saved_cards_are_offered_by_brand_and_last_four() {
        let page = json!({"data": [
            {"id": "pm_1", "status": "active", "usage": "card_on_file",
             "card": {"brand": "visa", "last4": "1111", "exp_month": 12, "exp_year": 2030}},
            {"id": "pm_2", "status": "deleted", "usage": "card_on_file",
             "card": {"brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2031}},
            {"id": "pm_3", "status": "active", "usage": "subscription",
             "card": {"brand": "mastercard", "last4": "0004", "exp_month": 3, "exp_year": 2031}}
        ], "has_more": false});
        let cards = saved_cards(&page);
        assert_eq!(cards.len(), 2);
        assert_eq!(cards[0].label, "Visa •••• 1111");
        assert_eq!(cards[0].expiry, "12/2030");
        assert!(!cards[0].subscription);
        assert!(cards[1].subscription);
        assert!(saved_cards(&Value::Null).is_empty());
    }

    #[test]
    fn the_tick_boxes_choose_how_the_card_is_saved() {
        let form = |extra: &str| -> DemoCheckoutForm {
            serde_urlencoded::from_str(&format!(
                "card_number=4111&exp_month=12&exp_year=2030&cvc=123{extra}"
            ))
            .unwrap()
        };
        assert_eq!(usage_chosen(&form("")), None);
        assert_eq!(
            usage_chosen(&form("&save_card=card_on_file")),
            Some("card_on_file")
        );
        assert_eq!(
            usage_chosen(&form("&save_card=card_on_file&subscribe=subscription")),
            Some("subscription")
        );
        let body = super::super::to_checkout_request_json(
            &form("&save_card=card_on_file"),
            "https://r",
            "https://c",
            "127.0.0.1",
        );
        assert_eq!(body["save_card"], "card_on_file");
        assert_eq!(body["customer"]["reference"], DEMO_SHOPPER);
    }
}
