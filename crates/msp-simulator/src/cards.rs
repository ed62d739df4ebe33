//! The card-number behaviour table: MultiSafepay's own test cards (reference §7.1) decide what a
//! simulated order does, so tests written against the simulator hold against MSP's test API.

/// A card scheme as MSP names it in `payment_details.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Brand {
    Visa,
    Mastercard,
    Amex,
    Maestro,
}

impl Brand {
    /// Detects the scheme from the number's prefix, as MSP does for the `CREDITCARD` gateway.
    pub(crate) fn detect(number: &str) -> Option<Brand> {
        let two: u32 = number.get(..2)?.parse().ok()?;
        let four: u32 = number.get(..4)?.parse().ok()?;
        match (two, four) {
            (34 | 37, _) => Some(Brand::Amex),
            (51..=55, _) | (_, 2221..=2720) => Some(Brand::Mastercard),
            (50 | 56..=69, _) => Some(Brand::Maestro),
            (40..=49, _) => Some(Brand::Visa),
            _ => None,
        }
    }

    pub(crate) fn gateway(self) -> &'static str {
        match self {
            Brand::Visa => "VISA",
            Brand::Mastercard => "MASTERCARD",
            Brand::Amex => "AMEX",
            Brand::Maestro => "MAESTRO",
        }
    }

    /// How long an authorisation of a manual-capture order lasts before the scheme voids it
    /// (reference §6.2: Visa 7 days, Mastercard and Maestro 30). `None`: MSP offers manual
    /// capture for Visa, Mastercard and Maestro only.
    pub(crate) fn authorization_lifetime(self) -> Option<chrono::TimeDelta> {
        match self {
            Brand::Visa => Some(chrono::TimeDelta::days(7)),
            Brand::Mastercard | Brand::Maestro => Some(chrono::TimeDelta::days(30)),
            Brand::Amex => None,
        }
    }

    /// The `payment_description` MSP shows for the scheme.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Brand::Visa => "Visa CreditCards",
            Brand::Mastercard => "MasterCard",
            Brand::Amex => "American Express",
            Brand::Maestro => "Maestro",
        }
    }
}

/// What happens once the shopper authenticates (`Y`) on the challenge page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterChallenge {
    Complete,
    /// `uncleared`, then `completed` or `void` after the uncleared delay.
    Uncleared {
        then_complete: bool,
    },
    /// `declined` with this `reason_code`, whatever the shopper answers.
    Decline {
        reason_code: u16,
    },
}

/// What a card number does to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CardBehaviour {
    /// 3-D Secure challenge first; the order stays `initialized` until it is answered.
    Challenge(AfterChallenge),
    /// Authenticated without a challenge: `completed` in the create response.
    Frictionless,
    /// Not enrolled in 3-D Secure: `completed` in the create response, no authentication data.
    NotEnrolled,
    /// Refused before an order exists: error 1024.
    DeclinedAtCreation,
}

/// Looks a Luhn-valid number up in MSP's test-card table; any other valid number is challenged
/// and then completes, as MSP's test environment does.
pub(crate) fn behaviour(number: &str) -> CardBehaviour {
    match number {
        "374500000000015" => CardBehaviour::Frictionless,
        "4012001038443335" => CardBehaviour::NotEnrolled,
        "4917300000000008" => CardBehaviour::Challenge(AfterChallenge::Uncleared {
            then_complete: false,
        }),
        "4462000000000003" => CardBehaviour::Challenge(AfterChallenge::Uncleared {
            then_complete: true,
        }),
        "4012001037461114" | "374200000000004" => {
            CardBehaviour::Challenge(AfterChallenge::Decline { reason_code: 3001 })
        }
        "4012001038488884" => {
            CardBehaviour::Challenge(AfterChallenge::Decline { reason_code: 4002 })
        }
        "4242424242424242" => CardBehaviour::DeclinedAtCreation,
        _ => CardBehaviour::Challenge(AfterChallenge::Complete),
    }
}

/// The Luhn check every card number passes.
pub(crate) fn luhn_valid(number: &str) -> bool {
    if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_card_of_the_table_is_luhn_valid() {
        for n in [
            "4111111111111111",
            "4761340000000019",
            "5500000000000004",
            "374500000000015",
            "4012001038443335",
            "4917300000000008",
            "4462000000000003",
            "4012001037461114",
            "374200000000004",
            "4012001038488884",
            "4242424242424242",
        ] {
            assert!(luhn_valid(n), "{n}");
        }
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("41111111111a1111"));
    }

    #[test]
    fn brands_are_detected_from_the_prefix() {
        assert_eq!(Brand::detect("4111111111111111"), Some(Brand::Visa));
        assert_eq!(Brand::detect("5500000000000004"), Some(Brand::Mastercard));
        assert_eq!(Brand::detect("2221000000000009"), Some(Brand::Mastercard));
        assert_eq!(Brand::detect("374500000000015"), Some(Brand::Amex));
        assert_eq!(Brand::detect("6799990000000000011"), Some(Brand::Maestro));
        assert_eq!(Brand::detect("9999999999999995"), None);
    }
}
