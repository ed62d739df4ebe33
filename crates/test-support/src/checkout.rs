//! The merchant's `POST /v1/checkouts` body, as a storefront sends it: the API's example, with
//! the card under test.
//!
//! ```
//! use test_support::checkout::CheckoutRequest;
//!
//! let body = CheckoutRequest::new("4111111111111111")
//!     .reference("order-1002")
//!     .body();
//! assert_eq!(body["amount"], 3495);
//! assert_eq!(body["card"]["cvc"], "123");
//! ```
//!
//! Tests that need an invalid body start from a valid one and change the JSON themselves; the
//! methods here only cover what tests change while keeping the request valid.

use serde_json::{Value, json};

/// A valid checkout request: two T-shirts at 15.00 plus 4.95 shipping, 34.95 EUR in all, paid
/// with the given card (expiry 12/2030, holder "Jo Doe"), returning to `shop.example`.
#[derive(Clone, Debug)]
pub struct CheckoutRequest {
    body: Value,
}

impl CheckoutRequest {
    pub fn new(card_number: &str) -> Self {
        let body = json!({
            "reference": "order-1001",
            "currency": "EUR",
            "items": [{"name": "T-shirt", "sku": "TS-1", "quantity": 2, "unit_amount": 1500, "tax_rate": "0.21"}],
            "shipping_amount": 495,
            "amount": 3495,
            "description": "Order 1001 at Example Shop",
            "customer": {
                "email": "jo@example.com", "first_name": "Jo", "last_name": "Doe", "phone": "+31201234567",
                "locale": "nl_NL", "ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0",
                "address": {"line1": "Kraanspoor", "house_number": "39", "zip_code": "1033SC", "city": "Amsterdam", "country": "NL"},
                "browser": {"javascript_enabled": true, "language": "nl-NL", "screen_width": 1920, "screen_height": 1080,
                            "screen_color_depth": 24, "time_zone": -60, "java_enabled": false, "cookies_enabled": true}
            },
            "card": {"number": card_number, "exp_month": 12, "exp_year": 2030, "cvc": cvc_for(card_number), "holder_name": "Jo Doe"},
            "return_url": "https://shop.example/checkout/return?cart=c-77",
            "cancel_url": "https://shop.example/cart",
            "metadata": {"cart_id": "c-77"}
        });
        Self { body }
    }

    /// The merchant's own order reference (`order-1001` by default).
    pub fn reference(mut self, reference: impl Into<String>) -> Self {
        self.body["reference"] = Value::String(reference.into());
        self
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.body["description"] = Value::String(description.into());
        self
    }

    pub fn return_url(mut self, url: impl Into<String>) -> Self {
        self.body["return_url"] = Value::String(url.into());
        self
    }

    /// Leaves `cancel_url` out, so that the gateway falls back to `return_url`.
    pub fn without_cancel_url(mut self) -> Self {
        if let Some(fields) = self.body.as_object_mut() {
            fields.remove("cancel_url");
        }
        self
    }

    /// The JSON body to send.
    pub fn body(self) -> Value {
        self.body
    }
}

/// American Express cards (34…, 37…) take a four-digit CVC, every other brand three.
fn cvc_for(card_number: &str) -> &'static str {
    if card_number.starts_with("34") || card_number.starts_with("37") {
        "1234"
    } else {
        "123"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_body_is_design_section_3s_example_and_adds_up() {
        let body = CheckoutRequest::new("4111111111111111").body();
        let items: i64 = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["unit_amount"].as_i64().unwrap() * i["quantity"].as_i64().unwrap())
            .sum();
        assert_eq!(
            items + body["shipping_amount"].as_i64().unwrap(),
            body["amount"].as_i64().unwrap()
        );
        assert_eq!(body["card"]["number"], "4111111111111111");
        assert_eq!(body["reference"], "order-1001");
        assert!(body.get("cancel_url").is_some());
    }

    #[test]
    fn the_cvc_has_the_brands_length() {
        let cvc = |card| CheckoutRequest::new(card).body()["card"]["cvc"].clone();
        assert_eq!(cvc("374500000000015"), "1234");
        assert_eq!(cvc("340000000000009"), "1234");
        assert_eq!(cvc("4111111111111111"), "123");
        assert_eq!(cvc("5500000000000004"), "123");
        assert_eq!(cvc("3566002020360505"), "123", "JCB is not Amex");
    }

    #[test]
    fn the_setters_change_only_their_field() {
        let plain = CheckoutRequest::new("4111111111111111").body();
        let changed = CheckoutRequest::new("4111111111111111")
            .reference("bench-7")
            .description("Order 7")
            .return_url("http://127.0.0.1:1/demo/result")
            .without_cancel_url()
            .body();
        assert_eq!(changed["reference"], "bench-7");
        assert_eq!(changed["description"], "Order 7");
        assert_eq!(changed["return_url"], "http://127.0.0.1:1/demo/result");
        assert!(changed.get("cancel_url").is_none());
        let mut rest = changed.as_object().unwrap().clone();
        let mut plain_rest = plain.as_object().unwrap().clone();
        for field in ["reference", "description", "return_url", "cancel_url"] {
            rest.remove(field);
            plain_rest.remove(field);
        }
        assert_eq!(rest, plain_rest);
    }
}
