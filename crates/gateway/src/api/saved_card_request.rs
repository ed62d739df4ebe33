//! The saved-card fields of `POST /v1/checkouts`: `save_card`,
//! `customer.reference`, `payment_method`, and what they allow of the rest (a zero amount, no
//! `return_url`). Called by [`super::checkout_request::parse`]; each error names its field.

use crate::domain::card::CardBrand;
use crate::domain::checkout::CaptureMethod;
use crate::domain::money::MinorUnits;
use crate::domain::new_checkout::{CardDetails, PaymentSource};
use crate::domain::payment_method::{CustomerReference, PaymentMethodId, Usage};
use crate::domain::validation::FieldError;
use crate::errors::ErrorCode;

/// `save_card`: absent, or one of MSP's three models in the API's spelling.
pub(crate) fn save_card(value: Option<&str>) -> Result<Option<Usage>, FieldError> {
    match value {
        None => Ok(None),
        Some(v) => Usage::parse(v).map(Some).ok_or_else(|| {
            FieldError::new(
                "save_card",
                ErrorCode::InvalidParameter,
                "`save_card` is `card_on_file` (one-click payments with the shopper present), \
                 `subscription` (a fixed schedule) or `unscheduled` (charges your shop triggers, \
                 such as top-ups)",
            )
        }),
    }
}

/// `customer.reference`: required with `save_card`, plain text of at most 50 characters.
pub(crate) fn customer_reference(
    value: Option<&str>,
    save_card: Option<Usage>,
    pays_with_saved_card: bool,
) -> Result<Option<CustomerReference>, FieldError> {
    const PARAM: &str = "customer.reference";
    match value {
        Some(v) => CustomerReference::parse(PARAM, v).map(Some),
        // With `payment_method`, `save_card` is refused on its own (below).
        None if save_card.is_some() && !pays_with_saved_card => Err(FieldError::new(
            PARAM,
            ErrorCode::ParameterMissing,
            "`save_card` needs `customer.reference`: your own stable id for the shopper, such as \
             `cus-42`, under which the card is saved",
        )),
        None => Ok(None),
    }
}

/// `payment_method` instead of `card`: a well-formed id, not with `card`, not saved again.
pub(crate) fn payment_method(
    value: &str,
    card_too: bool,
    save_card: Option<Usage>,
) -> Result<PaymentSource, FieldError> {
    if card_too {
        return Err(FieldError::new(
            "payment_method",
            ErrorCode::InvalidParameter,
            "send either `card` or `payment_method`, not both: a saved card pays without card data",
        ));
    }
    if save_card.is_some() {
        return Err(FieldError::new(
            "save_card",
            ErrorCode::InvalidParameter,
            "a payment with `payment_method` uses a card that is saved already: leave `save_card` out",
        ));
    }
    let id = PaymentMethodId::parse(value).map_err(|e| {
        FieldError::new("payment_method", ErrorCode::InvalidParameter, e.to_string())
    })?;
    Ok(PaymentSource::Saved { id, resolved: None })
}

/// A zero amount only saves a card, and MSP zero-authorises Visa, Mastercard and Maestro only.
pub(crate) fn zero_amount(
    card: &CardDetails,
    save_card: Option<Usage>,
    total: MinorUnits,
) -> Result<(), FieldError> {
    let zero_authorisable = matches!(
        card.number.brand(),
        CardBrand::Visa | CardBrand::Mastercard | CardBrand::Maestro
    );
    if total == MinorUnits::ZERO && save_card.is_some() && !zero_authorisable {
        return Err(FieldError::new(
            "card.number",
            ErrorCode::InvalidCardNumber,
            "a card is saved without a charge (amount 0) for Visa, Mastercard and Maestro cards \
             only: charge this card at least one minor unit to save it",
        ));
    }
    Ok(())
}

/// A saved card's payment is collected at once.
pub(crate) fn saved_capture_method(value: Option<&str>) -> Result<CaptureMethod, FieldError> {
    match value {
        None | Some("automatic") => Ok(CaptureMethod::Automatic),
        Some(_) => Err(FieldError::new(
            "capture_method",
            ErrorCode::InvalidParameter,
            "a payment with `payment_method` is collected at once: send `automatic` or leave \
             `capture_method` out",
        )),
    }
}
