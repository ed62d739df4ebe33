//! `POST /v1/checkouts`: the request as JSON spells it, and its one conversion into a
//! [`NewCheckout`]. Every field is optional here so that a missing one becomes a [`FieldError`]
//! naming its `param`, not a serde error; the card number and CVC deserialize straight into
//! secrets so that even this DTO's `Debug` cannot leak them.

use std::net::IpAddr;

use chrono::NaiveDate;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::strict_json::Shape;
use crate::domain::card::{CardBrand, CardExpiry, CardNumber, Cvc, ExpiryError};
use crate::domain::checkout::CaptureMethod;
use crate::domain::customer::{Address, BrowserInfo, Country, Customer, Email, Locale};
use crate::domain::money::{Currency, MinorUnits};
use crate::domain::new_checkout::{
    CardDetails, LineItem, NewCheckout, NewCheckoutParts, PaymentSource, cart_total,
};
use crate::domain::tax::TaxRate;
use crate::domain::text;
use crate::domain::url::{ReturnUrl, ReturnUrlError};
use crate::domain::validation::FieldError;
use crate::errors::ErrorCode;

#[derive(Debug, Default, Deserialize)]
pub struct CheckoutRequest {
    pub reference: Option<String>,
    pub currency: Option<String>,
    pub items: Option<Vec<ItemRequest>>,
    pub shipping_amount: Option<i64>,
    pub shipping_tax_rate: Option<String>,
    /// Optional; when present it must equal the cart total.
    pub amount: Option<i64>,
    pub description: Option<String>,
    pub customer: Option<CustomerRequest>,
    pub card: Option<CardRequest>,
    pub return_url: Option<String>,
    pub cancel_url: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub capture_method: Option<String>,
    /// Saved cards: keep the card for later payments of this kind.
    pub save_card: Option<String>,
    /// Saved cards: pay with this payment method instead of `card`.
    pub payment_method: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ItemRequest {
    pub name: Option<String>,
    pub sku: Option<String>,
    /// Signed so that `0` and `-1` reach the parser and get a `param`.
    pub quantity: Option<i64>,
    pub unit_amount: Option<i64>,
    pub tax_rate: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CustomerRequest {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub address: Option<AddressRequest>,
    pub browser: Option<BrowserRequest>,
    /// The shop's own id for the shopper (saved cards).
    pub reference: Option<String>,
}

/// [`BrowserInfo`] as JSON spells it, with wide integers so that an out-of-range one gets a
/// `param` instead of a serde error.
#[derive(Debug, Default, Deserialize)]
pub struct BrowserRequest {
    pub javascript_enabled: Option<bool>,
    pub java_enabled: Option<bool>,
    pub cookies_enabled: Option<bool>,
    pub language: Option<String>,
    pub screen_width: Option<i64>,
    pub screen_height: Option<i64>,
    pub screen_color_depth: Option<i64>,
    pub time_zone: Option<i64>,
    pub user_agent: Option<String>,
    pub platform: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AddressRequest {
    pub line1: Option<String>,
    pub house_number: Option<String>,
    pub zip_code: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CardRequest {
    /// A secret from the first byte: `Debug` prints `[REDACTED]`.
    pub number: Option<SecretString>,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
    pub cvc: Option<SecretString>,
    pub holder_name: Option<String>,
}

/// The fields `POST /v1/checkouts` knows and their JSON types: anything else is refused before
/// the request is looked at (see [`super::strict_json`]).
pub static SHAPE: Shape = Shape::Object(&[
    ("reference", Shape::String),
    ("currency", Shape::String),
    ("items", Shape::Array(&ITEM_SHAPE)),
    ("shipping_amount", Shape::Integer),
    ("shipping_tax_rate", Shape::String),
    ("amount", Shape::Integer),
    ("description", Shape::String),
    ("customer", CUSTOMER_SHAPE),
    ("card", CARD_SHAPE),
    ("return_url", Shape::String),
    ("cancel_url", Shape::String),
    ("metadata", Shape::FreeObject),
    ("capture_method", Shape::String),
    ("save_card", Shape::String),
    ("payment_method", Shape::String),
]);

static ITEM_SHAPE: Shape = Shape::Object(&[
    ("name", Shape::String),
    ("sku", Shape::String),
    ("quantity", Shape::Integer),
    ("unit_amount", Shape::Integer),
    ("tax_rate", Shape::String),
]);

const CUSTOMER_SHAPE: Shape = Shape::Object(&[
    ("email", Shape::String),
    ("first_name", Shape::String),
    ("last_name", Shape::String),
    ("phone", Shape::String),
    ("locale", Shape::String),
    ("ip_address", Shape::String),
    ("user_agent", Shape::String),
    (
        "address",
        Shape::Object(&[
            ("line1", Shape::String),
            ("house_number", Shape::String),
            ("zip_code", Shape::String),
            ("city", Shape::String),
            ("country", Shape::String),
        ]),
    ),
    (
        "browser",
        Shape::Object(&[
            ("javascript_enabled", Shape::Boolean),
            ("java_enabled", Shape::Boolean),
            ("cookies_enabled", Shape::Boolean),
            ("language", Shape::String),
            ("screen_width", Shape::Integer),
            ("screen_height", Shape::Integer),
            ("screen_color_depth", Shape::Integer),
            ("time_zone", Shape::Integer),
            ("user_agent", Shape::String),
            ("platform", Shape::String),
        ]),
    ),
    ("reference", Shape::String),
]);

const CARD_SHAPE: Shape = Shape::Object(&[
    ("number", Shape::String),
    ("exp_month", Shape::Integer),
    ("exp_year", Shape::Integer),
    ("cvc", Shape::String),
    ("holder_name", Shape::String),
]);

/// Length limits, MSP's where it has one (phone 25, house number 10, zip 10, city 50,
/// description 200), otherwise generous bounds that keep payloads sane.
mod limits {
    pub const REFERENCE: usize = 100;
    pub const DESCRIPTION: usize = 200;
    pub const ITEM_NAME: usize = 200;
    pub const SKU: usize = 50;
    pub const NAME: usize = 100;
    pub const PHONE: usize = 25;
    pub const ADDRESS_LINE: usize = 100;
    pub const HOUSE_NUMBER: usize = 10;
    pub const ZIP_CODE: usize = 10;
    pub const CITY: usize = 50;
    pub const USER_AGENT: usize = 1024;
    pub const BROWSER_TEXT: usize = 256;
    /// The largest amount anywhere in a request: EUR 999,999.99, and far below 2^53 so that
    /// every JavaScript client reads every amount exactly.
    pub const AMOUNT: i64 = 99_999_999;
    pub const METADATA_KEYS: usize = 50;
    pub const METADATA_KEY: usize = 40;
    pub const METADATA_VALUE: usize = 500;
}

/// Converts the request into a [`NewCheckout`]. The first invalid field, in document order, is
/// the error. `allowed_hosts` is `checkout.return_url_hosts`; `today` decides whether a card
/// has expired.
pub fn parse(
    req: CheckoutRequest,
    allowed_hosts: &[String],
    today: NaiveDate,
) -> Result<NewCheckout, FieldError> {
    let reference = optional_text("reference", req.reference, limits::REFERENCE)?;
    let currency = parse_currency(req.currency)?;
    let save_card = super::saved_card_request::save_card(req.save_card.as_deref())?;
    // Saving a card without a charge needs no cart.
    let items = match &req.items {
        None if save_card.is_some() => Vec::new(),
        Some(items) if items.is_empty() && save_card.is_some() => Vec::new(),
        _ => parse_items(req.items)?,
    };
    let shipping_amount = req
        .shipping_amount
        .map(|v| minor_units("shipping_amount", v))
        .transpose()?;
    let shipping_tax_rate = tax_rate("shipping_tax_rate", req.shipping_tax_rate)?;

    let total = cart_total(&items, shipping_amount).map_err(|_| {
        FieldError::new(
            "amount",
            ErrorCode::InvalidAmount,
            "the cart total is too large: split the order",
        )
    })?;
    if let Some(amount) = req.amount {
        minor_units("amount", amount)?;
        if amount != total.value() {
            return Err(FieldError::new(
                "amount",
                ErrorCode::AmountMismatch,
                format!(
                    "`amount` is not what the items and shipping add up to ({total}): send the sum of unit_amount × quantity plus shipping_amount, or leave `amount` out"
                ),
            ));
        }
    }
    if total.value() > limits::AMOUNT {
        return Err(FieldError::new(
            "amount",
            ErrorCode::InvalidAmount,
            format!(
                "the order total is at most {} minor units (EUR 999,999.99): split the order",
                limits::AMOUNT
            ),
        ));
    }
    if total == MinorUnits::ZERO && (save_card.is_none() || req.payment_method.is_some()) {
        return Err(FieldError::new(
            "amount",
            ErrorCode::InvalidAmount,
            "the order total is 0: a card payment needs at least one minor unit",
        ));
    }

    let description = optional_text("description", req.description, limits::DESCRIPTION)?;
    let customer_reference = super::saved_card_request::customer_reference(
        req.customer.as_ref().and_then(|c| c.reference.as_deref()),
        save_card,
        req.payment_method.is_some(),
    )?;
    let customer = parse_customer(req.customer)?;
    let payment = match req.payment_method {
        None => PaymentSource::Card(parse_card(req.card, today)?),
        Some(pm) => super::saved_card_request::payment_method(&pm, req.card.is_some(), save_card)?,
    };
    if let PaymentSource::Card(card) = &payment {
        super::saved_card_request::zero_amount(card, save_card, total)?;
    }
    // A merchant-initiated payment with a saved card may have no shopper to send back; whether
    // this one needs `return_url` is known once the payment method is read.
    let return_url = match (non_empty(req.return_url), &payment) {
        (Some(u), _) => Some(return_url_at("return_url", &u, allowed_hosts)?),
        (None, PaymentSource::Saved { .. }) => None,
        (None, PaymentSource::Card(_)) => return Err(FieldError::missing("return_url")),
    };
    let cancel_url = match non_empty(req.cancel_url) {
        Some(s) => Some(return_url_at("cancel_url", &s, allowed_hosts)?),
        None => return_url.clone(),
    };
    let metadata = parse_metadata(req.metadata)?;
    let capture_method = match &payment {
        PaymentSource::Card(card) => parse_capture_method(req.capture_method, card)?,
        PaymentSource::Saved { .. } => {
            super::saved_card_request::saved_capture_method(req.capture_method.as_deref())?
        }
    };

    NewCheckout::new(NewCheckoutParts {
        reference,
        currency,
        items,
        shipping_amount,
        shipping_tax_rate,
        description,
        customer,
        payment,
        save_card,
        customer_reference,
        return_url,
        cancel_url,
        metadata,
        capture_method,
    })
    // Already summed above with the same arithmetic; kept as an error rather than a panic.
    .map_err(|_| {
        FieldError::new(
            "amount",
            ErrorCode::InvalidAmount,
            "the cart total is too large",
        )
    })
}

/// The merchant's own keys with plain-text string values, within Stripe-like limits (50 keys of
/// at most 40 characters, values of at most 500): metadata is stored for the checkout's life and
/// returned on every read.
pub(crate) fn parse_metadata(
    metadata: Option<serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, FieldError> {
    let invalid = |param: String, message: String| {
        FieldError::new(param, ErrorCode::InvalidMetadata, message)
    };
    let map = match metadata {
        None | Some(serde_json::Value::Null) => return Ok(serde_json::Map::new()),
        Some(serde_json::Value::Object(map)) => map,
        Some(_) => {
            return Err(invalid(
                "metadata".into(),
                "`metadata` is a JSON object of your own keys, such as {\"cart_id\": \"c-77\"}"
                    .into(),
            ));
        }
    };
    if map.len() > limits::METADATA_KEYS {
        return Err(invalid(
            "metadata".into(),
            format!(
                "`metadata` has at most {} keys: keep the rest in your own system",
                limits::METADATA_KEYS
            ),
        ));
    }
    for (key, value) in &map {
        if key.trim().is_empty() || key.chars().count() > limits::METADATA_KEY {
            return Err(invalid(
                "metadata".into(),
                format!(
                    "`metadata` keys are 1 to {} characters long",
                    limits::METADATA_KEY
                ),
            ));
        }
        text::check("metadata", key).map_err(|e| {
            invalid(
                "metadata".into(),
                format!("a `metadata` key breaks the rule for text: {}", e.message),
            )
        })?;
        let param = format!("metadata.{key}");
        let serde_json::Value::String(value) = value else {
            return Err(invalid(
                param.clone(),
                format!(
                    "`{param}` is a string: metadata values are text (send numbers as strings)"
                ),
            ));
        };
        if value.chars().count() > limits::METADATA_VALUE {
            return Err(invalid(
                param.clone(),
                format!(
                    "`{param}` is at most {} characters: shorten it",
                    limits::METADATA_VALUE
                ),
            ));
        }
        text::check(&param, value).map_err(|e| FieldError {
            code: ErrorCode::InvalidMetadata,
            ..e
        })?;
    }
    Ok(map)
}

/// `automatic` (default) or `manual`; MSP captures manually for Visa, Mastercard and Maestro only.
fn parse_capture_method(
    value: Option<String>,
    card: &CardDetails,
) -> Result<CaptureMethod, FieldError> {
    match value.as_deref() {
        None | Some("automatic") => Ok(CaptureMethod::Automatic),
        Some("manual") => {
            if matches!(
                card.number.brand(),
                CardBrand::Visa | CardBrand::Mastercard | CardBrand::Maestro
            ) {
                Ok(CaptureMethod::Manual)
            } else {
                Err(FieldError::new(
                    "capture_method",
                    ErrorCode::InvalidParameter,
                    "`manual` capture works for Visa, Mastercard and Maestro cards only: use `automatic` for this card",
                ))
            }
        }
        Some(_) => Err(FieldError::new(
            "capture_method",
            ErrorCode::InvalidParameter,
            "`capture_method` is `automatic` (the default) or `manual`",
        )),
    }
}

fn parse_currency(currency: Option<String>) -> Result<Currency, FieldError> {
    let code = required("currency", currency)?;
    Currency::parse(&code)
        .map_err(|e| FieldError::new("currency", ErrorCode::InvalidCurrency, e.to_string()))
}

fn parse_items(items: Option<Vec<ItemRequest>>) -> Result<Vec<LineItem>, FieldError> {
    let items = items.ok_or_else(|| FieldError::missing("items"))?;
    if items.is_empty() {
        return Err(FieldError::new(
            "items",
            ErrorCode::InvalidParameter,
            "`items` needs at least one item",
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let p = |field: &str| format!("items[{i}].{field}");
            let name = required_text(&p("name"), item.name, limits::ITEM_NAME)?;
            let sku = optional_text(&p("sku"), item.sku, limits::SKU)?;
            let quantity = item
                .quantity
                .ok_or_else(|| FieldError::missing(p("quantity")))?;
            let quantity = u32::try_from(quantity)
                .ok()
                .filter(|q| *q >= 1)
                .ok_or_else(|| {
                    FieldError::new(
                        p("quantity"),
                        ErrorCode::InvalidQuantity,
                        "`quantity` is a whole number of at least 1",
                    )
                })?;
            let unit_amount = item
                .unit_amount
                .ok_or_else(|| FieldError::missing(p("unit_amount")))?;
            let unit_amount = minor_units(&p("unit_amount"), unit_amount)?;
            if i64::from(quantity).saturating_mul(unit_amount.value()) > limits::AMOUNT {
                return Err(FieldError::new(
                    format!("items[{i}]"),
                    ErrorCode::InvalidAmount,
                    format!(
                        "a line's total (unit_amount × quantity) is at most {} minor units (EUR 999,999.99): split the line",
                        limits::AMOUNT
                    ),
                ));
            }
            let tax_rate = tax_rate(&p("tax_rate"), item.tax_rate)?;
            Ok(LineItem {
                name,
                sku,
                quantity,
                unit_amount,
                tax_rate,
            })
        })
        .collect()
}

fn parse_customer(customer: Option<CustomerRequest>) -> Result<Customer, FieldError> {
    let c = customer.ok_or_else(|| FieldError::missing("customer"))?;
    let email = required("customer.email", c.email)?;
    let email = Email::parse(&email)
        .map_err(|e| FieldError::new("customer.email", ErrorCode::InvalidEmail, e.to_string()))?;
    let first_name = optional_text("customer.first_name", c.first_name, limits::NAME)?;
    let last_name = optional_text("customer.last_name", c.last_name, limits::NAME)?;
    let phone = optional_text("customer.phone", c.phone, limits::PHONE)?;
    let locale = non_empty(c.locale)
        .map(|l| {
            Locale::parse(&l).map_err(|e| {
                FieldError::new("customer.locale", ErrorCode::InvalidLocale, e.to_string())
            })
        })
        .transpose()?;
    let ip = required("customer.ip_address", c.ip_address)?;
    let ip_address: IpAddr = ip.parse().map_err(|_| {
        FieldError::new(
            "customer.ip_address",
            ErrorCode::InvalidIpAddress,
            "send the shopper's IPv4 or IPv6 address, such as 203.0.113.7 (MSP needs it for card fraud checks)",
        )
    })?;
    let user_agent = optional_text("customer.user_agent", c.user_agent, limits::USER_AGENT)?;
    let address = parse_address(c.address)?;
    let browser = c.browser.map(parse_browser).transpose()?;
    Ok(Customer {
        email,
        first_name,
        last_name,
        phone,
        locale,
        ip_address,
        user_agent,
        address,
        browser,
    })
}

fn parse_address(address: Option<AddressRequest>) -> Result<Address, FieldError> {
    let a = address.ok_or_else(|| FieldError::missing("customer.address"))?;
    let line1 = optional_text("customer.address.line1", a.line1, limits::ADDRESS_LINE)?;
    let house_number = optional_text(
        "customer.address.house_number",
        a.house_number,
        limits::HOUSE_NUMBER,
    )?;
    let zip_code = optional_text("customer.address.zip_code", a.zip_code, limits::ZIP_CODE)?;
    let city = optional_text("customer.address.city", a.city, limits::CITY)?;
    let country = required("customer.address.country", a.country)?;
    let country = Country::parse(&country).map_err(|e| {
        FieldError::new(
            "customer.address.country",
            ErrorCode::InvalidCountry,
            e.to_string(),
        )
    })?;
    Ok(Address {
        line1,
        house_number,
        zip_code,
        city,
        country,
    })
}

fn parse_browser(b: BrowserRequest) -> Result<BrowserInfo, FieldError> {
    let text = |field: &str, value: Option<String>, max: usize| {
        optional_text(&format!("customer.browser.{field}"), value, max)
    };
    let number = |field: &str, value: Option<i64>, min: i64, max: i64| {
        value
            .map(|v| {
                if (min..=max).contains(&v) {
                    Ok(v)
                } else {
                    Err(FieldError::new(
                        format!("customer.browser.{field}"),
                        ErrorCode::InvalidParameter,
                        format!("`customer.browser.{field}` is a whole number from {min} to {max}"),
                    ))
                }
            })
            .transpose()
    };
    let pixels = |field: &str, value: Option<i64>| {
        number(field, value, 0, 100_000).map(|v| v.and_then(|v| u32::try_from(v).ok()))
    };
    Ok(BrowserInfo {
        javascript_enabled: b.javascript_enabled,
        java_enabled: b.java_enabled,
        cookies_enabled: b.cookies_enabled,
        language: text("language", b.language, limits::BROWSER_TEXT)?,
        screen_width: pixels("screen_width", b.screen_width)?,
        screen_height: pixels("screen_height", b.screen_height)?,
        screen_color_depth: pixels("screen_color_depth", b.screen_color_depth)?,
        // Minutes from UTC: the world's offsets lie within ±14 hours.
        time_zone: number("time_zone", b.time_zone, -900, 900)?.and_then(|v| i32::try_from(v).ok()),
        user_agent: text("user_agent", b.user_agent, limits::USER_AGENT)?,
        platform: text("platform", b.platform, limits::BROWSER_TEXT)?,
    })
}

fn parse_card(card: Option<CardRequest>, today: NaiveDate) -> Result<CardDetails, FieldError> {
    let c = card.ok_or_else(|| FieldError::missing("card"))?;
    let number = c.number.ok_or_else(|| FieldError::missing("card.number"))?;
    let number = CardNumber::parse(number.expose_secret())
        .map_err(|e| FieldError::new("card.number", ErrorCode::InvalidCardNumber, e.to_string()))?;
    let month = c
        .exp_month
        .ok_or_else(|| FieldError::missing("card.exp_month"))?;
    let year = c
        .exp_year
        .ok_or_else(|| FieldError::missing("card.exp_year"))?;
    let expiry = CardExpiry::parse(month, year, today).map_err(|e| {
        let param = match e {
            ExpiryError::Month => "card.exp_month",
            ExpiryError::Year => "card.exp_year",
            // This year, the month is what has passed; otherwise the year.
            ExpiryError::Expired if i64::from(chrono::Datelike::year(&today)) == year => {
                "card.exp_month"
            }
            ExpiryError::Expired => "card.exp_year",
        };
        FieldError::new(param, ErrorCode::InvalidExpiry, e.to_string())
    })?;
    let cvc = c.cvc.ok_or_else(|| FieldError::missing("card.cvc"))?;
    let cvc = Cvc::parse(cvc.expose_secret(), number.brand())
        .map_err(|e| FieldError::new("card.cvc", ErrorCode::InvalidCvc, e.to_string()))?;
    let holder_name = optional_text("card.holder_name", c.holder_name, limits::NAME)?;
    Ok(CardDetails {
        number,
        expiry,
        cvc,
        holder_name,
    })
}

fn return_url_at(
    param: &str,
    value: &str,
    allowed_hosts: &[String],
) -> Result<ReturnUrl, FieldError> {
    ReturnUrl::parse(value, allowed_hosts).map_err(|e| {
        let code = match e {
            ReturnUrlError::HostNotAllowed(_) => ErrorCode::UrlHostNotAllowed,
            ReturnUrlError::Invalid | ReturnUrlError::HttpsRequired => ErrorCode::InvalidUrl,
        };
        FieldError::new(param, code, e.to_string())
    })
}

fn minor_units(param: &str, value: i64) -> Result<MinorUnits, FieldError> {
    if value > limits::AMOUNT {
        return Err(FieldError::new(
            param,
            ErrorCode::InvalidAmount,
            format!(
                "`{param}` is at most {} minor units (EUR 999,999.99)",
                limits::AMOUNT
            ),
        ));
    }
    MinorUnits::new(value).map_err(|_| {
        FieldError::new(
            param,
            ErrorCode::InvalidAmount,
            format!("`{param}` is an integer number of minor units (EUR 12.34 = 1234), 0 or more"),
        )
    })
}

/// A missing tax rate is 0 (its default is "0").
fn tax_rate(param: &str, value: Option<String>) -> Result<TaxRate, FieldError> {
    match non_empty(value) {
        None => Ok(TaxRate::ZERO),
        Some(s) => TaxRate::parse(&s)
            .map_err(|e| FieldError::new(param, ErrorCode::InvalidTaxRate, e.to_string())),
    }
}

/// Storefronts often send `""` for "not given": treat it as absent.
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}

fn required(param: &str, value: Option<String>) -> Result<String, FieldError> {
    non_empty(value).ok_or_else(|| FieldError::missing(param))
}

fn required_text(param: &str, value: Option<String>, max: usize) -> Result<String, FieldError> {
    optional_text(param, value, max)?.ok_or_else(|| FieldError::missing(param))
}

/// Free text: the one plain-text rule of [`text::plain_text`], within `max` characters.
fn optional_text(
    param: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    text::plain_text(param, value, max)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    /// The merchant API contract's example request.
    fn example() -> Value {
        json!({
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
          "card": {"number": "4111111111111111", "exp_month": 12, "exp_year": 2030, "cvc": "123", "holder_name": "Jo Doe"},
          "return_url": "https://shop.example/checkout/return",
          "cancel_url": "https://shop.example/cart",
          "metadata": {"cart_id": "c-77"}
        })
    }

    fn parse_json(v: Value, hosts: &[String]) -> Result<NewCheckout, FieldError> {
        let req: CheckoutRequest = serde_json::from_value(v).expect("the DTO accepts the shape");
        parse(req, hosts, today())
    }

    /// Sets (or, with `None`, removes) the field at a dotted path such as `items.0.quantity`.
    fn with(mut v: Value, path: &str, value: Option<Value>) -> Value {
        let parts: Vec<&str> = path.split('.').collect();
        let (last, parents) = parts.split_last().unwrap();
        let mut node = &mut v;
        for p in parents {
            node = match p.parse::<usize>() {
                Ok(i) => &mut node[i],
                Err(_) => &mut node[*p],
            };
        }
        let obj = node.as_object_mut().unwrap();
        match value {
            Some(value) => obj.insert(last.to_string(), value),
            None => obj.remove(*last),
        };
        v
    }

    #[test]
    fn the_design_example_parses() {
        let c = parse_json(example(), &[]).unwrap();
        assert_eq!(c.amount().value(), 3495);
        assert_eq!(c.currency().code(), "EUR");
        assert_eq!(c.reference(), Some("order-1001"));
        assert_eq!(c.items()[0].quantity, 2);
        assert_eq!(c.items()[0].tax_rate.as_decimal(), "0.21");
        assert_eq!(c.shipping_amount().map(MinorUnits::value), Some(495));
        assert_eq!(c.shipping_tax_rate(), TaxRate::ZERO);
        assert_eq!(c.customer().address.country.as_str(), "NL");
        assert_eq!(c.customer().ip_address.to_string(), "203.0.113.7");
        assert_eq!(
            c.customer().browser.as_ref().unwrap().screen_width,
            Some(1920)
        );
        assert_eq!(c.card().unwrap().expiry.yymm(), "3012");
        assert_eq!(c.card().unwrap().cvc.expose(), "123");
        assert_eq!(
            c.cancel_url().unwrap().as_str(),
            "https://shop.example/cart"
        );
        assert_eq!(c.metadata()["cart_id"], "c-77");
    }

    #[test]
    fn defaults_amount_optional_cancel_url_is_return_url_tax_rate_zero() {
        let v = with(example(), "amount", None);
        let v = with(v, "cancel_url", None);
        let v = with(v, "items.0.tax_rate", None);
        let c = parse_json(v, &[]).unwrap();
        assert_eq!(c.amount().value(), 3495);
        assert_eq!(c.cancel_url(), c.return_url());
        assert_eq!(c.items()[0].tax_rate, TaxRate::ZERO);
    }

    #[test]
    fn spaced_card_number_and_listed_http_host_are_accepted() {
        let v = with(example(), "card.number", Some(json!("4111 1111 1111 1111")));
        let v = with(v, "return_url", Some(json!("http://localhost:3000/done")));
        let v = with(v, "cancel_url", None);
        let c = parse_json(v, &["localhost".to_string()]).unwrap();
        assert_eq!(c.card().unwrap().number.last4(), "1111");
        assert_eq!(
            c.cancel_url().unwrap().as_str(),
            "http://localhost:3000/done"
        );
    }

    #[test]
    fn each_bad_field_is_named_with_its_code() {
        let amex = |v: Value| with(v, "card.number", Some(json!("374500000000015")));
        #[rustfmt::skip]
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            ("reference too long", with(example(), "reference", Some(json!("r".repeat(101)))), "reference", "invalid_parameter"),
            ("no currency", with(example(), "currency", None), "currency", "parameter_missing"),
            ("null currency", with(example(), "currency", Some(Value::Null)), "currency", "parameter_missing"),
            ("unknown currency", with(example(), "currency", Some(json!("XYZ"))), "currency", "invalid_currency"),
            ("lowercase currency", with(example(), "currency", Some(json!("eur"))), "currency", "invalid_currency"),
            ("no items", with(example(), "items", None), "items", "parameter_missing"),
            ("empty items", with(example(), "items", Some(json!([]))), "items", "invalid_parameter"),
            ("item without name", with(example(), "items.0.name", None), "items[0].name", "parameter_missing"),
            ("item without quantity", with(example(), "items.0.quantity", None), "items[0].quantity", "parameter_missing"),
            ("zero quantity", with(example(), "items.0.quantity", Some(json!(0))), "items[0].quantity", "invalid_quantity"),
            ("negative quantity", with(example(), "items.0.quantity", Some(json!(-2))), "items[0].quantity", "invalid_quantity"),
            ("item without unit_amount", with(example(), "items.0.unit_amount", None), "items[0].unit_amount", "parameter_missing"),
            ("negative unit_amount", with(example(), "items.0.unit_amount", Some(json!(-1))), "items[0].unit_amount", "invalid_amount"),
            ("bad tax rate", with(example(), "items.0.tax_rate", Some(json!("21%"))), "items[0].tax_rate", "invalid_tax_rate"),
            ("tax rate above 1", with(example(), "items.0.tax_rate", Some(json!("1.5"))), "items[0].tax_rate", "invalid_tax_rate"),
            ("negative shipping", with(example(), "shipping_amount", Some(json!(-5))), "shipping_amount", "invalid_amount"),
            ("bad shipping tax", with(example(), "shipping_tax_rate", Some(json!("abc"))), "shipping_tax_rate", "invalid_tax_rate"),
            ("amount mismatch", with(example(), "amount", Some(json!(3494))), "amount", "amount_mismatch"),
            ("negative amount", with(example(), "amount", Some(json!(-3495))), "amount", "invalid_amount"),
            ("unit_amount over the limit", with(example(), "items.0.unit_amount", Some(json!(100_000_000))), "items[0].unit_amount", "invalid_amount"),
            ("unit_amount past 2^53", with(example(), "items.0.unit_amount", Some(json!(i64::MAX))), "items[0].unit_amount", "invalid_amount"),
            ("shipping over the limit", with(example(), "shipping_amount", Some(json!(100_000_000))), "shipping_amount", "invalid_amount"),
            ("line total over the limit", with(with(example(), "items.0.unit_amount", Some(json!(99_999_999))), "amount", None), "items[0]", "invalid_amount"),
            ("total over the limit", with(with(with(example(), "items.0.unit_amount", Some(json!(49_999_999))), "shipping_amount", Some(json!(99_999))), "amount", None), "amount", "invalid_amount"),
            ("reference with markup", with(example(), "reference", Some(json!("<img src=x onerror=alert(1)>"))), "reference", "invalid_parameter"),
            ("reference with a card number", with(example(), "reference", Some(json!("4111 1111 1111 1111"))), "reference", "invalid_parameter"),
            ("item name with a NUL", with(example(), "items.0.name", Some(json!("T\u{0}shirt"))), "items[0].name", "invalid_parameter"),
            ("holder name with a bidi override", with(example(), "card.holder_name", Some(json!("Jo\u{202E}eoD"))), "card.holder_name", "invalid_parameter"),
            ("first name with markup", with(example(), "customer.first_name", Some(json!("<b>Jo</b>"))), "customer.first_name", "invalid_parameter"),
            ("address line with a BEL", with(example(), "customer.address.line1", Some(json!("Kraan\u{7}spoor"))), "customer.address.line1", "invalid_parameter"),
            ("negative screen width", with(example(), "customer.browser.screen_width", Some(json!(-1))), "customer.browser.screen_width", "invalid_parameter"),
            ("time zone off the planet", with(example(), "customer.browser.time_zone", Some(json!(100_000))), "customer.browser.time_zone", "invalid_parameter"),
            ("metadata value not a string", with(example(), "metadata", Some(json!({"n": 1}))), "metadata.n", "invalid_metadata"),
            ("metadata value too long", with(example(), "metadata", Some(json!({"k": "v".repeat(501)}))), "metadata.k", "invalid_metadata"),
            ("metadata value with a card number", with(example(), "metadata", Some(json!({"note": "5500000000000004"}))), "metadata.note", "invalid_metadata"),
            ("metadata key too long", with(example(), "metadata", Some(json!({"k".repeat(41): "v"}))), "metadata", "invalid_metadata"),
            ("metadata with 51 keys", with(example(), "metadata", Some(Value::Object((0..51).map(|i| (format!("k{i}"), json!("v"))).collect()))), "metadata", "invalid_metadata"),
            ("zero total", with(with(with(example(), "items.0.unit_amount", Some(json!(0))), "shipping_amount", None), "amount", None), "amount", "invalid_amount"),
            ("html description", with(example(), "description", Some(json!("<b>hi</b>"))), "description", "invalid_parameter"),
            ("no customer", with(example(), "customer", None), "customer", "parameter_missing"),
            ("no email", with(example(), "customer.email", None), "customer.email", "parameter_missing"),
            ("bad email", with(example(), "customer.email", Some(json!("jo@"))), "customer.email", "invalid_email"),
            ("long phone", with(example(), "customer.phone", Some(json!("+3".repeat(13)))), "customer.phone", "invalid_parameter"),
            ("bad locale", with(example(), "customer.locale", Some(json!("nl-NL"))), "customer.locale", "invalid_locale"),
            ("no ip", with(example(), "customer.ip_address", None), "customer.ip_address", "parameter_missing"),
            ("bad ip", with(example(), "customer.ip_address", Some(json!("203.0.113.300"))), "customer.ip_address", "invalid_ip_address"),
            ("no address", with(example(), "customer.address", None), "customer.address", "parameter_missing"),
            ("long zip", with(example(), "customer.address.zip_code", Some(json!("12345678901"))), "customer.address.zip_code", "invalid_parameter"),
            ("no country", with(example(), "customer.address.country", None), "customer.address.country", "parameter_missing"),
            ("bad country", with(example(), "customer.address.country", Some(json!("UK"))), "customer.address.country", "invalid_country"),
            ("long browser language", with(example(), "customer.browser.language", Some(json!("x".repeat(300)))), "customer.browser.language", "invalid_parameter"),
            ("no card", with(example(), "card", None), "card", "parameter_missing"),
            ("no card number", with(example(), "card.number", None), "card.number", "parameter_missing"),
            ("luhn", with(example(), "card.number", Some(json!("4111111111111112"))), "card.number", "invalid_card_number"),
            ("short card", with(example(), "card.number", Some(json!("4111"))), "card.number", "invalid_card_number"),
            ("no exp_month", with(example(), "card.exp_month", None), "card.exp_month", "parameter_missing"),
            ("month 13", with(example(), "card.exp_month", Some(json!(13))), "card.exp_month", "invalid_expiry"),
            ("no exp_year", with(example(), "card.exp_year", None), "card.exp_year", "parameter_missing"),
            ("two-digit year", with(example(), "card.exp_year", Some(json!(30))), "card.exp_year", "invalid_expiry"),
            ("expired last year", with(example(), "card.exp_year", Some(json!(2025))), "card.exp_year", "invalid_expiry"),
            ("expired last month", with(with(example(), "card.exp_year", Some(json!(2026))), "card.exp_month", Some(json!(10))), "card.exp_month", "invalid_expiry"),
            ("no cvc", with(example(), "card.cvc", None), "card.cvc", "parameter_missing"),
            ("4-digit cvc on visa", with(example(), "card.cvc", Some(json!("1234"))), "card.cvc", "invalid_cvc"),
            ("3-digit cvc on amex", amex(example()), "card.cvc", "invalid_cvc"),
            ("no return_url", with(example(), "return_url", None), "return_url", "parameter_missing"),
            ("relative return_url", with(example(), "return_url", Some(json!("/done"))), "return_url", "invalid_url"),
            ("http return_url without list", with(example(), "return_url", Some(json!("http://shop.example/r"))), "return_url", "invalid_url"),
            ("bad cancel_url", with(example(), "cancel_url", Some(json!("javascript:alert(1)"))), "cancel_url", "invalid_url"),
            ("metadata not an object", with(example(), "metadata", Some(json!([1, 2]))), "metadata", "invalid_metadata"),
        ];
        for (what, body, param, code) in cases {
            let err = parse_json(body, &[]).expect_err(what);
            assert_eq!(
                (err.param.as_str(), err.code.as_str()),
                (param, code),
                "{what}: {err}"
            );
            assert!(!err.message.is_empty(), "{what}");
        }
    }

    #[test]
    fn hosts_outside_the_allow_list_are_named() {
        let hosts = vec!["shop.example".to_string()];
        let v = with(
            example(),
            "cancel_url",
            Some(json!("https://evil.example/")),
        );
        let err = parse_json(v, &hosts).unwrap_err();
        assert_eq!(
            (err.param.as_str(), err.code.as_str()),
            ("cancel_url", "url_host_not_allowed")
        );
        let v = with(
            example(),
            "return_url",
            Some(json!("https://evil.example/")),
        );
        let err = parse_json(v, &hosts).unwrap_err();
        assert_eq!(
            (err.param.as_str(), err.code.as_str()),
            ("return_url", "url_host_not_allowed")
        );
    }

    #[test]
    fn first_error_in_document_order_wins() {
        let v = with(example(), "currency", Some(json!("XYZ")));
        let v = with(v, "card.number", Some(json!("1")));
        let v = with(v, "return_url", None);
        assert_eq!(parse_json(v, &[]).unwrap_err().param, "currency");
        let v = with(example(), "card.cvc", Some(json!("1")));
        let v = with(v, "customer.email", Some(json!("x")));
        assert_eq!(parse_json(v, &[]).unwrap_err().param, "customer.email");
    }

    #[test]
    fn the_dto_debug_shows_neither_pan_nor_cvc() {
        let v = with(example(), "card.cvc", Some(json!("987")));
        let req: CheckoutRequest = serde_json::from_value(v).unwrap();
        let shown = format!("{req:?}");
        assert!(!shown.contains("4111111111111111"), "{shown}");
        assert!(!shown.contains("987"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
        let parsed = parse(req, &[], today()).unwrap();
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("4111111111111111"), "{shown}");
        assert!(!shown.contains("987"), "{shown}");
    }

    /// Whether `text` holds `digits` as a number of its own (not inside a longer one, where a
    /// three-digit CVC would turn up by chance).
    fn repeats(text: &str, digits: &str) -> bool {
        text.match_indices(digits).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + digits.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    }

    /// Every path of the example body that holds a value, as `with` spells them.
    const PATHS: &[&str] = &[
        "reference",
        "currency",
        "items",
        "items.0.name",
        "items.0.sku",
        "items.0.quantity",
        "items.0.unit_amount",
        "items.0.tax_rate",
        "shipping_amount",
        "amount",
        "description",
        "customer",
        "customer.email",
        "customer.first_name",
        "customer.last_name",
        "customer.phone",
        "customer.locale",
        "customer.ip_address",
        "customer.user_agent",
        "customer.address",
        "customer.address.line1",
        "customer.address.city",
        "customer.address.zip_code",
        "customer.address.country",
        "customer.browser",
        "customer.browser.language",
        "customer.browser.screen_width",
        "card",
        "card.number",
        "card.exp_month",
        "card.exp_year",
        "card.cvc",
        "card.holder_name",
        "return_url",
        "cancel_url",
        "metadata",
        "metadata.cart_id",
    ];

    proptest::proptest! {
        /// The merchant API contract and issue "strict input": whatever field a card number or a CVC lands in,
        /// as a string, a number, a key or inside a URL, no 400 repeats it.
        #[test]
        fn no_400_repeats_a_card_number_or_cvc(
            path in proptest::sample::select(PATHS),
            pan in proptest::sample::select(vec!["4111111111111111", "5500000000000004", "374500000000015", "4917300000000008"]),
            cvc in "[0-9]{3,4}",
            how in 0..5u8,
        ) {
            let (leak, value) = match how {
                0 => (pan, json!(pan)),
                1 => (pan, json!(pan.parse::<u64>().unwrap())),
                2 => (pan, json!({ pan: pan })),
                3 => (pan, json!(format!("https://{pan}.example/r?{pan}"))),
                _ => (cvc.as_str(), json!(cvc.parse::<u64>().unwrap())),
            };
            // The real card's CVC is a secret too: it must not come back either.
            let body = with(with(example(), "card.cvc", Some(json!("737"))), path, Some(value));
            let bytes = serde_json::to_vec(&body).unwrap();
            let parsed = crate::api::strict_json::parse::<CheckoutRequest>(&bytes, &SHAPE)
                .and_then(|req| parse(req, &["shop.example".to_owned()], today()));
            if let Err(e) = parsed {
                for secret in [leak, "737"] {
                    proptest::prop_assert!(!repeats(&e.message, secret), "{path}: {}", e.message);
                    proptest::prop_assert!(!repeats(&e.param, secret), "{path}: {}", e.param);
                }
            }
        }
    }
}
