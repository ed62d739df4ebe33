//! The shopper as MSP needs them for a card order: email, IP address, country (required), and
//! the optional name, phone, address, locale and 3-D Secure browser data.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::text::{self, Breach};

/// An email address: a simple, sane check (one `@`, a dotted domain, no spaces), at most 64
/// characters because that is MSP's limit for `customer.email`, and plain text as every
/// free-text field is ([`text::breach`]): it is shown in MSP's back office and its e-mails like
/// a name is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("send the shopper's email address, such as jo@example.com, at most 64 characters")]
    Malformed,
    #[error(
        "send the shopper's email address as plain text: no `<` or `>`, no invisible or bidirectional formatting characters"
    )]
    NotPlainText,
    #[error(
        "the email address seems to hold a card number: card data goes in `card` only, never in free text"
    )]
    CardNumber,
}

impl Email {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, EmailError> {
        match text::breach(s) {
            None => {}
            Some(Breach::CardNumber) => return Err(EmailError::CardNumber),
            Some(Breach::Markup | Breach::Invisible) => return Err(EmailError::NotPlainText),
        }
        let (local, domain) = s.split_once('@').ok_or(EmailError::Malformed)?;
        let sane = s.chars().count() <= Self::MAX_LEN
            && !local.is_empty()
            && !domain.contains('@')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty());
        if sane {
            Ok(Self(s.to_owned()))
        } else {
            Err(EmailError::Malformed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 3166-1 alpha-2 country code, uppercase (`NL`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country([u8; 2]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("send an ISO 3166-1 alpha-2 country code in uppercase, such as NL, DE or US")]
pub struct CountryError;

/// Every officially assigned ISO 3166-1 alpha-2 code (249), so that `XX` or `UK` is caught here
/// rather than by MSP's error 1018. Sorted, for a binary search.
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

impl Country {
    pub fn parse(s: &str) -> Result<Self, CountryError> {
        let b = s.as_bytes();
        if b.len() == 2
            && b.iter().all(u8::is_ascii_uppercase)
            && COUNTRIES.binary_search(&s).is_ok()
        {
            Ok(Self([b[0], b[1]]))
        } else {
            Err(CountryError)
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from two ASCII uppercase letters.
        std::str::from_utf8(&self.0).unwrap_or("ZZ")
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A locale as MSP spells it: `ab_CD` (`nl_NL`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locale(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "send the locale as a language and a country joined by an underscore, such as nl_NL or en_US"
)]
pub struct LocaleError;

impl Locale {
    pub fn parse(s: &str) -> Result<Self, LocaleError> {
        let b = s.as_bytes();
        let ok = b.len() == 5
            && b[..2].iter().all(u8::is_ascii_lowercase)
            && b[2] == b'_'
            && b[3..].iter().all(u8::is_ascii_uppercase);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(LocaleError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 3-D Secure 2 device data, forwarded to MSP as `customer.browser` when the storefront sends it.
/// Every field is optional; the types are MSP's card schema's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserInfo {
    pub javascript_enabled: Option<bool>,
    pub java_enabled: Option<bool>,
    pub cookies_enabled: Option<bool>,
    /// The browser's language tag, such as `nl-NL`.
    pub language: Option<String>,
    pub screen_width: Option<u32>,
    pub screen_height: Option<u32>,
    pub screen_color_depth: Option<u32>,
    /// Minutes, UTC minus local time (`-60` in Amsterdam in winter).
    pub time_zone: Option<i32>,
    pub user_agent: Option<String>,
    pub platform: Option<String>,
}

/// The shopper's address; MSP requires the country for card orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub line1: Option<String>,
    pub house_number: Option<String>,
    pub zip_code: Option<String>,
    pub city: Option<String>,
    pub country: Country,
}

/// The shopper, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<Locale>,
    /// Required by MSP for card orders (fraud checks).
    pub ip_address: IpAddr,
    pub user_agent: Option<String>,
    pub address: Address,
    pub browser: Option<BrowserInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["jo@example.com", "jo.doe+shop@mail.example.co.uk", "a@b.c"] {
            assert_eq!(Email::parse(ok).unwrap().as_str(), ok);
        }
        let long = format!("{}@example.com", "a".repeat(53));
        assert_eq!(long.len(), 65);
        for bad in [
            "",
            "jo",
            "@example.com",
            "jo@",
            "jo@example",
            "jo@@example.com",
            "jo@exa@mple.com",
            "jo doe@example.com",
            "jo@example..com",
            "jo@.example.com",
            "jo@example.com.",
            long.as_str(),
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Malformed), "{bad:?}");
        }
        assert!(Email::parse(&long[1..]).is_ok(), "64 characters are fine");
        // Internationalised addresses are addresses.
        assert!(Email::parse("zoë@例え.jp").is_ok());
    }

    #[test]
    fn an_email_is_plain_text_and_holds_no_card_number() {
        for bad in [
            "jo\u{200B}@example.com",
            "jo@exa\u{200D}mple.com",
            "\u{202E}moc.elpmaxe@oj",
            "jo\u{2066}@example.com",
            "\u{FEFF}jo@example.com",
            "<jo@example.com>",
            "jo<script>@example.com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::NotPlainText), "{bad:?}");
        }
        for bad in [
            "4111111111111111@example.com",
            "\u{FF14}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}@example.com",
            "jo.\u{664}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}\u{661}@example.com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::CardNumber), "{bad:?}");
            assert!(!EmailError::CardNumber.to_string().contains("4111"));
        }
    }

    #[test]
    fn countries_are_real_uppercase_alpha2_codes() {
        assert!(COUNTRIES.is_sorted(), "sorted, for the binary search");
        for code in COUNTRIES {
            assert!(Country::parse(code).is_ok(), "{code}");
        }
        for ok in ["NL", "DE", "US", "GB", "BE", "JP", "ZW", "AD"] {
            assert_eq!(Country::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "nl", "Nl", "NLD", "UK", "XX", "EU", "N", "1A", "ÑL"] {
            assert_eq!(Country::parse(bad), Err(CountryError), "{bad:?}");
        }
    }

    #[test]
    fn locales() {
        for ok in ["nl_NL", "en_US", "de_AT"] {
            assert_eq!(Locale::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "nl", "nl-NL", "NL_nl", "nl_nl", "nld_NL", "nl_NLD"] {
            assert_eq!(Locale::parse(bad), Err(LocaleError), "{bad:?}");
        }
    }
}
