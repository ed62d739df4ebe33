//! Where the gateway sends the shopper's browser back to: the merchant's `return_url` and
//! `cancel_url`. Checked against an allow-list so the gateway is no open redirect.

use std::fmt;

/// An absolute http(s) URL without userinfo, on an allowed host.
#[derive(Clone, PartialEq, Eq)]
pub struct ReturnUrl(url::Url);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnUrlError {
    #[error(
        "send an absolute http or https URL without user name or password, such as https://shop.example/checkout/return"
    )]
    Invalid,
    #[error(
        "use an https URL: plain http is only allowed for the hosts in checkout.return_url_hosts"
    )]
    HttpsRequired,
    #[error(
        "the URL's host is not in the gateway's list of allowed return hosts (checkout.return_url_hosts): use one of those hosts or ask the operator to add it"
    )]
    HostNotAllowed(String),
}

impl ReturnUrl {
    /// Longer URLs than this are not return URLs but payloads.
    pub const MAX_LEN: usize = 2048;

    /// `allowed_hosts` is `checkout.return_url_hosts`: when empty, any host over https; otherwise
    /// only the listed hosts (compared without port, case-insensitively), over http or https.
    pub fn parse(s: &str, allowed_hosts: &[String]) -> Result<Self, ReturnUrlError> {
        if s.len() > Self::MAX_LEN {
            return Err(ReturnUrlError::Invalid);
        }
        let url = url::Url::parse(s).map_err(|_| ReturnUrlError::Invalid)?;
        let is_https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(ReturnUrlError::Invalid),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ReturnUrlError::Invalid);
        }
        let host = url.host_str().ok_or(ReturnUrlError::Invalid)?;
        if allowed_hosts.is_empty() {
            return if is_https {
                Ok(Self(url))
            } else {
                Err(ReturnUrlError::HttpsRequired)
            };
        }
        // `url` lowercases domain names; the configured entries may carry a port or capitals.
        let listed = allowed_hosts
            .iter()
            .any(|allowed| host_without_port(allowed).eq_ignore_ascii_case(host));
        if listed {
            Ok(Self(url))
        } else {
            Err(ReturnUrlError::HostNotAllowed(host.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn as_url(&self) -> &url::Url {
        &self.0
    }
}

/// `shop.example:8443` → `shop.example`; `[::1]:80` → `[::1]` (as `Url::host_str` spells it).
fn host_without_port(entry: &str) -> &str {
    let entry = entry.trim();
    if entry.starts_with('[') {
        return entry.find(']').map_or(entry, |end| &entry[..=end]);
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => entry,
    }
}

impl fmt::Debug for ReturnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReturnUrl({})", self.0)
    }
}

impl fmt::Display for ReturnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReturnUrlError as E;

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn without_a_list_any_https_host_is_fine_and_http_is_not() {
        let url = ReturnUrl::parse("https://shop.example/checkout/return?x=1", &[]).unwrap();
        assert_eq!(url.as_str(), "https://shop.example/checkout/return?x=1");
        assert_eq!(
            ReturnUrl::parse("http://shop.example/return", &[]),
            Err(E::HttpsRequired)
        );
    }

    #[test]
    fn listed_hosts_match_without_port_and_case_over_http_or_https() {
        let list = hosts(&["Shop.Example", "127.0.0.1:8080", "[::1]:9000"]);
        for ok in [
            "https://shop.example/return",
            "http://SHOP.example:8080/return",
            "http://127.0.0.1:3000/r",
            "http://[::1]/r",
        ] {
            assert!(ReturnUrl::parse(ok, &list).is_ok(), "{ok}");
        }
        assert_eq!(
            ReturnUrl::parse("https://evil.example/return", &list),
            Err(E::HostNotAllowed("evil.example".into()))
        );
        assert_eq!(
            ReturnUrl::parse("https://shop.example.evil.example/", &list),
            Err(E::HostNotAllowed("shop.example.evil.example".into()))
        );
    }

    #[test]
    fn malformed_urls_are_rejected() {
        let too_long = format!("https://shop.example/{}", "a".repeat(2048));
        for bad in [
            "",
            "/checkout/return",
            "shop.example/return",
            "javascript:alert(1)",
            "ftp://shop.example/",
            "https://user:pw@shop.example/",
            "https://user@shop.example/",
            "data:text/html,hi",
            too_long.as_str(),
        ] {
            assert_eq!(ReturnUrl::parse(bad, &[]), Err(E::Invalid), "{bad:?}");
        }
        assert_eq!(
            ReturnUrl::parse("https://user@shop.example/", &hosts(&["shop.example"])),
            Err(E::Invalid)
        );
    }
}
