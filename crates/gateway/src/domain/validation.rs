//! The one error a parse of merchant input produces: which field, a stable machine code, and a
//! message that tells the storefront developer what to send instead (the API's error body).

use std::fmt;

use crate::error_code::ErrorCode;

/// A field of the request that is missing or invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON path of the field, as the caller wrote it: `card.number`, `items[0].quantity`.
    pub param: String,
    /// A row of the API's error table; storefronts branch on it.
    pub code: ErrorCode,
    /// For a human: what is wrong and what to send instead.
    pub message: String,
}

impl FieldError {
    pub fn new(param: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
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
        Self::new(param, ErrorCode::ParameterMissing, message)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.param, self.code, self.message)
    }
}

impl std::error::Error for FieldError {}
