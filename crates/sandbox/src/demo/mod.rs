//! The sandbox's demo storefront (issue #3 point 2): rendering and form parsing only. The
//! routes live with the sandbox; they call the gateway's own API with the JSON built here, so
//! the demo exercises exactly what a merchant's backend would.
//!
//! - [`checkout_page`]: a cart of two fixed items and a plain HTML checkout form (the page's
//!   first and only form, `POST /demo/checkout`, no JavaScript, no cookies) pre-filled with a
//!   3-D Secure test card, plus the simulator's test cards and what each does.
//! - [`DemoCheckoutForm`] + [`to_checkout_request_json`]: the form's fields to the
//!   `POST /v1/checkouts` body the API documents.
//! - [`result_page`]: where the shop's return URL lands: the final status, the refunds with a
//!   refund form and a cancel button for pending ones, and the events; for an authorisation
//!   waiting to be captured, a capture form and a cancel button (a cancel button alone while
//!   the payment is still under way).
//! - [`Inbox`] + [`webhooks_page`]: the shop's webhook receiver (signature checked with its
//!   own code) and `/demo/webhooks`, what it received with a verified signature, newest first,
//!   with no pay link in it ([`hide_pay_links`]); with the demo's own webhook endpoints
//!   ([`DEMO_ENDPOINTS`], checked by their Standard Webhooks signatures, [`verify_standard`]),
//!   which destination got which event ([`webhooks_page_with`]).
//! - [`SavedCard`] + [`saved_card_request_json`]: the demo shopper's saved cards (the checkout
//!   form's "save this card" and "order this every month" tick boxes save them), each with a
//!   one-click "Pay again with Visa •••• 1111" button, or "Charge again" for a subscription.
//! - [`parse_amount`] + [`refusal_message`]: the refund form's amount (major units, as typed) to
//!   minor units, and the gateway's refusals in plain words.
//!
//! Its CSP: the checkout page's form is redirected through `/pay/…` to the 3DS page, which in
//! redirect mode is on the simulator's origin, so serve it with
//! `browser::security::gateway_page_csp_with_form_targets(&[simulator_origin])`.
//!
//! The files: this one holds the catalogue (the fixed cart, the test cards) and the money
//! formatting both pages use, so the page shown and the request sent cannot disagree;
//! `checkout.rs` holds the checkout page and its form; `result.rs` the result page; `webhooks.rs`
//! the webhook receiver and its page; `dispute.rs` the disputes section and its evidence form;
//! `refund.rs`
//! the refund form's parsing and wording; `capture.rs` the capture and cancel forms' wording.
//! Everything public is re-exported here, so callers
//! name `sandbox::demo::…` whatever file it lives in.

mod capture;
mod checkout;
mod dispute;
mod refund;
mod result;
mod saved;
mod webhooks;

pub use capture::{
    DemoCancelForm, DemoCaptureForm, capture_amount_error_message, describe_deadline,
    payment_refusal_message,
};
pub use checkout::{
    DemoCheckoutForm, DemoCheckoutPage, TypedFields, api_error_message, checkout_page,
    invalid_field, next_location, to_checkout_request_json,
};
pub use dispute::{DemoDispute, DemoDisputes, disputes_section, evidence_refusal_message};
pub use refund::{
    AmountError, DemoRefund, DemoRefundCancelForm, DemoRefundForm, RefusalContext,
    amount_error_message, parse_amount, refusal_message,
};
pub use result::{DemoEvent, DemoResultPage, PaymentFormState, RefundFormState, result_page};
pub use saved::{DEMO_SHOPPER, DemoSavedCardForm, SavedCard, saved_card_request_json, saved_cards};
pub use webhooks::{
    DEMO_ENDPOINTS, DemoEndpoint, Inbox, PAY_LINK_HIDDEN, Received, Refused, SHOP_DESTINATION,
    hide_pay_links, verify_signature, verify_standard, webhooks_page, webhooks_page_with,
};

use gateway::domain::money::Currency;

/// One line of the demo cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoItem {
    pub name: &'static str,
    pub sku: &'static str,
    pub quantity: u32,
    /// Per unit, VAT included, EUR cents.
    pub unit_amount: i64,
}

/// The fixed demo cart: the page shows it and the request sends it, so they cannot disagree.
pub const DEMO_ITEMS: [DemoItem; 2] = [
    DemoItem {
        name: "Organic cotton T-shirt",
        sku: "TS-1",
        quantity: 2,
        unit_amount: 1500,
    },
    DemoItem {
        name: "Canvas tote bag",
        sku: "TB-1",
        quantity: 1,
        unit_amount: 1250,
    },
];
/// EUR cents, VAT included.
pub const DEMO_SHIPPING: i64 = 495;
/// The Dutch standard VAT rate, as the API's decimal string.
pub const DEMO_TAX_RATE: &str = "0.21";
pub const DEMO_CURRENCY: &str = "EUR";

/// Σ(unit_amount × quantity) + shipping, in EUR cents.
pub fn demo_total() -> i64 {
    DEMO_ITEMS
        .iter()
        .map(|i| i.unit_amount * i64::from(i.quantity))
        .sum::<i64>()
        + DEMO_SHIPPING
}

/// A test card the simulator knows, and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    pub number: &'static str,
    pub brand: &'static str,
    pub outcome: &'static str,
}

pub const TEST_CARDS: &[TestCard] = &[
    TestCard {
        number: "4111111111111111",
        brand: "Visa",
        outcome: "Your bank asks you to confirm, then it is paid",
    },
    TestCard {
        number: "4761340000000019",
        brand: "Visa",
        outcome: "Your bank asks you to confirm, then it is paid",
    },
    TestCard {
        number: "5500000000000004",
        brand: "Mastercard",
        outcome: "Your bank asks you to confirm, then it is paid",
    },
    TestCard {
        number: "374500000000015",
        brand: "Amex",
        outcome: "Paid at once, no bank check",
    },
    TestCard {
        number: "4012001038443335",
        brand: "Visa",
        outcome: "Paid at once (the card has no bank check)",
    },
    TestCard {
        number: "4917300000000008",
        brand: "Visa",
        outcome: "Under review for a while, then refused",
    },
    TestCard {
        number: "4462000000000003",
        brand: "Visa",
        outcome: "Under review for a while, then paid",
    },
    TestCard {
        number: "4012001037461114",
        brand: "Visa",
        outcome: "Your bank cannot confirm it: declined",
    },
    TestCard {
        number: "374200000000004",
        brand: "Amex",
        outcome: "Your bank cannot confirm it: declined",
    },
    TestCard {
        number: "4012001038488884",
        brand: "Visa",
        outcome: "Confirmed, then declined: not enough money",
    },
    TestCard {
        number: "4242424242424242",
        brand: "Visa",
        outcome: "Declined by the bank straight away",
    },
];

/// The VAT included in a gross amount at 21 %, rounded half up to the cent (display only: the
/// gateway and MSP do their own tax arithmetic).
fn vat_included(gross: i64) -> i64 {
    // gross − gross / 1.21, in integers: gross × 21 / 121, rounded.
    (gross * 21 + 60) / 121
}

/// Minor units as a price: `€47.45`, `$1.00`, `JPY 500`, `KWD 1.250`. Display only.
pub fn format_money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let digits = format_major_units(minor.unsigned_abs(), currency);
    match currency {
        "EUR" => format!("{sign}€{digits}"),
        "USD" => format!("{sign}${digits}"),
        "GBP" => format!("{sign}£{digits}"),
        other => format!("{sign}{other} {digits}"),
    }
}

/// Minor units as a person types them in `currency`'s major units: `2995` → `29.95` (EUR),
/// `500` → `500` (JPY), `1250` → `1.250` (KWD).
pub fn format_major_units(minor: u64, currency: &str) -> String {
    let exponent = Currency::parse(currency).map_or(2, |c| c.exponent());
    if exponent == 0 {
        return minor.to_string();
    }
    let scale = 10u64.pow(u32::from(exponent));
    format!(
        "{}.{:0width$}",
        minor / scale,
        minor % scale,
        width = usize::from(exponent)
    )
}

/// `4111111111111111` → `4111 1111 1111 1111`; Amex's 15 digits as 4-6-5.
fn group_card_number(number: &str) -> String {
    let groups: &[usize] = if number.len() == 15 {
        &[4, 6, 5]
    } else {
        &[4, 4, 4, 4, 4]
    };
    let mut out = String::new();
    let mut rest = number;
    for &g in groups {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(g.min(rest.len()));
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(head);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_from_minor_units() {
        assert_eq!(format_money(4745, "EUR"), "€47.45");
        assert_eq!(format_money(5, "EUR"), "€0.05");
        assert_eq!(format_money(100, "USD"), "$1.00");
        assert_eq!(format_money(500, "JPY"), "JPY 500");
        assert_eq!(format_money(1250, "KWD"), "KWD 1.250");
        assert_eq!(format_money(-5, "EUR"), "-€0.05");
        assert_eq!(format_major_units(2995, "EUR"), "29.95");
        assert_eq!(format_major_units(500, "JPY"), "500");
        assert_eq!(vat_included(121), 21);
        assert_eq!(vat_included(4745), 824);
    }
}
