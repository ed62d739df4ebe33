//! A request field that failed to parse: which one, a stable code, and what to do about it.

/// `param` is the JSON path of the field (`card.number`, `items[0].quantity`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct FieldError {
    pub param: String,
    pub code: &'static str,
    pub message: String,
}
