//! MSP's JSON, spelled exactly as MSP spells it (reference §2–4) and nothing else. The
//! conversion to and from the domain is in [`super::convert`].
//!
//! Answers are typed loosely where MSP is loose: `transaction_id`, `last4`, `card_expiry_date`
//! and `reason_code` arrive as numbers or strings, and any field may be `null`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

// ---------------------------------------------------------------------------------------------
// POST /orders

/// The body of `POST /orders` for a direct card order. No `Debug`: it holds the card.
#[derive(Serialize)]
pub struct OrderRequest<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub gateway: &'static str,
    pub order_id: &'a str,
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    pub description: String,
    pub payment_options: PaymentOptions,
    pub customer: Customer<'a>,
    pub delivery: Delivery<'a>,
    /// The card; absent on a payment with a saved card (`recurring_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_info: Option<GatewayInfo<'a>>,
    pub shopping_cart: ShoppingCart<'a>,
    pub checkout_options: CheckoutOptions,
    /// `manual` to authorise only, collected by a later capture; absent to collect at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<&'static str>,
    /// Saved cards: `cardOnFile`, `subscription` or `unscheduled` (top-level, as MSP's examples
    /// and SDKs send it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_model: Option<&'static str>,
    /// The token of the saved card that pays. A credential: this struct has no `Debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct PaymentOptions {
    pub notification_url: String,
    pub notification_method: &'static str,
    pub redirect_url: String,
    pub cancel_url: String,
    pub close_window: bool,
}

#[derive(Debug, Serialize)]
pub struct Customer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<&'a str>,
    pub ip_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address1: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub house_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<&'a str>,
    pub country: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<&'a str>,
    pub email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser: Option<Browser<'a>>,
    /// The shop's id for the shopper, under which MSP keeps a saved card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<&'a str>,
}

/// 3-D Secure 2 device data, typed as MSP's card schema types it (booleans and numbers).
#[derive(Debug, Serialize)]
pub struct Browser<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub javascript_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub java_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookies_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_color_depth: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct Delivery<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address1: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub house_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<&'a str>,
    pub country: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<&'a str>,
    pub email: &'a str,
}

/// The card, exposed here and only here. `Debug` masks it.
#[derive(Serialize)]
pub struct GatewayInfo<'a> {
    pub card_number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_holder_name: Option<&'a str>,
    /// YYMM, as a string (MSP's schema says string; some examples send a number).
    pub card_expiry_date: String,
    pub card_cvc: &'a str,
}

impl fmt::Debug for GatewayInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last4 = self
            .card_number
            .get(self.card_number.len().saturating_sub(4)..)
            .unwrap_or("");
        f.debug_struct("GatewayInfo")
            .field("card_number", &format_args!("****{last4}"))
            .field("card_expiry_date", &self.card_expiry_date)
            .field("card_cvc", &format_args!("***"))
            .finish()
    }
}

#[derive(Debug, Serialize)]
pub struct ShoppingCart<'a> {
    pub items: Vec<CartItem<'a>>,
}

#[derive(Debug, Serialize)]
pub struct CartItem<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// Major units, excluding VAT.
    pub unit_price: DecimalNumber,
    pub quantity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_item_id: Option<&'a str>,
    pub tax_table_selector: String,
}

/// No `validate_cart`: MSP's excl.-VAT prices can be a cent off the total after its own
/// rounding, and the cart is for display and records only.
#[derive(Debug, Serialize)]
pub struct CheckoutOptions {
    pub tax_tables: TaxTables,
}

#[derive(Debug, Serialize)]
pub struct TaxTables {
    pub default: DefaultTaxTable,
    pub alternate: Vec<AlternateTaxTable>,
}

#[derive(Debug, Serialize)]
pub struct DefaultTaxTable {
    pub shipping_taxed: bool,
    pub rate: DecimalNumber,
}

#[derive(Debug, Serialize)]
pub struct AlternateTaxTable {
    pub name: String,
    pub standalone: bool,
    pub rules: Vec<TaxRule>,
}

#[derive(Debug, Serialize)]
pub struct TaxRule {
    pub rate: DecimalNumber,
}

/// A decimal that MSP wants as a JSON *number* (`unit_price`, tax `rate`), computed exactly
/// as a decimal string by [`super::convert`].
///
/// serde_json writes numbers from `f64` only (its `arbitrary_precision` feature is not on), so
/// the string goes out through the `f64` nearest to it. That is lossless here: the conversion
/// keeps at most 15 significant digits, and every decimal of up to 15 significant digits
/// survives the trip through `f64` and back to its shortest form unchanged (tested).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecimalNumber(String);

impl DecimalNumber {
    /// `s` is a plain decimal (`12.3966942149`, `0`); built only by `convert`.
    pub(crate) fn new(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for DecimalNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value: f64 = self
            .0
            .parse()
            .map_err(|_| serde::ser::Error::custom(format!("`{}` is not a decimal", self.0)))?;
        serializer.serialize_f64(value)
    }
}

// ---------------------------------------------------------------------------------------------
// POST /orders/{id}/refunds, PATCH /orders/{id}/refunds/{refund_id}

/// The body of `POST /orders/{id}/refunds`.
#[derive(Debug, Serialize)]
pub struct RefundRequest<'a> {
    pub currency: &'a str,
    /// Minor units, never 0: MSP refunds the whole order for 0 or no amount.
    pub amount: i64,
    /// The gateway's refund id, so the refund can be found under the order whatever happened
    /// to this call's answer.
    pub refund_order_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

/// The body of `PATCH /orders/{id}/refunds/{refund_id}`.
#[derive(Debug, Serialize)]
pub struct RefundUpdate {
    pub status: &'static str,
}

// ---------------------------------------------------------------------------------------------
// PATCH /orders/{id}, PATCH /capture/{id}

/// The body of `PATCH /orders/{id}` that cancels an order.
#[derive(Debug, Serialize)]
pub struct OrderCancel {
    pub status: &'static str,
    /// Cancel the order's payment session along with it (reference §6.2).
    pub exclude_order: bool,
}

/// The body of `PATCH /capture/{id}` that cancels an authorisation.
#[derive(Debug, Serialize)]
pub struct AuthorizationCancel<'a> {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

// ---------------------------------------------------------------------------------------------
// POST /orders/{id}/capture

/// The body of `POST /orders/{id}/capture`.
#[derive(Debug, Serialize)]
pub struct CaptureRequest<'a> {
    /// Minor units, at least 1.
    pub amount: i64,
    /// The id of the order MSP makes for the captured money.
    pub new_order_id: &'a str,
    pub new_order_status: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Answers

/// Every MSP answer: `{success, data}` or `{success: false, data, error_code, error_info}`.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub success: bool,
    /// Kept as its text and read once its type is known: building a `Value` of a whole order
    /// answer first, most of which the gateway ignores, was half of the answer's parsing.
    #[serde(default)]
    pub data: Option<Box<serde_json::value::RawValue>>,
    #[serde(default, deserialize_with = "loose_i64")]
    pub error_code: Option<i64>,
    #[serde(default, deserialize_with = "loose_string")]
    pub error_info: Option<String>,
}

/// The order object: `data` of `POST /orders` and `GET /orders/{id}`, and the whole body of a
/// POST notification. Only the fields the gateway reads; the rest is ignored.
#[derive(Debug, Deserialize)]
pub struct Order {
    #[serde(default, deserialize_with = "loose_string")]
    pub order_id: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub transaction_id: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub financial_status: Option<String>,
    /// Minor units; read leniently (`None` when odd): only captures need it.
    #[serde(default, deserialize_with = "minor_units_or_none")]
    pub amount: Option<i64>,
    #[serde(default, deserialize_with = "loose_string")]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub reason_code: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub payment_url: Option<String>,
    #[serde(default, deserialize_with = "object_or_none")]
    pub customer_verification: Option<CustomerVerification>,
    #[serde(default, deserialize_with = "object_or_none")]
    pub payment_details: Option<PaymentDetails>,
    /// Refunds, captures and chargebacks of the order; `null` when it has none. Each entry is
    /// read on its own, so that one MSP spells oddly costs that entry, not the order.
    #[serde(default, deserialize_with = "entries")]
    pub related_transactions: Vec<Entry<RelatedTransaction>>,
}

/// `data` of a `POST /orders/{id}/refunds` answer (MSP also sends the order's own
/// `transaction_id`, which the gateway has already).
#[derive(Debug, Default, Deserialize)]
pub struct RefundCreated {
    /// The refund transaction's id.
    #[serde(default, deserialize_with = "loose_string")]
    pub refund_id: Option<String>,
}

/// `data` of a `POST /orders/{id}/capture` answer.
#[derive(Debug, Default, Deserialize)]
pub struct Captured {
    /// The capture transaction's id.
    #[serde(default, deserialize_with = "loose_string")]
    pub transaction_id: Option<String>,
    /// The order that holds the captured money (the request's `new_order_id`).
    #[serde(default, deserialize_with = "loose_string")]
    pub order_id: Option<String>,
}

/// One entry of `related_transactions`, by its `type`. Only the types the gateway acts on are
/// read; `reverse-chargeback`, `auth-cancellation` and anything new are `Other`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum RelatedTransaction {
    #[serde(rename = "refund")]
    Refund(RefundTransaction),
    #[serde(rename = "capture")]
    Capture(CaptureTransaction),
    #[serde(rename = "chargeback")]
    Chargeback(ChargebackTransaction),
    /// A chargeback MSP reversed: the merchant won its dispute.
    #[serde(rename = "reverse-chargeback", alias = "reverse_chargeback")]
    ReverseChargeback,
    #[serde(other)]
    Other,
}

/// A chargeback as MSP lists it under its order (OAS `RelatedTransactions.yaml`), read
/// leniently: an odd field costs that field, never the chargeback.
#[derive(Debug, Default, Deserialize)]
pub struct ChargebackTransaction {
    #[serde(default, deserialize_with = "loose_string")]
    pub transaction_id: Option<String>,
    #[serde(default, deserialize_with = "minor_units_or_none")]
    pub amount: Option<i64>,
    #[serde(default, deserialize_with = "object_or_none")]
    pub dispute: Option<ChargebackDispute>,
}

/// `dispute` of a chargeback (OAS `ChargebackDispute.yaml`).
#[derive(Debug, Default, Deserialize)]
pub struct ChargebackDispute {
    #[serde(default, deserialize_with = "loose_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub reason_code: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub reason_description: Option<String>,
    /// ISO 8601; without an offset it is Europe/Amsterdam time, like MSP's other stamps.
    #[serde(default, deserialize_with = "loose_string")]
    pub merchant_response_date: Option<String>,
}

/// A capture of a manual-capture authorisation, as MSP lists it under its order.
#[derive(Debug, Deserialize)]
pub struct CaptureTransaction {
    /// The order that holds the captured money (the capture's `new_order_id`, or the order's
    /// own id).
    #[serde(default, deserialize_with = "loose_string")]
    pub order_id: Option<String>,
    #[serde(default, deserialize_with = "minor_units")]
    pub amount: Option<i64>,
    #[serde(default, deserialize_with = "loose_string")]
    pub status: Option<String>,
}

/// A refund as MSP lists it under its order.
#[derive(Debug, Deserialize)]
pub struct RefundTransaction {
    #[serde(default, deserialize_with = "loose_string")]
    pub refund_order_id: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub transaction_id: Option<String>,
    #[serde(default, deserialize_with = "minor_units")]
    pub amount: Option<i64>,
    #[serde(default, deserialize_with = "loose_string")]
    pub status: Option<String>,
}

/// A list entry read on its own. `Unreadable` says why it could not be read: the readers above
/// name a value's type, not its content.
#[derive(Debug)]
pub enum Entry<T> {
    Read(T),
    Unreadable(String),
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Entry<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if !value.is_object() {
            return Ok(Self::Unreadable(format!(
                "{}, not an object",
                kind_of(&value)
            )));
        }
        Ok(match serde_json::from_value(value) {
            Ok(t) => Self::Read(t),
            Err(e) => Self::Unreadable(e.to_string()),
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct CustomerVerification {
    #[serde(default, rename = "type", deserialize_with = "loose_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub html: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PaymentDetails {
    #[serde(default, rename = "type", deserialize_with = "loose_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub last4: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub card_expiry_date: Option<String>,
    /// Manual-capture orders: what can still be captured, minor units (read leniently).
    #[serde(default, deserialize_with = "minor_units_or_none")]
    pub capture_remain: Option<i64>,
    /// The token of a card saved by this order (a credential: never logged; `Debug` of this
    /// struct is not used in logs).
    #[serde(default, deserialize_with = "loose_string")]
    pub recurring_id: Option<String>,
    /// Manual-capture orders: until when MSP keeps the authorisation (MSP's local time).
    #[serde(default, deserialize_with = "loose_string")]
    pub capture_expiry: Option<String>,
}

/// A string, a number (kept as its JSON text) or `null`. Read by a visitor rather than through
/// a `serde_json::Value`: every order MSP sends has a dozen of these.
fn loose_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(LooseString)
}

struct LooseString;

impl<'de> Visitor<'de> for LooseString {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a number")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    /// As serde_json writes the number (`34.95`, `1e+20`), as the `Value` it replaced did.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map(|n| n.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(
            "expected a string or a number, got an array",
        ))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(
            "expected a string or a number, got an object",
        ))
    }
}

/// A nested object, or `None` for anything else: MSP's PHP side sends an empty object as `[]`,
/// and a detail the gateway does not need must not make the whole answer unusable. The object
/// is read straight into `T`, without a `serde_json::Value` in between.
fn object_or_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_any(ObjectOrNone(PhantomData))
}

struct ObjectOrNone<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOrNone<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A list of entries each read on its own. `null` and an empty object (MSP's PHP side sends an
/// empty list as `{}` at times) are no entries; anything else that is not a list is one
/// unreadable entry, so that it is reported rather than silently taken for none.
fn entries<'de, D, T>(d: D) -> Result<Vec<Entry<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde_json::Value;
    Ok(match Value::deserialize(d)? {
        Value::Null => Vec::new(),
        Value::Object(o) if o.is_empty() => Vec::new(),
        Value::Array(items) => items
            .into_iter()
            .map(|item| Entry::deserialize(item).map_err(serde::de::Error::custom))
            .collect::<Result<_, _>>()?,
        other => vec![Entry::Unreadable(format!(
            "{}, not a list",
            kind_of(&other)
        ))],
    })
}

/// An amount in minor units: a non-negative JSON integer, a string of digits (MSP's own SDKs
/// send those: reference §1.3), or `null`.
fn minor_units<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde_json::Value;
    let expected = || serde::de::Error::custom("expected an amount in minor units");
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .filter(|a| *a >= 0)
            .map(Some)
            .ok_or_else(expected),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map(Some).map_err(|_| expected())
        }
        other => Err(serde::de::Error::custom(format!(
            "expected an amount in minor units, got {}",
            kind_of(&other)
        ))),
    }
}

/// As [`minor_units`], with anything else read as `None`: for fields the gateway can do
/// without, so that one MSP spells oddly does not cost the whole order.
fn minor_units_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(minor_units(value).unwrap_or(None))
}

/// An integer, an integer in a string, or `null`.
fn loose_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("expected an integer error code")),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("expected an integer error code")),
        other => Err(serde::de::Error::custom(format!(
            "expected an integer error code, got {}",
            kind_of(&other)
        ))),
    }
}

/// Names a JSON value's type without echoing its content into an error message.
fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn loose_fields_accept_numbers_strings_and_nulls() {
        let order: Order = serde_json::from_value(json!({
            "order_id": "chk_1", "transaction_id": 4051823, "status": "completed",
            "reason_code": 3001, "reason": null, "payment_url": null,
            "payment_details": {"type": "VISA", "last4": 1111, "card_expiry_date": 3012}
        }))
        .unwrap();
        assert_eq!(order.transaction_id.as_deref(), Some("4051823"));
        assert_eq!(order.reason_code.as_deref(), Some("3001"));
        assert_eq!(order.reason, None);
        let details = order.payment_details.unwrap();
        assert_eq!(details.last4.as_deref(), Some("1111"));
        assert_eq!(details.card_expiry_date.as_deref(), Some("3012"));

        let order: Order = serde_json::from_value(json!({
            "order_id": "chk_1", "transaction_id": "4051823", "reason_code": "",
            "payment_details": {"last4": "1111", "card_expiry_date": "3012"}, "unknown": [1]
        }))
        .unwrap();
        assert_eq!(order.transaction_id.as_deref(), Some("4051823"));
        assert_eq!(order.reason_code.as_deref(), Some(""));
        assert_eq!(order.status, None);
    }

    /// Answers and notifications are read from MSP's bytes, not from a `Value`: the same loose
    /// shapes through that path.
    #[test]
    fn loose_shapes_read_from_text() {
        let order: Order = serde_json::from_str(
            r#"{"order_id": "chk_1", "transaction_id": 4051823, "status": "completed",
                "reason_code": 30.5, "reason": null, "financial_status": true,
                "customer_verification": [1, {"html": "x"}],
                "payment_details": {"type": "VISA", "last4": 1111, "card_expiry_date": "3012",
                                    "extra": {"nested": [1, 2]}},
                "unknown": {"a": [1]}}"#,
        )
        .unwrap();
        assert_eq!(order.transaction_id.as_deref(), Some("4051823"));
        assert_eq!(order.reason_code.as_deref(), Some("30.5"));
        assert_eq!(order.financial_status.as_deref(), Some("true"));
        assert_eq!(order.reason, None);
        assert!(order.customer_verification.is_none());
        let details = order.payment_details.unwrap();
        assert_eq!(details.kind.as_deref(), Some("VISA"));
        assert_eq!(details.last4.as_deref(), Some("1111"));
        assert_eq!(details.card_expiry_date.as_deref(), Some("3012"));

        let order: Order = serde_json::from_str(
            r#"{"order_id": "chk_1", "transaction_id": 1e20, "payment_details": "",
                "customer_verification": {"html": "<form></form>"}}"#,
        )
        .unwrap();
        assert_eq!(order.transaction_id.as_deref(), Some("1e+20"));
        assert!(order.payment_details.is_none());
        assert_eq!(
            order.customer_verification.unwrap().html.as_deref(),
            Some("<form></form>")
        );

        let odd = serde_json::from_str::<Order>(r#"{"order_id": {"id": 1}}"#).unwrap_err();
        assert!(
            odd.to_string()
                .contains("expected a string or a number, got an object"),
            "{odd}"
        );
    }

    #[test]
    fn empty_nested_objects_may_come_as_arrays_or_strings() {
        let order: Order = serde_json::from_value(json!({
            "order_id": "chk_1", "status": "completed",
            "customer_verification": [], "payment_details": ""
        }))
        .unwrap();
        assert!(order.customer_verification.is_none() && order.payment_details.is_none());
    }

    #[test]
    fn related_transactions_are_read_entry_by_entry() {
        let order: Order = serde_json::from_value(json!({
            "order_id": "chk_1",
            "related_transactions": [
                {"type": "refund", "refund_order_id": "re_1", "transaction_id": 9001,
                 "amount": "500", "status": "reserved", "costs": [], "dispute": null},
                {"type": "chargeback", "amount": 34.95},
                {"type": "capture", "amount": 3495},
                "refund",
                {"type": "refund", "amount": "5.00"},
                {"type": "refund", "amount": -500},
                {"amount": 500}
            ]
        }))
        .unwrap();
        let entries = &order.related_transactions;
        assert!(matches!(
            &entries[0],
            Entry::Read(RelatedTransaction::Refund(RefundTransaction {
                refund_order_id: Some(r), transaction_id: Some(t), amount: Some(500), status: Some(s)
            })) if r == "re_1" && t == "9001" && s == "reserved"
        ));
        assert!(matches!(
            entries[1],
            Entry::Read(RelatedTransaction::Chargeback(_))
        ));
        assert!(matches!(
            &entries[2],
            Entry::Read(RelatedTransaction::Capture(CaptureTransaction {
                amount: Some(3495),
                order_id: None,
                status: None
            }))
        ));
        let why: Vec<&str> = entries[3..]
            .iter()
            .map(|e| match e {
                Entry::Unreadable(why) => why.as_str(),
                Entry::Read(r) => panic!("read {r:?}"),
            })
            .collect();
        assert_eq!(why.len(), 4);
        assert_eq!(why[0], "a string, not an object");
        assert!(why[1].contains("amount in minor units"), "{why:?}");
        assert!(
            !why[1].contains("5.00"),
            "no content in the reason: {why:?}"
        );
        assert!(why[3].contains("type"), "{why:?}");

        let order: Order =
            serde_json::from_value(json!({"order_id": "chk_1", "related_transactions": 5}))
                .unwrap();
        assert!(matches!(
            order.related_transactions[..],
            [Entry::Unreadable(ref why)] if why == "a number, not a list"
        ));
    }

    #[test]
    fn envelopes_of_both_shapes() {
        let ok: Envelope =
            serde_json::from_str(r#"{"success":true,"data":{"order_id":"x"}}"#).unwrap();
        assert!(ok.success && ok.error_code.is_none());
        let err: Envelope = serde_json::from_str(
            r#"{"success":false,"data":[],"error_code":"1024","error_info":"declined"}"#,
        )
        .unwrap();
        assert_eq!((err.success, err.error_code), (false, Some(1024)));
        assert_eq!(err.error_info.as_deref(), Some("declined"));
        // `data` is kept as its own text, without the whitespace around it.
        let spaced: Envelope =
            serde_json::from_str("{ \"success\": true, \"data\" :\n { \"a\": 1 } \n}").unwrap();
        assert_eq!(
            spaced.data.map(|d| d.get().to_owned()).as_deref(),
            Some("{ \"a\": 1 }")
        );
        let null: Envelope = serde_json::from_str(r#"{"success":true,"data":null}"#).unwrap();
        assert!(null.data.is_none());
    }

    #[test]
    fn gateway_info_debug_masks_the_card() {
        let info = GatewayInfo {
            card_number: "4111111111111111",
            card_holder_name: Some("Jo"),
            card_expiry_date: "3012".into(),
            card_cvc: "987",
        };
        let shown = format!("{info:?}");
        assert!(
            !shown.contains("4111111111111111") && !shown.contains("987"),
            "{shown}"
        );
        assert!(shown.contains("****1111"), "{shown}");
    }
}
