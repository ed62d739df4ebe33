//! The one conversion between the domain and MSP's wire types (style rule 5): minor units to
//! MSP's excl.-VAT decimal unit prices happens here and nowhere else.

use std::collections::BTreeSet;

use super::{status, wire};
use crate::domain::checkout::CaptureMethod;
use crate::domain::money::{Currency, MinorUnits};
use crate::domain::tax::TaxRate;
use crate::psp::{
    Canceled, CaptureAccepted, CaptureRequest, CreateOrder, PaymentStatus, PspCapture, PspError,
    PspOrder, PspRefund, RefundAccepted, RefundRequest,
};

/// The `merchant_item_id` MSP reserves for the shipping line.
pub const SHIPPING_ITEM_ID: &str = "msp-shipping";

/// Decimals MSP gets for `unit_price`: enough that quantity × price is within a fraction of a
/// minor unit of what the shopper pays.
const MAX_DECIMALS: u32 = 10;
/// What an `f64` carries exactly through JSON (see [`wire::DecimalNumber`]).
const MAX_SIGNIFICANT_DIGITS: u32 = 15;

/// `POST /orders` for a checkout: a direct card order whose `order_id` is the checkout id.
pub fn order_request<'a>(order: &'a CreateOrder<'a>) -> wire::OrderRequest<'a> {
    let checkout = order.checkout;
    let customer = checkout.customer();
    let address = &customer.address;
    let currency = checkout.currency();
    let saved = checkout.saved();

    // MSP requires a description (error 1008).
    let description = checkout.description_or_default(order.id);

    let mut items: Vec<wire::CartItem<'a>> = checkout
        .items()
        .iter()
        .map(|item| wire::CartItem {
            name: &item.name,
            description: None,
            unit_price: unit_price_excl_vat(item.unit_amount, item.tax_rate, currency),
            quantity: item.quantity,
            merchant_item_id: item.sku.as_deref(),
            tax_table_selector: item.tax_rate.as_decimal(),
        })
        .collect();
    if let Some(shipping) = checkout.shipping_amount() {
        items.push(wire::CartItem {
            name: "Shipping",
            description: None,
            unit_price: unit_price_excl_vat(shipping, checkout.shipping_tax_rate(), currency),
            quantity: 1,
            merchant_item_id: Some(SHIPPING_ITEM_ID),
            tax_table_selector: checkout.shipping_tax_rate().as_decimal(),
        });
    }

    // One alternate table per distinct rate, named by the rate; items select theirs by name.
    let mut rates: BTreeSet<TaxRate> = checkout.items().iter().map(|i| i.tax_rate).collect();
    if checkout.shipping_amount().is_some() {
        rates.insert(checkout.shipping_tax_rate());
    }
    let alternate = rates
        .into_iter()
        .map(|rate| wire::AlternateTaxTable {
            name: rate.as_decimal(),
            standalone: true,
            rules: vec![wire::TaxRule {
                rate: wire::DecimalNumber::new(rate.as_decimal()),
            }],
        })
        .collect();

    wire::OrderRequest {
        kind: "direct",
        // A saved card's order names the token's scheme (PHP SDK's "use a token"), as MSP's
        // test environment accepts.
        gateway: match saved {
            Some((method, _)) => msp_gateway(&method.card.brand),
            None => "CREDITCARD",
        },
        order_id: order.id.as_str(),
        currency: currency.code().to_owned(),
        amount: checkout.amount().value(),
        description,
        payment_options: wire::PaymentOptions {
            notification_url: order.notification_url.clone(),
            notification_method: order.notification_method.as_str(),
            redirect_url: order.redirect_url.clone(),
            cancel_url: order.cancel_url.clone(),
            close_window: false,
        },
        customer: wire::Customer {
            locale: customer.locale.as_ref().map(|l| l.as_str()),
            ip_address: customer.ip_address.to_string(),
            first_name: customer.first_name.as_deref(),
            last_name: customer.last_name.as_deref(),
            address1: address.line1.as_deref(),
            house_number: address.house_number.as_deref(),
            zip_code: address.zip_code.as_deref(),
            city: address.city.as_deref(),
            country: address.country.as_str(),
            phone: customer.phone.as_deref(),
            email: customer.email.as_str(),
            user_agent: customer.user_agent.as_deref(),
            reference: saved
                .map(|(method, _)| method.customer_reference.as_str())
                .or_else(|| checkout.customer_reference().map(|r| r.as_str())),
            browser: customer.browser.as_ref().map(|b| wire::Browser {
                javascript_enabled: b.javascript_enabled,
                java_enabled: b.java_enabled,
                cookies_enabled: b.cookies_enabled,
                language: b.language.as_deref(),
                screen_color_depth: b.screen_color_depth,
                screen_height: b.screen_height,
                screen_width: b.screen_width,
                time_zone: b.time_zone,
                user_agent: b.user_agent.as_deref(),
                platform: b.platform.as_deref(),
            }),
        },
        delivery: wire::Delivery {
            first_name: customer.first_name.as_deref(),
            last_name: customer.last_name.as_deref(),
            address1: address.line1.as_deref(),
            house_number: address.house_number.as_deref(),
            zip_code: address.zip_code.as_deref(),
            city: address.city.as_deref(),
            country: address.country.as_str(),
            phone: customer.phone.as_deref(),
            email: customer.email.as_str(),
        },
        gateway_info: checkout.card().map(|card| wire::GatewayInfo {
            card_number: card.number.expose_number(),
            card_holder_name: card.holder_name.as_deref(),
            card_expiry_date: card.expiry.yymm(),
            card_cvc: card.cvc.expose(),
        }),
        shopping_cart: wire::ShoppingCart { items },
        checkout_options: wire::CheckoutOptions {
            tax_tables: wire::TaxTables {
                default: wire::DefaultTaxTable {
                    shipping_taxed: true,
                    rate: wire::DecimalNumber::new(checkout.shipping_tax_rate().as_decimal()),
                },
                alternate,
            },
        },
        capture: match checkout.capture_method() {
            CaptureMethod::Automatic => None,
            CaptureMethod::Manual => Some("manual"),
        },
        recurring_model: saved
            .map(|(method, _)| method.usage)
            .or(checkout.save_card())
            .map(|u| u.msp_model()),
        recurring_id: saved.map(|(_, token)| token.expose()),
    }
}

/// MSP's gateway code for a card brand as the gateway names it.
fn msp_gateway(brand: &str) -> &'static str {
    match brand {
        "visa" => "VISA",
        "mastercard" => "MASTERCARD",
        "amex" => "AMEX",
        "maestro" => "MAESTRO",
        _ => "CREDITCARD",
    }
}

/// A VAT-inclusive amount in minor units as MSP's `unit_price`: major units excluding VAT,
/// `amount / (1 + rate) / 10^exponent`, rounded half up to at most 10 decimals (fewer for
/// amounts so large that 15 significant digits would not hold 10), trailing zeros dropped.
/// Exact integer arithmetic throughout: 1500 EUR cents at 21 % → `12.3966942149`.
pub fn unit_price_excl_vat(
    amount: MinorUnits,
    rate: TaxRate,
    currency: Currency,
) -> wire::DecimalNumber {
    // MinorUnits is never negative; the widening keeps every product below u128::MAX:
    // 9.3e18 × 1e6 (rate denominator) × 1e10 (decimals) ≈ 9.3e34 < 3.4e38.
    let amount = u128::from(amount.value().unsigned_abs());
    let numerator = amount * u128::from(rate.denominator());
    let denominator = u128::from(rate.denominator() + rate.numerator())
        * 10u128.pow(u32::from(currency.exponent()));

    let integer_digits = match numerator / denominator {
        0 => 0,
        n => n.ilog10() + 1,
    };
    let decimals = MAX_DECIMALS.min(MAX_SIGNIFICANT_DIGITS.saturating_sub(integer_digits));
    let scale = 10u128.pow(decimals);
    let scaled = (numerator * scale + denominator / 2) / denominator;

    let int_part = scaled / scale;
    let frac_part = scaled % scale;
    let text = if decimals == 0 {
        int_part.to_string()
    } else {
        let frac = format!("{frac_part:0width$}", width = decimals as usize);
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            int_part.to_string()
        } else {
            format!("{int_part}.{frac}")
        }
    };
    wire::DecimalNumber::new(text)
}

/// `POST /orders/{id}/refunds` for a refund. An amount below one minor unit is refused here and
/// never sent: MSP reads 0 (or no amount) as "refund everything".
pub fn refund_request<'a>(
    refund: &'a RefundRequest<'a>,
) -> Result<wire::RefundRequest<'a>, PspError> {
    Ok(wire::RefundRequest {
        currency: refund.currency,
        amount: sendable_amount(
            refund.amount,
            "a refund",
            ": MultiSafepay would refund the whole order",
        )?,
        refund_order_id: refund.refund_order_id,
        description: refund.description,
    })
}

/// `PATCH /orders/{id}/refunds/{refund_id}` that cancels a refund MSP has not sent yet.
pub fn refund_void() -> wire::RefundUpdate {
    wire::RefundUpdate { status: "void" }
}

/// `PATCH /orders/{id}` that cancels an order that is not finished.
pub fn order_cancel() -> wire::OrderCancel {
    wire::OrderCancel {
        status: "cancelled",
        exclude_order: true,
    }
}

/// `PATCH /capture/{id}` that cancels an authorisation not captured yet.
pub fn authorization_cancel(reason: Option<&str>) -> wire::AuthorizationCancel<'_> {
    wire::AuthorizationCancel {
        status: "cancelled",
        reason,
    }
}

/// What MSP's order shows once MSP has agreed to cancel it or void its authorisation.
pub fn canceled() -> Canceled {
    Canceled {
        status_text: status::CANCELED_ORDER_STATUS.to_owned(),
    }
}

/// MSP's answer to an accepted refund.
pub fn refund_accepted(created: wire::RefundCreated) -> RefundAccepted {
    RefundAccepted {
        transaction_id: created.refund_id.filter(|id| !id.is_empty()),
    }
}

/// `POST /orders/{id}/capture` for a capture; the new order is `completed` at once. An amount
/// below one minor unit is refused here and never sent.
pub fn capture_request<'a>(
    capture: &'a CaptureRequest<'a>,
) -> Result<wire::CaptureRequest<'a>, PspError> {
    Ok(wire::CaptureRequest {
        amount: sendable_amount(
            capture.amount,
            "a capture",
            ": MultiSafepay reads no amount as the whole authorisation",
        )?,
        new_order_id: capture.new_order_id,
        new_order_status: "completed",
    })
}

/// `amount` when it is one minor unit or more; less is refused, `what` (`a refund`) naming the
/// request and `why` (appended) what it would have done.
fn sendable_amount(amount: i64, what: &str, why: &str) -> Result<i64, PspError> {
    if amount < 1 {
        return Err(PspError::unexpected(format!(
            "{what} of {amount} minor units cannot be sent{why}"
        )));
    }
    Ok(amount)
}

/// MSP's answer to an accepted capture.
pub fn capture_accepted(captured: wire::Captured) -> CaptureAccepted {
    CaptureAccepted {
        transaction_id: captured.transaction_id.filter(|id| !id.is_empty()),
        order_id: captured.order_id.filter(|id| !id.is_empty()),
    }
}

/// MSP's order object as the flows see it.
pub fn psp_order(order: wire::Order) -> Result<PspOrder, PspError> {
    let order_id = order
        .order_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| PspError::unexpected("the order object has no order_id"))?;
    let status_text = order.status.unwrap_or_default();
    let payment_status = status::payment_status(&status_text);
    let authorized_only = status::authorized_only(
        &status_text,
        order.financial_status.as_deref().unwrap_or_default(),
    );
    let reason_code = order.reason_code.unwrap_or_default();
    let failure = (payment_status == PaymentStatus::Declined).then(|| {
        status::failure_for_reason(&reason_code, order.reason.as_deref().unwrap_or_default())
    });
    let form_html = order
        .customer_verification
        .and_then(|v| v.html)
        .filter(|html| !html.trim().is_empty());
    let mut refunds = Vec::new();
    let mut captures: Vec<wire::CaptureTransaction> = Vec::new();
    // MSP's docs spell a charged-back order's status both ways, and also show it as `void`
    // with a chargeback entry; the flows decide what a chargeback means.
    let mut charged_back = payment_status == PaymentStatus::ChargedBack;
    let mut chargebacks = Vec::new();
    let mut reversals = 0;
    for (index, entry) in order.related_transactions.into_iter().enumerate() {
        match entry {
            wire::Entry::Read(wire::RelatedTransaction::Refund(refund)) => {
                refunds.push(psp_refund(refund));
            }
            wire::Entry::Read(wire::RelatedTransaction::Capture(capture)) => {
                captures.push(capture);
            }
            wire::Entry::Read(wire::RelatedTransaction::Chargeback(chargeback)) => {
                charged_back = true;
                chargebacks.extend(seen_chargeback(chargeback));
            }
            wire::Entry::Read(wire::RelatedTransaction::ReverseChargeback) => reversals += 1,
            wire::Entry::Read(wire::RelatedTransaction::Other) => {}
            wire::Entry::Unreadable(why) => tracing::warn!(
                order_id = %order_id,
                related_transaction = index,
                error.message = %why,
                "skipped an unreadable entry of the order's related_transactions"
            ),
        }
    }
    // The first `reversals` chargebacks were reversed: the merchant won them.
    for chargeback in chargebacks.iter_mut().take(reversals) {
        chargeback.reversed = true;
    }
    let capture_expiry = order
        .payment_details
        .as_ref()
        .and_then(|d| d.capture_expiry.as_deref())
        .and_then(super::msp_time::parse);
    let (capture_remain, recurring_id) = match order.payment_details {
        Some(d) => (
            d.capture_remain,
            d.recurring_id
                .and_then(crate::domain::payment_method::MspToken::new),
        ),
        None => (None, None),
    };
    let captured = psp_capture(
        &order_id,
        captures,
        CollectedAuthorisation {
            collected: !authorized_only
                && matches!(
                    payment_status,
                    PaymentStatus::Succeeded
                        | PaymentStatus::PartiallyRefunded
                        | PaymentStatus::Refunded
                ),
            amount: order.amount,
            capture_remain,
        },
    );
    Ok(PspOrder {
        captured,
        capture_remain: capture_remain.filter(|r| *r >= 0),
        order_id,
        transaction_id: order.transaction_id.filter(|t| !t.is_empty()),
        status: payment_status,
        status_text,
        reason_code,
        failure,
        payment_url: order.payment_url.filter(|u| !u.trim().is_empty()),
        form_html,
        refunds,
        authorized_only,
        charged_back,
        recurring_id,
        chargebacks,
        capture_expiry,
    })
}

/// A chargeback entry as the domain sees it; `None` without a transaction id (it could never
/// be recognised again, so it could not be made a dispute once).
fn seen_chargeback(
    c: wire::ChargebackTransaction,
) -> Option<crate::domain::dispute::SeenChargeback> {
    let transaction_id = c.transaction_id.filter(|t| !t.is_empty())?;
    let dispute = c.dispute.unwrap_or_default();
    Some(crate::domain::dispute::SeenChargeback {
        transaction_id,
        amount: c.amount,
        status: dispute.status.unwrap_or_default(),
        reason_code: dispute.reason_code.unwrap_or_default(),
        reason: dispute.reason_description.unwrap_or_default(),
        respond_by: dispute
            .merchant_response_date
            .as_deref()
            .and_then(super::msp_time::parse),
        reversed: false,
    })
}

/// What an order says of its money, for [`psp_capture`]'s fall-back.
struct CollectedAuthorisation {
    /// The payment is collected (not only authorised, voided or failed).
    collected: bool,
    amount: Option<i64>,
    capture_remain: Option<i64>,
}

/// What was captured of the order: the sum of its `capture` entries that took money (the order
/// holding it is the first entry's `order_id` that is not the order's own), or, when it lists
/// none, a collected authorisation's amount less a `capture_remain` that is not 0 (a 0 says as
/// much of a capture of everything as of the rest being released, so it says nothing).
fn psp_capture(
    order_id: &str,
    captures: Vec<wire::CaptureTransaction>,
    order: CollectedAuthorisation,
) -> Option<PspCapture> {
    let taken: Vec<_> = captures
        .into_iter()
        .filter(|c| status::capture_took_money(c.status.as_deref().unwrap_or_default()))
        .collect();
    if !taken.is_empty() {
        let amount = taken.iter().filter_map(|c| c.amount).sum();
        let held_by = taken
            .into_iter()
            .filter_map(|c| c.order_id)
            .find(|id| !id.is_empty() && id != order_id);
        return Some(PspCapture {
            amount,
            order_id: held_by,
        });
    }
    match (order.collected, order.amount, order.capture_remain) {
        (true, Some(amount), Some(remain)) if remain > 0 && remain < amount => Some(PspCapture {
            amount: amount - remain,
            order_id: None,
        }),
        _ => None,
    }
}

/// One refund of `related_transactions`.
fn psp_refund(refund: wire::RefundTransaction) -> PspRefund {
    let status_text = refund.status.unwrap_or_default();
    PspRefund {
        refund_order_id: refund.refund_order_id.filter(|id| !id.is_empty()),
        transaction_id: refund.transaction_id.filter(|id| !id.is_empty()),
        amount: refund.amount,
        status: status::refund_progress(&status_text),
        status_text,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::configuration::NotificationMethod;
    use crate::domain::checkout::CheckoutId;
    use crate::domain::new_checkout::tests::{CVC, PAN, example};
    use crate::domain::new_checkout::{NewCheckout, NewCheckoutParts};
    use crate::psp::RefundProgress;

    fn price(amount: i64, rate: &str, currency: &str) -> String {
        unit_price_excl_vat(
            MinorUnits::new(amount).unwrap(),
            TaxRate::parse(rate).unwrap(),
            Currency::parse(currency).unwrap(),
        )
        .as_str()
        .to_owned()
    }

    #[test]
    fn unit_prices_exclude_vat_exactly() {
        for (amount, rate, currency, expected) in [
            (1500, "0.21", "EUR", "12.3966942149"),
            (495, "0.21", "EUR", "4.0909090909"),
            (1500, "0", "EUR", "15"),
            (1234, "0", "EUR", "12.34"),
            (121, "0.21", "EUR", "1"),
            (1, "0.21", "EUR", "0.0082644628"),
            (0, "0.21", "EUR", "0"),
            (1000, "1", "EUR", "5"),
            (1999, "0.09", "EUR", "18.3394495413"),
            (1500, "0.1", "JPY", "1363.6363636364"),
            (1500, "0", "JPY", "1500"),
            (1500, "0.21", "KWD", "1.2396694215"),
            (1, "0", "KWD", "0.001"),
            (1000, "0.0825", "USD", "9.2378752887"),
            // Too large for 10 decimals in 15 significant digits: fewer decimals, still exact.
            (123_456_789_012_345, "0", "EUR", "1234567890123.45"),
            (i64::MAX, "0", "EUR", "92233720368547758"),
        ] {
            assert_eq!(
                price(amount, rate, currency),
                expected,
                "{amount} {currency} at {rate}"
            );
        }
    }

    #[test]
    fn unit_prices_go_out_as_the_same_json_number() {
        for (amount, rate, currency) in [
            (1500, "0.21", "EUR"),
            (1, "0.21", "EUR"),
            (1, "1", "KWD"),
            (1500, "0.1", "JPY"),
            (99_999_999, "0.21", "EUR"),
        ] {
            let decimal = unit_price_excl_vat(
                MinorUnits::new(amount).unwrap(),
                TaxRate::parse(rate).unwrap(),
                Currency::parse(currency).unwrap(),
            );
            let text = serde_json::to_string(&decimal).unwrap();
            assert_eq!(
                text.trim_end_matches(".0"),
                decimal.as_str(),
                "{amount} {currency} at {rate}"
            );
        }
    }

    proptest! {
        /// The decimal is the exact quotient rounded to its last digit, and survives JSON.
        #[test]
        fn unit_price_is_the_rounded_exact_quotient(
            amount in 0i64..10_000_000_000, rate_num in 0u32..=100, exp_idx in 0usize..3
        ) {
            let currency = ["JPY", "EUR", "KWD"][exp_idx];
            let rate = TaxRate::parse(&format!("{}", f64::from(rate_num) / 100.0)).unwrap();
            let decimal = unit_price_excl_vat(MinorUnits::new(amount).unwrap(), rate, Currency::parse(currency).unwrap());
            let text = decimal.as_str();
            let decimals = text.split_once('.').map_or(0, |(_, f)| f.len()) as u32;
            prop_assert!(decimals <= MAX_DECIMALS);
            // |text × (1 + r) × 10^exp − amount| ≤ half a unit of the last decimal × (1 + r) × 10^exp.
            let digits: u128 = text.replace('.', "").parse().unwrap();
            let exp = 10u128.pow(Currency::parse(currency).unwrap().exponent().into());
            let lhs = digits * u128::from(rate.denominator() + rate.numerator()) * exp;
            let rhs = u128::try_from(amount).unwrap() * u128::from(rate.denominator()) * 10u128.pow(decimals);
            let slack = u128::from(rate.denominator() + rate.numerator()) * exp;
            prop_assert!(lhs.abs_diff(rhs) * 2 <= slack, "{text}");
            let json = serde_json::to_string(&decimal).unwrap();
            prop_assert_eq!(json.trim_end_matches(".0"), text);
        }
    }

    fn create_order<'a>(id: &'a CheckoutId, checkout: &'a NewCheckout) -> CreateOrder<'a> {
        CreateOrder {
            id,
            checkout,
            notification_url: "https://gw.example/notifications/multisafepay".into(),
            notification_method: NotificationMethod::Post,
            redirect_url: format!("https://gw.example/return/{id}"),
            cancel_url: format!("https://gw.example/cancel/{id}"),
        }
    }

    #[test]
    fn the_full_request_json() {
        let id = CheckoutId::parse("chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b").unwrap();
        let checkout = example();
        let order = create_order(&id, &checkout);
        let body = serde_json::to_value(order_request(&order)).unwrap();
        let expected = json!({
            "type": "direct",
            "gateway": "CREDITCARD",
            "order_id": "chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b",
            "currency": "EUR",
            "amount": 3495,
            "description": "Order 1001 at Example Shop",
            "payment_options": {
                "notification_url": "https://gw.example/notifications/multisafepay",
                "notification_method": "POST",
                "redirect_url": "https://gw.example/return/chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b",
                "cancel_url": "https://gw.example/cancel/chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b",
                "close_window": false
            },
            "customer": {
                "locale": "nl_NL", "ip_address": "203.0.113.7", "first_name": "Jo", "last_name": "Doe",
                "address1": "Kraanspoor", "house_number": "39", "zip_code": "1033SC", "city": "Amsterdam",
                "country": "NL", "phone": "+31201234567", "email": "jo@example.com", "user_agent": "Mozilla/5.0",
                "browser": {"javascript_enabled": true, "java_enabled": false, "cookies_enabled": true,
                            "language": "nl-NL", "screen_color_depth": 24, "screen_height": 1080,
                            "screen_width": 1920, "time_zone": -60}
            },
            "delivery": {
                "first_name": "Jo", "last_name": "Doe", "address1": "Kraanspoor", "house_number": "39",
                "zip_code": "1033SC", "city": "Amsterdam", "country": "NL", "phone": "+31201234567",
                "email": "jo@example.com"
            },
            "gateway_info": {
                "card_number": PAN, "card_holder_name": "Jo Doe", "card_expiry_date": "3012", "card_cvc": CVC
            },
            "shopping_cart": {"items": [
                {"name": "T-shirt", "unit_price": 12.3966942149, "quantity": 2, "merchant_item_id": "TS-1", "tax_table_selector": "0.21"},
                {"name": "Shipping", "unit_price": 4.0909090909, "quantity": 1, "merchant_item_id": "msp-shipping", "tax_table_selector": "0.21"}
            ]},
            "checkout_options": {"tax_tables": {
                "default": {"shipping_taxed": true, "rate": 0.21},
                "alternate": [{"name": "0.21", "standalone": true, "rules": [{"rate": 0.21}]}]
            }}
        });
        assert_eq!(body, expected);
        assert!(body["checkout_options"].get("validate_cart").is_none());
    }

    /// `checkout` with its capture method replaced.
    fn capturing(checkout: &NewCheckout, capture_method: CaptureMethod) -> NewCheckout {
        NewCheckout::new(NewCheckoutParts {
            reference: checkout.reference().map(str::to_owned),
            currency: checkout.currency(),
            items: checkout.items().to_vec(),
            shipping_amount: checkout.shipping_amount(),
            shipping_tax_rate: checkout.shipping_tax_rate(),
            description: checkout.description().map(str::to_owned),
            customer: checkout.customer().clone(),
            payment: checkout.payment().clone(),
            save_card: checkout.save_card(),
            customer_reference: checkout.customer_reference().cloned(),
            return_url: checkout.return_url().cloned(),
            cancel_url: checkout.cancel_url().cloned(),
            metadata: checkout.metadata().clone(),
            capture_method,
        })
        .unwrap()
    }

    #[test]
    fn a_manual_capture_checkout_asks_msp_to_authorise_only() {
        let id = CheckoutId::parse("chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b").unwrap();
        let automatic = example();
        let manual = capturing(&automatic, CaptureMethod::Manual);
        let body = serde_json::to_value(order_request(&create_order(&id, &manual))).unwrap();
        assert_eq!(body["capture"], "manual");
        // Everything else is the same request.
        let mut without = body.as_object().unwrap().clone();
        without.remove("capture");
        let automatic =
            serde_json::to_value(order_request(&create_order(&id, &automatic))).unwrap();
        assert_eq!(serde_json::Value::Object(without), automatic);
        assert!(automatic.get("capture").is_none());
    }

    #[test]
    fn description_falls_back_to_reference_then_id() {
        // Rebuild the example without description (and then without reference) via the parser.
        let id = CheckoutId::parse("chk_0190f5a2c3d47e8f9a0b1c2d3e4f5a6b").unwrap();
        let base = serde_json::to_value(order_request(&create_order(&id, &example()))).unwrap();
        assert_eq!(base["description"], "Order 1001 at Example Shop");

        let req = |v: serde_json::Value| -> NewCheckout {
            crate::api::checkout_request::parse(
                serde_json::from_value(v).unwrap(),
                &[],
                chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            )
            .unwrap()
        };
        let minimal = json!({
            "currency": "JPY",
            "items": [{"name": "Tea", "quantity": 3, "unit_amount": 500, "tax_rate": "0.08"},
                      {"name": "Cup", "quantity": 1, "unit_amount": 1100, "tax_rate": "0.1"}],
            "customer": {"email": "a@b.jp", "ip_address": "2001:db8::1", "address": {"country": "JP"}},
            "card": {"number": "5500000000000004", "exp_month": 1, "exp_year": 2027, "cvc": "321"},
            "return_url": "https://shop.example/r"
        });
        let checkout = req(minimal.clone());
        let body = serde_json::to_value(order_request(&create_order(&id, &checkout))).unwrap();
        assert_eq!(body["description"], format!("Checkout {id}"));
        assert_eq!(body["amount"], 2600);
        assert_eq!(body["customer"]["ip_address"], "2001:db8::1");
        assert!(body["customer"].get("browser").is_none());
        assert!(body["customer"].get("locale").is_none());
        assert_eq!(
            body["payment_options"]["cancel_url"],
            format!("https://gw.example/cancel/{id}")
        );
        // Two rates, two tables; no shipping line when no shipping was given.
        let items = body["shopping_cart"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["unit_price"], json!(462.962962963));
        assert_eq!(items[0]["tax_table_selector"], "0.08");
        assert_eq!(items[1]["unit_price"], json!(1000.0));
        let names: Vec<_> = body["checkout_options"]["tax_tables"]["alternate"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["0.08", "0.1"]);

        let mut with_ref = minimal;
        with_ref["reference"] = json!("order-7");
        let checkout = req(with_ref);
        let body = serde_json::to_value(order_request(&create_order(&id, &checkout))).unwrap();
        assert_eq!(body["description"], "Order order-7");
    }

    #[test]
    fn order_objects_become_psp_orders() {
        let order: wire::Order = serde_json::from_value(json!({
            "order_id": "chk_1", "transaction_id": 4051823, "status": "initialized",
            "reason": "3D Secure Authorization", "reason_code": "",
            "payment_url": "https://pay.example/connect/x",
            "customer_verification": {"type": "form", "html": "<html>form</html>"}
        }))
        .unwrap();
        let o = psp_order(order).unwrap();
        assert_eq!(o.order_id, "chk_1");
        assert_eq!(o.transaction_id.as_deref(), Some("4051823"));
        assert_eq!(o.status, PaymentStatus::AwaitingShopper);
        assert_eq!(
            o.payment_url.as_deref(),
            Some("https://pay.example/connect/x")
        );
        assert_eq!(o.form_html.as_deref(), Some("<html>form</html>"));

        let order: wire::Order = serde_json::from_value(json!({
            "order_id": "chk_1", "status": "declined", "reason_code": 4002,
            "customer_verification": {"type": "form", "html": ""}
        }))
        .unwrap();
        let o = psp_order(order).unwrap();
        assert_eq!(o.form_html, None, "an empty form is no form");
        assert_eq!(o.failure.unwrap().code, "insufficient_funds");

        let no_id: wire::Order = serde_json::from_value(json!({"status": "completed"})).unwrap();
        assert!(matches!(psp_order(no_id), Err(PspError::Unexpected { .. })));
    }

    #[test]
    fn an_authorised_payment_is_completed_with_its_money_still_initialized() {
        let read = |fields: serde_json::Value| {
            let mut order = json!({"order_id": "chk_1", "transaction_id": 4051823});
            order
                .as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            psp_order(serde_json::from_value(order).unwrap()).unwrap()
        };
        let authorised = read(json!({"status": "completed", "financial_status": "initialized"}));
        assert!(authorised.authorized_only);
        assert_eq!(
            authorised.status,
            PaymentStatus::Succeeded,
            "MSP's status stays"
        );
        for fields in [
            json!({"status": "completed", "financial_status": "completed"}),
            json!({"status": "completed"}),
            json!({"status": "completed", "financial_status": null}),
            json!({"status": "initialized", "financial_status": "initialized"}),
            json!({"status": "void", "financial_status": "initialized"}),
            json!({"status": "Completed", "financial_status": "initialized"}),
        ] {
            assert!(!read(fields.clone()).authorized_only, "{fields}");
        }
    }

    #[test]
    fn refund_requests_carry_a_positive_amount_in_minor_units() {
        let mut refund = RefundRequest {
            order_id: "chk_1",
            refund_order_id: "re_1",
            amount: 500,
            currency: "EUR",
            description: Some("Returned T-shirt"),
            requested_at: chrono::DateTime::UNIX_EPOCH,
            same_amount_requested_at: None,
        };
        let body = serde_json::to_value(refund_request(&refund).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"currency": "EUR", "amount": 500, "refund_order_id": "re_1",
                   "description": "Returned T-shirt"})
        );
        refund.description = None;
        let body = serde_json::to_value(refund_request(&refund).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"currency": "EUR", "amount": 500, "refund_order_id": "re_1"})
        );
        for amount in [0, -1] {
            refund.amount = amount;
            assert!(
                matches!(refund_request(&refund), Err(PspError::Unexpected { .. })),
                "{amount}"
            );
        }
    }

    fn read_order(fields: serde_json::Value) -> PspOrder {
        psp_order(serde_json::from_value(fields).unwrap()).unwrap()
    }

    #[test]
    fn captures_are_read_from_related_transactions_and_capture_remain() {
        let captured = |fields| read_order(fields).captured;
        let base = json!({"order_id": "chk_1", "status": "completed", "financial_status": "completed",
                          "amount": 3495, "payment_details": {"capture": "manual", "capture_remain": 0}});
        let with = |extra: serde_json::Value| {
            let mut o = base.clone();
            for (k, v) in extra.as_object().unwrap() {
                o[k] = v.clone();
            }
            o
        };
        // The capture entries, those that took money, added up; the order holding the money.
        let entries = with(json!({"related_transactions": [
            {"type": "capture", "order_id": "chk_1-c", "amount": 3000, "status": "completed"},
            {"type": "capture", "order_id": "chk_1", "amount": "400", "status": "initialized"},
            {"type": "capture", "order_id": "chk_1", "amount": 95, "status": "void"},
            {"type": "refund", "refund_order_id": "re_1", "amount": 100, "status": "completed"}
        ]}));
        assert_eq!(
            captured(entries),
            Some(PspCapture {
                amount: 3400,
                order_id: Some("chk_1-c".into())
            })
        );
        let own_id = with(json!({"related_transactions": [
            {"type": "capture", "order_id": "chk_1", "amount": 3495, "status": "completed"}]}));
        assert_eq!(
            captured(own_id),
            Some(PspCapture {
                amount: 3495,
                order_id: None
            })
        );
        // No entry: a collected authorisation less what remains capturable, when that is not 0.
        let partly = with(json!({"payment_details": {"capture_remain": 495}}));
        assert_eq!(captured(partly).map(|c| c.amount), Some(3000));
        assert_eq!(captured(base.clone()), None, "0 remaining says nothing");
        let authorised = with(json!({"financial_status": "initialized",
                                     "payment_details": {"capture_remain": 3495}}));
        assert_eq!(captured(authorised), None, "only authorised");
        let voided = with(json!({"status": "void", "financial_status": "void",
                                 "payment_details": {"capture_remain": 495}}));
        assert_eq!(captured(voided), None, "not collected");
        // Odd values cost only themselves.
        let odd = with(json!({"amount": "a lot", "payment_details": {"capture_remain": -1}}));
        let o = read_order(odd);
        assert_eq!((o.captured, o.status), (None, PaymentStatus::Succeeded));
    }

    fn with_related(status: &str, related: serde_json::Value) -> PspOrder {
        let order: wire::Order = serde_json::from_value(json!({
            "order_id": "chk_1", "transaction_id": 4051823, "status": status,
            "related_transactions": related
        }))
        .unwrap();
        psp_order(order).unwrap()
    }

    fn refund(
        refund_order_id: &str,
        transaction_id: &str,
        amount: i64,
        status: RefundProgress,
        status_text: &str,
    ) -> PspRefund {
        PspRefund {
            refund_order_id: Some(refund_order_id.into()),
            transaction_id: Some(transaction_id.into()),
            amount: Some(amount),
            status,
            status_text: status_text.into(),
        }
    }

    #[test]
    fn refunds_in_every_status_are_read_from_related_transactions() {
        use RefundProgress as R;
        let o = with_related(
            "partial_refunded",
            json!([
                {"type": "refund", "refund_order_id": "re_1", "transaction_id": 9001, "amount": 500,
                 "currency": "EUR", "status": "reserved", "created": "2026-01-02T10:00:00"},
                {"type": "refund", "refund_order_id": "re_2", "transaction_id": "9002", "amount": "250",
                 "status": "initialized"},
                {"type": "refund", "refund_order_id": "re_3", "transaction_id": 9003, "amount": 100,
                 "status": "completed"},
                {"type": "refund", "refund_order_id": "re_4", "transaction_id": 9004, "amount": 100,
                 "status": "declined"},
                {"type": "refund", "refund_order_id": "re_5", "transaction_id": 9005, "amount": 100,
                 "status": "void"},
                {"type": "refund", "refund_order_id": "re_6", "transaction_id": 9006, "amount": 100,
                 "status": "cancelled"},
                {"type": "refund", "refund_order_id": "re_7", "transaction_id": 9007, "amount": 100,
                 "status": "something-new"},
                {"type": "capture", "transaction_id": 9008, "amount": 3495, "status": "completed"},
                {"type": "reverse-chargeback", "transaction_id": 9009, "status": "completed"}
            ]),
        );
        assert_eq!(
            o.refunds,
            [
                refund("re_1", "9001", 500, R::Pending, "reserved"),
                refund("re_2", "9002", 250, R::Pending, "initialized"),
                refund("re_3", "9003", 100, R::Completed, "completed"),
                refund("re_4", "9004", 100, R::Declined, "declined"),
                refund("re_5", "9005", 100, R::Voided, "void"),
                refund("re_6", "9006", 100, R::Voided, "cancelled"),
                refund("re_7", "9007", 100, R::Unknown, "something-new"),
            ]
        );
        assert_eq!(o.status, PaymentStatus::PartiallyRefunded);
        assert!(!o.charged_back);
    }

    #[test]
    fn a_refund_made_elsewhere_may_lack_ids_amount_and_status() {
        let o = with_related(
            "refunded",
            json!([{"type": "refund", "refund_order_id": "", "transaction_id": null}]),
        );
        assert_eq!(
            o.refunds,
            [PspRefund {
                refund_order_id: None,
                transaction_id: None,
                amount: None,
                status: RefundProgress::Unknown,
                status_text: String::new(),
            }]
        );
    }

    #[test]
    fn a_chargeback_entry_or_status_is_a_chargeback() {
        let o = with_related(
            "void",
            json!([{"type": "chargeback", "transaction_id": 9100, "amount": 3495, "status": "completed"}]),
        );
        assert!(o.charged_back);
        assert_eq!(o.status, PaymentStatus::Canceled, "the status stays MSP's");
        assert!(o.refunds.is_empty());
        for status in ["chargedback", "chargeback"] {
            let o = with_related(status, json!(null));
            assert!(o.charged_back, "{status}");
        }
        // A chargeback entry is one even when its amount is not one MSP should send.
        let o = with_related(
            "void",
            json!([{"type": "chargeback", "amount": 34.95, "dispute": [1]}]),
        );
        assert!(o.charged_back);
    }

    #[test]
    fn no_related_transactions_are_no_refunds() {
        for related in [json!(null), json!([]), json!({})] {
            let o = with_related("completed", related.clone());
            assert!(o.refunds.is_empty() && !o.charged_back, "{related}");
        }
        let absent: wire::Order =
            serde_json::from_value(json!({"order_id": "chk_1", "status": "completed"})).unwrap();
        let o = psp_order(absent).unwrap();
        assert!(o.refunds.is_empty() && !o.charged_back);
    }

    #[test]
    fn a_malformed_entry_is_skipped_and_the_rest_read() {
        let o = with_related(
            "partial_refunded",
            json!([
                "refund",
                {"type": "refund", "refund_order_id": "re_bad", "amount": "5.00", "status": "completed"},
                {"type": "refund", "refund_order_id": "re_neg", "amount": -500, "status": "completed"},
                {"type": "refund", "refund_order_id": "re_frac", "amount": 12.5, "status": "completed"},
                {"type": "refund", "refund_order_id": {"id": 1}, "amount": 500, "status": "completed"},
                {"refund_order_id": "re_untyped", "amount": 500, "status": "completed"},
                {"type": 7},
                {"type": "refund", "refund_order_id": "re_ok", "transaction_id": 9001, "amount": "500",
                 "status": "completed"}
            ]),
        );
        assert_eq!(
            o.refunds,
            [refund(
                "re_ok",
                "9001",
                500,
                RefundProgress::Completed,
                "completed"
            )]
        );
        // A list that is not one is skipped the same way, and the order is still read.
        let o = with_related("completed", json!("none"));
        assert!(o.refunds.is_empty());
        assert_eq!(o.status, PaymentStatus::Succeeded);
    }
}
