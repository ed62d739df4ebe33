//! Card data. The full number and the CVC live only in these types, whose `Debug` masks them,
//! and only until the MSP call; what is stored is a [`CardSummary`].

use serde::{Deserialize, Serialize};

/// What the gateway keeps and shows of a card: brand, last four digits, expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSummary {
    /// `visa`, `mastercard`, `amex`, `maestro` or `unknown`.
    pub brand: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
}
