//! The one error a parse of merchant input produces: which field, a stable machine code, and a
//! message that tells the storefront developer what to send instead (design §3 error body).

use std::fmt;

/// A field of the request that is missing or invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON path of the field, as the caller wrote it: `card.number`, `items[0].quantity`.
    pub param: String,
    /// A stable machine code (see [`codes`]); storefronts branch on it, so never rename one.
    pub code: &'static str,
    /// For a human: what is wrong and what to send instead.
    pub message: String,
}

impl FieldError {
    pub fn new(param: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            code,
            message: message.into(),
        }
    }

    /// A required field that was absent (or `null`).
    pub fn missing(param: impl Into<String>) -> Self {
        let param = param.into();
        let message = format!("`{param}` is required: add it to the request");
        Self::new(param, codes::PARAMETER_MISSING, message)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.param, self.code, self.message)
    }
}

impl std::error::Error for FieldError {}

/// The machine codes of [`FieldError`]. They are part of the API contract.
pub mod codes {
    pub const PARAMETER_MISSING: &str = "parameter_missing";
    pub const INVALID_PARAMETER: &str = "invalid_parameter";
    pub const INVALID_CARD_NUMBER: &str = "invalid_card_number";
    pub const INVALID_EXPIRY: &str = "invalid_expiry";
    pub const INVALID_CVC: &str = "invalid_cvc";
    pub const INVALID_CURRENCY: &str = "invalid_currency";
    pub const INVALID_AMOUNT: &str = "invalid_amount";
    pub const INVALID_QUANTITY: &str = "invalid_quantity";
    pub const INVALID_TAX_RATE: &str = "invalid_tax_rate";
    pub const AMOUNT_MISMATCH: &str = "amount_mismatch";
    pub const INVALID_EMAIL: &str = "invalid_email";
    pub const INVALID_IP_ADDRESS: &str = "invalid_ip_address";
    pub const INVALID_COUNTRY: &str = "invalid_country";
    pub const INVALID_LOCALE: &str = "invalid_locale";
    pub const INVALID_URL: &str = "invalid_url";
    pub const URL_HOST_NOT_ALLOWED: &str = "url_host_not_allowed";
    pub const INVALID_METADATA: &str = "invalid_metadata";
}
