//! The simulator's own wire types, spelled as MultiSafepay spells them (reference §2–4). Nothing
//! here is shared with the gateway's client (`crate::psp`): a field misspelt the same way on both
//! sides would pass every test and fail against the real MultiSafepay.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use super::cards::{self, Brand};
use super::orders::{Customer, NotificationMethod, Order, PaymentOptions};

/// MSP's error: `error_code`, `error_info`, and the HTTP status the simulator answers it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MspError {
    pub code: u16,
    pub info: String,
    pub http: u16,
}

impl MspError {
    pub(crate) fn new(code: u16, http: u16, info: impl Into<String>) -> Self {
        Self {
            code,
            info: info.into(),
            http,
        }
    }
    fn invalid(code: u16, info: impl Into<String>) -> Self {
        Self::new(code, 400, info)
    }
}

/// `{"success": false, "data": {}, "error_code", "error_info"}`
#[derive(Serialize)]
pub(crate) struct ErrorEnvelope<'a> {
    pub success: bool,
    pub data: Map<String, Value>,
    pub error_code: u16,
    pub error_info: &'a str,
}

/// `{"success": true, "data": …}`
#[derive(Serialize)]
pub(crate) struct Envelope<T: Serialize> {
    pub success: bool,
    pub data: T,
}

/// A card number, held only while an order is created; `Debug` masks it.
pub(crate) struct CardNumber(String);

impl std::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardNumber(****{})", self.last4())
    }
}

impl CardNumber {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
    pub(crate) fn last4(&self) -> &str {
        &self.0[self.0.len().saturating_sub(4)..]
    }
}

/// A validated `POST /orders` body (direct card order).
#[derive(Debug)]
pub(crate) struct NewOrder {
    pub order_id: String,
    pub amount: u64,
    pub currency: String,
    pub description: String,
    pub items: Option<String>,
    pub vars: [Option<String>; 3],
    pub customer: Customer,
    pub options: PaymentOptions,
    /// The card (`gateway_info`); `None` on a subsequent recurring order, which pays with a token.
    pub card: Option<NewCard>,
    /// `gateway` as sent (`""` when absent).
    pub gateway: String,
    /// `capture: "manual"`
    pub manual_capture: bool,
    /// `recurring_model` and `recurring_id`.
    pub recurring: Option<RecurringRequest>,
}

/// The card of a direct card order.
#[derive(Debug)]
pub(crate) struct NewCard {
    pub number: CardNumber,
    pub brand: Brand,
    pub expiry: String,
    pub holder: Option<String>,
}

/// `recurring_model` (and, on a subsequent order, `recurring_id`), top-level as MSP's examples
/// and SDKs send them.
#[derive(Debug)]
pub(crate) struct RecurringRequest {
    pub model: super::recurring::Model,
    /// `Some` on a subsequent order: the token to pay with.
    pub id: Option<String>,
}

/// Currencies MSP processes card payments in (a subset large enough for merchants' tests).
const CURRENCIES: &[&str] = &[
    "EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "RON", "BGN", "AUD",
    "CAD", "JPY", "NZD", "HKD", "SGD", "ISK", "TRY", "ZAR", "MXN", "BRL", "CNY",
];

const GATEWAYS: &[&str] = &["CREDITCARD", "VISA", "MASTERCARD", "AMEX", "MAESTRO"];

fn str_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A field MSP's examples send either as a string or as a number (YYMM dates, CVCs).
fn str_or_number(obj: &Map<String, Value>, name: &str) -> Option<String> {
    match obj.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An amount in minor units: a JSON integer, or a string of digits (`"1000"`), the form MSP's
/// Node SDK sends (reference §1.3). Anything else (a sign, a decimal point, a float) is `None`.
fn minor_units(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

fn url_field(obj: &Map<String, Value>, name: &str) -> Result<Option<url::Url>, MspError> {
    match str_field(obj, name) {
        None => Ok(None),
        // Production MSP wants https without a port; the simulator does not, so loopback works.
        Some(s) => url::Url::parse(s)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(Some)
            .ok_or_else(|| {
                MspError::invalid(
                    1000,
                    format!("payment_options.{name} is not an http(s) URL"),
                )
            }),
    }
}

/// Parses and validates a create-order body, with MSP's error code for the first problem found.
pub(crate) fn parse_new_order(body: &[u8], today_yymm: u32) -> Result<NewOrder, MspError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| MspError::invalid(1000, format!("The request body is not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| MspError::invalid(1000, "The request body must be a JSON object"))?;
    let empty = Map::new();

    match obj.get("type").and_then(Value::as_str) {
        Some("direct") => {}
        _ => {
            return Err(MspError::invalid(
                1000,
                "Only direct card orders are simulated: send \"type\": \"direct\"",
            ));
        }
    }
    let recurring = parse_recurring(obj)?;
    let subsequent = recurring.as_ref().is_some_and(|r| r.id.is_some());
    let gateway = str_field(obj, "gateway").unwrap_or("");
    // A token order names no gateway, an empty one, or the token's code (checked with the token).
    if !(GATEWAYS.contains(&gateway) || subsequent && gateway.is_empty()) {
        return Err(MspError::invalid(
            1023,
            format!("Gateway unavailable: use one of {}", GATEWAYS.join(", ")),
        ));
    }
    let order_id = str_or_number(obj, "order_id")
        .filter(|s| s.chars().count() <= 50)
        .ok_or_else(|| {
            MspError::invalid(
                1006,
                "Invalid order ID: send a string of at most 50 characters",
            )
        })?;
    // An initial recurring order may be a zero authorisation (amount 0).
    let least = u64::from(recurring.is_none() || subsequent);
    let amount = obj
        .get("amount")
        .and_then(minor_units)
        .filter(|a| *a >= least)
        .ok_or_else(|| {
            MspError::invalid(
                1001,
                "Invalid amount: send a whole number of cents, at least 1 (0 only for an \
                 initial recurring order), as an integer or a string of digits",
            )
        })?;
    let currency = str_field(obj, "currency")
        .filter(|c| CURRENCIES.contains(c))
        .ok_or_else(|| MspError::invalid(1002, "Invalid currency: send an ISO 4217 code"))?
        .to_owned();
    let description = str_field(obj, "description")
        .filter(|d| d.chars().count() <= 200)
        .ok_or_else(|| MspError::invalid(1008, "Invalid description: send 1 to 200 characters"))?
        .to_owned();

    // `capture` is `"manual"` or absent (OAS `Capture.yaml`); anything else is a mistake worth
    // hearing about rather than a payment collected at once.
    let manual_capture = match obj.get("capture") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s.is_empty() => false,
        Some(Value::String(s)) if s == "manual" => true,
        Some(_) => {
            return Err(MspError::invalid(
                1000,
                "Invalid capture: send \"manual\" for an authorisation captured later, or leave \
                 it out",
            ));
        }
    };

    let customer_in = obj
        .get("customer")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for ip_field in ["ip_address", "forwarded_ip"] {
        if let Some(ip) = str_field(customer_in, ip_field)
            && ip.parse::<IpAddr>().is_err()
        {
            return Err(MspError::invalid(
                1007,
                format!("Invalid IP address in customer.{ip_field}"),
            ));
        }
    }
    let country = str_field(customer_in, "country");
    if let Some(c) = country
        && !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(MspError::invalid(
            1018,
            "Invalid country code: send ISO 3166-1 alpha-2, e.g. NL",
        ));
    }
    let text = |name: &str| str_field(customer_in, name).map(str::to_owned);
    let reference = text("reference");
    if reference.as_ref().is_some_and(|r| r.chars().count() > 50) {
        return Err(MspError::invalid(
            1000,
            "Invalid customer.reference: send at most 50 characters",
        ));
    }
    if recurring.is_some() && reference.is_none() {
        return Err(MspError::invalid(
            1000,
            "A recurring order needs customer.reference: the token is stored under it",
        ));
    }
    let customer = Customer {
        address1: text("address1"),
        address2: text("address2"),
        city: text("city"),
        country: text("country"),
        country_name: None,
        email: text("email"),
        first_name: text("first_name"),
        house_number: text("house_number"),
        last_name: text("last_name"),
        locale: text("locale"),
        phone1: text("phone"),
        phone2: None,
        reference,
        state: text("state"),
        zip_code: text("zip_code"),
    };

    let options_in = obj
        .get("payment_options")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let notification_method = match str_field(options_in, "notification_method") {
        None => NotificationMethod::Get,
        Some(m) if m.eq_ignore_ascii_case("GET") => NotificationMethod::Get,
        Some(m) if m.eq_ignore_ascii_case("POST") => NotificationMethod::Post,
        Some(_) => {
            return Err(MspError::invalid(
                1000,
                "payment_options.notification_method must be POST or GET",
            ));
        }
    };
    let options = PaymentOptions {
        notification_url: url_field(options_in, "notification_url")?,
        notification_method,
        redirect_url: url_field(options_in, "redirect_url")?,
        cancel_url: url_field(options_in, "cancel_url")?,
    };

    let card = if subsequent {
        None
    } else {
        Some(parse_card(obj, manual_capture, today_yymm)?)
    };
    if let Some(card) = &card
        && amount == 0
        && card.brand.authorization_lifetime().is_none()
    {
        return Err(MspError::invalid(
            1000,
            format!(
                "Invalid amount: zero authorisation is offered for Visa, Mastercard and Maestro \
                 cards only, not {}",
                card.brand.gateway()
            ),
        ));
    }
    let var = |name: &str| str_field(obj, name).map(str::to_owned);
    Ok(NewOrder {
        order_id,
        amount,
        currency,
        description,
        // The order object's `items` is an HTML string or null (the Python SDK rejects a list).
        items: var("items"),
        vars: [var("var1"), var("var2"), var("var3")],
        customer,
        options,
        card,
        gateway: gateway.to_owned(),
        manual_capture,
        recurring,
    })
}

/// `recurring_model` and `recurring_id`: a model alone is an initial order (it makes a token),
/// with an id a subsequent one (it pays with the token).
fn parse_recurring(obj: &Map<String, Value>) -> Result<Option<RecurringRequest>, MspError> {
    let id = str_field(obj, "recurring_id").map(str::to_owned);
    let model = match str_field(obj, "recurring_model") {
        None if id.is_some() => {
            return Err(MspError::invalid(
                1000,
                "A token order needs recurring_model: cardOnFile, subscription or unscheduled",
            ));
        }
        None => return Ok(None),
        Some(m) => super::recurring::Model::parse(m).ok_or_else(|| {
            MspError::invalid(
                1000,
                "Invalid recurring_model: send cardOnFile, subscription or unscheduled",
            )
        })?,
    };
    Ok(Some(RecurringRequest { model, id }))
}

/// `gateway_info` of a direct card order.
fn parse_card(
    obj: &Map<String, Value>,
    manual_capture: bool,
    today_yymm: u32,
) -> Result<NewCard, MspError> {
    let empty = Map::new();
    let card_in = obj
        .get("gateway_info")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let number = str_or_number(card_in, "card_number")
        .filter(|n| cards::luhn_valid(n))
        .ok_or_else(|| MspError::new(1024, 402, "Transaction declined: invalid card number"))?;
    let brand = Brand::detect(&number)
        .ok_or_else(|| MspError::new(1024, 402, "Transaction declined: unsupported card scheme"))?;
    if manual_capture && brand.authorization_lifetime().is_none() {
        return Err(MspError::invalid(
            1000,
            format!(
                "Invalid capture: manual capture is offered for Visa, Mastercard and Maestro \
                 cards only, not {}",
                brand.gateway()
            ),
        ));
    }
    let expiry = str_or_number(card_in, "card_expiry_date")
        .filter(|e| valid_expiry(e, today_yymm))
        .ok_or_else(|| {
            MspError::new(
                1024,
                402,
                "Transaction declined: card_expiry_date must be a future YYMM",
            )
        })?;
    // The Python SDK sends `cvc`, the OAS and the PHP SDK `card_cvc`: both are accepted.
    let cvc = str_or_number(card_in, "card_cvc").or_else(|| str_or_number(card_in, "cvc"));
    let cvc_ok = match &cvc {
        Some(c) => (3..=4).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()),
        None => brand == Brand::Maestro,
    };
    if !cvc_ok {
        return Err(MspError::new(
            1024,
            402,
            "Transaction declined: send a 3 or 4 digit card_cvc",
        ));
    }
    Ok(NewCard {
        number: CardNumber(number),
        brand,
        expiry,
        holder: str_field(card_in, "card_holder_name").map(str::to_owned),
    })
}

fn valid_expiry(e: &str, today_yymm: u32) -> bool {
    let Ok(v) = e.parse::<u32>() else {
        return false;
    };
    e.len() == 4 && (1..=12).contains(&(v % 100)) && v >= today_yymm
}

/// Every stamp of the order object, as MSP writes them: Europe/Amsterdam wall time.
fn ts(t: chrono::NaiveDateTime) -> String {
    super::clock::msp_time(t)
}

#[derive(Serialize)]
struct CustomInfo {
    custom_1: Option<String>,
    custom_2: Option<String>,
    custom_3: Option<String>,
}

#[derive(Serialize)]
struct CardAuthenticationResult<'a> {
    challenge_cancel: Option<&'a str>,
    eci: &'a str,
    status: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct CardAuthenticationDetails<'a> {
    exemption: Option<&'a str>,
    flow: &'a str,
}

/// `payment_details` of a manual-capture order, as MSP shows an authorised one: the deadline
/// and what can still be captured (0 once captured, voided or expired).
#[derive(Serialize)]
struct CaptureDetails {
    capture: &'static str,
    capture_expiry: Option<String>,
    capture_remain: u64,
}

#[derive(Serialize)]
struct PaymentDetails<'a> {
    account_holder_name: Option<&'a str>,
    /// Manual-capture orders only.
    #[serde(flatten)]
    capture: Option<CaptureDetails>,
    card_authentication_details: Option<CardAuthenticationDetails<'a>>,
    card_authentication_result: Option<CardAuthenticationResult<'a>>,
    card_expiry_date: &'a str,
    external_transaction_id: &'a str,
    last4: &'a str,
    recurring_flow: Option<&'a str>,
    recurring_id: Option<&'a str>,
    recurring_model: Option<&'a str>,
    response_code: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct PaymentMethod<'a> {
    account_holder_name: Option<&'a str>,
    amount: u64,
    card_expiry_date: &'a str,
    currency: &'a str,
    description: &'a str,
    external_transaction_id: &'a str,
    last4: &'a str,
    payment_description: &'a str,
    status: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// An entry of `related_transactions` (OAS `RelatedTransactions.yaml`), keys in alphabetical
/// order like the rest of the order object.
#[derive(Serialize)]
struct RelatedTransaction<'a> {
    amount: u64,
    costs: [(); 0],
    created: String,
    currency: &'a str,
    description: Option<&'a str>,
    dispute: Option<super::disputes::DisputeView<'a>>,
    modified: String,
    order_id: &'a str,
    reference_transaction_id: u64,
    refund_order_id: Option<&'a str>,
    status: &'a str,
    transaction_id: u64,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// The order object of `GET /orders/{id}` and of POST notifications. Fields, nested ones too,
/// are in MSP's alphabetical order: a body is then byte for byte what the Python SDK gets when it
/// re-serialises it (with sorted keys) to verify the signature.
#[derive(Serialize)]
pub(crate) struct OrderObject<'a> {
    amount: u64,
    amount_refunded: u64,
    checkout_options: Option<()>,
    completed: Option<String>,
    costs: [(); 0],
    created: String,
    currency: &'a str,
    custom_info: CustomInfo,
    customer: &'a Customer,
    description: &'a str,
    fastcheckout: &'a str,
    financial_status: &'a str,
    items: Option<&'a str>,
    modified: String,
    order_id: &'a str,
    payment_details: PaymentDetails<'a>,
    payment_methods: [PaymentMethod<'a>; 1],
    reason: &'a str,
    reason_code: &'a str,
    related_transactions: Option<Vec<RelatedTransaction<'a>>>,
    shopping_cart: Option<()>,
    status: &'a str,
    transaction_id: u64,
    var1: Option<&'a str>,
    var2: Option<&'a str>,
    var3: Option<&'a str>,
}

impl<'a> OrderObject<'a> {
    pub(crate) fn of(o: &'a Order) -> Self {
        let approved = matches!(o.authentication, Some(ref a) if a.status == "Y")
            || o.authentication.is_none() && o.status != super::orders::Status::Initialized;
        let response_code = match o.status {
            super::orders::Status::Initialized => "",
            _ if o.reason_code == "3001" => "08",
            _ if o.reason_code == "4002" => "51",
            _ if approved => "00",
            _ => "",
        };
        let holder = o.card.holder.as_deref();
        let auth = o.authentication.as_ref();
        OrderObject {
            amount: o.amount,
            amount_refunded: o.amount_refunded,
            checkout_options: None,
            completed: o.completed.map(ts),
            costs: [],
            created: ts(o.created),
            currency: &o.currency,
            custom_info: CustomInfo {
                custom_1: None,
                custom_2: None,
                custom_3: None,
            },
            customer: &o.customer,
            description: &o.description,
            fastcheckout: "NO",
            financial_status: o.status.financial_str(),
            items: o.items.as_deref(),
            modified: ts(o.modified),
            order_id: &o.order_id,
            payment_details: PaymentDetails {
                account_holder_name: holder,
                capture: o.manual_capture.then(|| CaptureDetails {
                    capture: "manual",
                    capture_expiry: o.capture_expiry().map(ts),
                    capture_remain: if o.status == super::orders::Status::Authorized {
                        o.amount
                    } else {
                        0
                    },
                }),
                card_authentication_details: auth.map(|a| CardAuthenticationDetails {
                    flow: a.flow,
                    exemption: None,
                }),
                card_authentication_result: auth.map(|a| CardAuthenticationResult {
                    status: a.status,
                    eci: if a.status == "Y" { "05" } else { "07" },
                    version: "2.2.0",
                    challenge_cancel: a.challenge_cancel,
                }),
                card_expiry_date: &o.card.expiry,
                external_transaction_id: &o.external_transaction_id,
                last4: &o.card.last4,
                recurring_flow: o
                    .recurring
                    .as_ref()
                    .filter(|r| r.subsequent)
                    .map(|_| "token"),
                recurring_id: o.recurring.as_ref().and_then(|r| r.token.as_deref()),
                recurring_model: o.recurring.as_ref().map(|r| r.model.as_str()),
                response_code,
                kind: o.card.brand.gateway(),
            },
            payment_methods: [PaymentMethod {
                account_holder_name: holder,
                amount: o.amount,
                card_expiry_date: &o.card.expiry,
                currency: &o.currency,
                description: &o.description,
                external_transaction_id: &o.external_transaction_id,
                last4: &o.card.last4,
                payment_description: o.card.brand.description(),
                status: o.status.financial_str(),
                kind: o.card.brand.gateway(),
            }],
            reason: &o.reason,
            reason_code: &o.reason_code,
            related_transactions: (!o.related.is_empty()).then(|| {
                o.related
                    .iter()
                    .map(|r| RelatedTransaction {
                        amount: r.amount,
                        costs: [],
                        created: ts(r.created),
                        currency: &o.currency,
                        description: r.description.as_deref(),
                        dispute: r.dispute.as_ref().map(super::disputes::DisputeView::of),
                        modified: ts(r.modified),
                        order_id: r.order_id.as_deref().unwrap_or(&o.order_id),
                        reference_transaction_id: o.transaction_id,
                        refund_order_id: r.refund_order_id.as_deref(),
                        status: r.status.as_str(),
                        transaction_id: r.transaction_id,
                        kind: r.kind.as_str(),
                    })
                    .collect()
            }),
            shopping_cart: None,
            status: o.status.as_str(),
            transaction_id: o.transaction_id,
            var1: o.vars[0].as_deref(),
            var2: o.vars[1].as_deref(),
            var3: o.vars[2].as_deref(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct CustomerVerification {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub html: String,
}

/// The create answer: the order object plus where to send the shopper.
#[derive(Serialize)]
pub(crate) struct CreatedOrder<'a> {
    #[serde(flatten)]
    pub order: OrderObject<'a>,
    pub payment_url: Option<String>,
    pub cancel_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_verification: Option<CustomerVerification>,
}

/// `POST /orders/{id}/refunds` answer.
#[derive(Serialize)]
pub(crate) struct RefundCreated {
    pub transaction_id: u64,
    pub refund_id: u64,
}

/// `POST /orders/{id}/capture` answer (MSP's example: the capture's transaction id and the
/// `new_order_id`).
#[derive(Serialize)]
pub(crate) struct Captured {
    /// The capture's own transaction id, as in its `related_transactions` entry.
    pub transaction_id: u64,
    /// `new_order_id`, or the order's id when none was sent.
    pub order_id: String,
}

/// `PATCH /capture/{id}` answer (reference §6.2).
#[derive(Serialize)]
pub(crate) struct AuthorizationCancelled {
    /// The order's transaction id.
    pub transaction_id: u64,
    pub order_id: String,
    pub success: bool,
}

/// `PATCH /orders/{id}` and `POST /orders/{id}/refunds` bodies: read leniently.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, MspError> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(MspError::invalid(
            1000,
            "The request body must be a JSON object",
        )),
    }
}

/// The refund request: `amount` omitted, empty or 0 means everything left.
pub(crate) struct RefundRequest {
    pub amount: u64,
    pub currency: String,
    pub description: Option<String>,
    pub refund_order_id: Option<String>,
}

pub(crate) fn parse_refund(body: &Map<String, Value>) -> Result<RefundRequest, MspError> {
    let amount = match body.get("amount") {
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) if s.is_empty() => 0,
        Some(v) => minor_units(v).ok_or_else(|| {
            MspError::invalid(
                1001,
                "Invalid amount: send a whole number of cents, as an integer or a string of digits",
            )
        })?,
    };
    let currency = str_field(body, "currency")
        .ok_or_else(|| MspError::invalid(1002, "Invalid currency: send the order's currency"))?
        .to_owned();
    Ok(RefundRequest {
        amount,
        currency,
        description: str_field(body, "description").map(str::to_owned),
        refund_order_id: str_field(body, "refund_order_id").map(str::to_owned),
    })
}

/// The capture request (reference §6.2). `amount` absent means everything authorised (MSP's
/// partial-capture page calls it optional); `new_order_status` must be `completed`; `invoice_id`,
/// `tracktrace_code`, `carrier`, `reason` and `memo` are accepted and not kept.
pub(crate) struct CaptureRequest {
    pub amount: Option<u64>,
    pub new_order_id: Option<String>,
    pub description: Option<String>,
}

pub(crate) fn parse_capture(body: &Map<String, Value>) -> Result<CaptureRequest, MspError> {
    let amount = match body.get("amount") {
        None | Some(Value::Null) => None,
        Some(v) => Some(minor_units(v).filter(|a| *a >= 1).ok_or_else(|| {
            MspError::invalid(
                1001,
                "Invalid amount: send a whole number of cents, at least 1, as an integer or a \
                 string of digits",
            )
        })?),
    };
    if str_field(body, "new_order_status") != Some("completed") {
        return Err(MspError::invalid(
            1000,
            "Invalid new_order_status: send \"completed\"",
        ));
    }
    let new_order_id = match body.get("new_order_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(_) => Some(
            str_or_number(body, "new_order_id")
                .filter(|s| s.chars().count() <= 50)
                .ok_or_else(|| {
                    MspError::invalid(
                        1006,
                        "Invalid new_order_id: send a string of at most 50 characters",
                    )
                })?,
        ),
    };
    Ok(CaptureRequest {
        amount,
        new_order_id,
        description: str_field(body, "description").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_number_never_shows_in_debug() {
        let n = CardNumber("4111111111111111".into());
        assert_eq!(format!("{n:?}"), "CardNumber(****1111)");
    }

    #[test]
    fn an_amount_is_an_integer_or_a_string_of_digits() {
        for (v, expected) in [
            (serde_json::json!(1000), Some(1000)),
            (serde_json::json!("1000"), Some(1000)),
            (serde_json::json!("0"), Some(0)),
            (serde_json::json!("10.00"), None),
            (serde_json::json!("-5"), None),
            (serde_json::json!("+5"), None),
            (serde_json::json!(" 5"), None),
            (serde_json::json!(""), None),
            (serde_json::json!("99999999999999999999999"), None),
            (serde_json::json!(-5), None),
            (serde_json::json!(10.5), None),
            (serde_json::json!(true), None),
        ] {
            assert_eq!(minor_units(&v), expected, "{v}");
        }
    }

    #[test]
    fn expiry_is_a_future_yymm() {
        assert!(valid_expiry("3012", 2611));
        assert!(valid_expiry("2611", 2611));
        assert!(!valid_expiry("2610", 2611));
        assert!(!valid_expiry("3013", 2611));
        assert!(!valid_expiry("301", 2611));
    }
}
